//! `gatehouse scan PATH...`: analyze AWS, Azure and GCP IAM exports offline and report
//! findings as text, JSON or SARIF; `--fail-on SEVERITY` turns findings into exit code 1.
//! `--store` scans Gatehouse's own store too, with its audit log (unused permissions), MFA
//! devices and deployments' deprecation dates; `--endpoint-url` reads a running Gatehouse
//! through its IAM API instead (authorization details only).

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use gatehouse_analyzer::{
    Report, Settings, Severity, collect_files, output, scan_bytes_with, scan_files, scan_store,
};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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
    settings: SettingsArgs,
}

/// What a run knows beside its inputs: deprecated Bedrock models beyond the list compiled
/// in, and the AWS organization the accounts belong to.
#[derive(Debug, Args)]
pub(crate) struct SettingsArgs {
    /// The output of `aws bedrock list-foundation-models` for the account: its Legacy
    /// models count as deprecated too (the compiled-in list keeps the end-of-life ones,
    /// which AWS no longer lists).
    #[arg(long, value_name = "FILE")]
    bedrock_models: Option<PathBuf>,
    /// AWS Organizations data (a directory of `aws organizations` outputs; see README.md):
    /// service control policies then bound every decision in member accounts, and the
    /// organization's accounts are not external to each other.
    #[arg(long = "org", value_name = "DIR")]
    organization: Option<PathBuf>,
}

impl SettingsArgs {
    /// The run's settings: the deprecated models known (the compiled-in list, plus the
    /// file's Legacy models) and the organization.
    pub(crate) fn settings(&self) -> Result<Settings> {
        let mut settings = Settings::default();
        if let Some(dir) = &self.organization {
            settings.organization = Some(gatehouse_analyzer::org::load(dir)?);
        }
        if let Some(f) = &self.bedrock_models {
            let name = f.display().to_string();
            let bytes = std::fs::read(f).with_context(|| format!("{name}: cannot read"))?;
            let models = gatehouse_analyzer::lifecycle::parse_list_foundation_models(&bytes)
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            settings.bedrock = settings
                .bedrock
                .with_account_models(models, &format!("{name} (ListFoundationModels)"));
        }
        Ok(settings)
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
    let settings = args.settings.settings()?;
    let files = collect_files(&args.paths).context("collecting input files")?;
    let mut report = scan_files(
        &files,
        &settings,
        &crate::progress::Bar::new("files and principals"),
    );
    if args.store {
        let snapshot = crate::admin::runtime()?.block_on(async {
            let s = args.store_args.open().await?;
            crate::store_export::snapshot(&s, args.store_args.describe(), args.region.clone()).await
        })?;
        report.merge(scan_store(
            &snapshot,
            chrono::Utc::now(),
            args.unused_days,
            &settings,
        )?);
    }
    if let Some(endpoint) = &args.remote.endpoint_url {
        let details = crate::remote::authorization_details(&args.remote)?;
        report.merge(Report {
            files: 1,
            findings: scan_bytes_with(endpoint, &details, &settings),
            notices: vec![crate::remote::NOTICE.to_owned()],
        });
    }
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        ScanFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            output::write_text(&report, color, &mut stdout)?;
        }
        ScanFormat::Json => output::write_json(&report, &mut stdout)?,
        ScanFormat::Sarif => output::write_sarif(&report, &mut stdout)?,
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
