//! Gatehouse's knowledge bases under policy: retrieval that returns only what the caller
//! may read.
//!
//! A knowledge base is registered by an operator (`gatehouse kb add`): where its documents
//! live (a Chroma collection, or a vector store behind an OpenAI-compatible API) and the
//! Gatehouse deployment that embeds a query. Callers search it with OpenAI's vector store
//! search API (`POST /v1/vector_stores/KB/search`) with the gateway's credentials. The
//! search is decided twice over: `ai:Retrieve` on `knowledge-base/KB` (may the caller
//! search at all), then `ai:Retrieve` on each candidate `knowledge-base/KB/document/ID`
//! with the document's metadata as `ai:DocumentTag/KEY` ([`rank::document_keys`]). The
//! answer is the best `max_num_results` documents *among those allowed* ([`rank`]): more
//! candidates are fetched while too few are allowed, up to a bound, and a refused document
//! is never returned, counted to the caller or hinted at. One audit record per search.
//!
//! Applications that keep their own vector database ask the batch decision API
//! ([`batch`]) which of up to 10,000 documents a person may read, in one round trip.
//!
//! The face is generic over [`RetrievalHost`]: what it needs of the server it is mounted in
//! (authentication with the gateway's credentials, the request every decision starts from
//! with the keys the gateway sets, encoded denial messages, the audit queue), the pattern
//! of `gatehouse-mcp`.

pub mod backend;
pub mod batch;
pub mod filter;
mod handler;
pub mod rank;
pub mod registry;

pub use handler::routes;
pub use registry::Retrieval;

use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, Utc};
use gatehouse_pipeline::authz::CompiledPrincipal;
use gatehouse_pipeline::origin::ListenerInfo;
use gatehouse_policy::{Decision, DecisionKind, PolicySet, Request};
use gatehouse_store::Store;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// The action every retrieval decision is made for.
pub const RETRIEVE: &str = "ai:Retrieve";

/// The prefix of the condition keys a document's metadata becomes.
pub const DOCUMENT_TAG_PREFIX: &str = "ai:DocumentTag/";

/// Who a request was authenticated as, and what every decision of it starts from.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The caller's ARN.
    pub arn: String,
    /// The caller's account (the one whose knowledge bases it sees).
    pub account: String,
    /// The request every decision starts from: the principal, and the context keys the
    /// gateway sets (principal and session tags, source, MFA, time, `gatehouse:OnBehalfOf`).
    pub base: Request,
    /// Compiled policies; `None` for the account's root credentials (not subject to policy).
    pub policies: Option<Arc<CompiledPrincipal>>,
    /// Session policies that intersect with the principal's.
    pub session: Option<Arc<PolicySet>>,
    /// The time decisions are made at (just-in-time grants' windows).
    pub now: DateTime<Utc>,
}

impl Subject {
    /// Decides `request` (built from [`Subject::base`]) as the gateway decides: the standing
    /// policies, then any just-in-time grant active now. Root is allowed.
    pub fn decide(&self, request: &Request) -> Decision {
        match &self.policies {
            Some(p) => {
                p.decide_at(request, None, self.session.as_deref(), self.now)
                    .decision
            }
            None => Decision {
                decision: DecisionKind::Allow,
                statements: Vec::new(),
                missing: None,
            },
        }
    }

    /// The base request for `action` on `resource`.
    pub fn request(&self, action: &str, resource: &str) -> Request {
        let mut r = self.base.clone();
        action.clone_into(&mut r.action);
        resource.clone_into(&mut r.resource);
        r
    }
}

/// One retrieval request's audit record, as the face fills it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetrievalAuditRecord {
    /// Caller ARN (empty when unauthenticated).
    pub principal: String,
    /// `ai:Retrieve` (a search) or `gatehouse:IsAuthorized` (a batch decision).
    pub action: String,
    /// Resource ARN (the knowledge base's, or the person's for a batch).
    pub resource: String,
    /// `Allow`, `ExplicitDeny`, `ImplicitDeny`, or `Error` before a decision.
    pub decision: String,
    /// The deciding statement.
    pub statement: Option<String>,
    /// OpenAI error code when refused or failed.
    pub error_code: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Milliseconds from request to answer.
    pub latency_ms: f64,
    /// What the face adds: the knowledge base, the query's SHA-256, the document ids
    /// returned, how many candidates were refused and fetched (a search); the person and
    /// the counts (a batch).
    pub detail: serde_json::Value,
}

/// What the retrieval face needs from the server it is mounted in.
pub trait RetrievalHost: Send + Sync + 'static {
    /// The server's per-request state (where the request came from, when, who).
    type Call: Send + Sync;
    /// The retrieval state (knowledge bases of the current generation, the HTTP client).
    fn retrieval(&self) -> &Retrieval;
    /// The store.
    fn store(&self) -> &Store;
    /// The region ARNs carry.
    fn region(&self) -> &str;
    /// The store generation the request path works in.
    fn generation(&self) -> i64;
    /// Starts a request: its origin (source address, listener) and time.
    fn begin(
        &self,
        peer: SocketAddr,
        listener: Option<ListenerInfo>,
        headers: &HeaderMap,
    ) -> Self::Call;
    /// Authenticates the request's credentials as `/v1/chat/completions` does; `Err` is the
    /// message of a 401.
    fn authenticate(
        &self,
        call: &mut Self::Call,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> impl Future<Output = Result<Subject, String>> + Send;
    /// The subject of a person's session token (the batch decision API), with the keys the
    /// token carries and the request's time; `Err` is why it is not a valid token.
    fn session_subject(
        &self,
        call: &Self::Call,
        token: &str,
    ) -> impl Future<Output = Result<Subject, String>> + Send;
    /// The encoded authorization message of a denial (`DecodeAuthorizationMessage`).
    fn denial_message(&self, request: &Request, decision: &Decision) -> Option<String>;
    /// Queues the request's audit record; `false` when it cannot be (refuse: fail closed).
    fn record(&self, call: &Self::Call, record: &RetrievalAuditRecord) -> bool;
    /// The request id (the `x-request-id` header, the error body's `request_id`).
    fn request_id(&self) -> String;
}

/// `arn:gatehouse:ai:REGION:ACCOUNT:knowledge-base/KB`.
pub fn knowledge_base_arn(region: &str, account: &str, kb: &str) -> String {
    format!(
        "arn:{}:ai:{region}:{account}:knowledge-base/{kb}",
        gatehouse_store::PARTITION
    )
}

/// `arn:gatehouse:ai:REGION:ACCOUNT:knowledge-base/KB/document/DOC_ID`.
pub fn document_arn(knowledge_base_arn: &str, document: &str) -> String {
    format!("{knowledge_base_arn}/document/{document}")
}
