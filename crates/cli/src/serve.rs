//! `gatehouse serve`: the control plane (IAM/STS/`ai` Query API) and the OpenAI-compatible
//! gateway in one process, with SQLite in `./gatehouse-data` by default.

use anyhow::{Context as _, Result};
use clap::Args;
use gatehouse_server::ServeOptions;
use gatehouse_server::gateway::GatewaySettings;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `gatehouse serve`; each overrides the config file.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Data directory: SQLite file, master key, generated root credentials.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8470].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Use PostgreSQL (`postgres://user:pass@host/db`) instead of SQLite.
    #[arg(long, value_name = "URL", env = "GATEHOUSE_DATABASE_URL")]
    database_url: Option<String>,
    /// A TOML file with `listen`, `data_dir`, `database_url`, `account_id`, `region`, and a
    /// `[gateway]` table (see README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    account_id: Option<String>,
    region: Option<String>,
    /// The AI gateway: listeners, trusted proxies, limits, budgets, deployments.
    gateway: Option<gatehouse_server::gateway::GatewaySettings>,
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn options(args: ServeArgs) -> Result<(ServeOptions, GatewaySettings)> {
    let file = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            toml::from_str::<ConfigFile>(&text)
                .with_context(|| format!("{}: invalid config", p.display()))?
        }
        None => ConfigFile::default(),
    };
    if let Some(a) = &file.account_id
        && !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
    {
        anyhow::bail!("account_id must be 12 digits, not {a:?}");
    }
    let gateway = file.gateway.unwrap_or_default();
    if let Err(e) = gateway.validate() {
        let at = args
            .config
            .as_ref()
            .map_or_else(String::new, |p| format!("{}: ", p.display()));
        anyhow::bail!("{at}gateway: {e}");
    }
    let opts = ServeOptions {
        listen: args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8470))),
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("gatehouse-data")),
        database_url: args.database_url.or(file.database_url),
        account_id: file.account_id,
        region: file.region.unwrap_or_else(|| "local".to_owned()),
    };
    Ok((opts, gateway))
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode> {
    init_logging();
    let (opts, gateway) = options(args)?;
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(async move {
        let (state, listener, root) = gatehouse_server::prepare(&opts).await?;
        let extra = gatehouse_server::gateway::bind_listeners(&gateway).await?;
        state.gateway.configure(gateway);
        gatehouse_server::gateway::spawn_budget_sync(&state);
        let loaded = gatehouse_server::gateway::load_configured_deployments(&state)
            .await
            .map_err(anyhow::Error::msg)?;
        if loaded > 0 {
            tracing::info!(count = loaded, "deployments loaded from the config file");
        }
        for (info, tcp) in extra {
            tracing::info!(listener = %info.name, tls = info.tls, "gateway listener");
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let st = state.clone();
            tokio::spawn(async move {
                if let Err(e) = gatehouse_server::gateway::serve_listener(st, info, tcp, shutdown).await {
                    tracing::error!(error = %e, "listener failed");
                }
            });
        }
        let backend = if opts.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        tracing::info!(
            listen = %opts.listen,
            account = %state.config.account_id,
            backend,
            "Gatehouse listening (IAM, STS and ai Query APIs at /, OpenAI-compatible gateway at /v1/)"
        );
        match (&root.file, root.generated) {
            (Some(f), true) => tracing::warn!(
                file = %f.display(),
                "generated root credentials (bootstrap only); they are in this file, mode 0600"
            ),
            (Some(f), false) => tracing::info!(file = %f.display(), "root credentials from file"),
            (None, _) => tracing::info!("root credentials from the environment"),
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        gatehouse_server::serve(state, listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}
