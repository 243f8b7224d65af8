//! `gatehouse who-can ACTION RESOURCE` and `gatehouse what-can PRINCIPAL`: effective access
//! over an `aws iam get-account-authorization-details` export, decided by the engine.

use crate::Format;
use anyhow::{Context as _, Result, bail};
use clap::Args;
use gatehouse_analyzer::Settings;
use gatehouse_analyzer::access::Directory;
use gatehouse_analyzer::export::AwsExport;
use gatehouse_policy::Context;
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct Source {
    /// The `aws iam get-account-authorization-details` output to answer from; without it,
    /// a running Gatehouse (`--endpoint-url`) or its store (`--data-dir`, `--database-url`).
    #[arg(long, value_name = "FILE", conflicts_with = "endpoint_url")]
    details: Option<PathBuf>,
    #[command(flatten)]
    remote: crate::remote::RemoteArgs,
    #[command(flatten)]
    store: crate::admin::StoreArgs,
}

impl Source {
    /// The export: a file (read as a stream, never whole), or the bytes of a running
    /// Gatehouse's IAM API or of its store.
    fn export(&self) -> Result<AwsExport> {
        let (name, source) = match &self.details {
            Some(f) => (
                f.display().to_string(),
                gatehouse_analyzer::export::Source::File(f.clone()),
            ),
            None => {
                let (name, bytes) = self.read()?;
                (
                    name,
                    gatehouse_analyzer::export::Source::Bytes(bytes.into()),
                )
            }
        };
        match AwsExport::open(&name, source)? {
            Some(e) => Ok(e),
            None => {
                let bytes = match &self.details {
                    Some(f) => std::fs::read(f).with_context(|| format!("{name}: cannot read"))?,
                    None => self.read()?.1,
                };
                Err(Directory::from_bytes(&name, &bytes)
                    .err()
                    .map_or_else(|| anyhow::anyhow!("{name}: not an export"), Into::into))
            }
        }
    }

    /// The file name used in messages, and the export's bytes (API or store).
    fn read(&self) -> Result<(String, Vec<u8>)> {
        match &self.details {
            Some(f) => Ok((
                f.display().to_string(),
                std::fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?,
            )),
            None if self.remote.endpoint_url.is_some() => {
                let bytes = crate::remote::authorization_details(&self.remote)?;
                eprintln!("gatehouse: notice: {}", crate::remote::NOTICE);
                Ok((self.remote.endpoint_url.clone().unwrap_or_default(), bytes))
            }
            None => {
                let v = crate::admin::runtime()?.block_on(async {
                    let s = self.store.open().await?;
                    crate::store_export::authorization_details(&s).await
                })?;
                Ok(("gatehouse store".into(), serde_json::to_vec(&v)?))
            }
        }
    }

    fn load(&self) -> Result<Directory> {
        Ok(Directory::new(self.export()?, Settings::default()))
    }
}

#[derive(Debug, Args)]
pub(crate) struct WhoCanArgs {
    /// The action, e.g. `bedrock:InvokeModel`.
    action: String,
    /// The resource ARN (or `*`).
    resource: String,
    #[command(flatten)]
    source: Source,
    /// A context key for the request, `KEY=VALUE` (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct WhatCanArgs {
    /// The principal: ARN, `user/NAME`, `role/NAME`, or a bare name.
    principal: String,
    #[command(flatten)]
    source: Source,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn who_can(args: WhoCanArgs) -> Result<ExitCode> {
    let dir = args.source.load()?;
    let mut out = String::new();
    let mut context = Context::default();
    for kv in &args.context {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--context {kv}: expected KEY=VALUE");
        };
        context.insert(k, v);
    }
    let grants = dir.who_can(
        &args.action,
        &args.resource,
        &context,
        &crate::progress::Bar::new("principals"),
    )?;
    match args.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({
                "action": args.action, "resource": args.resource, "principals": grants
            }))?
        )?,
        Format::Text => {
            if grants.is_empty() {
                writeln!(out, "nobody can {} on {}", args.action, args.resource)?;
            }
            for g in &grants {
                let cond = if g.conditions.is_empty() {
                    String::new()
                } else {
                    format!(" (if {})", g.conditions.join(" and "))
                };
                writeln!(
                    out,
                    "{} {} {}{cond} via {}",
                    g.arn,
                    g.access,
                    args.action,
                    g.through.join("; ")
                )?;
            }
        }
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn what_can(args: WhatCanArgs) -> Result<ExitCode> {
    let dir = args.source.load()?;
    let mut out = String::new();
    let (p, d) = dir.what_can(&args.principal)?;
    match args.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({
                "principal": p.arn, "allowed": d.newly_allowed, "complete": d.complete
            }))?
        )?,
        Format::Text => {
            if d.newly_allowed.is_empty() {
                writeln!(out, "{} can do nothing", p.arn)?;
            }
            for c in &d.newly_allowed {
                writeln!(
                    out,
                    "{} can {} on {} when {}",
                    p.arn,
                    c.actions_label(),
                    c.resource,
                    c.when_label()
                )?;
            }
        }
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReviewFormat {
    /// Markdown tables.
    Markdown,
    /// A standalone HTML page.
    Html,
    /// One JSON document.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct ReviewArgs {
    #[command(flatten)]
    source: Source,
    /// Identities holding actions unused for this many days are listed (Gatehouse: from
    /// the audit log; AWS: roles by `RoleLastUsed`, users by `--credential-report`, holding
    /// write access).
    #[arg(long, value_name = "DAYS", default_value_t = gatehouse_analyzer::usage::DEFAULT_UNUSED_DAYS,
          value_parser = clap::value_parser!(i64).range(1..=3650))]
    unused_days: i64,
    /// The region in the store's model ARNs (the server's configured region).
    #[arg(long, default_value = "local")]
    region: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReviewFormat::Markdown)]
    format: ReviewFormat,
    /// An AWS credential report (CSV) for the `--details` export: users whose password and
    /// keys were not used for `--unused-days` and who may still write are listed too.
    #[arg(long, value_name = "FILE", requires = "details")]
    credential_report: Option<PathBuf>,
    #[command(flatten)]
    settings: crate::scan::SettingsArgs,
    /// The review by person, across clouds: every person who can invoke or manage a model
    /// through the AWS export (`--details`), Gatehouse's store (when `--data-dir`,
    /// `--database-url` or `--config` names it) and the exports given as PATHS (Azure role
    /// assignments and definitions, GCP IAM policies and custom roles, more AWS exports, IAM
    /// Identity Center assignments and identity store listings), joined by email / user
    /// principal name.
    #[arg(long)]
    by_person: bool,
    /// For `--by-person`: a JSON file of group members and of the people behind cloud
    /// identities (format in README.md, "Review by person").
    #[arg(long, value_name = "FILE", requires = "by_person")]
    groups: Option<PathBuf>,
    /// For `--by-person`: files or directories of Azure, GCP and AWS exports.
    #[arg(value_name = "PATHS", requires = "by_person")]
    paths: Vec<PathBuf>,
}

/// `review --by-person`: the grants of every export, resolved to people.
fn review_by_person(args: &ReviewArgs, settings: &Settings) -> Result<ExitCode> {
    use gatehouse_analyzer::review::identity_center::IdentityCenter;
    use gatehouse_analyzer::review::people;
    let mut directory = match &args.groups {
        Some(f) => {
            let name = f.display().to_string();
            let bytes = std::fs::read(f).with_context(|| format!("{name}: cannot read"))?;
            people::Directory::parse(&name, &bytes)?
        }
        None => people::Directory::default(),
    };
    let progress = crate::progress::Bar::new("principals");
    let mut reviews = Vec::new();
    if args.source.details.is_some() || args.source.remote.endpoint_url.is_some() {
        let export = args.source.export()?;
        reviews.push((
            "aws",
            gatehouse_analyzer::review::review_export(&export, None, settings, &progress)?,
        ));
    }
    // Gatehouse's own identities, when its store is named (`--data-dir`, `--database-url`,
    // `--config`).
    if args.source.store.named() {
        let snapshot = crate::admin::runtime()?.block_on(async {
            let s = args.source.store.open().await?;
            crate::store_export::snapshot(&s, args.source.store.describe(), args.region.clone())
                .await
        })?;
        reviews.push((
            "gatehouse",
            gatehouse_analyzer::review::review_store(
                &snapshot,
                chrono::Utc::now(),
                args.unused_days,
                settings,
            )?,
        ));
    }
    let mut identity_center = IdentityCenter::default();
    let mut inventories = Vec::new();
    for f in gatehouse_analyzer::collect_files(&args.paths)? {
        let name = f.display().to_string();
        match AwsExport::open(&name, gatehouse_analyzer::export::Source::File(f.clone()))? {
            Some(export) => reviews.push((
                "aws",
                gatehouse_analyzer::review::review_export(&export, None, settings, &progress)?,
            )),
            None => {
                let bytes = std::fs::read(&f).with_context(|| format!("{name}: cannot read"))?;
                if identity_center.read(&name, &bytes)? {
                    continue;
                }
                let (inv, _) = gatehouse_analyzer::import::import(&name, &bytes);
                if inv.format == gatehouse_analyzer::model::Format::Unknown {
                    bail!("{name}: $: not an AWS, Azure or GCP IAM export");
                }
                inventories.push(inv);
            }
        }
    }
    identity_center.add_to(&mut directory);
    let reviews: Vec<(&'static str, &gatehouse_analyzer::review::Review)> =
        reviews.iter().map(|(cloud, r)| (*cloud, r)).collect();
    let r = people::by_person(
        &reviews,
        &inventories.iter().collect::<Vec<_>>(),
        &directory,
    );
    match args.format {
        ReviewFormat::Markdown => emit(&r.markdown())?,
        ReviewFormat::Html => emit(&r.html())?,
        ReviewFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&r)?))?,
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn review(args: ReviewArgs) -> Result<ExitCode> {
    let settings = Settings {
        unused_days: args.unused_days,
        ..args.settings.settings()?
    };
    if args.by_person {
        return review_by_person(&args, &settings);
    }
    let mut jit = None;
    let r = if args.source.details.is_some() || args.source.remote.endpoint_url.is_some() {
        let export = args.source.export()?;
        let report = match &args.credential_report {
            Some(f) => {
                let name = f.display().to_string();
                let csv = std::fs::read(f).with_context(|| format!("{name}: cannot read"))?;
                Some(gatehouse_analyzer::import::import(&name, &csv).0)
            }
            None => None,
        };
        gatehouse_analyzer::review::review_export(
            &export,
            report.as_ref(),
            &settings,
            &crate::progress::Bar::new("principals"),
        )?
    } else {
        let (snapshot, section) = crate::admin::runtime()?.block_on(async {
            let s = args.source.store.open().await?;
            let snapshot =
                crate::store_export::snapshot(&s, "gatehouse store".into(), args.region.clone())
                    .await?;
            let account = s.default_account().await?.account_id;
            let section =
                crate::jit_review::read(&s, &account, chrono::Utc::now(), args.unused_days).await?;
            anyhow::Ok((snapshot, section))
        })?;
        jit = Some(section);
        gatehouse_analyzer::review::review_store(
            &snapshot,
            chrono::Utc::now(),
            args.unused_days,
            &settings,
        )?
    };
    match (args.format, &jit) {
        (ReviewFormat::Markdown, None) => emit(&r.markdown())?,
        (ReviewFormat::Html, None) => emit(&r.html())?,
        // A store's review: one account, with its just-in-time section.
        (ReviewFormat::Markdown, Some(j)) => emit(&(r.markdown() + &j.markdown()))?,
        (ReviewFormat::Html, Some(j)) => {
            let section = format!(
                "<section id=\"just-in-time\"><pre>{}</pre></section>\n</body>",
                j.markdown()
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            );
            emit(&r.html().replacen("</body>", &section, 1))?;
        }
        (ReviewFormat::Json, Some(j)) => {
            let mut v = serde_json::to_value(&r)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("just_in_time".into(), serde_json::to_value(j)?);
            }
            emit(&(serde_json::to_string_pretty(&v)? + "\n"))?;
        }
        // Written as it is serialized: an organization's review is large.
        (ReviewFormat::Json, None) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match serde_json::to_writer_pretty(&mut out, &r)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .and_then(|()| out.flush())
            {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the answer; a reader that stops early (`| head`) is not an error.
pub(crate) fn emit(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
