//! Gatehouse's HTTP face for the control plane: the AWS IAM and STS Query APIs.
//!
//! Every request goes through one pipeline ([`handle`]): read the body (bounded), parse the
//! Query parameters, authenticate the SigV4 signature, authorize the call with the policy
//! engine (the caller's identity, group and boundary policies and the account's guardrails,
//! with `iam:` actions and Gatehouse ARNs), run the action, and append an audit record —
//! allowed or denied. Errors leave in AWS's XML error shape and change nothing stored.

pub mod audit;
pub mod authz;
pub mod error;
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
}

impl AppState {
    /// New state over an opened store.
    pub fn new(store: Store, config: ServerConfig) -> Arc<AppState> {
        Arc::new(AppState {
            store,
            config,
            cache: PolicyCache::default(),
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
                        let next = tokio::time::timeout(std::time::Duration::from_millis(500), s.next()).await;
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

/// The router: the IAM and STS Query APIs at `/`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
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
}

impl CallContext<'_> {
    /// The caller's account.
    pub fn account(&self) -> &str {
        self.caller.account_id()
    }
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
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
    let outcome = process(&state, &method, &uri, &headers, &body, &params, peer, &rid, is_sts).await;
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
    let known = if is_sts {
        sts::is_action(&action)
    } else {
        iam::is_action(&action)
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
    };
    let result = if is_sts {
        sts::dispatch(&ctx, &action, params).await
    } else {
        iam::dispatch(&ctx, &action, params).await
    };
    if result.is_ok() && !is_sts && iam::is_write(&action) {
        // This node's own writes take effect at once; other nodes follow via the store.
        if let Ok(g) = state.store.policy_generation().await {
            state.cache.invalidate(g);
        }
    }
    result
}

/// Finds the secret of the access key a request claims (before verifying anything).
async fn fetch_secret(
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
            Ok(Some((key_id, Secret::new(secret.expose_secret().as_bytes().to_vec()), caller)))
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
    let Some(principal) = &ctx.principal else {
        return Ok(()); // root: bootstrap credentials, not subject to policies
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
    if decision.decision == DecisionKind::Allow {
        return Ok(());
    }
    let why = match decision.decision {
        DecisionKind::ExplicitDeny => "with an explicit deny in",
        _ => "because no",
    };
    let kind = match decision.decision {
        DecisionKind::ExplicitDeny => decision
            .statements
            .first()
            .map_or("an identity-based policy".to_owned(), |s| format!("a {}", s.policy_type)),
        _ => decision
            .missing
            .map_or("identity-based policy allows".to_owned(), |m| m.to_string()),
    };
    Err(ApiError::access_denied(format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} {why} {kind}",
        ctx.caller_arn
    )))
}
