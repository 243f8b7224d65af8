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
    /// Print the last records.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Recompute the hash chain; exit 1 if a record was edited or deleted.
    Verify(StoreArgs),
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
            AdminCommand::Account(AccountCommand::Create { name, id, store }) => {
                let s = store.open().await?;
                let a = s.create_account(id.as_deref(), &name).await?;
                println!("{}", a.account_id);
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
        }
        Ok(ExitCode::SUCCESS)
    })
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
            AuditCommand::Tail { lines, store } => {
                let s = store.open().await?;
                for e in s.audit_tail(lines.max(1)).await? {
                    println!("{}", e.record);
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Verify(store) => {
                let s = store.open().await?;
                match s.verify_audit().await? {
                    AuditVerification::Intact(n) => {
                        println!("audit log intact: {n} records");
                        Ok(ExitCode::SUCCESS)
                    }
                    AuditVerification::Broken { seq, reason } => {
                        println!("audit log BROKEN at record {seq}: {reason}");
                        Ok(ExitCode::from(1))
                    }
                }
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
