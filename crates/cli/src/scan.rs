//! `gatehouse scan PATH...`: analyze AWS, Azure and GCP IAM exports offline and report
//! findings as text, JSON or SARIF; `--fail-on SEVERITY` turns findings into exit code 1.
//! `--store` scans Gatehouse's own store too, with its audit log (unused permissions), MFA
//! devices and deployments' deprecation dates; `--endpoint-url` reads a running Gatehouse
//! through its IAM API instead (authorization details only).

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use gatehouse_analyzer::{
    Report, Severity, collect_files, output, scan_bytes, scan_files, scan_store,
};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Files at or above which a progress bar is shown (when stderr is a terminal).
const PROGRESS_MIN_FILES: usize = 50;

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files or directories (read recursively: `*.json`, `*.jsonl` audit logs, `*.csv`
    /// credential reports and extension-less files).
    #[arg(required_unless_present_any = ["store", "endpoint_url"])]
    paths: Vec<PathBuf>,
    /// Scan Gatehouse's own store (`--data-dir` or `--database-url`) with its audit log.
    #[arg(long, conflicts_with = "endpoint_url")]
    store: bool,
    #[command(flatten)]
    remote: crate::remote::RemoteArgs,
    #[command(flatten)]
    store_args: crate::admin::StoreArgs,
    /// Permissions not used for this many days are reported (needs an audit log that
    /// reaches back as far; a younger log is reported as such, at low severity).
    #[arg(long, value_name = "DAYS", default_value_t = gatehouse_analyzer::usage::DEFAULT_UNUSED_DAYS,
          value_parser = clap::value_parser!(i64).range(1..=3650))]
    unused_days: i64,
    /// The region in the store's model ARNs (the server's configured region).
    #[arg(long, default_value = "local")]
    region: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    format: ScanFormat,
    /// Exit with status 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<FailOn>,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// Where deprecated Bedrock models are known from, beside the list compiled in.
#[derive(Debug, Args)]
pub(crate) struct LifecycleArgs {
    /// The output of `aws bedrock list-foundation-models` for the account: its Legacy
    /// models count as deprecated too (the compiled-in list keeps the end-of-life ones,
    /// which AWS no longer lists).
    #[arg(long, value_name = "FILE")]
    bedrock_models: Option<PathBuf>,
}

impl LifecycleArgs {
    /// Puts the file's Legacy models in force for this run.
    pub(crate) fn install(&self) -> Result<()> {
        let Some(f) = &self.bedrock_models else {
            return Ok(());
        };
        let name = f.display().to_string();
        let bytes = std::fs::read(f).with_context(|| format!("{name}: cannot read"))?;
        let models = gatehouse_analyzer::lifecycle::parse_list_foundation_models(&bytes)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        gatehouse_analyzer::lifecycle::BedrockLifecycle::install(
            models,
            &format!("{name} (ListFoundationModels)"),
        );
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScanFormat {
    /// Findings grouped by severity, for people.
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::Critical => Severity::Critical,
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
            FailOn::Info => Severity::Info,
        }
    }
}

pub(crate) fn run(args: ScanArgs) -> Result<ExitCode> {
    args.lifecycle.install()?;
    let files = collect_files(&args.paths).context("collecting input files")?;
    let bar = (files.len() >= PROGRESS_MIN_FILES && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed}")
        {
            bar.set_style(style);
        }
        bar
    });
    let mut report = scan_files(&files, &|| {
        if let Some(b) = &bar {
            b.inc(1);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if args.store {
        let snapshot = crate::admin::runtime()?.block_on(async {
            let s = args.store_args.open().await?;
            crate::store_export::snapshot(&s, args.store_args.describe(), args.region.clone()).await
        })?;
        report.merge(scan_store(&snapshot, chrono::Utc::now(), args.unused_days)?);
    }
    if let Some(endpoint) = &args.remote.endpoint_url {
        let details = crate::remote::authorization_details(&args.remote)?;
        report.merge(Report {
            files: 1,
            findings: scan_bytes(endpoint, &details),
            notices: vec![crate::remote::NOTICE.to_owned()],
        });
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        ScanFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            stdout.write_all(output::text(&report, color).as_bytes())?;
        }
        ScanFormat::Json => writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&output::json(&report))?
        )?,
        ScanFormat::Sarif => writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&output::sarif(&report))?
        )?,
    }
    stdout.flush()?;
    let failed = args.fail_on.is_some_and(|f| {
        report
            .max_severity()
            .is_some_and(|m| m >= Severity::from(f))
    });
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
