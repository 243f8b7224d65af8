//! The `/v1/...` handlers: one path for model calls ([`run`]) and the listing and
//! fine-tuning endpoints, all authenticated, decided, audited, and answered in OpenAI's
//! shapes.

use super::audit::GatewayAuditRecord;
use super::auth::{self, GatewayCaller};
use super::budget;
use super::control::ai_arn;
use super::error::GatewayError;
use super::metering::{self, Metering};
use super::openai;
use super::proxy::{self, Metered};
use super::{Facts, ListenerInfo, Route, decide};
use crate::AppState;
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gatehouse_policy::{Decision, DecisionKind, Request};
use gatehouse_store::Secret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest upstream answer read whole (non-streamed).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Which model endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completions,
    /// `/v1/embeddings`.
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }
}

/// What every handler starts with.
struct Call {
    state: Arc<AppState>,
    rid: String,
    started: Instant,
    facts: Facts,
    record: GatewayAuditRecord,
}

type Listener = Option<Extension<ListenerInfo>>;

impl Call {
    fn new(
        state: Arc<AppState>,
        peer: SocketAddr,
        listener: Listener,
        headers: &HeaderMap,
    ) -> Call {
        let origin = crate::origin::Origin::of(
            &state.gateway.settings().trusted_proxies,
            peer,
            headers,
            listener.map(|Extension(l)| l),
        );
        let now = state.clock.now();
        let rid = crate::request_id();
        let record = GatewayAuditRecord {
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            request_id: rid.clone(),
            source_ip: origin.source.audit_ip(),
            source_unknown_via: origin.source.audit_via(),
            listener: origin.listener.name.clone(),
            decision: "Error".into(),
            ..GatewayAuditRecord::default()
        };
        Call {
            state,
            rid,
            started: Instant::now(),
            facts: Facts { origin, now },
            record,
        }
    }

    fn region(&self) -> &str {
        &self.state.config.region
    }

    async fn authenticate(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<GatewayCaller, GatewayError> {
        let c = auth::authenticate(
            &self.state,
            method.as_str(),
            uri.path(),
            uri.query().unwrap_or(""),
            headers,
            body,
        )
        .await?;
        self.record.principal = c.arn.clone();
        self.record.elevation_id = c.elevation_id().map(str::to_owned);
        Ok(c)
    }

    /// Who calls, and the request body (at most `max_body_bytes`). A caller without a
    /// valid credential (or with none, or two) is refused before the body is read, so that
    /// no one without a credential makes the gateway wait for and hold a body: a SigV4
    /// signature, which covers the body, is checked against the SHA-256 the request
    /// declares, and the body against that once read.
    async fn authenticate_and_read(
        &mut self,
        uri: &Uri,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<(GatewayCaller, Bytes), GatewayError> {
        let limit = self.state.gateway.settings().max_body_bytes;
        let caller = self.authenticate(&Method::POST, uri, headers, None).await?;
        let raw = read_body(body, limit).await?;
        if auth::signs_body(headers) && !auth::declared_body_matches(headers, &raw) {
            return Err(GatewayError::unauthenticated(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        Ok((caller, raw))
    }

    /// Decides and notes the decision; a deny becomes a 403 with an encoded message.
    fn authorize(
        &mut self,
        caller: &GatewayCaller,
        action: &str,
        resource: &str,
        extra: &[(&str, String)],
    ) -> Result<(), GatewayError> {
        let (d, req) = decide(caller, action, resource, &self.facts, extra);
        self.note(action, resource, &d);
        if d.decision == DecisionKind::Allow {
            return Ok(());
        }
        Err(self.denial(&d, &req))
    }

    /// Decides a call on something that exists (`keys`: its full context) so that a
    /// caller who may not make it cannot tell whether it exists: when the same request
    /// on an absent one (`absent_keys`: the context the request alone gives) would be
    /// allowed — and so answered 404 — the denial is answered 404 too, and otherwise 403
    /// either way ([`Call::refuse_absent`]). The audit record keeps the real decision.
    fn authorize_hiding(
        &mut self,
        caller: &GatewayCaller,
        action: &str,
        resource: &str,
        keys: &[(&str, String)],
        absent_keys: &[(&str, String)],
        what: &str,
    ) -> Result<(), GatewayError> {
        let (d, req) = decide(caller, action, resource, &self.facts, keys);
        self.note(action, resource, &d);
        if d.decision == DecisionKind::Allow {
            return Ok(());
        }
        let (if_absent, _) = decide(caller, action, resource, &self.facts, absent_keys);
        if if_absent.decision == DecisionKind::Allow {
            return Err(not_found_for(resource, what));
        }
        Err(self.denial(&d, &req))
    }

    /// The answer for a model (or job) that does not exist: 404 to a caller who would be
    /// allowed to use it, the same 403 as for an existing one to anyone else.
    fn refuse_absent(
        &mut self,
        caller: &GatewayCaller,
        action: &str,
        resource: &str,
        keys: &[(&str, String)],
        what: &str,
    ) -> GatewayError {
        let (d, req) = decide(caller, action, resource, &self.facts, keys);
        self.note(action, resource, &d);
        if d.decision == DecisionKind::Allow {
            return not_found_for(resource, what);
        }
        self.denial(&d, &req)
    }

    fn note(&mut self, action: &str, resource: &str, d: &Decision) {
        self.record.action = action.to_owned();
        self.record.resource = resource.to_owned();
        self.record.decision = d.decision.as_str().to_owned();
        self.record.statement = d.statements.first().map(ToString::to_string);
    }

    fn denial(&self, d: &Decision, req: &Request) -> GatewayError {
        let encoded = crate::seal_denial(&self.state, req, d).unwrap_or_default();
        GatewayError::denied(format!(
            "User: {} is not authorized to perform: {} on resource: {}. Encoded authorization failure message: {encoded}",
            req.principal, req.action, req.resource
        ))
    }

    /// Writes the record now (everything but streamed answers).
    fn finish(&mut self, status: StatusCode, error_code: Option<String>) {
        self.record.status = status.as_u16();
        self.record.error_code = error_code;
        self.record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        if !super::record(&self.state, &self.record) {
            tracing::error!(request_id = %self.rid, "audit queue full; record lost");
        }
    }

    fn fail(mut self, e: GatewayError) -> Response {
        self.finish(e.status, Some(e.code.to_owned()));
        e.response(&self.rid)
    }

    fn json(mut self, status: StatusCode, body: Bytes) -> Response {
        self.finish(status, None);
        json_response(status, body, &self.rid)
    }
}

fn json_response(status: StatusCode, body: Bytes, rid: &str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(rid) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if crate::listen::is_body_timeout(&e) {
            GatewayError::body_timeout()
        } else {
            GatewayError::too_large(limit)
        }
    })
}

/// The body must be JSON: a declared media type other than JSON, or a content coding
/// (Gatehouse decompresses nothing), is a 415; a transfer coding other than `chunked`
/// (which the listener undoes) is a 501 (RFC 9112, section 6.1), so that bytes that claim to
/// be compressed are never read as the JSON Gatehouse decides on.
fn check_media_type(headers: &HeaderMap) -> Result<(), GatewayError> {
    let undecoded_transfer_coding = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .any(|coding| !coding.trim().eq_ignore_ascii_case("chunked"));
    if undecoded_transfer_coding {
        let mut e = GatewayError::invalid_request(
            "unsupported_transfer_coding",
            "Only the chunked Transfer-Encoding is supported; send the body uncompressed.",
        );
        e.status = StatusCode::NOT_IMPLEMENTED;
        return Err(e);
    }
    let unsupported = |message: String| {
        let mut e = GatewayError::invalid_request("unsupported_media_type", message);
        e.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        e
    };
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(unsupported(
                "The request body must be JSON (Content-Type: application/json).".into(),
            ));
        }
    }
    for coding in headers.get_all(header::CONTENT_ENCODING) {
        if !coding
            .to_str()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("identity")
        {
            return Err(unsupported(
                "Content-Encoding is not supported; send the body uncompressed.".into(),
            ));
        }
    }
    Ok(())
}

fn parse_object(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, GatewayError> {
    check_media_type(headers)?;
    match openai::parse_unambiguous(bytes) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(GatewayError::invalid_request(
            "invalid_json",
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(GatewayError::invalid_request(
            "invalid_json",
            format!("We could not parse the JSON body of your request: {e}"),
        )),
    }
}

fn model_of(body: &serde_json::Map<String, serde_json::Value>) -> Result<String, GatewayError> {
    match body.get("model") {
        Some(serde_json::Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        _ => Err(GatewayError::invalid_param(
            "model",
            "You must provide a model parameter.",
        )),
    }
}

fn unknown_model(model: &str) -> GatewayError {
    GatewayError::not_found(
        "model_not_found",
        format!("The model `{model}` does not exist or you do not have access to it."),
    )
}

fn unknown_job(id: &str) -> GatewayError {
    GatewayError::not_found(
        "fine_tuning_job_not_found",
        format!("No fine-tuning job with id {id}."),
    )
}

/// The 404 of an absent model or fine-tuning job.
fn not_found_for(resource: &str, what: &str) -> GatewayError {
    if resource.contains(":fine-tuning-job/") {
        unknown_job(what)
    } else {
        unknown_model(what)
    }
}

async fn route_of(
    call: &Call,
    caller: &GatewayCaller,
    model: &str,
) -> Result<Option<Arc<Route>>, GatewayError> {
    call.state
        .gateway
        .route(&call.state, &caller.account_id, model)
        .await
}

/// The context keys a model request gives by itself (what an absent model is decided on).
fn request_keys(model: &str, stream: bool) -> Vec<(&'static str, String)> {
    vec![
        ("ai:ModelId", model.to_owned()),
        ("ai:Stream", stream.to_string()),
    ]
}

/// The context keys of a call on a deployed model.
fn model_keys(route: &Route, stream: bool) -> Vec<(&'static str, String)> {
    let mut keys = request_keys(&route.deployment.model_id, stream);
    keys.push(("ai:Provider", route.deployment.provider.clone()));
    keys
}

/// The route of one model endpoint: each takes the same extractors into [`run`].
pub(super) fn model_call(ep: Endpoint) -> axum::routing::MethodRouter<Arc<AppState>> {
    axum::routing::post(
        move |State(s): State<Arc<AppState>>,
              ConnectInfo(peer): ConnectInfo<SocketAddr>,
              l: Listener,
              uri: Uri,
              headers: HeaderMap,
              body: Body| run(s, peer, l, uri, headers, body, ep),
    )
}

/// The model-call path.
async fn run(
    state: Arc<AppState>,
    peer: SocketAddr,
    listener: Listener,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    ep: Endpoint,
) -> Response {
    // The call runs in a task of its own, so that it runs to its end — its tokens charged,
    // its audit record written — when the client goes away (which drops only this future).
    let call = tokio::spawn(crate::observe::carried(async move {
        let mut call = Call::new(state, peer, listener, &headers);
        call.record.action = "ai:InvokeModel".into();
        match prepare(&mut call, &uri, &headers, body, ep).await {
            Ok(p) => forward(call, p, ep).await,
            Err(e) => call.fail(e),
        }
    }));
    call.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "model call task failed");
        GatewayError::internal().response(&crate::request_id())
    })
}

/// A request that passed every check, ready to forward.
struct Prepared {
    caller: GatewayCaller,
    action: &'static str,
    resource: String,
    extra: Vec<(&'static str, String)>,
    route: Arc<Route>,
    body: Bytes,
    request_json: Option<serde_json::Map<String, serde_json::Value>>,
    stream: bool,
    /// Its reservation in the budgets, settled when the answer is known.
    metering: Metering,
    /// The caller asked for the stream's usage report (else it is hidden from it).
    client_wants_usage: bool,
}

async fn prepare(
    call: &mut Call,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    ep: Endpoint,
) -> Result<Prepared, GatewayError> {
    let settings = call.state.gateway.settings();
    let (caller, raw) = call.authenticate_and_read(uri, headers, body).await?;
    let mut json = parse_object(headers, &raw)?;
    let model = model_of(&json)?;
    call.record.model = Some(model.clone());
    openai::check(ep, &json)?;
    let stream = json.get("stream").and_then(serde_json::Value::as_bool) == Some(true);
    call.record.stream = stream;
    let action = if stream {
        "ai:InvokeModelWithResponseStream"
    } else {
        "ai:InvokeModel"
    };
    let resource = ai_arn(call.region(), &caller.account_id, "model", &model);
    let route = route_of(call, &caller, &model).await?;
    // What is decided is what will be forwarded: the guardrail's rewrite first (its
    // refusal is answered only to a caller the policy allows), null caps dropped.
    let given_bound = openai::generation_bound(&json);
    let guarded = match route.as_ref().and_then(|r| r.guardrail.as_ref()) {
        Some(g) => g.apply(ep, &mut json),
        None => Ok(()),
    };
    let has_guardrail = route.as_ref().is_some_and(|r| r.guardrail.is_some());
    let mut modified = openai::drop_null_caps(&mut json) || has_guardrail;
    let keys = |bound: Option<u64>, route: Option<&Route>| {
        let mut keys = match route {
            Some(r) => model_keys(r, stream),
            None => request_keys(&model, stream),
        };
        if let Some(n) = bound {
            keys.push(("ai:MaxTokens", n.to_string()));
        }
        keys
    };
    let absent_keys = keys(given_bound, None);
    let Some(route) = route else {
        return Err(call.refuse_absent(&caller, action, &resource, &absent_keys, &model));
    };
    let extra = keys(openai::generation_bound(&json), Some(&route));
    call.authorize_hiding(&caller, action, &resource, &extra, &absent_keys, &model)?;
    guarded?;
    let budgets = budget::applicable(&settings.budgets, &caller.budget_subject()).map_err(|e| {
        // Fail closed: a session whose budget cannot be read spends nothing.
        GatewayError::invalid_request("invalid_session_budget", format!("{e}."))
    })?;
    // Streamed tokens are counted from the upstream's usage report: always ask for it.
    let client_wants_usage = !stream || metering::ask_for_usage(&mut json)?;
    modified |= stream;
    if !call.state.gateway.audit.has_room() {
        return Err(GatewayError::unavailable(
            "Gatehouse cannot record decisions right now; try again shortly.",
        ));
    }
    let metering = Metering::admit(
        &call.state,
        &budgets,
        &mut json,
        ep != Endpoint::Embeddings,
        call.facts.now.timestamp_millis(),
    )?;
    modified |= metering.body_changed;
    if let Some(up) = &route.deployment.upstream_model {
        json.insert("model".into(), up.clone().into());
        modified = true;
    }
    let body = if modified {
        Bytes::from(serde_json::to_vec(&json).map_err(|_| GatewayError::internal())?)
    } else {
        raw
    };
    let request_json = route.deployment.log_invocations.then(|| json.clone());
    Ok(Prepared {
        caller,
        action,
        resource,
        extra,
        route,
        body,
        request_json,
        stream,
        metering,
        client_wants_usage,
    })
}

fn log_invocation(
    state: &Arc<AppState>,
    route: &Route,
    rid: &str,
    principal: &str,
    request: Option<serde_json::Map<String, serde_json::Value>>,
    response: serde_json::Value,
) {
    if !route.deployment.log_invocations {
        return;
    }
    let content = serde_json::json!({"request": request, "response": response}).to_string();
    let state = Arc::clone(state);
    let (account, model) = (
        route.deployment.account_id.clone(),
        route.deployment.model_id.clone(),
    );
    let (rid, principal) = (rid.to_owned(), principal.to_owned());
    tokio::spawn(async move {
        if let Err(e) = state
            .store
            .append_invocation_log(&account, &model, &rid, &principal, &Secret::new(content))
            .await
        {
            tracing::error!(error = %e, request_id = %rid, "invocation log append failed");
        }
    });
}

async fn forward(mut call: Call, mut p: Prepared, ep: Endpoint) -> Response {
    let settings = call.state.gateway.settings();
    let timeout = Duration::from_secs(settings.upstream_timeout_secs);
    let sent = proxy::send_metered(
        &call.state,
        &p.route,
        reqwest::Method::POST,
        ep.path(),
        Some(std::mem::take(&mut p.body)),
        timeout,
    )
    .await;
    let resp = match sent {
        Ok(r) => r,
        Err(f) => {
            let charge = p.metering.unanswered(f.maybe_generating);
            p.metering.settle(&call.state, charge, &mut call.record);
            return call.fail(f.error);
        }
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if p.stream && status.is_success() && is_sse {
        return stream_back(call, p, resp, timeout);
    }
    let body = match proxy::read_all(resp, timeout, MAX_ANSWER_BYTES, &p.route.redactor()).await {
        Ok(b) => b,
        Err(e) => {
            let charge = p.metering.unanswered(true);
            p.metering.settle(&call.state, charge, &mut call.record);
            return call.fail(e);
        }
    };
    let answer = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let charge = p.metering.answered(status.is_success(), answer.as_ref());
    p.metering.settle(&call.state, charge, &mut call.record);
    let error_code = if status.is_success() {
        log_invocation(
            &call.state,
            &p.route,
            &call.rid,
            &p.caller.arn,
            p.request_json,
            answer.unwrap_or(serde_json::Value::Null),
        );
        None
    } else {
        Some(format!("upstream_{}", status.as_u16()))
    };
    call.finish(status, error_code);
    json_response(status, body, &call.rid)
}

fn stream_back(call: Call, p: Prepared, resp: reqwest::Response, timeout: Duration) -> Response {
    let Call {
        state,
        rid,
        started,
        mut record,
        facts,
    } = call;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(watch_access(
        Arc::clone(&state),
        p.caller.clone(),
        p.action,
        p.resource.clone(),
        p.extra.clone(),
        facts,
        stop_tx,
    ));
    record.status = 200;
    let keep_log = p.route.deployment.log_invocations;
    let on_end_state = Arc::clone(&state);
    let rid2 = rid.clone();
    let route = Arc::clone(&p.route);
    let principal = p.caller.arn.clone();
    let metering = p.metering;
    let request_json = p.request_json;
    let on_end: proxy::OnEnd = Box::new(move |end, log| {
        let charge = metering.streamed(&end);
        metering.settle(&on_end_state, charge, &mut record);
        if end.how != "complete" {
            record.error_code = Some(end.how.to_owned());
        }
        record.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        if !super::record(&on_end_state, &record) {
            tracing::error!(request_id = %rid2, "audit queue full; record lost");
        }
        if let Some(log) = log {
            let text = String::from_utf8_lossy(&log).into_owned();
            log_invocation(
                &on_end_state,
                &route,
                &rid2,
                &principal,
                request_json,
                serde_json::Value::String(text),
            );
        }
    });
    let body = Body::from_stream(Metered::new(
        resp,
        timeout,
        keep_log,
        !p.client_wants_usage,
        p.route.redactor(),
        on_end,
        stop_rx,
    ));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("x-request-id", v);
    }
    r
}

/// While a stream runs, decides its request again whenever the store changes (and every
/// second for sessions, which expire): a revoked key, a new deny, a revoked or expired
/// session ends the stream within a second.
async fn watch_access(
    state: Arc<AppState>,
    caller: GatewayCaller,
    action: &'static str,
    resource: String,
    extra: Vec<(&'static str, String)>,
    facts: Facts,
    stop: tokio::sync::oneshot::Sender<GatewayError>,
) {
    let mut seen = state.cache.generation();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u32;
    let is_session = matches!(caller.source, auth::CallerSource::Session { .. });
    loop {
        tick.tick().await;
        ticks += 1;
        if stop.is_closed() {
            return; // the stream is over
        }
        let generation = state.cache.generation();
        if generation == seen && !(is_session && ticks.is_multiple_of(4)) {
            continue;
        }
        seen = generation;
        let verdict = match auth::refresh(&state, &caller).await {
            Ok(now_caller) => {
                let facts = Facts {
                    now: state.clock.now(),
                    ..facts.clone()
                };
                let (d, _) = decide(&now_caller, action, &resource, &facts, &extra);
                (d.decision != DecisionKind::Allow).then(|| {
                    GatewayError::denied("Access was revoked while the stream was running.")
                })
            }
            Err(e) => Some(e),
        };
        if let Some(e) = verdict {
            let _ = stop.send(e);
            return;
        }
    }
}

/// Whether the caller may invoke the model at all (streamed or not).
fn may_invoke(call: &Call, caller: &GatewayCaller, route: &Route) -> bool {
    let resource = ai_arn(
        call.region(),
        &caller.account_id,
        "model",
        &route.deployment.model_id,
    );
    [false, true].into_iter().any(|stream| {
        let action = if stream {
            "ai:InvokeModelWithResponseStream"
        } else {
            "ai:InvokeModel"
        };
        let (d, _) = decide(
            caller,
            action,
            &resource,
            &call.facts,
            &model_keys(route, stream),
        );
        d.decision == DecisionKind::Allow
    })
}

fn model_object(route: &Route) -> serde_json::Value {
    serde_json::json!({
        "id": route.deployment.model_id,
        "object": "model",
        "created": route.deployment.created.timestamp(),
        "owned_by": route.deployment.provider,
    })
}

/// `GET /v1/models`: only the models the caller may invoke.
pub(super) async fn list_models(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    l: Listener,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(s, peer, l, &headers);
    call.record.action = "ai:ListModels".into();
    let caller = match call
        .authenticate(&Method::GET, &uri, &headers, Some(b""))
        .await
    {
        Ok(c) => c,
        Err(e) => return call.fail(e),
    };
    let routes = match call
        .state
        .gateway
        .routes_of(&call.state, &caller.account_id)
        .await
    {
        Ok(r) => r,
        Err(e) => return call.fail(e),
    };
    let data: Vec<_> = routes
        .iter()
        .filter(|r| may_invoke(&call, &caller, r))
        .map(|r| model_object(r))
        .collect();
    call.record.resource = ai_arn(call.region(), &caller.account_id, "model", "*");
    call.record.decision = "Allow".into();
    let body = serde_json::json!({"object": "list", "data": data}).to_string();
    call.json(StatusCode::OK, Bytes::from(body))
}

/// `GET /v1/models/{model}`: the model, if the caller may invoke it (404 otherwise).
pub(super) async fn get_model(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    l: Listener,
    Path(model): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(s, peer, l, &headers);
    call.record.action = "ai:GetModel".into();
    call.record.model = Some(model.clone());
    let caller = match call
        .authenticate(&Method::GET, &uri, &headers, Some(b""))
        .await
    {
        Ok(c) => c,
        Err(e) => return call.fail(e),
    };
    let route = match route_of(&call, &caller, &model).await {
        Ok(Some(r)) => r,
        Ok(None) => return call.fail(unknown_model(&model)),
        Err(e) => return call.fail(e),
    };
    call.record.resource = ai_arn(call.region(), &caller.account_id, "model", &model);
    if !may_invoke(&call, &caller, &route) {
        call.record.decision = "ImplicitDeny".into();
        return call.fail(unknown_model(&model));
    }
    call.record.decision = "Allow".into();
    call.json(
        StatusCode::OK,
        Bytes::from(model_object(&route).to_string()),
    )
}

// ---------------------------------------------------------------------------------------
// fine-tuning jobs

async fn job_call(
    call: &mut Call,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    id: &str,
    action: &str,
) -> Result<(GatewayCaller, Arc<Route>), GatewayError> {
    let caller = call.authenticate(method, uri, headers, Some(b"")).await?;
    let resource = ai_arn(call.region(), &caller.account_id, "fine-tuning-job", id);
    let rec = match call
        .state
        .store
        .get_fine_tuning_job(&caller.account_id, id)
        .await
    {
        Ok(r) => r,
        Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => {
            return Err(call.refuse_absent(&caller, action, &resource, &[], id));
        }
        Err(e) => return Err(e.into()),
    };
    call.record.model = Some(rec.model_id.clone());
    // A job whose deployment is gone cannot be reached: answered as an absent job.
    let Some(route) = route_of(call, &caller, &rec.model_id).await? else {
        return Err(call.refuse_absent(&caller, action, &resource, &[], id));
    };
    call.authorize_hiding(
        &caller,
        action,
        &resource,
        &model_keys(&route, false),
        &[],
        id,
    )?;
    Ok((caller, route))
}

async fn relay(
    call: Call,
    route: &Route,
    method: reqwest::Method,
    path: &str,
    body: Option<Bytes>,
) -> Result<(Call, StatusCode, Bytes), (Call, GatewayError)> {
    let timeout = Duration::from_secs(call.state.gateway.settings().upstream_timeout_secs);
    let sent = proxy::send(&call.state, route, method, path, body, timeout).await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return Err((call, e)),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match proxy::read_all(resp, timeout, MAX_ANSWER_BYTES, &route.redactor()).await {
        Ok(b) => Ok((call, status, b)),
        Err(e) => Err((call, e)),
    }
}

/// `POST /v1/fine_tuning/jobs`: `ai:CreateFineTuningJob` on the base model.
pub(super) async fn create_job(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    l: Listener,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut call = Call::new(s, peer, l, &headers);
    call.record.action = "ai:CreateFineTuningJob".into();
    let prepared = async {
        let (caller, raw) = call.authenticate_and_read(&uri, &headers, body).await?;
        let mut json = parse_object(&headers, &raw)?;
        let model = model_of(&json)?;
        call.record.model = Some(model.clone());
        let resource = ai_arn(call.region(), &caller.account_id, "model", &model);
        let action = "ai:CreateFineTuningJob";
        let absent_keys = request_keys(&model, false);
        let Some(route) = route_of(&call, &caller, &model).await? else {
            return Err(call.refuse_absent(&caller, action, &resource, &absent_keys, &model));
        };
        call.authorize_hiding(
            &caller,
            action,
            &resource,
            &model_keys(&route, false),
            &absent_keys,
            &model,
        )?;
        if let Some(up) = &route.deployment.upstream_model {
            json.insert("model".into(), up.clone().into());
        }
        let body = serde_json::to_vec(&json).map_err(|_| GatewayError::internal())?;
        Ok::<_, GatewayError>((caller, route, Bytes::from(body)))
    }
    .await;
    let (caller, route, body) = match prepared {
        Ok(p) => p,
        Err(e) => return call.fail(e),
    };
    let (call, status, answer) = match relay(
        call,
        &route,
        reqwest::Method::POST,
        "/fine_tuning/jobs",
        Some(body),
    )
    .await
    {
        Ok(x) => x,
        Err((c, e)) => return c.fail(e),
    };
    if status.is_success() {
        let id = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned));
        let Some(id) = id else {
            return call.fail(GatewayError::bad_gateway(
                "The model endpoint answered without a job id.",
            ));
        };
        if let Err(e) = call
            .state
            .store
            .record_fine_tuning_job(
                &caller.account_id,
                &id,
                &route.deployment.model_id,
                &caller.arn,
            )
            .await
        {
            return call.fail(e.into());
        }
    }
    call.json(status, answer)
}

/// `GET /v1/fine_tuning/jobs`: `ai:ListFineTuningJobs`; the jobs created through Gatehouse,
/// each as the upstream reports it now.
pub(super) async fn list_jobs(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    l: Listener,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(s, peer, l, &headers);
    call.record.action = "ai:ListFineTuningJobs".into();
    let caller = match call
        .authenticate(&Method::GET, &uri, &headers, Some(b""))
        .await
    {
        Ok(c) => c,
        Err(e) => return call.fail(e),
    };
    let resource = ai_arn(call.region(), &caller.account_id, "fine-tuning-job", "*");
    if let Err(e) = call.authorize(&caller, "ai:ListFineTuningJobs", &resource, &[]) {
        return call.fail(e);
    }
    let param = |name: &str| {
        uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    };
    let limit = param("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let after = param("after");
    let records = match call
        .state
        .store
        .list_fine_tuning_jobs(&caller.account_id, 10_000)
        .await
    {
        Ok(r) => r,
        Err(e) => return call.fail(e.into()),
    };
    // Only the jobs the caller may read, as /v1/models lists only invocable models: a
    // job GetFineTuningJob would deny is not shown, and neither fills a page nor counts
    // towards `has_more`.
    let mut visible = Vec::new();
    for rec in records {
        let Ok(Some(route)) = call
            .state
            .gateway
            .route(&call.state, &caller.account_id, &rec.model_id)
            .await
        else {
            continue;
        };
        let job = ai_arn(
            call.region(),
            &caller.account_id,
            "fine-tuning-job",
            &rec.job_id,
        );
        let (d, _) = decide(
            &caller,
            "ai:GetFineTuningJob",
            &job,
            &call.facts,
            &model_keys(&route, false),
        );
        if d.decision == DecisionKind::Allow {
            visible.push((rec, route));
        }
    }
    // Cursor pagination as OpenAI does it: `after` is the last id of the previous page.
    let start = match &after {
        Some(a) => visible
            .iter()
            .position(|(r, _)| &r.job_id == a)
            .map_or(visible.len(), |i| i + 1),
        None => 0,
    };
    let has_more = visible.len() > start + limit;
    let timeout = Duration::from_secs(call.state.gateway.settings().upstream_timeout_secs);
    let mut data = Vec::new();
    for (rec, route) in visible.into_iter().skip(start).take(limit) {
        let path = format!("/fine_tuning/jobs/{}", rec.job_id);
        let got = proxy::send(
            &call.state,
            &route,
            reqwest::Method::GET,
            &path,
            None,
            timeout,
        )
        .await;
        let Ok(resp) = got else { continue };
        if !resp.status().is_success() {
            continue;
        }
        if let Ok(b) = proxy::read_all(resp, timeout, MAX_ANSWER_BYTES, &route.redactor()).await
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b)
        {
            data.push(v);
        }
    }
    let body = serde_json::json!({"object": "list", "data": data, "has_more": has_more});
    call.json(StatusCode::OK, Bytes::from(body.to_string()))
}

/// `GET /v1/fine_tuning/jobs/{id}`: `ai:GetFineTuningJob` on `fine-tuning-job/ID`.
pub(super) async fn get_job(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    l: Listener,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    job_op(s, peer, l, id, uri, headers, false).await
}

/// `POST /v1/fine_tuning/jobs/{id}/cancel`: `ai:CancelFineTuningJob`.
pub(super) async fn cancel_job(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    l: Listener,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    job_op(s, peer, l, id, uri, headers, true).await
}

async fn job_op(
    s: Arc<AppState>,
    peer: SocketAddr,
    l: Listener,
    id: String,
    uri: Uri,
    headers: HeaderMap,
    cancel: bool,
) -> Response {
    let mut call = Call::new(s, peer, l, &headers);
    let (action, method, path) = if cancel {
        (
            "ai:CancelFineTuningJob",
            Method::POST,
            format!("/fine_tuning/jobs/{id}/cancel"),
        )
    } else {
        (
            "ai:GetFineTuningJob",
            Method::GET,
            format!("/fine_tuning/jobs/{id}"),
        )
    };
    call.record.action = action.into();
    let route = match job_call(&mut call, &method, &uri, &headers, &id, action).await {
        Ok((_, r)) => r,
        Err(e) => return call.fail(e),
    };
    let m = if cancel {
        reqwest::Method::POST
    } else {
        reqwest::Method::GET
    };
    let body = cancel.then(|| Bytes::from_static(b"{}"));
    match relay(call, &route, m, &path, body).await {
        Ok((c, status, b)) => c.json(status, b),
        Err((c, e)) => c.fail(e),
    }
}

/// `GET /v1/invocation_logs/{model}?limit=N`: the sealed prompt/response log of a model,
/// opened only for callers allowed `ai:ReadInvocationLogs` on `invocation-log/MODEL`
/// (what `gatehouse logs read` calls). Not an OpenAI endpoint.
pub(super) async fn read_logs(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    l: Listener,
    Path(model): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(s, peer, l, &headers);
    call.record.action = "ai:ReadInvocationLogs".into();
    call.record.model = Some(model.clone());
    let read = async {
        let caller = call
            .authenticate(&Method::GET, &uri, &headers, Some(b""))
            .await?;
        let resource = ai_arn(call.region(), &caller.account_id, "invocation-log", &model);
        call.authorize(
            &caller,
            "ai:ReadInvocationLogs",
            &resource,
            &[("ai:ModelId", model.clone())],
        )?;
        let limit = uri
            .query()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "limit")
                    .and_then(|(_, v)| v.parse::<i64>().ok())
            })
            .unwrap_or(100)
            .clamp(1, 10_000);
        let logs = call
            .state
            .store
            .read_invocation_logs(&caller.account_id, &model, limit)
            .await?;
        let data: Vec<_> = logs
            .iter()
            .map(|e| {
                let content = serde_json::from_slice::<serde_json::Value>(e.content.expose())
                    .unwrap_or(serde_json::Value::Null);
                serde_json::json!({
                    "id": e.id,
                    "model": e.model_id,
                    "time": e.time.to_rfc3339(),
                    "request_id": e.request_id,
                    "principal": e.principal,
                    "request": content.get("request"),
                    "response": content.get("response"),
                })
            })
            .collect();
        Ok::<_, GatewayError>(serde_json::json!({"object": "list", "data": data}))
    }
    .await;
    match read {
        Ok(v) => call.json(StatusCode::OK, Bytes::from(v.to_string())),
        Err(e) => call.fail(e),
    }
}
