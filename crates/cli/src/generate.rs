//! `gatehouse policy template ROLE --model ...` and `gatehouse policy generate --principal
//! ARN --since 30d`: least-privilege policies from a role's needs or from the audit log.

use crate::access::emit;
use crate::admin::{StoreArgs, runtime};
use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use gatehouse_analyzer::generate::{self as gen_, AuditRecord, Scope, Template};
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// Calls the named models.
    Invoker,
    /// Manages deployments and guardrails (with MFA); does not invoke.
    Admin,
    /// Runs fine-tuning jobs on the named models.
    FineTuning,
    /// Points deployments at the named models only.
    Deployer,
    /// Reads invocation logs and configuration (with MFA).
    Auditor,
}

#[derive(Debug, Args)]
pub(crate) struct TemplateArgs {
    /// The role the policy is for.
    #[arg(value_enum)]
    role: Role,
    /// A model id the policy is scoped to (repeatable, at least one).
    #[arg(long = "model", value_name = "MODEL_ID", required = true)]
    models: Vec<String>,
    /// Only through this listener (`aws:SourceVpce`).
    #[arg(long, value_name = "NAME")]
    listener: Option<String>,
    /// The account id in resource ARNs (`*`: any).
    #[arg(long, default_value = "*")]
    account: String,
    /// The region in resource ARNs.
    #[arg(long, default_value = "local")]
    region: String,
    /// The partition in resource ARNs.
    #[arg(long, default_value = "gatehouse")]
    partition: String,
}

pub(crate) fn template(args: TemplateArgs) -> Result<ExitCode> {
    let kind = match args.role {
        Role::Invoker => Template::Invoker,
        Role::Admin => Template::Admin,
        Role::FineTuning => Template::FineTuning,
        Role::Deployer => Template::Deployer,
        Role::Auditor => Template::Auditor,
    };
    let doc = gen_::template(
        kind,
        &Scope {
            models: args.models,
            listener: args.listener,
            partition: args.partition,
            region: args.region,
            account: args.account,
        },
    );
    emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The principal's ARN as the audit log records it.
    #[arg(long, value_name = "ARN")]
    principal: String,
    /// How far back to look: `30d`, `12h`, `45m`.
    #[arg(long, default_value = "30d")]
    since: String,
    /// Read records from this JSON-lines file (`gatehouse audit export`) instead of the store.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

/// The records of one principal in an audit log file, read a line at a time: an
/// organization's log is far larger than what one principal did. Every line is still
/// checked, and the first that is not a record is an error naming its line.
fn principal_records(file: &std::path::Path, principal: &str) -> Result<Vec<AuditRecord>> {
    let f =
        std::fs::File::open(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let mut kept = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}: cannot read", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: AuditRecord = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}: not an audit record", file.display(), i + 1))?;
        if gatehouse_analyzer::usage::is_principal(&r.principal, principal) {
            kept.push(r);
        }
    }
    Ok(kept)
}

pub(crate) fn generate(args: GenerateArgs) -> Result<ExitCode> {
    let Some(window) = gen_::parse_since(&args.since) else {
        bail!(
            "--since {}: expected a number and d, h, m or s (e.g. 30d)",
            args.since
        );
    };
    let since = chrono::Utc::now() - window;
    let records = match &args.audit_log {
        Some(file) => principal_records(file, &args.principal)?,
        None => crate::store_export::parse_audit(runtime()?.block_on(async {
            crate::store_export::audit_lines(&args.store.open().await?).await
        })?)?,
    };
    let g = gen_::from_audit(&records, &args.principal, since);
    match &g.policy {
        Some(doc) => {
            emit(&(serde_json::to_string_pretty(doc)? + "\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "gatehouse: {} made no allowed call in the last {}",
                args.principal, args.since
            );
            Ok(ExitCode::from(1))
        }
    }
}
