//! The backends: the query's embedding through its Gatehouse deployment, a Chroma
//! collection queried over Chroma's HTTP API (v2), and an OpenAI-compatible vector store's
//! search. Each answers candidates in its own rank order ([`Candidate`]); what the caller
//! may read is decided after ([`crate::rank`]).
//!
//! The caller's credentials never go upstream: Chroma gets the knowledge base's sealed
//! token (`x-chroma-token`), the vector store and the embedding deployment their sealed
//! keys (`Authorization: Bearer`).

use crate::rank::Candidate;
use crate::registry::{Embedder, Entry};
use gatehouse_store::KnowledgeBackend;
use serde_json::{Map, Value, json};

/// Why a backend could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// It could not be reached, or answered with an error status.
    #[error("{what} is unavailable: {why}")]
    Unavailable {
        /// `the embedding model`, `the Chroma server`, `the vector store`.
        what: &'static str,
        /// Why (no secret, no upstream body).
        why: String,
    },
    /// It answered something Gatehouse cannot read.
    #[error("{what} answered in an unexpected shape: {why}")]
    Protocol {
        /// Which backend.
        what: &'static str,
        /// What was wrong.
        why: String,
    },
    /// The knowledge base cannot be searched as configured.
    #[error("{0}")]
    NotConfigured(String),
}

fn unavailable(what: &'static str, why: impl ToString) -> BackendError {
    BackendError::Unavailable {
        what,
        why: why.to_string(),
    }
}

fn protocol(what: &'static str, why: impl ToString) -> BackendError {
    BackendError::Protocol {
        what,
        why: why.to_string(),
    }
}

async fn post_json(
    client: &reqwest::Client,
    what: &'static str,
    url: &str,
    auth: Option<(&str, String)>,
    body: &Value,
) -> Result<Value, BackendError> {
    let mut req = client.post(url).json(body);
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| unavailable(what, e.without_url()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(unavailable(what, format!("HTTP {}", status.as_u16())));
    }
    resp.json::<Value>()
        .await
        .map_err(|e| protocol(what, e.without_url()))
}

/// The query's embedding, from the knowledge base's embedding deployment.
pub async fn embed(
    client: &reqwest::Client,
    embedder: &Embedder,
    query: &str,
) -> Result<Vec<f64>, BackendError> {
    const WHAT: &str = "the embedding model";
    let auth = embedder
        .api_key
        .as_ref()
        .and_then(|k| k.expose_str())
        .map(|k| ("authorization", format!("Bearer {k}")));
    let body = json!({"model": embedder.upstream_model, "input": query});
    let answer = post_json(client, WHAT, &embedder.url, auth, &body).await?;
    let vector = answer
        .pointer("/data/0/embedding")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(WHAT, "no data[0].embedding"))?;
    let v = vector
        .iter()
        .map(|x| x.as_f64().filter(|f| f.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| protocol(WHAT, "an embedding holds a value that is not a number"))?;
    if v.is_empty() || v.len() > 65_536 {
        return Err(protocol(
            WHAT,
            "an embedding of 1-65536 numbers was expected",
        ));
    }
    Ok(v)
}

fn chroma_base(entry: &Entry) -> String {
    format!(
        "{}/api/v2/tenants/{}/databases/{}/collections",
        entry.kb.url.trim_end_matches('/'),
        entry.kb.tenant.as_deref().unwrap_or("default_tenant"),
        entry.kb.database.as_deref().unwrap_or("default_database"),
    )
}

fn chroma_auth(entry: &Entry) -> Option<(&'static str, String)> {
    entry
        .credential
        .as_ref()
        .and_then(|c| c.expose_str())
        .map(|c| ("x-chroma-token", c.to_owned()))
}

async fn chroma_collection_id(
    client: &reqwest::Client,
    entry: &Entry,
) -> Result<String, BackendError> {
    const WHAT: &str = "the Chroma server";
    if let Some(id) = entry.chroma_collection_id.get() {
        return Ok(id.clone());
    }
    let url = format!("{}/{}", chroma_base(entry), entry.kb.collection);
    let mut req = client.get(&url);
    if let Some((name, value)) = chroma_auth(entry) {
        req = req.header(name, value);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| unavailable(WHAT, e.without_url()))?;
    if !resp.status().is_success() {
        return Err(unavailable(
            WHAT,
            format!(
                "collection {} not found (HTTP {})",
                entry.kb.collection,
                resp.status().as_u16()
            ),
        ));
    }
    let v: Value = resp
        .json()
        .await
        .map_err(|e| protocol(WHAT, e.without_url()))?;
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .ok_or_else(|| protocol(WHAT, "a collection without an id"))?
        .to_owned();
    let _ = entry.chroma_collection_id.set(id.clone());
    Ok(id)
}

/// Chroma's best `n` for the embedding, narrowed by `filter` (Chroma's `where`).
pub async fn chroma_query(
    client: &reqwest::Client,
    entry: &Entry,
    embedding: &[f64],
    n: usize,
    filter: Option<&Value>,
) -> Result<Vec<Candidate>, BackendError> {
    const WHAT: &str = "the Chroma server";
    let id = chroma_collection_id(client, entry).await?;
    let url = format!("{}/{id}/query", chroma_base(entry));
    let mut body = json!({
        "query_embeddings": [embedding],
        "n_results": n,
        "include": ["metadatas", "documents", "distances"],
    });
    if let (Some(f), Some(obj)) = (filter, body.as_object_mut()) {
        obj.insert("where".into(), f.clone());
    }
    let answer = post_json(client, WHAT, &url, chroma_auth(entry), &body).await?;
    let column = |name: &str| -> Result<Vec<Value>, BackendError> {
        match answer.get(name).and_then(|v| v.get(0)) {
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(Value::Null) | None if name == "documents" => Ok(Vec::new()),
            _ => Err(protocol(WHAT, format!("no {name}[0] list"))),
        }
    };
    let ids = column("ids")?;
    let distances = column("distances")?;
    let metadatas = column("metadatas")?;
    let documents = column("documents")?;
    if distances.len() != ids.len() || metadatas.len() != ids.len() {
        return Err(protocol(
            WHAT,
            "ids, distances and metadatas differ in length",
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let id = id
                .as_str()
                .ok_or_else(|| protocol(WHAT, "an id that is not a string"))?;
            let distance = distances[i]
                .as_f64()
                .ok_or_else(|| protocol(WHAT, "a distance that is not a number"))?;
            let metadata = match &metadatas[i] {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                _ => return Err(protocol(WHAT, "metadata that is not an object")),
            };
            Ok(Candidate {
                id: id.to_owned(),
                // Distances are lower-is-better and unbounded for some spaces; a score in
                // (0, 1] keeps Chroma's order.
                score: 1.0 / (1.0 + distance.max(0.0)),
                metadata,
                text: documents.get(i).and_then(Value::as_str).map(str::to_owned),
            })
        })
        .collect()
}

/// An OpenAI-compatible vector store's best `n` for the query, narrowed by `filter`
/// (OpenAI's filter JSON). Each result's `attributes` are its metadata.
pub async fn openai_search(
    client: &reqwest::Client,
    entry: &Entry,
    query: &Value,
    n: usize,
    filter: Option<&Value>,
) -> Result<Vec<Candidate>, BackendError> {
    const WHAT: &str = "the vector store";
    let url = format!(
        "{}/vector_stores/{}/search",
        entry.kb.url.trim_end_matches('/'),
        entry.kb.collection
    );
    let mut body = json!({"query": query, "max_num_results": n});
    if let (Some(f), Some(obj)) = (filter, body.as_object_mut()) {
        obj.insert("filters".into(), f.clone());
    }
    let auth = entry
        .credential
        .as_ref()
        .and_then(|c| c.expose_str())
        .map(|c| ("authorization", format!("Bearer {c}")));
    let answer = post_json(client, WHAT, &url, auth, &body).await?;
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(WHAT, "no data list"))?;
    data.iter()
        .map(|r| {
            let id = r
                .get("file_id")
                .and_then(Value::as_str)
                .ok_or_else(|| protocol(WHAT, "a result without file_id"))?;
            let score = r
                .get("score")
                .and_then(Value::as_f64)
                .ok_or_else(|| protocol(WHAT, "a result without score"))?;
            let mut metadata = match r.get("attributes") {
                Some(Value::Object(m)) => m.clone(),
                None | Some(Value::Null) => Map::new(),
                _ => return Err(protocol(WHAT, "attributes that are not an object")),
            };
            if let Some(name) = r.get("filename").and_then(Value::as_str)
                && !metadata.contains_key("filename")
            {
                metadata.insert("filename".into(), Value::String(name.to_owned()));
            }
            let text = r.get("content").and_then(Value::as_array).map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(Candidate {
                id: id.to_owned(),
                score,
                metadata,
                text,
            })
        })
        .collect()
}

/// What a search sends to a backend besides the window size.
#[derive(Debug)]
pub struct Query<'a> {
    /// The caller's `query` (a string or a list of strings).
    pub text: &'a Value,
    /// The embedding (Chroma), computed once per search.
    pub embedding: Option<&'a [f64]>,
    /// The filter in the backend's own form.
    pub filter: Option<&'a Value>,
}

/// The backend's best `n` candidates for the query.
pub async fn search(
    client: &reqwest::Client,
    entry: &Entry,
    q: &Query<'_>,
    n: usize,
) -> Result<Vec<Candidate>, BackendError> {
    match entry.kb.backend {
        KnowledgeBackend::Chroma => {
            let embedding = q.embedding.ok_or_else(|| {
                BackendError::NotConfigured("no embedding for a Chroma search".into())
            })?;
            chroma_query(client, entry, embedding, n, q.filter).await
        }
        KnowledgeBackend::OpenAi => openai_search(client, entry, q.text, n, q.filter).await,
    }
}
