//! `POST /v1/vector_stores/KB/search` (OpenAI's vector store search, through Gatehouse) and
//! `POST /v1/knowledge_bases/KB/authorize` (the batch decision API). Credentials before the
//! body (a SigV4 signature covers the body, so there the body comes first); bad input is
//! refused in OpenAI's error shape before anything is asked of a backend; one audit record
//! per request, and nothing is answered that could not be recorded.

use crate::backend::{self, BackendError, Query};
use crate::batch::{self, BatchRequest};
use crate::filter::Filter;
use crate::rank::{DocumentDecider, top_k_allowed};
use crate::{RETRIEVE, RetrievalAuditRecord, RetrievalHost, Subject, knowledge_base_arn};
use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gatehouse_pipeline::origin::ListenerInfo;
use gatehouse_store::KnowledgeBackend;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The largest search body read.
pub const MAX_SEARCH_BODY: usize = 1 << 20;
/// The largest batch body read (10,000 documents with their tags).
pub const MAX_BATCH_BODY: usize = 16 << 20;
/// The most results a search may ask for (OpenAI's own limit).
pub const MAX_RESULTS: u64 = 50;
/// The most candidates one search asks of its backend, over every round.
pub const MAX_CANDIDATES: usize = 1000;
/// The longest query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 8192;

/// The retrieval face's routes, merged into the server's router.
pub fn routes<H: RetrievalHost>() -> Router<Arc<H>> {
    use axum::routing::post;
    Router::new()
        .route(
            "/v1/vector_stores/{kb}/search",
            post(search::<H>).fallback(not_allowed),
        )
        .route(
            "/v1/knowledge_bases/{kb}/authorize",
            post(authorize::<H>).fallback(not_allowed),
        )
}

/// An error in OpenAI's shape.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
    param: Option<&'static str>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
        }
    }

    fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                message,
            )
        }
    }

    fn response(&self, request_id: &str) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
            "request_id": request_id,
        }});
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        tracing::warn!(error = %e, "knowledge base backend failed");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream_error",
            e.to_string(),
        )
    }
}

async fn not_allowed(method: Method, uri: Uri) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        format!("{method} is not allowed on {}.", uri.path()),
    );
    let mut resp = e.response("");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    resp
}

/// What one request builds up on its way.
struct Exchange<'a, H: RetrievalHost> {
    host: &'a H,
    call: H::Call,
    started: Instant,
    record: RetrievalAuditRecord,
    request_id: String,
}

impl<H: RetrievalHost> Exchange<'_, H> {
    fn finish(mut self, result: Result<Value, ApiError>) -> Response {
        let status = match &result {
            Ok(_) => StatusCode::OK,
            Err(e) => e.status,
        };
        self.record.status = status.as_u16();
        if let Err(e) = &result {
            self.record.error_code = Some(e.code.to_owned());
        }
        self.record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        if !self.host.record(&self.call, &self.record) {
            tracing::error!("audit queue full; retrieval request refused");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "audit_unavailable",
                "Gatehouse cannot record the request now; try again",
            )
            .response(&self.request_id);
        }
        match result {
            Ok(body) => {
                let mut resp = (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&self.request_id) {
                    resp.headers_mut().insert("x-request-id", v);
                }
                resp
            }
            Err(e) => {
                let mut resp = e.response(&self.request_id);
                if e.status == StatusCode::UNAUTHORIZED {
                    resp.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                resp
            }
        }
    }

    /// Authenticates (reading the body first only for SigV4), then reads the body.
    async fn authenticate(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<(Subject, Bytes), ApiError> {
        let signs_body = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"));
        let mut body = Some(body);
        let mut raw = Bytes::new();
        if signs_body && let Some(b) = body.take() {
            raw = read_body(b, limit).await?;
        }
        let subject = self
            .host
            .authenticate(&mut self.call, method, uri, headers, &raw)
            .await
            .map_err(|why| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request_error",
                    "invalid_api_key",
                    why,
                )
            })?;
        self.record.principal = subject.arn.clone();
        if let Some(b) = body.take() {
            raw = read_body(b, limit).await?;
        }
        Ok((subject, raw))
    }

    /// Decides `action` on `resource` for `subject` into the record; a denial is a 403 with
    /// the encoded authorization message.
    fn require(&mut self, subject: &Subject, action: &str, resource: &str) -> Result<(), ApiError> {
        let req = subject.request(action, resource);
        let d = subject.decide(&req);
        self.record.decision = d.decision.as_str().to_owned();
        self.record.statement = d.statements.first().map(ToString::to_string);
        if d.is_allow() {
            return Ok(());
        }
        let encoded = self.host.denial_message(&req, &d).unwrap_or_default();
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "access_denied",
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource}. Encoded authorization failure message: {encoded}",
                subject.arn
            ),
        ))
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("The body is larger than {limit} bytes or unreadable."),
        )
    })
}

fn begin<'a, H: RetrievalHost>(
    host: &'a H,
    peer: SocketAddr,
    listener: Option<Extension<ListenerInfo>>,
    headers: &HeaderMap,
    action: &str,
) -> Exchange<'a, H> {
    Exchange {
        host,
        call: host.begin(peer, listener.map(|Extension(l)| l), headers),
        started: Instant::now(),
        record: RetrievalAuditRecord {
            action: action.to_owned(),
            decision: "Error".into(),
            detail: Value::Null,
            ..RetrievalAuditRecord::default()
        },
        request_id: host.request_id(),
    }
}

/// A search request, read.
#[derive(Debug)]
struct SearchRequest {
    query: Value,
    query_text: String,
    max_results: usize,
    filter: Option<Filter>,
    score_threshold: Option<f64>,
}

fn parse_search(raw: &[u8]) -> Result<SearchRequest, ApiError> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            format!("The body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(m) = v else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            "The body must be a JSON object.",
        ));
    };
    const FIELDS: &[&str] = &[
        "query",
        "max_num_results",
        "filters",
        "rewrite_query",
        "ranking_options",
    ];
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "unknown_parameter",
            format!("Unrecognized request argument supplied: {k}"),
        ));
    }
    let (query, query_text) = match m.get("query") {
        Some(Value::String(s)) => (Value::String(s.clone()), s.clone()),
        Some(Value::Array(items))
            if !items.is_empty()
                && items.len() <= 16
                && items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.is_empty())) =>
        {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            (Value::Array(items.clone()), parts.join("\n"))
        }
        _ => {
            return Err(ApiError::invalid(
                "query",
                "query must be a non-empty string or a list of 1-16 non-empty strings",
            ));
        }
    };
    if query_text.trim().is_empty() || query_text.len() > MAX_QUERY_BYTES {
        return Err(ApiError::invalid(
            "query",
            format!("query must hold text, at most {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let max_results = match m.get("max_num_results") {
        None | Some(Value::Null) => 10,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_RESULTS).contains(&n) => n as usize,
            _ => {
                return Err(ApiError::invalid(
                    "max_num_results",
                    format!("max_num_results must be an integer between 1 and {MAX_RESULTS}"),
                ));
            }
        },
    };
    let filter = match m.get("filters") {
        None | Some(Value::Null) => None,
        Some(f) => Some(Filter::parse(f).map_err(|e| ApiError::invalid("filters", e.to_string()))?),
    };
    match m.get("rewrite_query") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            return Err(ApiError::invalid(
                "rewrite_query",
                "rewrite_query is not supported by Gatehouse knowledge bases",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "rewrite_query",
                "rewrite_query must be a boolean",
            ));
        }
    }
    let score_threshold = match m.get("ranking_options") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => {
            if let Some(k) = r
                .keys()
                .find(|k| !matches!(k.as_str(), "ranker" | "score_threshold"))
            {
                return Err(ApiError::invalid(
                    "ranking_options",
                    format!("unknown field ranking_options.{k}"),
                ));
            }
            match r.get("ranker") {
                None | Some(Value::Null) => {}
                Some(Value::String(s))
                    if s == "auto" || s == "none" || s.starts_with("default-") => {}
                Some(_) => {
                    return Err(ApiError::invalid(
                        "ranking_options",
                        "ranking_options.ranker must be auto",
                    ));
                }
            }
            match r.get("score_threshold") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_f64() {
                    Some(t) if (0.0..=1.0).contains(&t) => Some(t),
                    _ => {
                        return Err(ApiError::invalid(
                            "ranking_options",
                            "ranking_options.score_threshold must be a number between 0 and 1",
                        ));
                    }
                },
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "ranking_options",
                "ranking_options must be an object",
            ));
        }
    };
    Ok(SearchRequest {
        query,
        query_text,
        max_results,
        filter,
        score_threshold,
    })
}

#[allow(clippy::too_many_arguments)]
async fn search<H: RetrievalHost>(
    State(host): State<Arc<H>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    listener: Option<Extension<ListenerInfo>>,
    Path(kb): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let host = &*host;
    let mut x = begin(host, peer, listener, &headers, RETRIEVE);
    let result = run_search(&mut x, &kb, &method, &uri, &headers, body).await;
    x.finish(result)
}

async fn run_search<H: RetrievalHost>(
    x: &mut Exchange<'_, H>,
    kb: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    let (subject, raw) = x
        .authenticate(method, uri, headers, body, MAX_SEARCH_BODY)
        .await?;
    let kb_arn = knowledge_base_arn(x.host.region(), &subject.account, kb);
    x.record.resource = kb_arn.clone();
    let mut detail = Map::new();
    detail.insert("knowledge_base".into(), json!(kb));
    x.record.detail = Value::Object(detail.clone());
    if gatehouse_store::validate_knowledge_base_name(kb).is_err() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("No knowledge base named {kb:?}."),
        ));
    }
    let req = parse_search(&raw)?;
    detail.insert(
        "query_sha256".into(),
        json!(hex::encode(Sha256::digest(req.query_text.as_bytes()))),
    );
    x.record.detail = Value::Object(detail.clone());
    // The knowledge base is decided before it is looked up: a caller refused gets the same
    // answer whether or not it exists.
    x.require(&subject, RETRIEVE, &kb_arn)?;
    let store = x.host.store();
    let entry = x
        .host
        .retrieval()
        .get(store, x.host.generation(), &subject.account, kb)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "store failure reading knowledge bases");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "internal_error",
                "Gatehouse could not read its knowledge bases.",
            )
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                format!("No knowledge base named {kb:?}."),
            )
        })?;
    let client = x.host.retrieval().client().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "unavailable",
            "Gatehouse cannot reach knowledge bases now.",
        )
    })?;
    let embedding = match entry.kb.backend {
        KnowledgeBackend::Chroma => {
            let embedder = entry.embedder.as_ref().ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "api_error",
                    "embedding_model_unavailable",
                    format!("The embedding model of knowledge base {kb:?} is not deployed."),
                )
            })?;
            detail.insert("embedding_model".into(), json!(embedder.model_id));
            Some(backend::embed(client, embedder, &req.query_text).await?)
        }
        KnowledgeBackend::OpenAi => None,
    };
    let backend_filter = req.filter.as_ref().map(|f| match entry.kb.backend {
        KnowledgeBackend::Chroma => f.to_chroma(),
        KnowledgeBackend::OpenAi => f.to_openai(),
    });
    let query = Query {
        text: &req.query,
        embedding: embedding.as_deref(),
        filter: backend_filter.as_ref(),
    };
    let mut decider = DocumentDecider::new(&subject, &kb_arn);
    let threshold = req.score_threshold;
    let allows =
        |c: &crate::rank::Candidate| threshold.is_none_or(|t| c.score >= t) && decider.allows(c);
    let entry_ref = &*entry;
    let fetch = |n: usize| backend::search(client, entry_ref, &query, n);
    let selection = top_k_allowed(req.max_results, MAX_CANDIDATES, fetch, allows).await?;
    detail.insert(
        "returned".into(),
        json!(
            selection
                .documents
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
        ),
    );
    detail.insert("refused".into(), json!(selection.refused));
    detail.insert("fetched".into(), json!(selection.fetched));
    detail.insert("rounds".into(), json!(selection.rounds));
    x.record.detail = Value::Object(detail);
    let data: Vec<Value> = selection
        .documents
        .into_iter()
        .map(|c| {
            let filename = c
                .metadata
                .get("filename")
                .and_then(Value::as_str)
                .map_or_else(|| c.id.clone(), str::to_owned);
            let content: Vec<Value> = c
                .text
                .map(|t| vec![json!({"type": "text", "text": t})])
                .unwrap_or_default();
            json!({
                "file_id": c.id,
                "filename": filename,
                "score": c.score,
                "attributes": c.metadata,
                "content": content,
            })
        })
        .collect();
    let search_query = match &req.query {
        Value::Array(a) => Value::Array(a.clone()),
        other => json!([other]),
    };
    Ok(json!({
        "object": "vector_store.search_results.page",
        "search_query": search_query,
        "data": data,
        "has_more": false,
        "next_page": null,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn authorize<H: RetrievalHost>(
    State(host): State<Arc<H>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    listener: Option<Extension<ListenerInfo>>,
    Path(kb): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let host = &*host;
    let mut x = begin(host, peer, listener, &headers, "gatehouse:IsAuthorized");
    let result = run_authorize(&mut x, &kb, &method, &uri, &headers, body).await;
    x.finish(result)
}

async fn run_authorize<H: RetrievalHost>(
    x: &mut Exchange<'_, H>,
    kb: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    let (app, raw) = x
        .authenticate(method, uri, headers, body, MAX_BATCH_BODY)
        .await?;
    let kb_arn = knowledge_base_arn(x.host.region(), &app.account, kb);
    x.record.resource = kb_arn.clone();
    if gatehouse_store::validate_knowledge_base_name(kb).is_err() {
        return Err(ApiError::invalid(
            "knowledge_base",
            "a knowledge base name is 1-64 letters, digits, -, _ and .",
        ));
    }
    let req: BatchRequest = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            format!("The body is not a batch request: {e}"),
        )
    })?;
    batch::check(&req).map_err(|m| ApiError::invalid("documents", m))?;
    x.require(&app, "gatehouse:IsAuthorized", &kb_arn)?;
    let person = x
        .host
        .session_subject(&x.call, &req.session_token)
        .await
        .map_err(|why| ApiError::invalid("session_token", format!("session_token: {why}")))?;
    if person.account != app.account {
        return Err(ApiError::invalid(
            "session_token",
            "session_token: the person's session is of another account",
        ));
    }
    let decisions = batch::decide_documents(&person, &kb_arn, &req.documents);
    let allowed: Vec<&str> = req
        .documents
        .iter()
        .zip(&decisions)
        .filter(|(_, ok)| **ok)
        .map(|(d, _)| d.id.as_str())
        .collect();
    x.record.detail = json!({
        "knowledge_base": kb,
        "person": person.arn,
        "documents": req.documents.len(),
        "allowed": allowed.len(),
    });
    Ok(json!({
        "object": "knowledge_base.authorization",
        "knowledge_base": kb,
        "principal": person.arn,
        "allowed": allowed,
        "decisions": decisions,
    }))
}
