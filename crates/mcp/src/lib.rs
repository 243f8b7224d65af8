//! Gatehouse's MCP face: agents' tool calls under the same policies as model calls.
//!
//! `/mcp/NAME` speaks MCP's streamable HTTP transport to any MCP client, in front of an
//! upstream MCP server an operator registered (`gatehouse mcp add`). Every request is
//! authenticated as at the other faces and decided by the engine before anything reaches
//! the upstream: `mcp:ListTools` on `server/NAME`, `mcp:CallTool` on `tool/NAME/TOOL` with
//! the tool's pinned annotations and the call's arguments as condition keys
//! ([`tools`]). A listing shows exactly the tools the caller may call for *some*
//! arguments (`Evaluation::decide_for_some` with the `mcp:Argument/` keys open), so
//! listing and calling agree. A tool whose definition changed upstream since it was
//! pinned is neither listed nor callable until approved ([`gateway`]). One audit record per
//! request, with a digest of the arguments.
//!
//! The face is generic over [`McpHost`]: what it needs of the server it is mounted in
//! (authentication with the gateway's credentials, the decision with the global keys the
//! gateway sets, the audit queue). The server implements it until the shared pipeline
//! (`crates/pipeline`) offers those steps itself.

pub mod config;
pub mod gateway;
mod handler;
pub mod protocol;
pub mod tools;
pub mod upstream;

pub use gateway::McpGateway;
pub use handler::routes;

use axum::http::{HeaderMap, Method, Uri};
use gatehouse_pipeline::origin::ListenerInfo;
use gatehouse_policy::ContextValue;
use gatehouse_store::Store;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;

/// Who a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller's ARN.
    pub arn: String,
    /// The caller's account (the one whose servers it sees).
    pub account: String,
}

/// The engine's answer for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed.
    pub allowed: bool,
    /// `Allow`, `ExplicitDeny` or `ImplicitDeny`.
    pub decision: String,
    /// The deciding statement.
    pub statement: Option<String>,
    /// For a denial: the encoded authorization message (`DecodeAuthorizationMessage`).
    pub encoded_message: Option<String>,
}

/// One MCP request's audit record, as the face fills it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct McpAuditRecord {
    /// Caller ARN (empty when unauthenticated).
    pub principal: String,
    /// `mcp:CallTool`, `mcp:ListTools`, ... (`mcp:Initialize`/`mcp:Ping` for what Gatehouse
    /// answers itself to any authenticated caller).
    pub action: String,
    /// Resource ARN.
    pub resource: String,
    /// `Allow`, `ExplicitDeny`, `ImplicitDeny`, or `Error` before a decision.
    pub decision: String,
    /// The deciding statement.
    pub statement: Option<String>,
    /// Why it failed or was refused (a short code).
    pub error_code: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Milliseconds from request to answer.
    pub latency_ms: f64,
    /// The server's name.
    pub server: String,
    /// The JSON-RPC method.
    pub method: String,
    /// The tool called.
    pub tool: Option<String>,
    /// SHA-256 of the call's arguments in canonical JSON.
    pub arguments_sha256: Option<String>,
    /// The client's `Mcp-Session-Id`.
    pub session: Option<String>,
    /// What the upstream did: `ok`, `tool_error` (a result with `isError`), `error`
    /// (a JSON-RPC error), or `unavailable`; absent when nothing was sent.
    pub upstream: Option<String>,
}

/// What the MCP face needs from the server it is mounted in.
pub trait McpHost: Send + Sync + 'static {
    /// The server's per-request state (where the request came from, when, who).
    type Call: Send + Sync;
    /// The MCP gateway's state.
    fn mcp(&self) -> &McpGateway;
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
    /// Authenticates the request's credentials (`Authorization: Bearer` session token or
    /// `ACCESS_KEY_ID:SECRET`, SigV4); `Err` is the message of a 401.
    fn authenticate(
        &self,
        call: &mut Self::Call,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> impl Future<Output = Result<Principal, String>> + Send;
    /// Decides `action` on `resource` for the authenticated caller, with the global keys
    /// the gateway sets and `keys`; with `open_prefix`, whether it is allowed for some
    /// values of the keys starting with it.
    fn decide(
        &self,
        call: &Self::Call,
        action: &str,
        resource: &str,
        keys: &[(String, ContextValue)],
        open_prefix: Option<&str>,
    ) -> Verdict;
    /// Queues the request's audit record; `false` when it cannot be (refuse: fail closed).
    fn record(&self, call: &Self::Call, record: &McpAuditRecord) -> bool;
}

/// `arn:gatehouse:mcp:REGION:ACCOUNT:RESOURCE`.
pub fn mcp_arn(region: &str, account: &str, resource: &str) -> String {
    format!("arn:gatehouse:mcp:{region}:{account}:{resource}")
}
