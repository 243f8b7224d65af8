//! Probes for load balancers and orchestrators: `/healthz` (the process answers) and
//! `/readyz` (this node can serve: its store answers a bounded query, it holds every data
//! key the store's secrets are sealed under, and the caches a request needs are loaded for
//! the store's current generation).
//!
//! Both are unauthenticated — a probe holds no credentials — so both reveal nothing: the
//! bodies are fixed words, never a version, an error text or a backend name. Why a node is
//! not ready goes to the log, where the operator (not the prober) reads it.

use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// How long `/readyz` waits for the store before answering "not ready": shorter than any
/// probe's timeout, so a hung database yields a 503 rather than a probe timeout.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 whenever the process can answer at all.
pub async fn healthz() -> Response {
    probe_answer(StatusCode::OK, "ok\n")
}

/// `GET /readyz`: 200 when the store answers within [`READY_TIMEOUT`] and the caches are
/// warm, 503 otherwise.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, check_ready(&state)).await {
        Ok(Ok(())) => probe_answer(StatusCode::OK, "ready\n"),
        Ok(Err(why)) => {
            tracing::warn!(reason = %why, "not ready");
            probe_answer(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
        Err(_) => {
            tracing::warn!(timeout = ?READY_TIMEOUT, "not ready: the store did not answer in time");
            probe_answer(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
    }
}

/// The store answers a query; this node holds every data key the store's secrets are
/// sealed under (unwrapping, through the key manager, one another node made since — a
/// key manager outage alone does not make the node unready, as requests are served from
/// the data keys in memory, unless `[keys] ready_requires_key_manager`); and the
/// deployment table (opened provider keys, compiled guardrails) is loaded for the current
/// generation — loading it now if it is not, so that the first model call after a start
/// or a change does not pay for it.
async fn check_ready(state: &AppState) -> Result<(), String> {
    state
        .store
        .policy_generation()
        .await
        .map_err(|e| format!("store: {e}"))?;
    state
        .store
        .unwrap_new_data_keys()
        .await
        .map_err(|e| format!("data keys: {e}"))?;
    let key_manager = state.store.key_manager_health();
    if key_manager.required_for_ready() && !key_manager.reachable() {
        return Err(format!(
            "the {} key manager is unreachable and [keys] ready_requires_key_manager is set",
            key_manager.provider()
        ));
    }
    state
        .gateway
        .warm(state)
        .await
        .map_err(|e| format!("deployments: {}", e.message))
}

fn probe_answer(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
