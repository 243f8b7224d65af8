//! `gatehouse serve`: the control plane (IAM/STS/`ai` Query API) and the OpenAI-compatible
//! gateway in one process, with SQLite in `./gatehouse-data` by default.

use anyhow::{Context as _, Result};
use clap::Args;
use gatehouse_server::ServeOptions;
use gatehouse_server::gateway::GatewaySettings;
use gatehouse_server::metrics::MetricsSettings;
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
    /// A TOML file with `listen`, `data_dir`, `database_url`, `account_id`, `region`,
    /// `log_format`, and the tables `[gateway]`, `[metrics]`, `[keys]`, `[audit]`, `[database]`,
    /// `[signin]`, `[access]` (see
    /// README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log lines as text (default) or JSON lines; overrides the config's `log_format`.
    #[arg(long, value_enum, value_name = "FORMAT", env = "GATEHOUSE_LOG_FORMAT")]
    log_format: Option<LogFormat>,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the request's span (and its `request_id`).
    Json,
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
    /// The key manager (`crate::keys`).
    keys: Option<gatehouse_keys::KeysConfig>,
    /// Signed audit digests.
    audit: Option<gatehouse_keys::AuditDigestConfig>,
    /// TLS to PostgreSQL.
    database: Option<gatehouse_store::DatabaseTls>,
    /// `text` or `json`.
    log_format: Option<LogFormat>,
    /// Where `/metrics` is served.
    metrics: Option<MetricsSettings>,
    /// Sign-in: identity sources and assignments, applied to the store at start.
    signin: Option<gatehouse_signin::SigninConfig>,
    /// Just-in-time access: the webhook state changes are sent to.
    access: Option<gatehouse_server::access::AccessSettings>,
}

pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The innermost span's fields (the request's `request_id`) on every line of a
        // request; the event's own fields at the top level, beside `level` and `message`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// What `serve` needs besides [`ServeOptions`]: the key manager's settings.
struct KeyOptions {
    keys: gatehouse_keys::KeysConfig,
    audit: gatehouse_keys::AuditDigestConfig,
}

/// What `gatehouse serve` runs with, from the flags over the config file.
struct Settings {
    serve: ServeOptions,
    gateway: GatewaySettings,
    keys: KeyOptions,
    metrics: MetricsSettings,
    log_format: LogFormat,
    signin: gatehouse_signin::SigninConfig,
    access_webhook: Option<gatehouse_server::access::WebhookTarget>,
}

fn options(args: ServeArgs) -> Result<Settings> {
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
    let signin = file.signin.unwrap_or_default();
    if let Err(e) = gatehouse_signin::config::check(&signin) {
        let at = args
            .config
            .as_ref()
            .map_or_else(String::new, |p| format!("{}: ", p.display()));
        anyhow::bail!("{at}{e}");
    }
    let access_webhook = file
        .access
        .unwrap_or_default()
        .webhook(|var| std::env::var(var).ok())
        .map_err(|e| {
            let at = args
                .config
                .as_ref()
                .map_or_else(String::new, |p| format!("{}: ", p.display()));
            anyhow::anyhow!("{at}{e}")
        })?;
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
        key_encryption: None,
        database_tls: file.database.unwrap_or_default(),
    };
    let keys = KeyOptions {
        keys: file.keys.unwrap_or_default(),
        audit: file.audit.unwrap_or_default(),
    };
    Ok(Settings {
        serve: opts,
        gateway,
        keys,
        metrics: file.metrics.unwrap_or_default(),
        log_format: args.log_format.or(file.log_format).unwrap_or_default(),
        signin,
        access_webhook,
    })
}

/// Ctrl-C or SIGTERM (what service managers and Kubernetes send): both stop the server
/// gracefully, so that the audit digest at shutdown is signed.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode> {
    let Settings {
        serve: mut opts,
        gateway,
        keys,
        metrics,
        log_format,
        signin,
        access_webhook,
    } = options(args)?;
    init_logging(log_format);
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(async move {
        let manager = crate::keys::open_key_manager(&keys.keys, &opts.data_dir).await?;
        opts.key_encryption = Some(manager.kek());
        let (state, listener, root) = gatehouse_server::prepare(&opts).await?;
        state
            .store
            .key_manager_health()
            .require_for_ready(keys.keys.ready_requires_key_manager);
        let digests = crate::keys::DigestSigning::start(
            manager,
            &state.store,
            &keys.audit,
            std::time::Duration::from_secs(keys.keys.health_check_secs.unwrap_or(30).max(1)),
        );
        let extra = gatehouse_server::gateway::bind_listeners(&gateway).await?;
        let metrics_listener = match metrics.listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("metrics listener {addr}"))?,
            ),
            None => None,
        };
        state.metrics.configure(metrics);
        state.gateway.configure(gateway);
        gatehouse_server::access::start_webhook(access_webhook);
        if let Some(tcp) = metrics_listener {
            tracing::info!(listen = ?tcp.local_addr().ok(), "metrics listener (/metrics, no authentication)");
            let st = state.clone();
            tokio::spawn(async move {
                if let Err(e) = gatehouse_server::metrics::serve(st, tcp, shutdown_signal()).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
        }
        gatehouse_server::gateway::spawn_budget_sync(&state);
        let loaded = gatehouse_server::gateway::load_configured_deployments(&state)
            .await
            .map_err(anyhow::Error::msg)?;
        if loaded > 0 {
            tracing::info!(count = loaded, "deployments loaded from the config file");
        }
        let mcp_servers = gatehouse_server::load_configured_mcp_servers(&state)
            .await
            .map_err(anyhow::Error::msg)?;
        if mcp_servers > 0 {
            tracing::info!(count = mcp_servers, "MCP servers loaded from the config file");
        }
        let applied = gatehouse_signin::apply_config(
            &state.store,
            &state.config.account_id,
            &signin,
            |var| std::env::var(var).ok(),
        )
        .await?;
        if applied.sources > 0 {
            tracing::info!(
                sources = applied.sources,
                assignments_added = applied.assignments_added,
                "sign-in sources and assignments applied from the config file"
            );
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
            key_manager = %keys.keys.provider,
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
        gatehouse_server::serve(state.clone(), listener, shutdown_signal()).await?;
        digests.finish(&state.store).await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn args(config: &std::path::Path, log_format: Option<LogFormat>) -> ServeArgs {
        ServeArgs {
            data_dir: None,
            listen: None,
            database_url: None,
            config: Some(config.to_owned()),
            log_format,
        }
    }

    #[test]
    fn the_config_file_sets_metrics_and_log_format_and_the_flag_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(
            &path,
            "log_format = \"json\"\n[metrics]\nlisten = \"127.0.0.1:9470\"\nauthorized = true\n",
        )
        .unwrap();
        let s = options(args(&path, None)).unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics.listen, Some("127.0.0.1:9470".parse().unwrap()));
        assert!(s.metrics.authorized);
        let s = options(args(&path, Some(LogFormat::Text))).unwrap();
        assert_eq!(s.log_format, LogFormat::Text);

        // Defaults: text logs, metrics served nowhere.
        std::fs::write(&path, "").unwrap();
        let s = options(args(&path, None)).unwrap();
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.metrics, MetricsSettings::default());

        for bad in ["log_format = \"xml\"\n", "[metrics]\npublic = true\n"] {
            std::fs::write(&path, bad).unwrap();
            assert!(options(args(&path, None)).is_err(), "{bad}");
        }
    }
}
