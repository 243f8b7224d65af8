//! `gatehouse model ...` (deployments of the AI gateway, on the store directly, for
//! operators with the data directory) and `gatehouse logs read` (prompt/response logs,
//! through the server, so that only principals allowed `ai:ReadInvocationLogs` read them).

use crate::Format;
use crate::admin::{StoreArgs, runtime};
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use gatehouse_store::{NewDeployment, Secret};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum ModelCommand {
    /// Add (or with --update, change) a deployment: a model id routed to an upstream
    /// OpenAI-compatible endpoint.
    Add {
        /// The model id callers use.
        model: String,
        /// Upstream base URL, e.g. http://127.0.0.1:8000/v1.
        #[arg(long)]
        base_url: String,
        /// Provider name, seen by policies as ai:Provider.
        #[arg(long, default_value = "openai-compatible")]
        provider: String,
        /// Model name to send upstream, when it differs.
        #[arg(long)]
        upstream_model: Option<String>,
        /// Environment variable holding the provider key (keys never go on a command line).
        #[arg(long, value_name = "VAR")]
        api_key_env: Option<String>,
        /// Log prompts and responses (sealed at rest).
        #[arg(long)]
        log_invocations: bool,
        /// The date the model is deprecated (YYYY-MM-DD); `gatehouse review` lists who can
        /// still invoke it. With --update, leaving it out clears the date.
        #[arg(long, value_name = "DATE")]
        deprecated_on: Option<String>,
        /// Change an existing deployment instead of creating one.
        #[arg(long)]
        update: bool,
        /// With --update: drop the stored provider key (moving --base-url to another host
        /// needs this or a new --api-key-env).
        #[arg(long, requires = "update")]
        clear_api_key: bool,
        /// Account (the default account when omitted).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List deployments (provider keys are never shown).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a deployment.
    Remove {
        /// The model id.
        model: String,
        /// Account (the default account when omitted).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `gatehouse decode-authorization-message`.
#[derive(Debug, clap::Args)]
pub(crate) struct DecodeArgs {
    /// The encoded message from a 403 answer.
    message: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Opens an encoded authorization message (sealed with the session key ring kept in the
/// store, so only an operator with the store or STS `DecodeAuthorizationMessage` can read
/// it) and prints its JSON.
pub(crate) fn run_decode(args: DecodeArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let s = args.store.open().await?;
        let text = gatehouse_server::gateway::decode_authorization_message(&s, args.message.trim())
            .await
            .context("not a message this Gatehouse encoded (or its key ring was replaced)")?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Subcommand)]
pub(crate) enum LogsCommand {
    /// Print a model's prompt/response log. Credentials come from GATEHOUSE_ACCESS_KEY_ID
    /// and GATEHOUSE_SECRET_ACCESS_KEY (or the AWS_ variables); the server checks
    /// ai:ReadInvocationLogs on invocation-log/MODEL.
    Read {
        /// The model id.
        model: String,
        /// The server.
        #[arg(
            long,
            default_value = "http://127.0.0.1:8470",
            env = "GATEHOUSE_ENDPOINT"
        )]
        endpoint: String,
        /// How many of the newest entries.
        #[arg(short = 'n', long, default_value_t = 100)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub(crate) fn run_model(cmd: ModelCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            ModelCommand::Add {
                model,
                base_url,
                provider,
                upstream_model,
                api_key_env,
                log_invocations,
                deprecated_on,
                update,
                clear_api_key,
                account,
                store,
            } => {
                // The server's own checks (metadata, link-local, this-host addresses); the
                // config's upstream_allow does not apply here: use the config file or the
                // ai Query actions for an allowed address.
                gatehouse_server::gateway::upstream::UpstreamRules::default()
                    .check_url(&base_url)
                    .await
                    .map_err(|e| anyhow::anyhow!("--base-url: {e}"))?;
                let api_key = match api_key_env {
                    Some(var) => Some(Secret::new(
                        std::env::var(&var)
                            .with_context(|| format!("environment variable {var} is not set"))?,
                    )),
                    None => None,
                };
                let s = store.open().await?;
                let account = match account {
                    Some(a) => a,
                    None => s.default_account().await?.account_id,
                };
                let d = NewDeployment {
                    model_id: model,
                    provider,
                    base_url,
                    upstream_model,
                    api_key,
                    log_invocations,
                    deprecated_on,
                    clear_api_key,
                };
                let saved = s.put_deployment(&account, &d, !update).await?;
                println!(
                    "{} {} -> {} ({})",
                    if update { "updated" } else { "added" },
                    saved.model_id,
                    saved.base_url,
                    saved.provider
                );
            }
            ModelCommand::List { format, store } => {
                let s = store.open().await?;
                let list = s.list_deployments().await?;
                match format {
                    Format::Json => {
                        let v: Vec<_> = list
                            .iter()
                            .map(|d| {
                                serde_json::json!({
                                    "account_id": d.account_id,
                                    "model": d.model_id,
                                    "provider": d.provider,
                                    "base_url": d.base_url,
                                    "upstream_model": d.upstream_model,
                                    "has_api_key": d.has_key,
                                    "log_invocations": d.log_invocations,
                                    "deprecated_on": d.deprecated_on,
                                    "guardrail": d.guardrail.as_deref()
                                        .and_then(|g| serde_json::from_str::<serde_json::Value>(g).ok()),
                                })
                            })
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    }
                    Format::Text => {
                        for d in list {
                            println!(
                                "{}  {}  {}  {}{}{}{}",
                                d.account_id,
                                d.model_id,
                                d.provider,
                                d.base_url,
                                if d.has_key { "  key:sealed" } else { "" },
                                if d.log_invocations { "  logged" } else { "" },
                                d.deprecated_on
                                    .as_deref()
                                    .map(|x| format!("  deprecated:{x}"))
                                    .unwrap_or_default()
                            );
                        }
                    }
                }
            }
            ModelCommand::Remove {
                model,
                account,
                store,
            } => {
                let s = store.open().await?;
                let account = match account {
                    Some(a) => a,
                    None => s.default_account().await?.account_id,
                };
                s.delete_deployment(&account, &model).await?;
                println!("removed {model}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn env_any(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok())
}

pub(crate) fn run_logs(cmd: LogsCommand) -> Result<ExitCode> {
    let LogsCommand::Read {
        model,
        endpoint,
        limit,
        format,
    } = cmd;
    let (Some(id), Some(secret)) = (
        env_any(&["GATEHOUSE_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"]),
        env_any(&["GATEHOUSE_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]),
    ) else {
        bail!("set GATEHOUSE_ACCESS_KEY_ID and GATEHOUSE_SECRET_ACCESS_KEY");
    };
    runtime()?.block_on(async move {
        let url = format!(
            "{}/v1/invocation_logs/{model}?limit={limit}",
            endpoint.trim_end_matches('/')
        );
        let resp = reqwest::Client::new()
            .get(&url)
            .bearer_auth(format!("{id}:{secret}"))
            .send()
            .await
            .with_context(|| format!("{endpoint}: cannot connect"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.context("invalid answer")?;
        if status == reqwest::StatusCode::FORBIDDEN {
            let msg = body["error"]["message"].as_str().unwrap_or("access denied");
            eprintln!("gatehouse: denied: {msg}");
            return Ok(ExitCode::from(1));
        }
        if !status.is_success() {
            let msg = body["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            bail!("{status}: {msg}");
        }
        match format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&body["data"])?),
            Format::Text => {
                for e in body["data"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {}  {}  {}",
                        e["time"].as_str().unwrap_or(""),
                        e["request_id"].as_str().unwrap_or(""),
                        e["principal"].as_str().unwrap_or(""),
                        serde_json::json!({"request": e["request"], "response": e["response"]})
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
