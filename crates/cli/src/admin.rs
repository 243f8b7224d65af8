//! `gatehouse admin ...` and `gatehouse audit ...`: operations on the store itself, for
//! operators with access to the data directory (or the PostgreSQL URL), not through the API.

use crate::Format;
use crate::keys::{KeySettings, open_key_manager, open_store};
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gatehouse_keys::{KeyManager, Provider};
use gatehouse_store::{AuditVerification, MasterKey, Store};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the store is, and which key manager holds its keys.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Data directory (SQLite file, and the `file` provider's keys) [default: gatehouse-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL, when the store is there (the `file` keys stay in the data dir).
    #[arg(long, value_name = "URL", env = "GATEHOUSE_DATABASE_URL")]
    database_url: Option<String>,
    /// The server's config file: its `[keys]` (key manager), `[audit]` and `[database]`
    /// tables, `data_dir` and `database_url` apply (flags win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl StoreArgs {
    /// Whether a store was named on the command line (or by `GATEHOUSE_DATABASE_URL`),
    /// rather than left to the default data directory.
    pub(crate) fn named(&self) -> bool {
        self.data_dir.is_some() || self.database_url.is_some() || self.config.is_some()
    }

    /// How the store is named in reports (never the database URL: it may hold a password).
    pub(crate) fn describe(&self) -> String {
        match &self.database_url {
            Some(_) => "gatehouse store (PostgreSQL)".to_owned(),
            None => format!(
                "gatehouse store ({})",
                self.data_dir
                    .as_deref()
                    .unwrap_or(std::path::Path::new("gatehouse-data"))
                    .display()
            ),
        }
    }

    /// The config file's settings, with the flags applied.
    fn settings(&self) -> Result<(KeySettings, PathBuf, Option<String>)> {
        let settings = KeySettings::read(self.config.as_deref())?;
        let data_dir = self
            .data_dir
            .clone()
            .or_else(|| settings.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("gatehouse-data"));
        let url = self
            .database_url
            .clone()
            .or_else(|| settings.database_url.clone());
        Ok((settings, data_dir, url))
    }

    /// Opens the key manager and the store with it.
    pub(crate) async fn open_with_keys(&self) -> Result<(Store, KeyManager)> {
        let (settings, data_dir, url) = self.settings()?;
        let manager = open_key_manager(&settings.keys, &data_dir).await?;
        let store =
            open_store(&data_dir, url.as_deref(), &settings.database, manager.kek()).await?;
        Ok((store, manager))
    }

    pub(crate) async fn open(&self) -> Result<Store> {
        Ok(self.open_with_keys().await?.0)
    }
}

/// `gatehouse admin rotate-master-key`.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Also re-seal every secret under a new data key (online, in batches, resumable:
    /// run it again after a crash and it continues).
    #[arg(long)]
    reseal: bool,
    /// Secrets re-sealed per transaction.
    #[arg(long, default_value_t = 500, value_name = "N")]
    batch_size: usize,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Accounts (so that cross-account trust is real).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Organization guardrails (SCP-like policies) attached to an account.
    #[command(subcommand)]
    Guardrail(GuardrailCommand),
    /// Re-wrap the data keys under a new key-encryption key (`file`: a new master.key;
    /// `pkcs11`/`kms`: the key the config names, so also the way to move a store between
    /// key managers); with `--reseal`, also re-seal every secret under a new data key.
    RotateMasterKey(RotateArgs),
    /// Add a new session-token signing key and sign new sessions with it; live sessions
    /// keep working (older keys still verify) and every node picks it up within a second.
    RotateSigningKey(StoreArgs),
    /// End every session of a role issued before now, on every node (an inline deny on
    /// `aws:TokenIssueTime`, as AWS's "revoke active sessions").
    RevokeSessions {
        /// The role's name.
        #[arg(long)]
        role: String,
        /// The role's account (the default account when omitted).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Create an account.
    Create {
        /// The account's name.
        name: String,
        /// Its 12-digit id (random when omitted).
        #[arg(long)]
        id: Option<String>,
        /// Also create an administrator user of that name with an access key, and print
        /// its credentials as JSON (the account's first administrator).
        #[arg(long, value_name = "NAME")]
        admin_user: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GuardrailCommand {
    /// Attach (or replace) a guardrail policy on an account.
    Put {
        /// Account id.
        #[arg(long)]
        account: String,
        /// Guardrail name.
        #[arg(long)]
        name: String,
        /// The policy document.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List an account's guardrails.
    List {
        /// Account id.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a guardrail.
    Delete {
        /// Account id.
        #[arg(long)]
        account: String,
        /// Guardrail name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Print the last records, oldest first.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: i64,
        /// Only the records (of those last N) made under this just-in-time grant, or of its
        /// steps (`REQ...`: the record's `elevation_id`).
        #[arg(long, value_name = "REQUEST_ID")]
        elevation: Option<String>,
        /// Output format: one line per call, or the records as JSON lines.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Recompute the hash chain and check the records against the signed digests (the
    /// database's, and those of `--digests FILE`); exit 1 if a record was edited,
    /// inserted, deleted, rewritten with a re-hashed chain, truncated or replaced, saying
    /// from which digest on.
    Verify {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Digests exported out of the database admin's reach (`[audit] digest_file`, or
        /// `gatehouse audit digests > FILE`), checked too.
        #[arg(long, value_name = "FILE")]
        digests: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Sign a digest of the audit chain's head now (the server does every
    /// `[audit] digest_interval_secs` and at shutdown), and export it as configured.
    SignDigest {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print every signed digest as JSON lines (to keep them out of the database's reach).
    Digests {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export every record as JSON lines.
    Export {
        /// Output format (only jsonl).
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

pub(crate) fn run_admin(cmd: AdminCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            AdminCommand::Account(AccountCommand::Create {
                name,
                id,
                admin_user,
                store,
            }) => {
                let s = store.open().await?;
                let a = s.create_account(id.as_deref(), &name).await?;
                match admin_user {
                    None => println!("{}", a.account_id),
                    Some(user) => {
                        let (key, secret) = first_admin(&s, &a.account_id, &user).await?;
                        let out = serde_json::json!({
                            "AccountId": a.account_id,
                            "UserName": user,
                            "AccessKeyId": key,
                            "SecretAccessKey": secret.expose_str().unwrap_or_default(),
                        });
                        println!("{}", serde_json::to_string_pretty(&out)?);
                    }
                }
            }
            AdminCommand::RevokeSessions {
                role,
                account,
                store,
            } => {
                let s = store.open().await?;
                let account = match account {
                    Some(a) => a,
                    None => s.default_account().await?.account_id,
                };
                let at = gatehouse_server::session::revoke_role_sessions(
                    &s,
                    &account,
                    &role,
                    chrono::Utc::now(),
                )
                .await
                .with_context(|| format!("revoke sessions of role {role}"))?;
                println!(
                    "sessions of role {role} in account {account} issued before {} are revoked",
                    at.format("%Y-%m-%dT%H:%M:%S%.3fZ")
                );
            }
            AdminCommand::Account(AccountCommand::List { store, format }) => {
                let s = store.open().await?;
                let list = s.list_accounts().await?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                    Format::Text => {
                        for a in list {
                            let d = if a.is_default { " (default)" } else { "" };
                            println!("{}  {}{d}", a.account_id, a.name);
                        }
                    }
                }
            }
            AdminCommand::Guardrail(GuardrailCommand::Put {
                account,
                name,
                file,
                store,
            }) => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("{}: cannot read", file.display()))?;
                let parsed =
                    gatehouse_policy::validate(&text, gatehouse_policy::Catalog::builtin());
                let errors: Vec<String> = parsed
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| format!("{}: {d}", file.display()))
                    .collect();
                if !errors.is_empty() {
                    bail!("invalid guardrail policy\n{}", errors.join("\n"));
                }
                let s = store.open().await?;
                s.put_guardrail(&account, &name, &text).await?;
                println!("guardrail {name} attached to account {account}");
            }
            AdminCommand::Guardrail(GuardrailCommand::List { account, store }) => {
                let s = store.open().await?;
                for g in s.list_guardrails(&account).await? {
                    println!("{}", g.name);
                }
            }
            AdminCommand::Guardrail(GuardrailCommand::Delete {
                account,
                name,
                store,
            }) => {
                let s = store.open().await?;
                s.delete_guardrail(&account, &name).await?;
                println!("guardrail {name} removed from account {account}");
            }
            AdminCommand::RotateMasterKey(args) => rotate(&args).await?,
            AdminCommand::RotateSigningKey(store) => {
                let s = store.open().await?;
                let kid = gatehouse_server::session::rotate_ring(&s)
                    .await
                    .context("rotate the session signing key")?;
                println!("new sessions are signed with key {kid}; older keys still verify");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Creates an account's first administrator: a user allowed everything in its account,
/// with one access key.
async fn first_admin(
    s: &Store,
    account: &str,
    user: &str,
) -> Result<(String, gatehouse_store::Secret)> {
    s.create_user(
        account,
        &gatehouse_store::NewUser {
            name: user.to_owned(),
            ..Default::default()
        },
    )
    .await?;
    let admin =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    s.put_inline_policy(
        account,
        gatehouse_store::PrincipalKind::User,
        user,
        "AdministratorAccess",
        admin,
    )
    .await?;
    let (key, secret) = s.create_access_key(account, user).await?;
    Ok((key.access_key_id, secret))
}

/// Re-wraps the data keys (and with `--reseal` re-seals every value). With the `file`
/// provider and data keys already under `master.key`, a new master key is made: staged
/// beside the old one, which is kept until the re-wrap has committed, so a crash in
/// between loses nothing (the old key still opens the store).
async fn rotate(args: &RotateArgs) -> Result<()> {
    let (settings, data_dir, url) = args.store.settings()?;
    let manager = open_key_manager(&settings.keys, &data_dir).await?;
    let chain = manager.migration_chain(&settings.keys, &data_dir).await?;
    let store = open_store(&data_dir, url.as_deref(), &settings.database, chain).await?;
    let target = manager.kek().wrapping_key();
    let all_wrapped = store
        .data_keys()
        .await?
        .iter()
        .all(|k| k.wrapped_by == target);
    if !all_wrapped {
        let n = store.rewrap_data_keys().await?;
        println!("re-wrapped {n} data key(s) under {target}");
    } else if args.reseal {
        // Only a new data key: the key-encryption key stays.
    } else if manager.provider() == Provider::File {
        if MasterKey::from_env()?.is_some() {
            bail!(
                "the master key comes from GATEHOUSE_MASTER_KEY: put a new one there and the old one in master.key, then run this again"
            );
        }
        let old = MasterKey::load_or_create(&data_dir)?;
        let new = MasterKey::generate();
        let path = MasterKey::file_path(&data_dir);
        let staged = path.with_extension("new");
        let _ = std::fs::remove_file(&staged);
        new.write_new_file(&staged)?;
        let rewrapping = open_store(
            &data_dir,
            url.as_deref(),
            &settings.database,
            gatehouse_store::KeyChain::new(new.clone()).or_unwrap_with(old),
        )
        .await?;
        let n = rewrapping.rewrap_data_keys().await?;
        rewrapping.close().await;
        let backup = path.with_extension("old");
        std::fs::rename(&path, &backup)?;
        std::fs::rename(&staged, &path)?;
        std::fs::remove_file(&backup)?;
        println!(
            "re-wrapped {n} data key(s) under the new master key {}",
            new.key_id()
        );
    } else {
        println!(
            "every data key is already wrapped by {target}; to rotate, name a new key in [keys.{}] and run this again (or rotate the key inside the key manager)",
            manager.provider()
        );
    }
    anchor_under(&store, &manager, &settings.audit).await?;
    if args.reseal {
        reseal(&store, args.batch_size).await?;
    }
    store.close().await;
    Ok(())
}

/// Signs a digest with the configured key manager when the last one was signed by
/// another (a store that moved between key managers): from this digest on, `audit verify`
/// trusts the earlier key manager's key only for what came before.
async fn anchor_under(
    store: &Store,
    manager: &gatehouse_keys::KeyManager,
    audit: &gatehouse_keys::AuditDigestConfig,
) -> Result<()> {
    let signer = manager.signer();
    let last = store.audit_digests_tail().await?;
    if last.is_none_or(|d| d.signing_key == signer.descriptor()) {
        return Ok(());
    }
    let d = gatehouse_keys::sign_digest(
        store,
        signer.as_ref(),
        &gatehouse_keys::DigestExport::from(audit),
    )
    .await?;
    println!(
        "signed digest {} of {} records with {}: the audit chain is anchored under the new key manager",
        d.body.seq, d.body.audit_seq, d.signing_key
    );
    Ok(())
}

/// Moves every value onto a new data key, batch by batch, printing progress.
async fn reseal(store: &Store, batch_size: usize) -> Result<()> {
    let started = std::time::Instant::now();
    let progress = store.begin_reseal().await?;
    println!(
        "{} reseal under data key {}: {} secret(s) to move",
        if progress.resumed {
            "continuing the"
        } else {
            "starting a"
        },
        progress.key_id,
        progress.remaining
    );
    let mut moved = 0usize;
    loop {
        let n = store.reseal_batch(batch_size.max(1)).await?;
        if n == 0 {
            break;
        }
        moved += n;
        println!("re-sealed {moved} of {}", progress.remaining);
    }
    if !store.finish_reseal().await? {
        bail!("values were written under an old data key meanwhile; run the reseal again");
    }
    println!(
        "reseal done: {moved} secret(s) moved in {:.2} s; the old data key is deleted",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) fn run_audit(cmd: AuditCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            AuditCommand::Tail {
                lines,
                elevation,
                format,
                store,
            } => {
                let s = store.open().await?;
                let mut out = std::io::stdout().lock();
                for e in s.audit_tail(lines.max(1)).await? {
                    if let Some(id) = &elevation
                        && elevation_of(&e.record).as_deref() != Some(id.as_str())
                    {
                        continue;
                    }
                    match format {
                        Format::Json => writeln!(out, "{}", e.record)?,
                        Format::Text => writeln!(out, "{}", audit_line(e.seq, &e.record))?,
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Verify {
                format,
                digests,
                store,
            } => verify(format, digests.as_deref(), &store).await,
            AuditCommand::SignDigest { store } => {
                let (settings, _, _) = store.settings()?;
                let (s, manager) = store.open_with_keys().await?;
                let d = gatehouse_keys::sign_digest(
                    &s,
                    manager.signer().as_ref(),
                    &gatehouse_keys::DigestExport::from(&settings.audit),
                )
                .await?;
                println!(
                    "signed digest {} of {} records with {}",
                    d.body.seq, d.body.audit_seq, d.signing_key
                );
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Digests { store } => {
                let s = store.open().await?;
                let mut out = std::io::stdout().lock();
                for d in s.audit_digests().await? {
                    writeln!(out, "{}", serde_json::to_string(&d)?)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Export { format, store } => {
                if format != "jsonl" {
                    bail!("unknown export format {format:?} (supported: jsonl)");
                }
                let s = store.open().await?;
                let mut out = std::io::stdout().lock();
                let mut after = 0;
                loop {
                    let batch = s.audit_entries(after, 1000).await?;
                    let Some(last) = batch.last() else { break };
                    after = last.seq;
                    for e in &batch {
                        writeln!(out, "{}", e.record)?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// `gatehouse audit verify`: the hash chain, then the signed digests of each source.
async fn verify(format: Format, digest_file: Option<&Path>, store: &StoreArgs) -> Result<ExitCode> {
    let (settings, data_dir, _) = store.settings()?;
    let (s, manager) = store.open_with_keys().await?;
    let trusted = manager
        .trusted_signers(&settings.keys, &data_dir)
        .await
        .context("the audit signing key")?;
    for why in &trusted.unreadable {
        eprintln!(
            "warning: a signing key the config describes cannot be read ({why}); digests it signed do not verify"
        );
    }
    let mut sources = vec![("database".to_owned(), s.audit_digests().await?)];
    if let Some(path) = digest_file {
        let from_file = gatehouse_keys::read_digest_file(path).map_err(anyhow::Error::msg)?;
        sources.push((path.display().to_string(), from_file));
    }
    let chain = s.verify_audit().await?;
    let mut json = match &chain {
        AuditVerification::Intact(n) => serde_json::json!({"intact": true, "records": n}),
        AuditVerification::Broken { seq, reason } => {
            serde_json::json!({"intact": false, "seq": seq, "reason": reason})
        }
    };
    let mut lines = vec![match &chain {
        AuditVerification::Intact(n) => format!("audit log hash chain intact: {n} records"),
        AuditVerification::Broken { seq, reason } => {
            format!("audit log BROKEN at record {seq}: {reason}")
        }
    }];
    let mut broken = matches!(chain, AuditVerification::Broken { .. });
    let mut reports = Vec::new();
    for (source, digests) in &sources {
        let v = gatehouse_keys::verify_log(&s, digests, &trusted).await?;
        let line = match &v.broken {
            Some(f) => {
                if !broken {
                    json["intact"] = serde_json::json!(false);
                    json["digest_seq"] = serde_json::json!(f.digest_seq);
                    json["reason"] = serde_json::json!(f.reason);
                }
                broken = true;
                format!(
                    "audit log BROKEN from digest {} on ({source}; it signed {} records): {}",
                    f.digest_seq, f.audit_seq, f.reason
                )
            }
            None if digests.is_empty() => {
                format!("no signed digest ({source}): the log is not anchored outside the database")
            }
            None => format!(
                "signed digests ({source}): {} checked; records 1-{} match what was signed, {} after the last digest",
                v.digests,
                v.anchored_records,
                v.records - v.anchored_records
            ),
        };
        lines.push(line);
        reports.push(serde_json::json!({"source": source, "verification": v}));
    }
    let db_last = sources[0].1.last().map_or(0, |d| d.body.seq);
    if let Some((source, file)) = sources.get(1)
        && file.last().is_some_and(|f| f.body.seq > db_last)
    {
        broken = true;
        json["intact"] = serde_json::json!(false);
        lines.push(format!(
            "audit log BROKEN: {source} holds digests up to {} but the database only up to {db_last}: digests deleted",
            file.last().map_or(0, |f| f.body.seq),
        ));
    }
    json["digests"] = serde_json::json!(reports);
    match format {
        Format::Json => println!("{json}"),
        Format::Text => {
            for l in lines {
                println!("{l}");
            }
        }
    }
    Ok(if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The `elevation_id` of a record as stored (`None` for a record without one, or one this
/// version cannot read).
fn elevation_of(record: &str) -> Option<String> {
    serde_json::from_str::<gatehouse_audit::AuditRecord>(record)
        .ok()
        .and_then(|r| r.elevation_id)
}

/// One audit record as a line for people: sequence, time, decision, action, principal,
/// resource and error code. A record that is not what this version writes prints as is.
fn audit_line(seq: i64, record: &str) -> String {
    match serde_json::from_str::<gatehouse_audit::AuditRecord>(record) {
        Ok(r) => {
            let principal = if r.principal.is_empty() {
                let key = match &r.face {
                    gatehouse_audit::FaceDetail::Control(c) => c.access_key_id.as_deref(),
                    gatehouse_audit::FaceDetail::Gateway(_) => None,
                };
                format!("(unauthenticated {})", key.unwrap_or("-"))
            } else {
                r.principal
            };
            let resource = if r.resource.is_empty() {
                "-"
            } else {
                &r.resource
            };
            let action = if r.action.is_empty() { "-" } else { &r.action };
            let error = r.error_code.map(|c| format!("  {c}")).unwrap_or_default();
            let elevation = r
                .elevation_id
                .map(|id| format!("  under {id}"))
                .unwrap_or_default();
            format!(
                "{seq:>6}  {}  {:<12}  {action}  {principal}  {resource}  from {}{error}{elevation}",
                r.time,
                r.decision,
                r.source_ip.as_deref().unwrap_or("(undetermined)")
            )
        }
        Err(_) => format!("{seq:>6}  {record}"),
    }
}
