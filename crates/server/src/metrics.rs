//! `/metrics` in Prometheus's text format: what an operator watches to know the node is
//! healthy and where its time goes.
//!
//! Two kinds of figures. Events are counted where they happen, into this state's own
//! registry (one per [`crate::AppState`], never a process-wide recorder, so servers in one
//! process — tests, embedders — do not mix their counts): decisions by action family and
//! outcome, request latency by face, upstream latency and errors by model, budget
//! refusals. Figures other parts already keep (audit queue depth and batch commits, cache
//! hits and misses, the key manager's reachability and failures) are read from those
//! parts at scrape time.
//!
//! Where it is served is the config file's choice (`[metrics]`): on a listener of its own
//! (`listen`, no authentication: bind it where only the scraper reaches), and/or on the
//! public listeners to callers the policy allows `gatehouse:GetMetrics` (`authorized =
//! true`; Bearer access key or session token, as on the gateway). By default neither: the
//! public listeners answer `/metrics` with 404.

use crate::AppState;
use crate::observe::Face;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The action a caller needs to read `/metrics` on a public listener.
pub const GET_METRICS: &str = "gatehouse:GetMetrics";

/// `[metrics]` of the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// A listener serving only `/metrics`, unauthenticated (for a scraper on a private
    /// network or loopback).
    pub listen: Option<SocketAddr>,
    /// Also serve `/metrics` on the public listeners, to callers allowed
    /// `gatehouse:GetMetrics`.
    #[serde(default)]
    pub authorized: bool,
}

pub use gatehouse_pipeline::counts::{BatchCounts, LookupCounts};

/// Why an upstream request failed, as the `kind` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// No connection or no answer (refused, reset, DNS, TLS).
    Unreachable,
    /// No answer head within `upstream_timeout_secs`.
    Timeout,
    /// Refused before sending: the address is not allowed, or it redirected.
    Refused,
    /// The upstream answered with a 5xx status.
    ServerError,
}

impl UpstreamErrorKind {
    fn label(self) -> &'static str {
        match self {
            UpstreamErrorKind::Unreachable => "unreachable",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Refused => "refused",
            UpstreamErrorKind::ServerError => "status_5xx",
        }
    }
}

/// Request latencies in seconds: from half a millisecond (a cached decision) to a minute
/// (a long generation).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The event collectors of one node.
#[derive(Debug)]
struct Collectors {
    decisions: IntCounterVec,
    requests: HistogramVec,
    upstream: HistogramVec,
    upstream_errors: IntCounterVec,
    budget_refusals: IntCounter,
}

impl Collectors {
    fn register(registry: &Registry) -> Result<Collectors, prometheus::Error> {
        let decisions = IntCounterVec::new(
            Opts::new(
                "gatehouse_decisions_total",
                "Calls decided, by action family (service prefix) and the call's decision (Error: refused before a decision).",
            ),
            &["service", "decision"],
        )?;
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "gatehouse_request_duration_seconds",
                "Time to the answer's head, by face (iam, sts, ai_query, gateway).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["face"],
        )?;
        let upstream = HistogramVec::new(
            HistogramOpts::new(
                "gatehouse_upstream_duration_seconds",
                "Time from sending a request to a model endpoint to its answer's head, by model.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["model"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "gatehouse_upstream_errors_total",
                "Model endpoint requests that failed, by model and kind (unreachable, timeout, refused, status_5xx).",
            ),
            &["model", "kind"],
        )?;
        let budget_refusals = IntCounter::new(
            "gatehouse_budget_refusals_total",
            "Gateway requests refused because a budget was spent (429).",
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(upstream.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(budget_refusals.clone()))?;
        Ok(Collectors {
            decisions,
            requests,
            upstream,
            upstream_errors,
            budget_refusals,
        })
    }
}

/// This node's metrics.
#[derive(Debug)]
pub struct Metrics {
    settings: RwLock<Arc<MetricsSettings>>,
    registry: Registry,
    /// `None` only if the collectors could not be built (a programming error: names are
    /// fixed); the node then serves without event metrics rather than not at all.
    events: Option<Collectors>,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let events = Collectors::register(&registry)
            .inspect_err(|e| tracing::error!(error = %e, "metrics collectors could not be built"))
            .ok();
        Metrics {
            settings: RwLock::default(),
            registry,
            events,
        }
    }
}

impl Metrics {
    /// Replaces the settings (at start, from the config file).
    pub fn configure(&self, settings: MetricsSettings) {
        if let Ok(mut s) = self.settings.write() {
            *s = Arc::new(settings);
        }
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<MetricsSettings> {
        self.settings
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    /// Counts one call's decision. `action` is `service:Action` (empty when the request
    /// named none); `decision` is `None` when the call ended before one.
    pub fn decision(&self, action: &str, decision: Option<&str>) {
        let service = match action.split_once(':').map(|(s, _)| s) {
            Some(s @ ("iam" | "sts" | "ai" | "gatehouse" | "mcp")) => s,
            Some(_) => "other",
            None => "none",
        };
        let decision = decision
            .filter(|d| matches!(*d, "Allow" | "ExplicitDeny" | "ImplicitDeny"))
            .unwrap_or("Error");
        if let Some(c) = &self.events {
            c.decisions.with_label_values(&[service, decision]).inc();
        }
    }

    /// Observes one answered request of `face`.
    pub fn observe_request(&self, face: Face, elapsed: Duration) {
        if let Some(c) = &self.events {
            c.requests
                .with_label_values(&[face.label()])
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Observes one upstream request to `model`'s endpoint: its latency when it answered,
    /// and its failure, if any.
    pub fn observe_upstream(
        &self,
        model: &str,
        elapsed: Duration,
        failure: Option<UpstreamErrorKind>,
    ) {
        let Some(c) = &self.events else { return };
        c.upstream
            .with_label_values(&[model])
            .observe(elapsed.as_secs_f64());
        if let Some(f) = failure {
            c.upstream_errors
                .with_label_values(&[model, f.label()])
                .inc();
        }
    }

    /// Counts a request refused by a budget.
    pub fn budget_refused(&self) {
        if let Some(c) = &self.events {
            c.budget_refusals.inc();
        }
    }

    /// The text exposition of every metric, with the figures read from `state` now.
    pub fn render(&self, state: &AppState) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(read_now(state)?.gather());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// The figures other parts keep, as metrics with their values of this moment.
fn read_now(state: &AppState) -> Result<Registry, prometheus::Error> {
    let registry = Registry::new();
    let depth = IntGaugeVec::new(
        Opts::new(
            "gatehouse_audit_queue_depth",
            "Audit records waiting for their writer, by queue (gateway: acknowledged on enqueue; control: callers wait for the commit).",
        ),
        &["queue"],
    )?;
    let batches = IntCounterVec::new(
        Opts::new(
            "gatehouse_audit_batch_commits_total",
            "Audit batches appended to the hash chain, by queue and outcome.",
        ),
        &["queue", "outcome"],
    )?;
    let lookups = IntCounterVec::new(
        Opts::new(
            "gatehouse_cache_lookups_total",
            "Cache lookups by cache (compiled_principal, access_key) and result (hit, miss).",
        ),
        &["cache", "result"],
    )?;
    let queues = [
        (
            "gateway",
            state.audit.queue.depth(),
            state.audit.queue.batches(),
        ),
        (
            "control",
            state.audit.group.depth(),
            state.audit.group.batches(),
        ),
    ];
    for (queue, waiting, counts) in queues {
        depth
            .with_label_values(&[queue])
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        let (committed, failed) = counts.read();
        batches
            .with_label_values(&[queue, "committed"])
            .inc_by(committed);
        batches.with_label_values(&[queue, "failed"]).inc_by(failed);
    }
    let caches = [
        ("compiled_principal", state.cache.lookups()),
        ("access_key", state.keys.lookups()),
    ];
    for (cache, counts) in caches {
        let (hits, misses) = counts.read();
        lookups.with_label_values(&[cache, "hit"]).inc_by(hits);
        lookups.with_label_values(&[cache, "miss"]).inc_by(misses);
    }
    registry.register(Box::new(depth))?;
    registry.register(Box::new(batches))?;
    registry.register(Box::new(lookups))?;
    register_key_manager(&registry, &state.store.key_manager_health())?;
    Ok(registry)
}

/// The key manager's reachability and failures since start, by operation: what shows a
/// key manager lost after the start, when requests keep being served.
fn register_key_manager(
    registry: &Registry,
    health: &gatehouse_store::KeyManagerHealth,
) -> Result<(), prometheus::Error> {
    let up = IntGaugeVec::new(
        Opts::new(
            "gatehouse_key_manager_up",
            "1 when the last operation asked of the key manager succeeded, 0 when it failed (requests keep being served from the data keys in memory).",
        ),
        &["provider"],
    )?;
    let failures = IntCounterVec::new(
        Opts::new(
            "gatehouse_key_manager_failures_total",
            "Key manager operations that failed since start, by provider and operation (check, sign, unwrap).",
        ),
        &["provider", "operation"],
    )?;
    let provider = health.provider();
    up.with_label_values(&[provider])
        .set(i64::from(health.reachable()));
    for op in gatehouse_store::KeyManagerOperation::ALL {
        failures
            .with_label_values(&[provider, op.label()])
            .inc_by(health.failures(op));
    }
    registry.register(Box::new(up))?;
    registry.register(Box::new(failures))?;
    Ok(())
}

fn text_answer(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn exposition(state: &AppState) -> Response {
    match state.metrics.render(state) {
        Ok(text) => text_answer(StatusCode::OK, text),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be rendered");
            text_answer(StatusCode::INTERNAL_SERVER_ERROR, "error\n".into())
        }
    }
}

/// `GET /metrics` on the metrics listener: no authentication (the listener's address is
/// the access control).
pub async fn unauthenticated(State(state): State<Arc<AppState>>) -> Response {
    exposition(&state)
}

/// `GET /metrics` on a public listener: 404 unless `[metrics] authorized = true`; then the
/// caller must authenticate as on the gateway and be allowed `gatehouse:GetMetrics` (on
/// `*`: the action has no resource). The decision is audited like any other.
pub async fn authorized(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    listener: Option<axum::Extension<crate::gateway::ListenerInfo>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !state.metrics.settings().authorized {
        return text_answer(StatusCode::NOT_FOUND, "not found\n".into());
    }
    let listener = listener.map(|axum::Extension(l)| l);
    let decided = crate::gateway::decide_operation(
        &state,
        peer,
        listener,
        &method,
        &uri,
        &headers,
        GET_METRICS,
    )
    .await;
    match decided {
        Ok(()) => exposition(&state),
        Err(status) => {
            let word = if status == StatusCode::UNAUTHORIZED {
                "unauthenticated\n"
            } else {
                "access denied\n"
            };
            text_answer(status, word.into())
        }
    }
}

/// The metrics listener's router: `/metrics` only.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(unauthenticated))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, with the main listener's
/// connection limits and timeouts.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let limits = state.gateway.settings().limits(None);
    if let Ok(a) = listener.local_addr() {
        state.gateway.upstream.add_own(a);
    }
    crate::listen::serve(
        listener,
        router(state),
        limits,
        crate::refused_head,
        shutdown,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn action_families_and_outcomes_are_bounded_label_sets() {
        let m = Metrics::default();
        m.decision("iam:CreateUser", Some("Allow"));
        m.decision("ai:InvokeModel", Some("ExplicitDeny"));
        m.decision("s3:GetObject", Some("whatever"));
        m.decision("", None);
        let text = {
            let mut out = Vec::new();
            TextEncoder::new()
                .encode(&m.registry.gather(), &mut out)
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        for line in [
            r#"gatehouse_decisions_total{decision="Allow",service="iam"} 1"#,
            r#"gatehouse_decisions_total{decision="ExplicitDeny",service="ai"} 1"#,
            r#"gatehouse_decisions_total{decision="Error",service="other"} 1"#,
            r#"gatehouse_decisions_total{decision="Error",service="none"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn settings_parse_and_refuse_unknown_keys() {
        let s: MetricsSettings =
            toml_like(r#"{"listen": "127.0.0.1:9470", "authorized": true}"#).unwrap();
        assert_eq!(s.listen, Some("127.0.0.1:9470".parse().unwrap()));
        assert!(s.authorized);
        assert!(toml_like(r#"{"public": true}"#).is_err());
        assert_eq!(toml_like("{}").unwrap(), MetricsSettings::default());
    }

    fn toml_like(json: &str) -> Result<MetricsSettings, serde_json::Error> {
        serde_json::from_str(json)
    }
}
