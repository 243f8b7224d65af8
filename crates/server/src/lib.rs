//! Gatehouse's HTTP face for the control plane: the AWS IAM and STS Query APIs.
//!
//! Every request goes through one pipeline ([`handle`]): read the body (bounded), parse the
//! Query parameters, authenticate the SigV4 signature, authorize the call with the policy
//! engine (the caller's identity, group and boundary policies and the account's guardrails,
//! with `iam:` actions and Gatehouse ARNs), run the action, and append an audit record —
//! allowed or denied. Errors leave in AWS's XML error shape and change nothing stored.

pub mod access;
pub mod audit;
pub mod bootstrap;
pub mod error;
mod federation;
pub mod gateway;
pub mod health;
mod iam;
pub mod identity;
mod kb_host;
pub mod listen;
mod mcp_host;
pub use mcp_host::load_configured_mcp_servers;
pub mod metrics;
pub mod observe;
// Public for the fuzz target in `fuzz/` (web identity tokens against a fixed key set).
#[doc(hidden)]
pub mod oidc;
pub mod query;
pub mod session;
mod signin;
mod sts;
pub mod xml;

// The shared request pipeline's parts, under the paths the faces have always used.
pub use gatehouse_pipeline::{authz, origin};

use crate::authz::{CompiledPrincipal, PolicyCache};
use crate::error::ApiError;
use crate::identity::Caller;
use crate::query::Params;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gatehouse_auth::Secret;
use gatehouse_policy::{DecisionKind, Request};
use gatehouse_store::{PendingAudit, Store};
use std::net::SocketAddr;
use std::sync::Arc;

/// The largest request body accepted (AWS's Query APIs refuse larger ones too).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a server needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Region written into ARNs (`local` by default).
    pub region: String,
    /// The bootstrap root access key id.
    pub root_access_key_id: String,
    /// The bootstrap root secret.
    pub root_secret: Secret,
    /// The default account.
    pub account_id: String,
}

/// Shared state of one server process.
#[derive(Debug)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Configuration.
    pub config: ServerConfig,
    /// Compiled policies per principal.
    pub cache: PolicyCache,
    /// When this node last recorded each access key's use (see [`AppState::note_key_use`]).
    key_use: std::sync::Mutex<std::collections::HashMap<String, KeyUse>>,
    /// The session-token signing keys (shared by every node through the store).
    /// Replaced when another node (or `gatehouse admin rotate-signing-key`) rotates it:
    /// read it with [`AppState::ring`].
    ring: std::sync::RwLock<Arc<gatehouse_auth::session::SigningKeyRing>>,
    /// Session policies compiled once per session.
    pub session_policies: session::SessionPolicyCache,
    /// OpenID Connect providers' keys, fetched and cached.
    pub oidc: oidc::JwksCache,
    /// The AI gateway's routes, budgets and audit queue.
    pub gateway: gateway::Gateway,
    /// The MCP gateway's servers, upstream connections and pins (`/mcp/NAME`).
    pub mcp: gatehouse_mcp::McpGateway,
    /// Knowledge bases of the current generation (`/v1/vector_stores/KB/search`).
    pub retrieval: gatehouse_retrieval::Retrieval,
    /// Group commit of the control plane's audit records that no write carried.
    pub audit: audit::GroupCommit,
    /// This node's Prometheus metrics and where they are served.
    pub metrics: metrics::Metrics,
    /// Where request paths read the time (decisions, tokens, audit records, budgets): the
    /// system clock, or a test's [`gatehouse_pipeline::ManualClock`].
    pub clock: gatehouse_pipeline::Clock,
}

/// The last recorded use of an access key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyUse {
    at: std::time::Instant,
    service: String,
    region: String,
}

/// AWS reports an access key's last use with coarse precision; recording it at most this
/// often per key keeps a database write off almost every request.
const KEY_USE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl AppState {
    /// New state over an opened store, with a fresh signing key ring (tests; a server
    /// uses [`AppState::with_ring`] and the ring kept in the store).
    pub fn new(store: Store, config: ServerConfig) -> Arc<AppState> {
        AppState::with_ring(
            store,
            config,
            gatehouse_auth::session::SigningKeyRing::generate(),
        )
    }

    /// New state reading time from `clock` (tests move a
    /// [`gatehouse_pipeline::ManualClock`] instead of sleeping), with a fresh signing key
    /// ring.
    pub fn with_clock(
        store: Store,
        config: ServerConfig,
        clock: gatehouse_pipeline::Clock,
    ) -> Arc<AppState> {
        AppState::build(
            store,
            config,
            gatehouse_auth::session::SigningKeyRing::generate(),
            clock,
        )
    }

    /// New state over an opened store and the signing key ring to use.
    pub fn with_ring(
        store: Store,
        config: ServerConfig,
        ring: gatehouse_auth::session::SigningKeyRing,
    ) -> Arc<AppState> {
        AppState::build(store, config, ring, gatehouse_pipeline::Clock::system())
    }

    fn build(
        store: Store,
        config: ServerConfig,
        ring: gatehouse_auth::session::SigningKeyRing,
        clock: gatehouse_pipeline::Clock,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            store,
            config,
            cache: PolicyCache::default(),
            key_use: std::sync::Mutex::new(std::collections::HashMap::new()),
            ring: std::sync::RwLock::new(Arc::new(ring)),
            session_policies: session::SessionPolicyCache::default(),
            oidc: oidc::JwksCache::default(),
            gateway: gateway::Gateway::default(),
            mcp: gatehouse_mcp::McpGateway::default(),
            retrieval: gatehouse_retrieval::Retrieval::default(),
            audit: audit::GroupCommit::default(),
            metrics: metrics::Metrics::default(),
            clock,
        })
    }

    /// Records that an access key was used (for `GetAccessKeyLastUsed`), unless this node
    /// recorded the same service and region for it within [`KEY_USE_INTERVAL`]. A failure
    /// is logged, not fatal: bookkeeping must not turn a valid request away.
    pub async fn note_key_use(&self, access_key_id: &str, service: &str, region: &str) {
        let now = std::time::Instant::now();
        let fresh = KeyUse {
            at: now,
            service: service.to_owned(),
            region: region.to_owned(),
        };
        let due = match self.key_use.lock() {
            Ok(mut seen) => {
                let due = seen.get(access_key_id).is_none_or(|u| {
                    now.duration_since(u.at) >= KEY_USE_INTERVAL
                        || u.service != service
                        || u.region != region
                });
                if due {
                    seen.insert(access_key_id.to_owned(), fresh);
                }
                due
            }
            Err(_) => true,
        };
        if due
            && let Err(e) = self
                .store
                .record_access_key_use(access_key_id, service, region)
                .await
        {
            tracing::warn!(error = %e, access_key_id, "could not record access key use");
        }
    }

    /// The compiled policies of a user (cached per store generation).
    pub async fn user_policies(
        &self,
        account_id: &str,
        user_name: &str,
    ) -> Result<Arc<CompiledPrincipal>, ApiError> {
        self.principal_policies(account_id, gatehouse_store::PrincipalRef::User(user_name))
            .await
    }

    /// The compiled policies of a role, for its sessions (cached per store generation).
    pub async fn role_policies(
        &self,
        account_id: &str,
        role_name: &str,
    ) -> Result<Arc<CompiledPrincipal>, ApiError> {
        self.principal_policies(account_id, gatehouse_store::PrincipalRef::Role(role_name))
            .await
    }

    async fn principal_policies(
        &self,
        account_id: &str,
        who: gatehouse_store::PrincipalRef<'_>,
    ) -> Result<Arc<CompiledPrincipal>, ApiError> {
        let arn_key = match who {
            gatehouse_store::PrincipalRef::User(n) => format!("{account_id}/user/{n}"),
            gatehouse_store::PrincipalRef::Role(n) => format!("{account_id}/role/{n}"),
        };
        if let Some(p) = self.cache.get(&arn_key) {
            return Ok(p);
        }
        let info = self.store.load_principal_policies(account_id, who).await?;
        let compiled = CompiledPrincipal::compile(info).map_err(|e| {
            tracing::error!(principal = arn_key, error = %e, "stored policy does not compile; denying");
            ApiError::access_denied("The caller's policies could not be evaluated.")
        })?;
        let compiled = Arc::new(compiled);
        self.cache.put(arn_key, compiled.clone());
        Ok(compiled)
    }

    /// The session-token signing keys in force on this node.
    pub fn ring(&self) -> Arc<gatehouse_auth::session::SigningKeyRing> {
        match self.ring.read() {
            Ok(r) => Arc::clone(&r),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the signing keys again from the store (after a rotation on any node). Older
    /// keys stay in the ring, so sessions they signed keep verifying.
    async fn reload_ring(&self) {
        match session::load_or_create_ring(&self.store).await {
            Ok(r) => {
                let r = Arc::new(r);
                if r.active_kid() != self.ring().active_kid() {
                    tracing::info!(kid = r.active_kid(), "session signing key rotated");
                }
                match self.ring.write() {
                    Ok(mut g) => *g = r,
                    Err(poisoned) => *poisoned.into_inner() = r,
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not reload the session signing keys"),
        }
    }

    /// Watches the store for changes made by any node and drops stale compiled policies.
    pub fn spawn_invalidation(self: &Arc<AppState>) {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let mut sub = state.store.subscribe().await.ok();
            let mut last_generation: Option<i64> = None;
            loop {
                match &mut sub {
                    Some(s) => {
                        let next =
                            tokio::time::timeout(std::time::Duration::from_millis(500), s.next())
                                .await;
                        if let Ok(Err(e)) = next {
                            tracing::warn!(error = %e, "change notifications failed; polling");
                            sub = None;
                        }
                    }
                    None => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
                }
                if let Ok(g) = state.store.policy_generation().await {
                    state.cache.invalidate(g);
                    // Every write bumps the generation; a key rotation is one of them.
                    if last_generation != Some(g) {
                        if last_generation.is_some() {
                            state.reload_ring().await;
                        }
                        last_generation = Some(g);
                    }
                }
            }
        });
    }
}

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory (SQLite file, master key, root credentials).
    pub data_dir: std::path::PathBuf,
    /// `postgres://...` to use PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// The default account (12 digits); generated on first start when absent.
    pub account_id: Option<String>,
    /// Region written into ARNs.
    pub region: String,
    /// The key manager's key-encryption key for the store's data keys (`None`: the
    /// `file` master key in `data_dir`).
    pub key_encryption: Option<Arc<dyn gatehouse_store::KeyEncryption>>,
    /// TLS to PostgreSQL.
    pub database_tls: gatehouse_store::DatabaseTls,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] gatehouse_store::StoreError),
    /// Bootstrap failed.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] bootstrap::BootstrapError),
    /// The session-token signing keys could not be loaded.
    #[error("session signing keys: {0}")]
    Ring(#[from] session::RingError),
    /// The listener could not be bound or served.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Opens the store, bootstraps, and returns the state and the bound listener.
pub async fn prepare(
    opts: &ServeOptions,
) -> Result<
    (
        Arc<AppState>,
        tokio::net::TcpListener,
        bootstrap::RootCredentials,
    ),
    ServeError,
> {
    // 0700: the master key, root credentials and the SQLite database live here.
    gatehouse_store::seal::create_private_dir(&opts.data_dir)?;
    let mut store_opts = match &opts.database_url {
        Some(url) => gatehouse_store::StoreOptions::postgres(url.clone()),
        None => gatehouse_store::StoreOptions::sqlite(opts.data_dir.clone()),
    };
    store_opts.tls = opts.database_tls.clone();
    let store = match &opts.key_encryption {
        Some(kek) => Store::open(&store_opts, Arc::clone(kek)).await?,
        None => {
            let key = gatehouse_store::MasterKey::load_or_create(&opts.data_dir)?;
            Store::open(&store_opts, key).await?
        }
    };
    let account = default_account(&store, opts.account_id.as_deref()).await?;
    let root = bootstrap::root_credentials(&opts.data_dir)?;
    let config = ServerConfig {
        region: opts.region.clone(),
        root_access_key_id: root.access_key_id.clone(),
        root_secret: root.secret.clone(),
        account_id: account.account_id.clone(),
    };
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: opts.listen,
            source,
        })?;
    let ring = session::load_or_create_ring(&store).await?;
    let state = AppState::with_ring(store, config, ring);
    state.spawn_invalidation();
    Ok((state, listener, root))
}

/// The default account: the configured one (created on first start; a store whose default
/// is another account is refused), or the one a previous start made, or a new random one.
async fn default_account(
    store: &Store,
    configured: Option<&str>,
) -> Result<gatehouse_store::Account, ServeError> {
    if let Some(id) = configured {
        return Ok(store.ensure_default_account(id, "default").await?);
    }
    match store.default_account().await {
        Ok(a) => Ok(a),
        Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => {
            let id = format!(
                "{}",
                rand::random_range(100_000_000_000_u64..1_000_000_000_000)
            );
            match store.ensure_default_account(&id, "default").await {
                Ok(a) => Ok(a),
                // Another node starting on the same database made it first.
                Err(_) => Ok(store.default_account().await?),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Serves until `shutdown` resolves, with the `[gateway]` settings' connection limits
/// and timeouts ([`listen`]).
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let limits = state.gateway.settings().limits(None);
    if let Ok(a) = listener.local_addr() {
        state.gateway.upstream.add_own(a);
    }
    listen::serve(listener, router(state), limits, refused_head, shutdown).await
}

/// The answer to a request head the HTTP parser refused ([`listen::RefusedHead`]): OpenAI's
/// error shape under `/v1`, AWS's Query error shape elsewhere (and when no path could be
/// read).
pub(crate) fn refused_head(path: Option<&str>, status: StatusCode) -> Response<String> {
    let rid = new_request_id();
    let gateway = path.is_some_and(|p| p == "/v1" || p.starts_with("/v1/"));
    let (content_type, id_header, body) = if gateway {
        let e = gateway::error::GatewayError::refused_head(status);
        (
            "application/json",
            "x-request-id",
            e.body_with_request_id(&rid),
        )
    } else {
        let (code, message) = match status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "RequestHeaderSectionTooLarge",
                "The request's header lines are too many or too large.",
            ),
            StatusCode::URI_TOO_LONG => ("RequestURITooLong", "The request URI is too long."),
            _ => (
                "MalformedHttpRequest",
                "The HTTP request head is malformed.",
            ),
        };
        let e = ApiError::new(status, code, message);
        let xml = xml::error(e.fault(), &e.code, &e.message, &rid, xml::IAM_NS);
        ("text/xml", "x-amzn-RequestId", xml)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert(id_header, v);
    }
    resp
}

/// The router: the OpenAI-compatible gateway at `/v1/`, the probes (`/healthz`,
/// `/readyz`), the IAM, STS and `ai` Query APIs at `/`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(gateway::routes())
        .merge(gatehouse_mcp::routes::<AppState>())
        .merge(gatehouse_retrieval::routes::<AppState>())
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz))
        .route("/metrics", axum::routing::get(metrics::authorized))
        .fallback(handle)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            observe::middleware,
        ))
        .with_state(state)
}

/// Everything a handler knows about the call it serves.
#[derive(Debug)]
pub struct CallContext<'a> {
    /// Server state.
    pub state: &'a AppState,
    /// The store, as this call's handle: a write through it commits the call's audit
    /// record in the same transaction (see [`CallContext::note_decision`]). Handlers
    /// use it rather than `state.store`.
    pub store: Store,
    /// The authenticated caller.
    pub caller: &'a Caller,
    /// The caller's ARN.
    pub caller_arn: String,
    /// The caller's compiled policies (`None` for root); a role's for a role session.
    pub principal: Option<Arc<CompiledPrincipal>>,
    /// The session, when the caller used temporary credentials.
    pub session: Option<session::SessionPrincipal>,
    /// The request id.
    pub request_id: &'a str,
    /// Where the call came from: source address (after trusted proxies) and listener.
    pub origin: origin::Origin,
    /// The access key the request was signed with.
    pub access_key_id: Option<String>,
    /// What authorization decided (for the audit record).
    pub audit: std::sync::Mutex<audit::AuditFacts>,
    /// The record a write through [`CallContext::store`] appends with itself.
    pending: Arc<PendingAudit>,
}

impl CallContext<'_> {
    /// The caller's account.
    pub fn account(&self) -> &str {
        self.caller.account_id()
    }

    /// Keeps what was decided for the audit record. The first permission a handler
    /// checks is its call's own (`iam:CreateUser` before `iam:TagUser`, `sts:AssumeRole`
    /// before `sts:TagSession`), so a later `Allow` does not replace an earlier one, while
    /// a denial always does: the record names the call, or what refused it.
    ///
    /// An `Allow` also stages the record the call will have if it succeeds, so that a
    /// write made next through [`CallContext::store`] commits it with itself; a denial
    /// withdraws it.
    /// Keeps the id of the just-in-time grant the call is made under, for its audit
    /// record (noted before the decision that stages the record).
    pub fn note_elevation(&self, request_id: &str) {
        if let Ok(mut f) = self.audit.lock() {
            f.elevation_id = Some(request_id.to_owned());
        }
    }

    pub fn note_decision(
        &self,
        action: &str,
        resource: &str,
        decision: &str,
        statement: Option<String>,
    ) {
        let facts = {
            let Ok(mut f) = self.audit.lock() else {
                self.pending.unstage();
                return;
            };
            if decision == "Allow" && f.decision.as_deref() == Some("Allow") {
                return;
            }
            f.action = action.to_owned();
            f.resource = resource.to_owned();
            f.decision = Some(decision.to_owned());
            f.statement = statement;
            f.clone()
        };
        if decision != "Allow" {
            self.pending.unstage();
            return;
        }
        let record = audit::AuditRecord::of_call(
            self.request_id,
            &self.caller_arn,
            self.access_key_id.as_deref(),
            &self.origin.source,
            action,
            &facts,
            None,
            self.state.clock.now(),
        );
        match serde_json::to_string(&record) {
            Ok(json) => self.pending.stage(json),
            // Then no write carries it and the call's record is appended on its own.
            Err(_) => self.pending.unstage(),
        }
    }
}

/// The id of the request being served: the one [`observe::middleware`] chose for it, or a
/// new one outside a request.
pub(crate) fn request_id() -> String {
    observe::current_request_id().unwrap_or_else(new_request_id)
}

/// A new request id (a random UUID-shaped string).
pub(crate) fn new_request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    resp
}

fn error_response(e: &ApiError, request_id: &str, ns: &str) -> Response {
    xml_response(
        e.status,
        xml::error(e.fault(), &e.code, &e.message, request_id, ns),
        request_id,
    )
}

/// The one entry point: every request, every action. Every call is audited, whether it
/// was allowed, denied, or refused before anyone was authenticated.
async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    listener: Option<axum::Extension<gateway::ListenerInfo>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rid = request_id();
    let origin = origin::Origin::of(
        &state.gateway.settings().trusted_proxies,
        peer,
        &headers,
        listener.map(|axum::Extension(l)| l),
    );
    let mut trail = Trail::default();
    let mut ns = xml::IAM_NS;
    let mut outcome = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => {
            let params = Params::parse(uri.query().unwrap_or(""), &body);
            let is_sts = params.get("Version") == Some("2011-06-15");
            if is_sts {
                ns = xml::STS_NS;
            }
            let req = Incoming {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: &body,
                params: &params,
                origin: &origin,
                rid: &rid,
                is_sts,
            };
            process(&state, &req, &mut trail).await
        }
        Err(e) if listen::is_body_timeout(&e) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            "The request body was not received in time.".to_owned(),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request body exceeds the limit of {MAX_BODY_BYTES} bytes."),
        )),
    };
    if let Err(e) = record_audit(&state, &rid, &origin.source, &trail, &outcome).await {
        outcome = Err(e);
    }
    let decision = trail
        .facts
        .decision
        .as_deref()
        .or(outcome.is_ok().then_some("Allow"));
    state.metrics.decision(&trail.action, decision);
    let face = if trail.action.starts_with("ai:") {
        observe::Face::AiQuery
    } else if ns == xml::STS_NS {
        observe::Face::Sts
    } else {
        observe::Face::Iam
    };
    let mut resp = match outcome {
        Ok(xml) => xml_response(StatusCode::OK, xml, &rid),
        Err(e) => error_response(&e, &rid, ns),
    };
    resp.extensions_mut().insert(face);
    resp
}

/// One request as received.
struct Incoming<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    params: &'a Params,
    origin: &'a origin::Origin,
    rid: &'a str,
    is_sts: bool,
}

/// What the audit record of a call says, gathered as the call proceeds.
#[derive(Debug, Default)]
struct Trail {
    /// The access key the request claimed (verified or not).
    access_key_id: Option<String>,
    /// The authenticated caller's ARN (empty until authenticated).
    principal: String,
    /// `iam:CreateUser`, ... as requested.
    action: String,
    /// What authorization decided.
    facts: audit::AuditFacts,
    /// The record staged for the call's write, and whether a write committed it.
    pending: Arc<PendingAudit>,
}

async fn process(
    state: &Arc<AppState>,
    req: &Incoming<'_>,
    trail: &mut Trail,
) -> Result<String, ApiError> {
    let query = req.uri.query().unwrap_or("");
    let action = req.params.action().unwrap_or_default().to_owned();
    let service = if req.is_sts {
        "sts"
    } else if gateway::control::is_action(&action) {
        "ai"
    } else {
        "iam"
    };
    // Just-in-time access actions are signed for the IAM endpoint and named `gatehouse:`.
    let is_access = !req.is_sts && access::is_action(&action);
    let is_signin = !req.is_sts && signin::is_action(&action);
    if !action.is_empty() {
        let prefix = if is_access || is_signin {
            "gatehouse"
        } else {
            service
        };
        trail.action = format!("{prefix}:{action}");
    }
    trail.access_key_id = identity::claimed_access_key(req.headers, query);
    // Authenticate first: an unauthenticated caller learns nothing, not even which actions
    // exist or whether its body parsed. The exception: actions whose own token is the proof
    // (web identity).
    let unsigned = req.is_sts && sts::is_unsigned(&action) && trail.access_key_id.is_none();
    let authenticated = if unsigned {
        identity::Authenticated {
            caller: Caller::Anonymous {
                account_id: state.config.account_id.clone(),
            },
            session: None,
        }
    } else {
        let fetched = fetch_secret(state, req.headers, query).await?;
        let (authenticated, sig) = identity::verify(
            req.method.as_str(),
            req.uri.path(),
            query,
            req.headers,
            req.body,
            fetched,
            &state.ring(),
            service,
            state.clock.now(),
        )?;
        // A presigned URL is a grant for the call in its URL: its parameters are the
        // URL's alone, so a body (which could add or override them) is refused.
        if sig.location == gatehouse_auth::sigv4::AuthLocation::Query && !req.body.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterCombination",
                "A presigned request takes its parameters from its URL only; send it without a body.",
            ));
        }
        if let Caller::User { access_key_id, .. } = &authenticated.caller {
            state
                .note_key_use(access_key_id, &sig.service, &sig.region)
                .await;
        }
        authenticated
    };
    let caller = authenticated.caller;
    let session = match authenticated.session {
        Some(claims) => Some(session::session_principal(state, claims).await?),
        None => None,
    };
    let principal = match (&caller, &session) {
        (_, Some(s)) => Some(Arc::clone(&s.principal)),
        (Caller::Root { .. } | Caller::Anonymous { .. }, None) => None,
        (
            Caller::User {
                account_id,
                user_name,
                ..
            },
            None,
        ) => Some(state.user_policies(account_id, user_name).await?),
        (Caller::AssumedRole { .. }, None) => return Err(ApiError::internal()),
    };
    trail.principal = match (&session, &principal) {
        (Some(s), _) => s.claims.principal_arn.clone(),
        (None, Some(p)) => p.info.principal_arn.clone(),
        (None, None) => caller.arn(String::new),
    };
    if std::str::from_utf8(req.body).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MalformedQueryString",
            "The request body is not valid UTF-8.",
        ));
    }
    if action.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "Missing Action",
        ));
    }
    let is_ai = !req.is_sts && gateway::control::is_action(&action);
    let known = if req.is_sts {
        sts::is_action(&action)
    } else {
        is_ai || is_access || is_signin || iam::is_action(&action) || federation::is_action(&action)
    };
    if !known {
        return Err(ApiError::invalid_action(&action));
    }
    if let Some(s) = &session {
        get_session_token_limits(&s.claims, req.is_sts, is_ai, &action)?;
    }
    // Every call of a session opened under a just-in-time grant is made under it.
    let facts = audit::AuditFacts {
        elevation_id: session
            .as_ref()
            .and_then(|s| s.elevation_id())
            .map(str::to_owned),
        ..audit::AuditFacts::default()
    };
    let ctx = CallContext {
        state,
        store: state.store.with_audit(Arc::clone(&trail.pending)),
        caller: &caller,
        caller_arn: trail.principal.clone(),
        principal,
        session,
        request_id: req.rid,
        origin: req.origin.clone(),
        access_key_id: trail.access_key_id.clone(),
        audit: std::sync::Mutex::new(facts),
        pending: Arc::clone(&trail.pending),
    };
    let result = if req.is_sts {
        sts::dispatch(&ctx, &action, req.params).await
    } else if federation::is_action(&action) {
        federation::dispatch(&ctx, &action, req.params)
            .await
            .map(|r| xml::response(&action, xml::IAM_NS, req.rid, r.as_deref()))
    } else if is_ai {
        gateway::control::dispatch(&ctx, &action, req.params).await
    } else if is_access {
        access::dispatch(&ctx, &action, req.params).await
    } else if is_signin {
        signin::dispatch(&ctx, &action, req.params).await
    } else {
        iam::dispatch(&ctx, &action, req.params).await
    };
    trail.facts = ctx.audit.lock().map(|f| f.clone()).unwrap_or_default();
    // MFA devices and OIDC providers are read from the store when used, never compiled
    // into a cache, so their writes need no invalidation here.
    let changes_policy = if is_ai {
        gateway::control::is_write(&action)
    } else if is_access {
        access::is_write(&action)
    } else if is_signin {
        // Assignments are not compiled into any principal's policies.
        false
    } else {
        iam::is_write(&action) && !federation::is_action(&action)
    };
    if result.is_ok() && !req.is_sts && changes_policy {
        // This node's own writes take effect at once; other nodes follow via the store.
        if let Ok(g) = state.store.policy_generation().await {
            state.cache.invalidate(g);
        }
    }
    result
}

/// What credentials from `GetSessionToken` may call, as in AWS: any STS action but
/// `AssumeRole` and `GetCallerIdentity` is refused, and IAM actions only when MFA was used
/// to get them — a stolen session token without MFA cannot mint access keys or change
/// policies. Role sessions and the `ai` actions are not limited here.
fn get_session_token_limits(
    claims: &gatehouse_auth::session::SessionClaims,
    is_sts: bool,
    is_ai: bool,
    action: &str,
) -> Result<(), ApiError> {
    if claims.role_arn.is_some() || is_ai {
        return Ok(());
    }
    if is_sts && !matches!(action, "AssumeRole" | "GetCallerIdentity") {
        return Err(ApiError::access_denied(format!(
            "Credentials from GetSessionToken cannot call sts:{action}; only sts:AssumeRole and sts:GetCallerIdentity."
        )));
    }
    if !is_sts && !claims.mfa_present {
        return Err(ApiError::access_denied(format!(
            "Credentials from GetSessionToken cannot call iam:{action} unless MFA was used to get them."
        )));
    }
    Ok(())
}

/// Makes sure the call is in the audit log, once. A call whose write committed its record
/// is done; any other call's record goes through the group commit, and the call answers
/// only once that record is durable. A call that cannot be audited fails (fail closed).
async fn record_audit(
    state: &AppState,
    request_id: &str,
    source: &origin::SourceAddress,
    trail: &Trail,
    result: &Result<String, ApiError>,
) -> Result<(), ApiError> {
    if let Some(appended) = trail.pending.appended() {
        if let Err(e) = result {
            // Every handler's write is its last fallible step; should one fail after its
            // write committed, the change and its record stand, and the log says so.
            tracing::error!(
                request_id,
                seq = appended.seq,
                code = e.code,
                "call failed after its write committed"
            );
        }
        return Ok(());
    }
    let record = audit::AuditRecord::of_call(
        request_id,
        &trail.principal,
        trail.access_key_id.as_deref(),
        source,
        &trail.action,
        &trail.facts,
        result.as_ref().err().map(|e| e.code.as_str()),
        state.clock.now(),
    );
    let json = serde_json::to_string(&record).map_err(|_| ApiError::internal())?;
    if let Err(e) = state.audit.append(&state.store, json).await {
        tracing::error!(error = %e, request_id, "audit append failed");
        return Err(ApiError::internal());
    }
    Ok(())
}

/// Finds the secret of the access key a request claims (before verifying anything).
pub(crate) async fn fetch_secret(
    state: &AppState,
    headers: &HeaderMap,
    query: &str,
) -> Result<Option<(String, Secret, Caller)>, ApiError> {
    let Some(key_id) = identity::claimed_access_key(headers, query) else {
        return Ok(None);
    };
    if key_id == state.config.root_access_key_id {
        return Ok(Some((
            key_id,
            state.config.root_secret.clone(),
            Caller::Root {
                account_id: state.config.account_id.clone(),
            },
        )));
    }
    match state.store.access_key_for_auth(&key_id).await {
        Ok((key, secret)) if key.status == gatehouse_store::AccessKeyStatus::Active => {
            let caller = Caller::User {
                account_id: key.account_id.clone(),
                user_name: key.user_name.clone(),
                access_key_id: key.access_key_id.clone(),
            };
            Ok(Some((key_id, secret, caller)))
        }
        Ok(_) | Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "access key lookup failed");
            Err(ApiError::internal())
        }
    }
}

/// Decides whether the caller may perform `action` on `resource`; denies are audited by the
/// caller of this function and returned as `AccessDenied` in AWS's words.
pub fn authorize(ctx: &CallContext<'_>, action: &str, resource: &str) -> Result<(), ApiError> {
    authorize_with(ctx, action, resource, &[])
}

/// [`authorize`] with the condition keys the request itself defines (`iam:PolicyARN`,
/// `aws:RequestTag/K`, `aws:ResourceTag/K`...; see `iam::conditions`).
pub fn authorize_with(
    ctx: &CallContext<'_>,
    action: &str,
    resource: &str,
    request_keys: &[(String, gatehouse_policy::ContextValue)],
) -> Result<(), ApiError> {
    let note = |decision: &str, statement: Option<String>| {
        ctx.note_decision(action, resource, decision, statement);
    };
    if matches!(ctx.caller, Caller::Anonymous { .. }) {
        note("ImplicitDeny", None);
        return Err(ApiError::access_denied(format!(
            "An unsigned request is not authorized to perform: {action} on resource: {resource}"
        )));
    }
    let Some(principal) = &ctx.principal else {
        // Root: the bootstrap credentials, not subject to policies.
        if !is_bootstrap(action) {
            tracing::warn!(
                action,
                request_id = ctx.request_id,
                "root credentials used beyond bootstrap; create an admin user and use it instead"
            );
        }
        note("Allow", Some("root".to_owned()));
        return Ok(());
    };
    let mut req = decision_request(ctx, principal, action, resource);
    for (k, v) in request_keys {
        req.context.insert(k.clone(), v.clone());
    }
    let session_policy = ctx
        .session
        .as_ref()
        .and_then(|s| s.session_policy.as_deref());
    // Standing policies, then any just-in-time grant active at this call's time.
    let elevated = principal.decide_at(&req, None, session_policy, ctx.state.clock.now());
    if let Some(grant) = elevated.elevation {
        ctx.note_elevation(&grant.request_id);
    }
    let decision = elevated.decision;
    note(
        decision.decision.as_str(),
        decision.statements.first().map(ToString::to_string),
    );
    if decision.decision == DecisionKind::Allow {
        return Ok(());
    }
    let why = match (decision.decision, decision.missing) {
        (DecisionKind::ExplicitDeny, _) => {
            let kind = decision
                .statements
                .first()
                .map_or("an identity-based policy".to_owned(), |s| {
                    s.policy_type.to_string()
                });
            format!("with an explicit deny in a {kind}")
        }
        (_, Some(m)) => format!("because {m}"),
        (_, None) => "because no identity-based policy allows the action".to_owned(),
    };
    Err(ApiError::access_denied(format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} {why}{}",
        ctx.caller_arn,
        encoded_denial(ctx.state, &req, &decision)
    )))
}

/// The ` Encoded authorization failure message: ...` suffix of an AccessDenied; empty if
/// sealing fails.
pub fn encoded_denial(
    state: &AppState,
    req: &Request,
    decision: &gatehouse_policy::Decision,
) -> String {
    match seal_denial(state, req, decision) {
        Some(m) => format!(" Encoded authorization failure message: {m}"),
        None => String::new(),
    }
}

/// A denial's details (matched statements, what was missing, the request context) in the
/// shape of AWS's decoded authorization messages, sealed with the session key ring so that
/// only `sts:DecodeAuthorizationMessage` (or an operator with the store) reveals them.
/// Control plane and gateway denials alike carry one.
pub fn seal_denial(
    state: &AppState,
    req: &Request,
    decision: &gatehouse_policy::Decision,
) -> Option<String> {
    let conditions: Vec<serde_json::Value> = req
        .context
        .iter()
        .map(|(k, v)| {
            let values: Vec<serde_json::Value> = v
                .as_slice()
                .iter()
                .map(|s| serde_json::json!({"value": s}))
                .collect();
            serde_json::json!({"key": k, "values": {"items": values}})
        })
        .collect();
    let message = serde_json::json!({
        "allowed": false,
        "explicitDeny": decision.decision == DecisionKind::ExplicitDeny,
        "decision": decision,
        "matchedStatements": {"items": decision
            .statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()},
        "failures": {"items": decision.missing.iter().map(ToString::to_string).collect::<Vec<_>>()},
        "context": {
            "principal": {"arn": req.principal},
            "action": req.action,
            "resource": req.resource,
            "conditions": {"items": conditions},
        },
    });
    gatehouse_auth::session::seal_message(&state.ring(), message.to_string().as_bytes()).ok()
}

/// The decision request for a call: the caller, the request's context (`aws:SourceIp`,
/// `aws:SourceVpce`, `aws:SecureTransport` from [`origin::Origin`], times), the session's
/// keys when there is one, then the keys derived from the principal.
pub fn decision_request(
    ctx: &CallContext<'_>,
    principal: &CompiledPrincipal,
    action: &str,
    resource: &str,
) -> Request {
    let now = ctx.state.clock.now();
    let mut req = Request::new(ctx.caller_arn.clone(), action, resource);
    ctx.origin.fill_context(&mut req.context);
    req.context.insert("aws:CurrentTime", now.to_rfc3339());
    req.context
        .insert("aws:EpochTime", now.timestamp().to_string());
    if let Some(s) = &ctx.session {
        s.fill_context(&mut req, now);
    }
    principal.fill_context(&mut req);
    req
}

/// Actions root may use without a warning: those that make the first administrators (a
/// user or group, its policies, its access key). Everything else should be done by them.
fn is_bootstrap(action: &str) -> bool {
    const BOOTSTRAP: &[&str] = &[
        "CreateUser",
        "CreateGroup",
        "AddUserToGroup",
        "CreatePolicy",
        "AttachUserPolicy",
        "AttachGroupPolicy",
        "PutUserPolicy",
        "PutGroupPolicy",
        "CreateAccessKey",
        "TagUser",
    ];
    let name = action.strip_prefix("iam:").unwrap_or(action);
    BOOTSTRAP.contains(&name)
}
