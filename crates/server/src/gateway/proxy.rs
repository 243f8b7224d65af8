//! The upstream side: one pooled HTTP client, the provider key injected (the caller's own
//! headers are never forwarded), timeouts mapped to 504 and failures to 502, and streamed
//! answers passed through event by event as they arrive — with the `usage` sniffed on the
//! way for budgets and audit, and the record written when the stream ends (or the caller
//! goes away). What of an answer reaches the caller (whole events, never the provider
//! key) is [`super::answer`]'s.

use super::Route;
use super::answer::{EventFramer, Redactor};
use super::error::GatewayError;
use bytes::Bytes;
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Token counts from an upstream `usage` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `prompt_tokens`.
    pub prompt: u64,
    /// `completion_tokens`.
    pub completion: u64,
    /// `total_tokens` (or the sum).
    pub total: u64,
}

impl Usage {
    /// Reads `usage` from an answer object.
    pub fn from_answer(v: &serde_json::Value) -> Option<Usage> {
        let u = v.get("usage")?.as_object()?;
        let n = |k: &str| u.get(k).and_then(serde_json::Value::as_u64);
        let prompt = n("prompt_tokens").unwrap_or(0);
        let completion = n("completion_tokens").unwrap_or(0);
        Some(Usage {
            prompt,
            completion,
            total: n("total_tokens").unwrap_or(prompt + completion),
        })
    }
}

/// Sends a request to the deployment's upstream and waits (at most `timeout`) for headers.
pub(super) async fn send(
    client: &reqwest::Client,
    rules: &super::upstream::UpstreamRules,
    route: &Route,
    method: reqwest::Method,
    path: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<reqwest::Response, GatewayError> {
    let url = format!("{}{path}", route.deployment.base_url.trim_end_matches('/'));
    let url = reqwest::Url::parse(&url)
        .map_err(|_| GatewayError::bad_gateway("The model endpoint's URL is not valid."))?;
    if let Err(e) = rules.check_literal(&url) {
        tracing::warn!(model = %route.deployment.model_id, error = %e, "upstream address refused");
        return Err(GatewayError::bad_gateway(
            "The model endpoint's address is not allowed.",
        ));
    }
    let mut rb = client.request(method, url);
    if let Some(k) = &route.api_key {
        rb = rb.bearer_auth(k.expose_secret());
    }
    if let Some(b) = body {
        rb = rb
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b);
    }
    match tokio::time::timeout(timeout, rb.send()).await {
        Err(_) => Err(GatewayError::timeout(timeout.as_secs())),
        Ok(Err(e)) => {
            tracing::warn!(model = %route.deployment.model_id, error = %e, "upstream request failed");
            Err(GatewayError::bad_gateway(
                "The model endpoint could not be reached.",
            ))
        }
        Ok(Ok(r)) if r.status().is_redirection() => {
            tracing::warn!(model = %route.deployment.model_id, status = %r.status(), "upstream answered with a redirect; not followed");
            Err(GatewayError::bad_gateway(
                "The model endpoint answered with a redirect, which Gatehouse does not follow.",
            ))
        }
        Ok(Ok(r)) => Ok(r),
    }
}

/// Reads a whole (non-streamed) answer, within `timeout` and `limit` bytes, without the
/// provider key.
pub(super) async fn read_all(
    resp: reqwest::Response,
    timeout: Duration,
    limit: usize,
    redactor: &Redactor,
) -> Result<Bytes, GatewayError> {
    use futures_util::StreamExt;
    let read = async {
        let mut out = Vec::new();
        let mut s = resp.bytes_stream();
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| {
                tracing::warn!(error = %e, "upstream answer broke off");
                GatewayError::bad_gateway("The model endpoint's answer broke off.")
            })?;
            if out.len() + chunk.len() > limit {
                return Err(GatewayError::bad_gateway(
                    "The model endpoint's answer is too large.",
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(redactor.redact(Bytes::from(out)))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(GatewayError::timeout(timeout.as_secs())))
}

/// Finds `usage` in SSE `data:` lines as they pass, without holding the stream back.
#[derive(Debug, Default)]
pub(super) struct UsageSniffer {
    partial: Vec<u8>,
    /// The last usage seen.
    pub usage: Option<Usage>,
}

impl UsageSniffer {
    /// Looks at one chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(i);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut full = std::mem::take(&mut self.partial);
                full.extend_from_slice(line);
                self.line(&full);
            }
        }
        // Only a line that could carry usage is worth keeping across chunks (bounded).
        if self.partial.len() + rest.len() <= 64 * 1024 {
            self.partial.extend_from_slice(rest);
        } else {
            self.partial.clear();
        }
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if !contains(data, b"\"usage\"") {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data.trim_ascii())
            && let Some(u) = Usage::from_answer(&v)
        {
            self.usage = Some(u);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Called once when a streamed answer ends, fails or is abandoned.
pub(super) type OnEnd = Box<dyn FnOnce(Option<Usage>, Option<Vec<u8>>, &'static str) + Send>;

/// The streamed answer: each upstream event is yielded as soon as it is complete.
pub(super) struct Metered {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    idle: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    sniffer: UsageSniffer,
    framer: EventFramer,
    redactor: Redactor,
    log: Option<Vec<u8>>,
    on_end: Option<OnEnd>,
    stop: Option<tokio::sync::oneshot::Receiver<GatewayError>>,
    done: bool,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered").finish_non_exhaustive()
    }
}

const LOG_LIMIT: usize = 1024 * 1024;

impl Metered {
    /// `stop` ends the stream early with an error event (access revoked mid-stream);
    /// `redactor` takes the provider key out.
    pub(super) fn new(
        resp: reqwest::Response,
        timeout: Duration,
        keep_log: bool,
        redactor: Redactor,
        on_end: OnEnd,
        stop: tokio::sync::oneshot::Receiver<GatewayError>,
    ) -> Metered {
        Metered {
            inner: Box::pin(resp.bytes_stream()),
            idle: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            sniffer: UsageSniffer::default(),
            framer: EventFramer::default(),
            redactor,
            log: keep_log.then(Vec::new),
            on_end: Some(on_end),
            stop: Some(stop),
            done: false,
        }
    }

    fn end(&mut self, how: &'static str) {
        self.done = true;
        if let Some(f) = self.on_end.take() {
            f(self.sniffer.usage, self.log.take(), how);
        }
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(stop) = &mut self.stop {
            match Pin::new(stop).poll(cx) {
                Poll::Ready(Ok(e)) => {
                    self.end("revoked");
                    return Poll::Ready(Some(Ok(sse_error(&e))));
                }
                // The watcher is gone: nothing will stop us.
                Poll::Ready(Err(_)) => self.stop = None,
                Poll::Pending => {}
            }
        }
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let deadline = tokio::time::Instant::now() + self.timeout;
                    self.idle.as_mut().reset(deadline);
                    self.sniffer.feed(&chunk);
                    let events = match self.framer.push(&chunk) {
                        Ok(events) => events,
                        Err(e) => {
                            tracing::warn!(error = %e, "upstream stream is not server-sent events");
                            self.end("upstream_error");
                            return Poll::Ready(Some(Ok(sse_error(&GatewayError::bad_gateway(
                                "The model endpoint's stream is not server-sent events.",
                            )))));
                        }
                    };
                    if events.is_empty() {
                        continue; // the rest of the event is still to come
                    }
                    let events = self.redactor.redact(events);
                    if let Some(log) = &mut self.log
                        && log.len() + events.len() <= LOG_LIMIT
                    {
                        log.extend_from_slice(&events);
                    }
                    return Poll::Ready(Some(Ok(events)));
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "upstream stream broke off");
                    self.end("upstream_error");
                    return Poll::Ready(Some(Ok(sse_error(&GatewayError::bad_gateway(
                        "The model endpoint's stream broke off.",
                    )))));
                }
                Poll::Ready(None) => {
                    // An event the upstream did not finish is dropped, as a client's
                    // parser would drop it.
                    if self.framer.holds_part() {
                        tracing::warn!("upstream stream ended in the middle of an event");
                    }
                    self.end("complete");
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if self.idle.as_mut().poll(cx).is_ready() {
                        let secs = self.timeout.as_secs();
                        self.end("upstream_timeout");
                        return Poll::Ready(Some(Ok(sse_error(&GatewayError::timeout(secs)))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if !self.done {
            // The caller went away before the end.
            self.end("client_closed");
        }
    }
}

/// An error as a final SSE event (the status line has already gone out). Only whole
/// upstream events have been passed on, so it is an event of its own.
fn sse_error(e: &GatewayError) -> Bytes {
    Bytes::from(format!("data: {}\n\n", e.body()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_found_across_chunk_boundaries() {
        let mut s = UsageSniffer::default();
        s.feed(b"data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"us");
        assert_eq!(s.usage, None);
        s.feed(b"age\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n");
        assert_eq!(
            s.usage,
            Some(Usage {
                prompt: 3,
                completion: 4,
                total: 7
            })
        );
    }
}
