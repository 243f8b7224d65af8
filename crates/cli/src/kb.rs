//! `gatehouse kb ...`: the knowledge bases of the retrieval gateway, on the store directly
//! (operators with the data directory or the database). The backend's credential is read
//! from the environment variable named on the command line (never from the command line
//! itself, which other users of the machine can read) and sealed in the store.

use crate::Format;
use crate::admin::{StoreArgs, runtime};
use anyhow::{Context as _, Result};
use clap::Subcommand;
use gatehouse_store::{KnowledgeBackend, KnowledgeBase, NewKnowledgeBase, Secret};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum KbCommand {
    /// Register a knowledge base: a Chroma collection (searched with the query's embedding
    /// from --embedding-model, a deployment) or an OpenAI-compatible vector store.
    Add {
        /// The name callers use: /v1/vector_stores/NAME/search,
        /// arn:...:ai:REGION:ACCOUNT:knowledge-base/NAME.
        name: String,
        /// Where the documents live: chroma, or openai (any OpenAI-compatible vector store API).
        #[arg(long, value_parser = ["chroma", "openai"])]
        backend: String,
        /// The backend's base URL: a Chroma server (http://127.0.0.1:8000) or an
        /// OpenAI-compatible API (https://host/v1).
        #[arg(long)]
        url: String,
        /// The Chroma collection's name, or the upstream vector store's id.
        #[arg(long)]
        collection: String,
        /// Chroma's tenant (default_tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Chroma's database (default_database).
        #[arg(long)]
        database: Option<String>,
        /// The deployment (model id) that embeds queries; required for Chroma.
        #[arg(long, value_name = "MODEL")]
        embedding_model: Option<String>,
        /// An environment variable holding the backend's credential (Chroma's token, sent
        /// as x-chroma-token; the vector store's API key, sent as a Bearer token), sealed.
        #[arg(long, value_name = "ENV_VAR")]
        credential_env: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the knowledge bases (credentials are never shown).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a knowledge base (its documents stay where they live).
    Remove {
        /// The knowledge base's name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) fn run(cmd: KbCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            KbCommand::Add {
                name,
                backend,
                url,
                collection,
                tenant,
                database,
                embedding_model,
                credential_env,
                store,
            } => {
                // The server's own checks (metadata, link-local, this host's listeners),
                // as for model deployments.
                gatehouse_server::gateway::upstream::UpstreamRules::default()
                    .check_url(&url)
                    .await
                    .map_err(|e| anyhow::anyhow!("--url: {e}"))?;
                let credential = match &credential_env {
                    Some(var) => Some(Secret::new(std::env::var(var).with_context(|| {
                        format!("--credential-env: environment variable {var} is not set")
                    })?)),
                    None => None,
                };
                let new = NewKnowledgeBase {
                    name,
                    backend: KnowledgeBackend::parse(&backend)?,
                    url,
                    collection,
                    tenant,
                    database,
                    embedding_model,
                    credential,
                };
                let s = store.open().await?;
                let account = s.default_account().await?.account_id;
                let saved = s.put_knowledge_base(&account, &new, true).await?;
                println!("added {} ({})", saved.name, describe(&saved));
            }
            KbCommand::List { format, store } => {
                let s = store.open().await?;
                let kbs = s.list_knowledge_bases().await?;
                match format {
                    Format::Json => {
                        let v: Vec<_> = kbs
                            .iter()
                            .map(|k| {
                                json!({
                                    "account_id": k.account_id,
                                    "name": k.name,
                                    "backend": k.backend.as_str(),
                                    "url": k.url,
                                    "collection": k.collection,
                                    "tenant": k.tenant,
                                    "database": k.database,
                                    "embedding_model": k.embedding_model,
                                    "has_credential": k.has_credential,
                                })
                            })
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    }
                    Format::Text => {
                        for k in &kbs {
                            println!("{}  {}", k.name, describe(k));
                        }
                    }
                }
            }
            KbCommand::Remove { name, store } => {
                let s = store.open().await?;
                let account = s.default_account().await?.account_id;
                s.delete_knowledge_base(&account, &name).await?;
                println!("removed {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn describe(k: &KnowledgeBase) -> String {
    let mut s = format!("{} {} {}", k.backend.as_str(), k.url, k.collection);
    if let Some(m) = &k.embedding_model {
        s.push_str(&format!("  embedding:{m}"));
    }
    if k.has_credential {
        s.push_str("  credential:(sealed)");
    }
    s
}
