//! Gatehouse's HTTP face for the control plane: the AWS IAM and STS Query APIs.
//!
//! Every request goes through one pipeline ([`handle`]): read the body (bounded), parse the
//! Query parameters, authenticate the SigV4 signature, authorize the call with the policy
//! engine (the caller's identity, group and boundary policies and the account's guardrails,
//! with `iam:` actions and Gatehouse ARNs), run the action, and append an audit record —
//! allowed or denied. Errors leave in AWS's XML error shape and change nothing stored.

pub mod audit;
pub mod authz;
pub mod bootstrap;
pub mod error;
pub mod gateway;
mod iam;
pub mod identity;
pub mod query;
mod sts;
pub mod xml;

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
use gatehouse_store::Store;
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
    /// The AI gateway's routes, budgets and audit queue.
    pub gateway: gateway::Gateway,
}

impl AppState {
    /// New state over an opened store.
    pub fn new(store: Store, config: ServerConfig) -> Arc<AppState> {
        Arc::new(AppState {
            store,
            config,
            cache: PolicyCache::default(),
            gateway: gateway::Gateway::default(),
        })
    }

    /// The compiled policies of a user (cached per store generation).
    pub async fn user_policies(
        &self,
        account_id: &str,
        user_name: &str,
    ) -> Result<Arc<CompiledPrincipal>, ApiError> {
        let arn_key = format!("{account_id}/user/{user_name}");
        if let Some(p) = self.cache.get(&arn_key) {
            return Ok(p);
        }
        let info = self
            .store
            .load_principal_policies(account_id, gatehouse_store::PrincipalRef::User(user_name))
            .await?;
        let compiled = CompiledPrincipal::compile(info).map_err(|e| {
            tracing::error!(user = user_name, error = %e, "stored policy does not compile; denying");
            ApiError::access_denied("The caller's policies could not be evaluated.")
        })?;
        let compiled = Arc::new(compiled);
        self.cache.put(arn_key, compiled.clone());
        Ok(compiled)
    }

    /// Watches the store for changes made by any node and drops stale compiled policies.
    pub fn spawn_invalidation(self: &Arc<AppState>) {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let mut sub = state.store.subscribe().await.ok();
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
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| ServeError::Listen {
        addr: opts.listen,
        source,
    })?;
    let key = gatehouse_store::MasterKey::load_or_create(&opts.data_dir)?;
    let store_opts = match &opts.database_url {
        Some(url) => gatehouse_store::StoreOptions::postgres(url.clone()),
        None => gatehouse_store::StoreOptions::sqlite(opts.data_dir.clone()),
    };
    let store = Store::open(&store_opts, key).await?;
    let account = match (&opts.account_id, store.default_account().await) {
        (_, Ok(a)) => a,
        (Some(id), Err(_)) => store.ensure_default_account(id, "default").await?,
        (None, Err(_)) => store.create_account(None, "default").await?,
    };
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
    let state = AppState::new(store, config);
    state.spawn_invalidation();
    Ok((state, listener, root))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The router: the OpenAI-compatible gateway at `/v1/`, the IAM, STS and `ai` Query APIs
/// at `/`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(gateway::routes())
        .fallback(handle)
        .with_state(state)
}

/// Everything a handler knows about the call it serves.
#[derive(Debug)]
pub struct CallContext<'a> {
    /// Server state.
    pub state: &'a AppState,
    /// The authenticated caller.
    pub caller: &'a Caller,
    /// The caller's ARN.
    pub caller_arn: String,
    /// The caller's compiled policies (`None` for root).
    pub principal: Option<Arc<CompiledPrincipal>>,
    /// The request id.
    pub request_id: &'a str,
    /// The peer address.
    pub source_ip: String,
    /// What authorization decided (for the audit record).
    pub audit: std::sync::Mutex<audit::AuditFacts>,
}

impl CallContext<'_> {
    /// The caller's account.
    pub fn account(&self) -> &str {
        self.caller.account_id()
    }
}

pub(crate) fn request_id() -> String {
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

/// The one entry point: every request, every action.
async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rid = request_id();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("Request body exceeds the limit of {MAX_BODY_BYTES} bytes."),
            );
            return error_response(&e, &rid, xml::IAM_NS);
        }
    };
    let query = uri.query().unwrap_or("");
    let params = Params::parse(query, &body);
    let is_sts = params.get("Version") == Some("2011-06-15");
    let ns = if is_sts { xml::STS_NS } else { xml::IAM_NS };
    let outcome = process(
        &state, &method, &uri, &headers, &body, &params, peer, &rid, is_sts,
    )
    .await;
    match outcome {
        Ok(xml) => xml_response(StatusCode::OK, xml, &rid),
        Err(e) => error_response(&e, &rid, ns),
    }
}

#[allow(clippy::too_many_arguments)]
async fn process(
    state: &Arc<AppState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    params: &Params,
    peer: SocketAddr,
    rid: &str,
    is_sts: bool,
) -> Result<String, ApiError> {
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MalformedQueryString",
            "The request body is not valid UTF-8.",
        ));
    }
    let query = uri.query().unwrap_or("");
    let action = params
        .action()
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "MissingAction", "Missing Action"))?
        .to_owned();
    let is_ai = !is_sts && gateway::control::is_action(&action);
    let known = if is_sts {
        sts::is_action(&action)
    } else {
        is_ai || iam::is_action(&action)
    };
    // Authenticate first: an unauthenticated caller learns nothing, not even which actions exist.
    let fetched = fetch_secret(state, headers, query).await?;
    let caller = identity::verify(method.as_str(), uri.path(), query, headers, body, fetched)?;
    if !known {
        return Err(ApiError::invalid_action(&action));
    }
    let principal = match &caller {
        Caller::Root { .. } => None,
        Caller::User {
            account_id,
            user_name,
            ..
        } => Some(state.user_policies(account_id, user_name).await?),
    };
    let caller_arn = match &principal {
        Some(p) => p.info.principal_arn.clone(),
        None => caller.arn(String::new),
    };
    let ctx = CallContext {
        state,
        caller: &caller,
        caller_arn,
        principal,
        request_id: rid,
        source_ip: peer.ip().to_string(),
        audit: std::sync::Mutex::new(audit::AuditFacts::default()),
    };
    let result = if is_sts {
        sts::dispatch(&ctx, &action, params).await
    } else if is_ai {
        gateway::control::dispatch(&ctx, &action, params).await
    } else {
        iam::dispatch(&ctx, &action, params).await
    };
    record_audit(&ctx, &action, is_sts, &result).await?;
    let is_write = if is_ai {
        gateway::control::is_write(&action)
    } else {
        iam::is_write(&action)
    };
    if result.is_ok() && !is_sts && is_write {
        // This node's own writes take effect at once; other nodes follow via the store.
        if let Ok(g) = state.store.policy_generation().await {
            state.cache.invalidate(g);
        }
    }
    result
}

/// Appends the call to the audit log. A call that cannot be audited fails (fail closed).
async fn record_audit(
    ctx: &CallContext<'_>,
    action: &str,
    is_sts: bool,
    result: &Result<String, ApiError>,
) -> Result<(), ApiError> {
    let facts = ctx.audit.lock().map(|f| f.clone()).unwrap_or_default();
    let service = if is_sts {
        "sts"
    } else if gateway::control::is_action(action) {
        "ai"
    } else {
        "iam"
    };
    let record = audit::AuditRecord {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        request_id: ctx.request_id.to_owned(),
        principal: ctx.caller_arn.clone(),
        action: if facts.action.is_empty() {
            format!("{service}:{action}")
        } else {
            facts.action
        },
        resource: facts.resource,
        decision: match (&facts.decision, result) {
            (Some(d), _) => d.clone(),
            (None, Ok(_)) => "Allow".to_owned(),
            (None, Err(_)) => "Error".to_owned(),
        },
        statement: facts.statement,
        source_ip: ctx.source_ip.clone(),
        error_code: result.as_ref().err().map(|e| e.code.clone()),
    };
    let json = serde_json::to_string(&record).map_err(|_| ApiError::internal())?;
    if let Err(e) = ctx.state.store.append_audit(&json).await {
        tracing::error!(error = %e, request_id = ctx.request_id, "audit append failed");
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
            Ok(Some((
                key_id,
                Secret::new(secret.expose_secret().as_bytes().to_vec()),
                caller,
            )))
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
    let note = |decision: &str, statement: Option<String>| {
        if let Ok(mut f) = ctx.audit.lock() {
            f.action = action.to_owned();
            f.resource = resource.to_owned();
            f.decision = Some(decision.to_owned());
            f.statement = statement;
        }
    };
    let Some(principal) = &ctx.principal else {
        // Root: the bootstrap credentials, not subject to policies.
        if !is_bootstrap(action) {
            tracing::warn!(
                action,
                "root credentials used beyond bootstrap; create an admin user and use it instead"
            );
        }
        note("Allow", Some("root".to_owned()));
        return Ok(());
    };
    let mut req = Request::new(ctx.caller_arn.clone(), action, resource);
    req.context.insert("aws:SourceIp", ctx.source_ip.as_str());
    req.context.insert("aws:SecureTransport", "false");
    req.context
        .insert("aws:CurrentTime", chrono::Utc::now().to_rfc3339());
    req.context
        .insert("aws:EpochTime", chrono::Utc::now().timestamp().to_string());
    principal.fill_context(&mut req);
    let decision = principal.decide(&req);
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
        "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
        ctx.caller_arn
    )))
}

/// Actions root may use without a warning: creating the first administrators.
fn is_bootstrap(action: &str) -> bool {
    let name = action.strip_prefix("iam:").unwrap_or(action);
    ["Create", "Attach", "Put", "Add", "Get", "List", "Tag"]
        .iter()
        .any(|p| name.starts_with(p))
}
