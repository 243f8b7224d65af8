//! What every request gets before any face sees it: a request id, a tracing span that
//! carries it into every log line of the request, the id in the answer's `x-request-id`
//! header, and one observation of its latency by face for `/metrics`.
//!
//! The id is generated, or taken from the request's `X-Request-Id` when the peer is one of
//! the trusted proxies (`[gateway] trusted_proxies`, the same rule as `X-Forwarded-For`)
//! and the value is well formed — so an id set at the edge follows the request through the
//! logs, while anyone else cannot inject text into them. The faces read it with
//! [`crate::request_id`] (a task-local set for the request's handler), so the AWS XML
//! `<RequestId>`, the OpenAI error JSON and the header always agree.

use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument as _;

/// The response (and trusted request) header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest incoming request id believed.
const MAX_INCOMING_ID: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task is serving, when inside [`middleware`].
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// `fut`, to be spawned for the request this task serves, keeping the request's id and span
/// (a spawned task inherits neither): its log lines and answers carry the same id.
pub fn carried<F: std::future::Future>(fut: F) -> impl std::future::Future<Output = F::Output> {
    let span = tracing::Span::current();
    let id = current_request_id();
    async move {
        match id {
            Some(id) => REQUEST_ID.scope(id, fut).await,
            None => fut.await,
        }
    }
    .instrument(span)
}

/// Which face served a request: the label of the latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// IAM Query actions at `/`.
    Iam,
    /// STS Query actions at `/`.
    Sts,
    /// The `ai` Query actions (deployments, guardrails) at `/`.
    AiQuery,
    /// The OpenAI-compatible gateway under `/v1`.
    Gateway,
    /// Probes and metrics: not a face, not observed.
    Operations,
}

impl Face {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Face::Iam => "iam",
            Face::Sts => "sts",
            Face::AiQuery => "ai_query",
            Face::Gateway => "gateway",
            Face::Operations => "operations",
        }
    }

    /// The face a path belongs to before its handler says more (the Query API marks its
    /// answers with the API it served).
    fn of_path(path: &str) -> Face {
        if path == "/v1" || path.starts_with("/v1/") {
            Face::Gateway
        } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            Face::Operations
        } else {
            Face::Iam
        }
    }
}

/// An id a trusted proxy set: one `X-Request-Id` header, 1 to 128 characters of letters,
/// digits and `-_.:` (UUIDs, ULIDs, nginx's `$request_id`, AWS's ids). Anything else, or
/// from anyone else, is ignored and an id generated.
pub fn incoming_request_id(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> Option<String> {
    let peer = peer.to_canonical();
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return None;
    }
    let mut values = headers.get_all(REQUEST_ID_HEADER).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return None;
    };
    let id = v.to_str().ok()?;
    let well_formed = !id.is_empty()
        && id.len() <= MAX_INCOMING_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    well_formed.then(|| id.to_owned())
}

/// The layer every route of the router runs in (see the module docs).
pub async fn middleware(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let id = peer
        .and_then(|p| {
            incoming_request_id(&state.gateway.settings().trusted_proxies, p, req.headers())
        })
        .unwrap_or_else(crate::new_request_id);
    let path_face = Face::of_path(req.uri().path());
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    let face = resp
        .extensions()
        .get::<Face>()
        .copied()
        .unwrap_or(path_face);
    if face != Face::Operations {
        state.metrics.observe_request(face, elapsed);
    }
    span.in_scope(|| {
        tracing::debug!(
            face = face.label(),
            status = resp.status().as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(REQUEST_ID_HEADER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn an_incoming_id_is_believed_only_from_a_trusted_proxy_and_well_formed() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        let id = "2f0c1a9e-6b7d-4e0f-9a51-3c2d1b0a9f8e";
        assert_eq!(
            incoming_request_id(&trusted, proxy, &headers(&[id])).as_deref(),
            Some(id)
        );
        // IPv4-mapped IPv6 is the IPv4 proxy.
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(incoming_request_id(&trusted, mapped, &headers(&[id])).is_some());
        assert_eq!(
            incoming_request_id(&trusted, stranger, &headers(&[id])),
            None
        );
        assert_eq!(incoming_request_id(&[], proxy, &headers(&[id])), None);
        for bad in ["", "a b", "id\"}", "x/y", "é"] {
            let h = HeaderValue::from_bytes(bad.as_bytes()).map(|v| {
                let mut m = HeaderMap::new();
                m.insert(REQUEST_ID_HEADER, v);
                m
            });
            if let Ok(h) = h {
                assert_eq!(incoming_request_id(&trusted, proxy, &h), None, "{bad:?}");
            }
        }
        let long = "a".repeat(MAX_INCOMING_ID + 1);
        assert_eq!(
            incoming_request_id(&trusted, proxy, &headers(&[&long])),
            None
        );
        // Two ids: which one would a log reader believe? Neither.
        assert_eq!(
            incoming_request_id(&trusted, proxy, &headers(&[id, "other"])),
            None
        );
    }

    #[test]
    fn paths_map_to_faces() {
        assert_eq!(Face::of_path("/v1/chat/completions"), Face::Gateway);
        assert_eq!(Face::of_path("/v1"), Face::Gateway);
        assert_eq!(Face::of_path("/v10"), Face::Iam);
        assert_eq!(Face::of_path("/readyz"), Face::Operations);
        assert_eq!(Face::of_path("/"), Face::Iam);
    }
}
