//! The knowledge bases of the current store generation, ready for the request path: each
//! with its backend credential and its embedding deployment (URL, upstream model, provider
//! key) opened, loaded once per generation like the gateway's deployments, so a search
//! reads no database.

use gatehouse_store::{KnowledgeBase, Secret, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The deployment that embeds queries for a knowledge base.
#[derive(Debug)]
pub struct Embedder {
    /// The deployment's model id (what the audit names).
    pub model_id: String,
    /// `BASE_URL/embeddings`.
    pub url: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// The provider key.
    pub api_key: Option<Secret>,
}

/// A knowledge base ready for the request path.
#[derive(Debug)]
pub struct Entry {
    /// What the store holds.
    pub kb: KnowledgeBase,
    /// The backend credential, opened.
    pub credential: Option<Secret>,
    /// The embedding deployment; `None` when the knowledge base names none, or names one
    /// that is not deployed (a search then fails, never sends the query elsewhere).
    pub embedder: Option<Embedder>,
    /// The Chroma collection's id, once looked up by name.
    pub chroma_collection_id: std::sync::OnceLock<String>,
}

#[derive(Debug, Default)]
struct Table {
    generation: Option<i64>,
    entries: HashMap<(String, String), Arc<Entry>>,
}

/// The retrieval face's state (a field of the server's state).
#[derive(Debug)]
pub struct Retrieval {
    table: RwLock<Arc<Table>>,
    reload: tokio::sync::Mutex<()>,
    /// `None` when the client could not be built: every search is then refused.
    client: Option<reqwest::Client>,
}

/// How long a backend or embedding call may take.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Retrieval {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            // A redirect would take the credential and the query somewhere unchecked; a
            // proxy from the environment would get them too.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(UPSTREAM_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| tracing::error!(error = %e, "the retrieval HTTP client could not be built; searches will be refused"))
            .ok();
        Retrieval {
            table: RwLock::new(Arc::new(Table::default())),
            reload: tokio::sync::Mutex::new(()),
            client,
        }
    }
}

impl Retrieval {
    /// The HTTP client for backends and embeddings.
    pub fn client(&self) -> Option<&reqwest::Client> {
        self.client.as_ref()
    }

    /// The knowledge base `name` of `account`, from the table of `generation`.
    pub async fn get(
        &self,
        store: &Store,
        generation: i64,
        account: &str,
        name: &str,
    ) -> Result<Option<Arc<Entry>>, StoreError> {
        let table = self.table(store, generation).await?;
        Ok(table
            .entries
            .get(&(account.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn table(&self, store: &Store, generation: i64) -> Result<Arc<Table>, StoreError> {
        if let Ok(t) = self.table.read()
            && t.generation == Some(generation)
        {
            return Ok(Arc::clone(&t));
        }
        // One reload at a time; others wait and then find it done.
        let _guard = self.reload.lock().await;
        if let Ok(t) = self.table.read()
            && t.generation == Some(generation)
        {
            return Ok(Arc::clone(&t));
        }
        let table = Arc::new(load(store, generation).await?);
        if let Ok(mut t) = self.table.write() {
            *t = Arc::clone(&table);
        }
        Ok(table)
    }
}

async fn load(store: &Store, generation: i64) -> Result<Table, StoreError> {
    let mut entries = HashMap::new();
    for kb in store.list_knowledge_bases().await? {
        let credential = if kb.has_credential {
            store
                .knowledge_base_credential(&kb.account_id, &kb.name)
                .await?
        } else {
            None
        };
        let embedder = match &kb.embedding_model {
            Some(model) => embedder(store, &kb.account_id, model).await?,
            None => None,
        };
        entries.insert(
            (kb.account_id.clone(), kb.name.clone()),
            Arc::new(Entry {
                kb,
                credential,
                embedder,
                chroma_collection_id: std::sync::OnceLock::new(),
            }),
        );
    }
    Ok(Table {
        generation: Some(generation),
        entries,
    })
}

async fn embedder(
    store: &Store,
    account: &str,
    model: &str,
) -> Result<Option<Embedder>, StoreError> {
    let d = match store.get_deployment(account, model).await {
        Ok(d) => d,
        Err(StoreError::NoSuchEntity { .. }) => {
            tracing::warn!(
                model,
                "a knowledge base's embedding model is not deployed; its searches fail"
            );
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let api_key = if d.has_key {
        store.deployment_key(account, model).await?
    } else {
        None
    };
    Ok(Some(Embedder {
        model_id: d.model_id.clone(),
        url: format!("{}/embeddings", d.base_url.trim_end_matches('/')),
        upstream_model: d.upstream_model.clone().unwrap_or(d.model_id),
        api_key,
    }))
}
