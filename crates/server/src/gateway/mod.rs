//! The AI gateway: an OpenAI-compatible enforcement point.
//!
//! Every request takes one path ([`invoke::run`]): read the body (bounded) → authenticate
//! ([`auth`]) → parse → find the deployment → map to an `ai:` action and resource ARN →
//! gather the context (`ai:ModelId`, `ai:MaxTokens`, `ai:Stream`, `ai:Provider`,
//! `aws:SourceIp`, `aws:SourceVpce`, `aws:SecureTransport`, `aws:CurrentTime`, principal
//! tags) → ask the engine → guardrails → budgets → forward with the provider key
//! ([`proxy`]) → stream the answer back → audit. Any error before forwarding answers in
//! OpenAI's error shape and forwards nothing.
//!
//! Deployments (with opened provider keys and compiled guardrails) are held in memory for
//! one store generation, like compiled policies, so the request path reads no database.

mod answer;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod config;
pub mod control;
pub mod error;
pub mod guardrail;
mod invoke;
mod metering;
// Public for the fuzz target in `fuzz/` (the request checks and the token bound), not an API.
#[doc(hidden)]
pub mod openai;
mod proxy;
pub mod tls;
pub mod upstream;

use crate::AppState;
use audit::AuditQueue;
use auth::{GatewayCaller, KeyCache};
use budget::Budgets;
pub use config::{GatewaySettings, ListenerInfo};
use error::GatewayError;
use gatehouse_policy::{Decision, DecisionKind, Request};
use gatehouse_store::{Deployment, Secret, Store, StoreError};
use guardrail::Guardrail;
#[doc(hidden)]
pub use invoke::Endpoint;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A deployment ready for the request path.
#[derive(Debug)]
pub struct Route {
    /// What the store holds.
    pub deployment: Deployment,
    /// The provider key, opened.
    pub api_key: Option<Secret>,
    /// Compiled guardrail, when set.
    pub guardrail: Option<Guardrail>,
}

impl Route {
    /// What takes this deployment's provider key out of its answers.
    fn redactor(&self) -> answer::Redactor {
        answer::Redactor::new(self.api_key.as_ref())
    }
}

#[derive(Debug, Default)]
struct RouteTable {
    generation: Option<i64>,
    routes: HashMap<(String, String), Arc<Route>>,
}

/// The gateway's part of the server state.
#[derive(Debug)]
pub struct Gateway {
    settings: RwLock<Arc<GatewaySettings>>,
    routes: RwLock<Arc<RouteTable>>,
    reload: tokio::sync::Mutex<()>,
    pub(crate) keys: KeyCache,
    budgets: Budgets,
    pub(crate) audit: AuditQueue,
    /// `None` when the guarded client could not be built: every upstream call is then
    /// refused, never sent through a client without the guards.
    client: Option<reqwest::Client>,
    /// Where deployments may point (also the client's resolver).
    pub upstream: Arc<upstream::UpstreamRules>,
}

impl Default for Gateway {
    fn default() -> Self {
        let rules = Arc::new(upstream::UpstreamRules::default());
        let client = reqwest::Client::builder()
            // A redirect would take the provider key (and the prompt) somewhere unchecked.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(upstream::GuardedResolver(Arc::clone(&rules))))
            // Never through HTTP(S)_PROXY/ALL_PROXY from the environment: a proxy would get
            // the prompt and the provider key, and would resolve the deployment's name
            // itself, past the resolver's refusals (metadata, this host, own listeners).
            .no_proxy()
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| tracing::error!(error = %e, "the upstream HTTP client could not be built; model calls will be refused"))
            .ok();
        Gateway {
            settings: RwLock::new(Arc::new(GatewaySettings::default())),
            routes: RwLock::new(Arc::new(RouteTable::default())),
            reload: tokio::sync::Mutex::new(()),
            keys: KeyCache::default(),
            budgets: Budgets::default(),
            audit: AuditQueue::default(),
            client,
            upstream: rules,
        }
    }
}

impl Gateway {
    /// Replaces the settings (at start, from the config file).
    pub fn configure(&self, settings: GatewaySettings) {
        self.upstream.set_allowed(settings.upstream_allow.clone());
        if let Ok(mut s) = self.settings.write() {
            *s = Arc::new(settings);
        }
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<GatewaySettings> {
        self.settings
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    /// Loads the deployment table for the current generation if it is not (readiness).
    pub(crate) async fn warm(&self, state: &AppState) -> Result<(), GatewayError> {
        self.table(state).await.map(|_| ())
    }

    /// The deployment of `model` in `account`, from the table of the current generation.
    async fn route(
        &self,
        state: &AppState,
        account: &str,
        model: &str,
    ) -> Result<Option<Arc<Route>>, GatewayError> {
        let table = self.table(state).await?;
        Ok(table
            .routes
            .get(&(account.to_owned(), model.to_owned()))
            .cloned())
    }

    /// Every deployment of `account`, by model id.
    async fn routes_of(
        &self,
        state: &AppState,
        account: &str,
    ) -> Result<Vec<Arc<Route>>, GatewayError> {
        let table = self.table(state).await?;
        let mut v: Vec<_> = table
            .routes
            .iter()
            .filter(|((a, _), _)| a == account)
            .map(|(_, r)| Arc::clone(r))
            .collect();
        v.sort_by(|a, b| a.deployment.model_id.cmp(&b.deployment.model_id));
        Ok(v)
    }

    async fn table(&self, state: &AppState) -> Result<Arc<RouteTable>, GatewayError> {
        let generation = state.cache.generation();
        let current = self.routes.read().map(|t| Arc::clone(&t)).ok();
        if let Some(t) = &current
            && t.generation == Some(generation)
        {
            return Ok(Arc::clone(t));
        }
        // One reload at a time; others wait and then find it done.
        let _guard = self.reload.lock().await;
        if let Ok(t) = self.routes.read()
            && t.generation == Some(generation)
        {
            return Ok(Arc::clone(&t));
        }
        let table = Arc::new(load_routes(&state.store, generation).await?);
        if let Ok(mut t) = self.routes.write() {
            *t = Arc::clone(&table);
        }
        Ok(table)
    }
}

async fn load_routes(store: &Store, generation: i64) -> Result<RouteTable, GatewayError> {
    let mut routes = HashMap::new();
    for d in store.list_deployments().await? {
        let api_key = if d.has_key {
            store.deployment_key(&d.account_id, &d.model_id).await?
        } else {
            None
        };
        let guardrail = match &d.guardrail {
            Some(g) => match Guardrail::parse(g) {
                Ok(g) => Some(g),
                Err(e) => {
                    // Fail closed: a model whose guardrail cannot be read is not served.
                    tracing::error!(model = %d.model_id, error = %e, "stored guardrail unreadable; model disabled");
                    continue;
                }
            },
            None => None,
        };
        routes.insert(
            (d.account_id.clone(), d.model_id.clone()),
            Arc::new(Route {
                deployment: d,
                api_key,
                guardrail,
            }),
        );
    }
    Ok(RouteTable {
        generation: Some(generation),
        routes,
    })
}

/// The facts of one request the policy sees besides the caller and the model.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// Source address and listener, by the rule every face shares.
    pub origin: crate::origin::Origin,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Decides `action` on `resource` for the caller with the request's context and
/// `extra` keys. Root is allowed (it is not subject to policy, as in AWS).
pub(crate) fn decide(
    caller: &GatewayCaller,
    action: &str,
    resource: &str,
    facts: &Facts,
    extra: &[(&str, String)],
) -> (Decision, Request) {
    let keys: Vec<(String, gatehouse_policy::ContextValue)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_str().into()))
        .collect();
    decide_with(caller, action, resource, facts, &keys, None)
}

/// [`decide`] with context values of any shape; with `open_prefix`, whether the request is
/// allowed for some values of the keys starting with it (`Evaluation::decide_for_some`).
pub(crate) fn decide_with(
    caller: &GatewayCaller,
    action: &str,
    resource: &str,
    facts: &Facts,
    extra: &[(String, gatehouse_policy::ContextValue)],
    open_prefix: Option<&str>,
) -> (Decision, Request) {
    let mut req = Request::new(caller.arn.clone(), action, resource);
    let c = &mut req.context;
    facts.origin.fill_context(c);
    c.insert(
        "aws:CurrentTime",
        facts.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    c.insert("aws:EpochTime", facts.now.timestamp().to_string());
    for (k, v) in &caller.context {
        c.insert(k.as_str(), v.as_str());
    }
    for (k, v) in extra {
        c.insert(k.as_str(), v.clone());
    }
    let decision = match &caller.principal {
        Some(p) => {
            p.fill_context(&mut req);
            // Standing policies, then any just-in-time grant active now (whose keys the
            // returned request then carries).
            let d = p.decide_at_for_some(
                &req,
                None,
                caller.session_policy.as_deref(),
                facts.now,
                open_prefix,
            );
            if let Some(elevated) = d.request {
                req = elevated;
            }
            d.decision
        }
        None => Decision {
            decision: DecisionKind::Allow,
            statements: Vec::new(),
            missing: None,
        },
    };
    (decision, req)
}

/// The record step of every gateway call: counts its decision (and a budget refusal) for
/// `/metrics` and queues its audit record; `false` when the queue is full.
pub(crate) fn record(state: &AppState, record: &audit::GatewayAuditRecord) -> bool {
    state
        .metrics
        .decision(&record.action, Some(record.decision.as_str()));
    // The code of `GatewayError::rate_limited`, which only a budget raises.
    if record.error_code.as_deref() == Some("rate_limit_exceeded") {
        state.metrics.budget_refused();
    }
    // A call allowed by a just-in-time grant names it in its deciding statement; every
    // face's record gets the grant's id as its own field from there.
    let granted = record
        .elevation_id
        .is_none()
        .then(|| {
            record
                .statement
                .as_deref()
                .and_then(crate::authz::elevation_of_statement)
        })
        .flatten();
    match granted {
        Some(id) => {
            let mut with_id = record.clone();
            with_id.elevation_id = Some(id.to_owned());
            state.gateway.audit.push(&state.store, &with_id)
        }
        None => state.gateway.audit.push(&state.store, record),
    }
}

/// Authenticates a request to an operations endpoint (`/metrics`) as the gateway does,
/// decides `action` on `*` (the action names no resource), and audits the decision like
/// any gateway call. `Err` is the status to answer: 401, 403, or 503 when the audit queue
/// is full (fail closed).
pub(crate) async fn decide_operation(
    state: &AppState,
    peer: std::net::SocketAddr,
    listener: Option<ListenerInfo>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    action: &str,
) -> Result<(), axum::http::StatusCode> {
    use axum::http::StatusCode;
    let started = std::time::Instant::now();
    let origin = crate::origin::Origin::of(
        &state.gateway.settings().trusted_proxies,
        peer,
        headers,
        listener,
    );
    let now = chrono::Utc::now();
    let mut rec = audit::GatewayAuditRecord {
        time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        request_id: crate::request_id(),
        source_ip: origin.source.audit_ip(),
        source_unknown_via: origin.source.audit_via(),
        listener: origin.listener.name.clone(),
        action: action.to_owned(),
        resource: "*".to_owned(),
        decision: "Error".into(),
        ..audit::GatewayAuditRecord::default()
    };
    let authenticated = auth::authenticate(
        state,
        method.as_str(),
        uri.path(),
        uri.query().unwrap_or(""),
        headers,
        Some(b""),
    )
    .await;
    let outcome = match authenticated {
        Err(e) => Err((StatusCode::UNAUTHORIZED, e.code)),
        Ok(caller) => {
            rec.principal = caller.arn.clone();
            let (d, _) = decide(&caller, action, "*", &Facts { origin, now }, &[]);
            rec.decision = d.decision.as_str().to_owned();
            rec.statement = d.statements.first().map(ToString::to_string);
            if d.decision == DecisionKind::Allow {
                Ok(())
            } else {
                Err((StatusCode::FORBIDDEN, "access_denied"))
            }
        }
    };
    rec.status = match &outcome {
        Ok(()) => 200,
        Err((s, _)) => s.as_u16(),
    };
    rec.error_code = outcome.as_ref().err().map(|(_, code)| (*code).to_owned());
    rec.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !record(state, &rec) {
        tracing::error!(request_id = %rec.request_id, "audit queue full; operation refused");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    outcome.map_err(|(s, _)| s)
}

/// Opens an encoded authorization message (from a control-plane or gateway denial) into
/// its JSON text, with the session key ring kept in the store.
pub async fn decode_authorization_message(
    store: &Store,
    encoded: &str,
) -> Result<String, DecodeError> {
    let ring = crate::session::load_or_create_ring(store)
        .await
        .map_err(|e| DecodeError::Ring(e.to_string()))?;
    let plain = gatehouse_auth::session::open_message(&ring, encoded)
        .map_err(|_| DecodeError::NotAMessage)?;
    String::from_utf8(plain).map_err(|_| DecodeError::NotAMessage)
}

/// Why an authorization message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The store's key ring could not be read.
    #[error("cannot read the session key ring: {0}")]
    Ring(String),
    /// Not a message this Gatehouse sealed (or its key is gone).
    #[error("not an authorization message this Gatehouse encoded")]
    NotAMessage,
}

/// Creates or updates the deployments the config file lists (in the default account),
/// reading provider keys from the environment variables it names.
pub async fn load_configured_deployments(state: &AppState) -> Result<usize, String> {
    let settings = state.gateway.settings();
    for d in &settings.deployments {
        state
            .gateway
            .upstream
            .check_url(&d.base_url)
            .await
            .map_err(|e| format!("deployment {}: base_url: {e}", d.model))?;
        let api_key = match &d.api_key_env {
            Some(var) => Some(Secret::new(std::env::var(var).map_err(|_| {
                format!(
                    "deployment {}: environment variable {var} is not set",
                    d.model
                )
            })?)),
            None => None,
        };
        let nd = gatehouse_store::NewDeployment {
            model_id: d.model.clone(),
            provider: d.provider.clone(),
            base_url: d.base_url.clone(),
            upstream_model: d.upstream_model.clone(),
            api_key,
            log_invocations: d.log_invocations,
            deprecated_on: d.deprecated_on.clone(),
            clear_api_key: false,
        };
        let account = &state.config.account_id;
        let exists = state.store.get_deployment(account, &d.model).await.is_ok();
        let put = match state.store.put_deployment(account, &nd, !exists).await {
            // Another node sharing the store created it since we looked (nodes started
            // together): ours is an update, as it would have been a moment later.
            Err(StoreError::EntityAlreadyExists { .. }) if !exists => {
                state.store.put_deployment(account, &nd, false).await
            }
            other => other,
        };
        put.map_err(|e| format!("deployment {}: {e}", d.model))?;
    }
    Ok(settings.deployments.len())
}

/// Starts the task that makes budgets global ([`budget::Budgets::sync`] every
/// [`budget::SYNC_INTERVAL`]), when any budget is configured. It ends with the state.
pub fn spawn_budget_sync(state: &Arc<AppState>) {
    if state.gateway.settings().budgets.is_empty() {
        return;
    }
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(budget::SYNC_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { return };
            let now = state.clock.now().timestamp_millis();
            match state.gateway.budgets.sync(&state.store, now).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("budget counts shared with the other nodes again");
                }
                Ok(()) => {}
                // Logged once per outage, not every interval.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot share budget counts; enforcing with the last known totals");
                }
                Err(_) => {}
            }
        }
    });
}

/// The gateway's routes (`/v1/...`), merged into the server's router. Everything under
/// `/v1` answers in OpenAI's error shape: a method a route does not take is a 405 with
/// `Allow`, an unknown path a 404 — never the Query API's XML.
pub fn routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::{any, get, post};
    use invoke::Endpoint;
    let post_only = |r: axum::routing::MethodRouter<Arc<AppState>>| r.fallback(not_allowed);
    axum::Router::new()
        .route(
            "/v1/chat/completions",
            post_only(invoke::model_call(Endpoint::Chat)),
        )
        .route(
            "/v1/completions",
            post_only(invoke::model_call(Endpoint::Completions)),
        )
        .route(
            "/v1/embeddings",
            post_only(invoke::model_call(Endpoint::Embeddings)),
        )
        .route("/v1/models", get(invoke::list_models).fallback(not_allowed))
        .route(
            "/v1/models/{*model}",
            get(invoke::get_model).fallback(not_allowed),
        )
        .route(
            "/v1/fine_tuning/jobs",
            post(invoke::create_job)
                .get(invoke::list_jobs)
                .fallback(not_allowed),
        )
        .route(
            "/v1/fine_tuning/jobs/{id}",
            get(invoke::get_job).fallback(not_allowed),
        )
        .route(
            "/v1/fine_tuning/jobs/{id}/cancel",
            post(invoke::cancel_job).fallback(not_allowed),
        )
        .route(
            "/v1/invocation_logs/{*model}",
            get(invoke::read_logs).fallback(not_allowed),
        )
        .route("/v1", any(unknown_path))
        .route("/v1/", any(unknown_path))
        .route("/v1/{*rest}", any(unknown_path))
}

/// 405 in OpenAI's shape (axum adds the `Allow` header).
async fn not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    let mut e = GatewayError::invalid_request(
        "method_not_allowed",
        format!("{method} is not allowed on {}.", uri.path()),
    );
    e.status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    e.response(&crate::request_id())
}

/// 404 in OpenAI's shape for any other path under `/v1`.
async fn unknown_path(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    GatewayError::not_found(
        "unknown_url",
        format!("Unrecognized request URL ({method} {}).", uri.path()),
    )
    .response(&crate::request_id())
}

/// A bound extra listener, plain or TLS.
pub enum Bound {
    /// Plain TCP.
    Plain(tokio::net::TcpListener),
    /// TLS over TCP.
    Tls(tokio::net::TcpListener, tokio_rustls::TlsAcceptor),
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Plain(t) => f.debug_tuple("Plain").field(t).finish(),
            Bound::Tls(t, _) => f.debug_tuple("Tls").field(t).finish(),
        }
    }
}

/// Binds the extra listeners the settings name (reading TLS certificates and keys); each
/// is then served by [`serve_listener`].
pub async fn bind_listeners(
    settings: &GatewaySettings,
) -> Result<Vec<(ListenerInfo, Bound)>, crate::ServeError> {
    let mut out = Vec::new();
    for l in &settings.listeners {
        let fail = |msg: String| crate::ServeError::Listen {
            addr: l.listen,
            source: std::io::Error::other(format!("listener {}: {msg}", l.name)),
        };
        let acceptor = match (&l.tls_cert, &l.tls_key) {
            (Some(c), Some(k)) => Some(tls::acceptor(c, k).map_err(fail)?),
            _ => None,
        };
        let tcp = tokio::net::TcpListener::bind(l.listen)
            .await
            .map_err(|source| crate::ServeError::Listen {
                addr: l.listen,
                source,
            })?;
        let info = ListenerInfo {
            name: l.name.clone(),
            tls: acceptor.is_some(),
        };
        out.push((
            info,
            match acceptor {
                Some(a) => Bound::Tls(tcp, a),
                None => Bound::Plain(tcp),
            },
        ));
    }
    Ok(out)
}

/// Serves the whole API on an extra named listener until `shutdown` resolves.
pub async fn serve_listener(
    state: Arc<AppState>,
    info: ListenerInfo,
    listener: Bound,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let limits = state.gateway.settings().limits(Some(&info.name));
    let tcp = match &listener {
        Bound::Plain(t) | Bound::Tls(t, _) => t,
    };
    if let Ok(a) = tcp.local_addr() {
        state.gateway.upstream.add_own(a);
    }
    let app = crate::router(state).layer(axum::Extension(info));
    match listener {
        Bound::Plain(tcp) => {
            crate::listen::serve(tcp, app, limits, crate::refused_head, shutdown).await
        }
        Bound::Tls(tcp, acceptor) => {
            let listener = tls::TlsListener::new(tcp, acceptor)?;
            crate::listen::serve(listener, app, limits, crate::refused_head, shutdown).await
        }
    }
}
