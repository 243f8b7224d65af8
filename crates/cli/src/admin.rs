//! `gatehouse admin ...` and `gatehouse audit ...`: operations on the store itself, for
//! operators with access to the data directory (or the PostgreSQL URL), not through the API.

use crate::Format;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gatehouse_store::{AuditVerification, MasterKey, Store, StoreOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the store is.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Data directory (SQLite file and master key).
    #[arg(long, value_name = "DIR", default_value = "gatehouse-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL, when the store is there (the master key stays in the data dir).
    #[arg(long, value_name = "URL", env = "GATEHOUSE_DATABASE_URL")]
    database_url: Option<String>,
}

impl StoreArgs {
    /// How the store is named in reports (never the database URL: it may hold a password).
    pub(crate) fn describe(&self) -> String {
        match &self.database_url {
            Some(_) => "gatehouse store (PostgreSQL)".to_owned(),
            None => format!("gatehouse store ({})", self.data_dir.display()),
        }
    }

    pub(crate) async fn open(&self) -> Result<Store> {
        let key = MasterKey::load_or_create(&self.data_dir).context("master key")?;
        let opts = match &self.database_url {
            Some(url) => StoreOptions::postgres(url.clone()),
            None => StoreOptions::sqlite(self.data_dir.clone()),
        };
        Store::open(&opts, key).await.context("open store")
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Accounts (so that cross-account trust is real).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Organization guardrails (SCP-like policies) attached to an account.
    #[command(subcommand)]
    Guardrail(GuardrailCommand),
    /// Generate a new master key and re-seal every secret under it.
    RotateMasterKey(StoreArgs),
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
        /// Output format: one line per call, or the records as JSON lines.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Recompute the hash chain; exit 1 if a record was edited, inserted or deleted.
    Verify {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
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
                            "SecretAccessKey": secret.expose_secret(),
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
            AdminCommand::RotateMasterKey(store) => rotate(&store).await?,
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

/// Re-seals under a new key, then replaces the key file; the old key is kept beside it
/// until the rotation has committed, so a crash in between loses nothing.
async fn rotate(store: &StoreArgs) -> Result<()> {
    if std::env::var_os("GATEHOUSE_MASTER_KEY").is_some() {
        bail!("the master key comes from GATEHOUSE_MASTER_KEY: rotate it where it is managed");
    }
    let s = store.open().await?;
    let old = MasterKey::load_or_create(&store.data_dir)?;
    let new = MasterKey::generate();
    let path = MasterKey::file_path(&store.data_dir);
    let staged = path.with_extension("new");
    let _ = std::fs::remove_file(&staged);
    new.write_new_file(&staged)?;
    let count = s.rotate_master_key(&old, &new).await?;
    let backup = path.with_extension("old");
    std::fs::rename(&path, &backup)?;
    std::fs::rename(&staged, &path)?;
    std::fs::remove_file(&backup)?;
    println!(
        "re-sealed {count} secrets under master key {}",
        new.key_id()
    );
    Ok(())
}

pub(crate) fn run_audit(cmd: AuditCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            AuditCommand::Tail {
                lines,
                format,
                store,
            } => {
                let s = store.open().await?;
                let mut out = std::io::stdout().lock();
                for e in s.audit_tail(lines.max(1)).await? {
                    match format {
                        Format::Json => writeln!(out, "{}", e.record)?,
                        Format::Text => writeln!(out, "{}", audit_line(e.seq, &e.record))?,
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Verify { format, store } => {
                let s = store.open().await?;
                let verdict = s.verify_audit().await?;
                let (code, json, text) = match &verdict {
                    AuditVerification::Intact(n) => (
                        ExitCode::SUCCESS,
                        serde_json::json!({"intact": true, "records": n}),
                        format!("audit log intact: {n} records"),
                    ),
                    AuditVerification::Broken { seq, reason } => (
                        ExitCode::from(1),
                        serde_json::json!({"intact": false, "seq": seq, "reason": reason}),
                        format!("audit log BROKEN at record {seq}: {reason}"),
                    ),
                };
                match format {
                    Format::Json => println!("{json}"),
                    Format::Text => println!("{text}"),
                }
                Ok(code)
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

/// One audit record as a line for people: sequence, time, decision, action, principal,
/// resource and error code. A record that is not what this version writes prints as is.
fn audit_line(seq: i64, record: &str) -> String {
    match serde_json::from_str::<gatehouse_server::audit::AuditRecord>(record) {
        Ok(r) => {
            let principal = if r.principal.is_empty() {
                format!(
                    "(unauthenticated {})",
                    r.access_key_id.as_deref().unwrap_or("-")
                )
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
            format!(
                "{seq:>6}  {}  {:<12}  {action}  {principal}  {resource}  from {}{error}",
                r.time,
                r.decision,
                r.source_ip.as_deref().unwrap_or("(undetermined)")
            )
        }
        Err(_) => format!("{seq:>6}  {record}"),
    }
}
