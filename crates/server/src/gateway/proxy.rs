//! The upstream side: one pooled HTTP client, the provider key injected (the caller's own
//! headers are never forwarded), timeouts mapped to 504 and failures to 502, and streamed
//! answers passed through event by event as they arrive — metered on the way for budgets
//! and audit ([`SseMeter`]: the `usage` report, and the generated text for an estimate when
//! there is none), the usage chunk hidden from a client that did not ask for it, and the
//! record written when the stream ends. A client that goes away does not end the metering:
//! the upstream is read on (for a bounded time) until its usage report arrives. What of an
//! answer reaches the caller (whole events, never the provider key) is
//! [`super::answer`]'s.

use super::Route;
use super::answer::{EventFramer, Redactor};
use super::error::GatewayError;
use crate::AppState;
use crate::metrics::UpstreamErrorKind;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
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
    /// `total_tokens`, or the sum when that is larger (or missing).
    pub total: u64,
}

impl Usage {
    /// Reads `usage` from an answer object; `None` when it has no token count at all.
    pub fn from_answer(v: &serde_json::Value) -> Option<Usage> {
        let u = v.get("usage")?.as_object()?;
        let n = |k: &str| u.get(k).and_then(serde_json::Value::as_u64);
        let (prompt, completion, total) = (
            n("prompt_tokens"),
            n("completion_tokens"),
            n("total_tokens"),
        );
        if prompt.is_none() && completion.is_none() && total.is_none() {
            return None;
        }
        let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        Some(Usage {
            prompt,
            completion,
            total: total.unwrap_or(0).max(prompt.saturating_add(completion)),
        })
    }
}

/// Bytes of text an answer (or a streamed chunk) generated: message or delta contents
/// (strings or text parts), reasoning, refusals, tool-call arguments, and legacy `text`.
pub fn generated_text_bytes(answer: &serde_json::Value) -> u64 {
    use serde_json::Value;
    fn text(v: Option<&Value>) -> u64 {
        match v {
            Some(Value::String(s)) => s.len() as u64,
            Some(Value::Array(parts)) => parts.iter().map(|p| text(p.get("text"))).sum(),
            _ => 0,
        }
    }
    let Some(Value::Array(choices)) = answer.get("choices") else {
        return 0;
    };
    let mut n = 0;
    for c in choices {
        n += text(c.get("text"));
        let Some(m) = c.get("message").or_else(|| c.get("delta")) else {
            continue;
        };
        for k in ["content", "reasoning_content", "reasoning", "refusal"] {
            n += text(m.get(k));
        }
        if let Some(Value::Array(calls)) = m.get("tool_calls") {
            for call in calls {
                n += text(call.get("function").and_then(|f| f.get("arguments")));
            }
        }
        n += text(m.get("function_call").and_then(|f| f.get("arguments")));
    }
    n
}

/// Why an upstream request failed, and whether the upstream may be generating anyway.
#[derive(Debug)]
pub(super) struct UpstreamFailure {
    /// What the caller is told.
    pub error: GatewayError,
    /// The request may have reached the upstream (timeouts, broken connections): it may
    /// be generating tokens we will never see counted.
    pub maybe_generating: bool,
    /// How it failed, for `/metrics`.
    pub kind: UpstreamErrorKind,
}

/// Sends a request to the deployment's upstream and waits (at most `timeout`) for headers.
pub(super) async fn send(
    state: &AppState,
    route: &Route,
    method: reqwest::Method,
    path: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<reqwest::Response, GatewayError> {
    send_metered(state, route, method, path, body, timeout)
        .await
        .map_err(|f| f.error)
}

/// [`send`], saying on failure whether the upstream may have started on the request.
/// Every request is observed for `/metrics`: its time to the answer's head by model, and
/// its failure (a 5xx answer counts as one).
pub(super) async fn send_metered(
    state: &AppState,
    route: &Route,
    method: reqwest::Method,
    path: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<reqwest::Response, UpstreamFailure> {
    let started = std::time::Instant::now();
    let sent = send_unobserved(state, route, method, path, body, timeout).await;
    let kind = match &sent {
        Ok(r) if r.status().is_server_error() => Some(UpstreamErrorKind::ServerError),
        Ok(_) => None,
        Err(f) => Some(f.kind),
    };
    state
        .metrics
        .observe_upstream(&route.deployment.model_id, started.elapsed(), kind);
    sent
}

async fn send_unobserved(
    state: &AppState,
    route: &Route,
    method: reqwest::Method,
    path: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<reqwest::Response, UpstreamFailure> {
    let (client, rules) = (&state.gateway.client, &state.gateway.upstream);
    let url = format!("{}{path}", route.deployment.base_url.trim_end_matches('/'));
    // Refused before sending: nothing reached the upstream.
    let unsent = |error| UpstreamFailure {
        error,
        maybe_generating: false,
        kind: UpstreamErrorKind::Refused,
    };
    let url = reqwest::Url::parse(&url).map_err(|_| {
        unsent(GatewayError::bad_gateway(
            "The model endpoint's URL is not valid.",
        ))
    })?;
    if let Err(e) = rules.check_literal(&url) {
        tracing::warn!(model = %route.deployment.model_id, error = %e, "upstream address refused");
        return Err(unsent(GatewayError::bad_gateway(
            "The model endpoint's address is not allowed.",
        )));
    }
    let Some(client) = client else {
        return Err(unsent(GatewayError::bad_gateway(
            "The model endpoint could not be reached.",
        )));
    };
    let mut rb = client.request(method, url);
    if let Some(k) = route.api_key.as_ref().and_then(|k| k.expose_str()) {
        rb = rb.bearer_auth(k);
    }
    if let Some(b) = body {
        rb = rb
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b);
    }
    match tokio::time::timeout(timeout, rb.send()).await {
        Err(_) => Err(UpstreamFailure {
            error: GatewayError::timeout(timeout.as_secs()),
            maybe_generating: true,
            kind: UpstreamErrorKind::Timeout,
        }),
        Ok(Err(e)) => {
            tracing::warn!(model = %route.deployment.model_id, error = %e, "upstream request failed");
            Err(UpstreamFailure {
                error: GatewayError::bad_gateway("The model endpoint could not be reached."),
                maybe_generating: !e.is_connect(),
                kind: UpstreamErrorKind::Unreachable,
            })
        }
        Ok(Ok(r)) if r.status().is_redirection() => {
            tracing::warn!(model = %route.deployment.model_id, status = %r.status(), "upstream answered with a redirect; not followed");
            Err(unsent(GatewayError::bad_gateway(
                "The model endpoint answered with a redirect, which Gatehouse does not follow.",
            )))
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

/// The longest line held back to find its end (a longer one passes through unexamined).
const LINE_LIMIT: usize = 1024 * 1024;

/// Meters an SSE stream as it passes: the last `usage` reported and the bytes of text
/// generated, from each `data:` line; and, when the client did not ask for usage, takes
/// it out of what the client gets — the usage-only chunk is dropped, a `usage` key in
/// any other chunk removed — so that the client sees the stream it asked for.
#[derive(Debug, Default)]
pub(super) struct SseMeter {
    strip_usage: bool,
    partial: Vec<u8>,
    /// The last usage reported.
    pub usage: Option<Usage>,
    /// The usage came in a chunk of its own (no choices): the final report, not one of
    /// the running totals some servers add to every chunk.
    pub usage_final: bool,
    /// Bytes of generated text seen.
    pub text_bytes: u64,
    /// A usage-only event was dropped: drop the blank line that ends it too.
    skip_blank: bool,
}

/// What becomes of one line.
enum Line {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

impl SseMeter {
    /// `strip_usage`: the client did not ask for the usage report.
    pub fn new(strip_usage: bool) -> SseMeter {
        SseMeter {
            strip_usage,
            ..SseMeter::default()
        }
    }

    /// Looks at one upstream chunk; returns what the client gets of it (the chunk itself
    /// unless usage is taken out, in which case only whole lines are passed on).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if !self.strip_usage {
            self.scan(&chunk, None);
            return chunk;
        }
        let mut out = Vec::with_capacity(chunk.len() + self.partial.len());
        self.scan(&chunk, Some(&mut out));
        Bytes::from(out)
    }

    /// The end of the stream: a last line without its newline.
    pub fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.partial);
        if rest.is_empty() {
            return Bytes::new();
        }
        let mut out = Vec::new();
        let strip = self.strip_usage;
        self.line(&rest, strip.then_some(&mut out));
        Bytes::from(out)
    }

    fn scan(&mut self, chunk: &[u8], mut out: Option<&mut Vec<u8>>) {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(i + 1);
            rest = tail;
            if self.partial.is_empty() {
                self.line(line, out.as_deref_mut());
            } else {
                let mut full = std::mem::take(&mut self.partial);
                full.extend_from_slice(line);
                self.line(&full, out.as_deref_mut());
            }
        }
        if self.partial.len() + rest.len() <= LINE_LIMIT {
            self.partial.extend_from_slice(rest);
        } else {
            // Not a line worth metering: pass on what was held and what came.
            if let Some(out) = out {
                out.append(&mut self.partial);
                out.extend_from_slice(rest);
            }
            self.partial.clear();
        }
    }

    /// One line with its terminator; `out` is where the client's copy goes (when it is
    /// being rewritten).
    fn line(&mut self, line: &[u8], out: Option<&mut Vec<u8>>) {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let content = body.strip_suffix(b"\r").unwrap_or(body);
        let verdict = self.inspect(content);
        let Some(out) = out else { return };
        if content.is_empty() {
            if !std::mem::take(&mut self.skip_blank) {
                out.extend_from_slice(line);
            }
            return;
        }
        self.skip_blank = false;
        match verdict {
            Line::Keep => out.extend_from_slice(line),
            Line::Drop => self.skip_blank = true,
            Line::Replace(json) => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&json);
                out.extend_from_slice(&line[content.len()..]);
            }
        }
    }

    fn inspect(&mut self, content: &[u8]) -> Line {
        let Some(data) = content.strip_prefix(b"data:") else {
            return Line::Keep;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            return Line::Keep;
        }
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) else {
            return Line::Keep;
        };
        self.text_bytes += generated_text_bytes(&v);
        let no_choices = v
            .get("choices")
            .is_none_or(|c| c.as_array().is_some_and(Vec::is_empty));
        if let Some(u) = Usage::from_answer(&v) {
            self.usage = Some(u);
            self.usage_final = no_choices;
        }
        if !self.strip_usage {
            return Line::Keep;
        }
        let Some(obj) = v.as_object_mut() else {
            return Line::Keep;
        };
        let Some(usage) = obj.remove("usage") else {
            return Line::Keep;
        };
        if no_choices && !usage.is_null() {
            return Line::Drop;
        }
        match serde_json::to_vec(&v) {
            Ok(json) => Line::Replace(json),
            Err(_) => Line::Keep,
        }
    }
}

/// How a streamed answer ended, for the charge and the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamEnd {
    /// The usage the upstream reported, if it did.
    pub usage: Option<Usage>,
    /// Bytes of generated text seen.
    pub text_bytes: u64,
    /// The upstream's answer was read to its end (or to its final usage report):
    /// nothing generated went unseen.
    pub finished: bool,
    /// `complete`, `client_closed`, `revoked`, `upstream_error`, `upstream_timeout`.
    pub how: &'static str,
}

/// Called once when a streamed answer ends, fails or is abandoned (with the invocation
/// log, when kept).
pub(super) type OnEnd = Box<dyn FnOnce(StreamEnd, Option<Vec<u8>>) + Send>;

/// The most a stream the client left is read on for its usage report.
pub(super) const DRAIN_LIMIT: Duration = Duration::from_secs(10);

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The streamed answer: each upstream event is yielded as soon as it is complete.
pub(super) struct Metered {
    inner: Upstream,
    idle: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    meter: SseMeter,
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
    /// `strip_usage`: the client did not ask for the usage report; `redactor` takes the
    /// provider key out.
    pub(super) fn new(
        resp: reqwest::Response,
        timeout: Duration,
        keep_log: bool,
        strip_usage: bool,
        redactor: Redactor,
        on_end: OnEnd,
        stop: tokio::sync::oneshot::Receiver<GatewayError>,
    ) -> Metered {
        Metered {
            inner: Box::pin(resp.bytes_stream()),
            idle: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            meter: SseMeter::new(strip_usage),
            framer: EventFramer::default(),
            redactor,
            log: keep_log.then(Vec::new),
            on_end: Some(on_end),
            stop: Some(stop),
            done: false,
        }
    }

    fn end(&mut self, finished: bool, how: &'static str) {
        self.done = true;
        if let Some(f) = self.on_end.take() {
            f(
                StreamEnd {
                    usage: self.meter.usage,
                    text_bytes: self.meter.text_bytes,
                    finished: finished || self.meter.usage_final,
                    how,
                },
                self.log.take(),
            );
        }
    }

    /// The client will get nothing more: read the upstream on in the background, for at
    /// most [`DRAIN_LIMIT`], until its final usage report or its end, then end.
    fn abandon(&mut self, how: &'static str) {
        self.done = true;
        let Some(on_end) = self.on_end.take() else {
            return;
        };
        let handle = tokio::runtime::Handle::try_current();
        let inner = std::mem::replace(&mut self.inner, Box::pin(futures_util::stream::empty()));
        let mut meter = std::mem::take(&mut self.meter);
        let log = self.log.take();
        let idle = self.timeout;
        let drained = async move {
            let finished = drain(inner, &mut meter, idle).await;
            let end = StreamEnd {
                usage: meter.usage,
                text_bytes: meter.text_bytes,
                finished: finished || meter.usage_final,
                how,
            };
            on_end(end, log);
        };
        match handle {
            Ok(h) => {
                h.spawn(drained);
            }
            Err(_) => tracing::error!("no runtime to finish metering an abandoned stream"),
        }
    }
}

/// Reads `inner` until its final usage report or its end, for at most [`DRAIN_LIMIT`]
/// (and at most `idle` between chunks); whether it got there.
async fn drain(mut inner: Upstream, meter: &mut SseMeter, idle: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    while !meter.usage_final {
        let until = deadline.min(tokio::time::Instant::now() + idle);
        match tokio::time::timeout_at(until, inner.next()).await {
            Ok(Some(Ok(chunk))) => {
                meter.feed(chunk);
            }
            Ok(None) => {
                meter.finish();
                return true;
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
    true
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
                    self.abandon("revoked");
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
                    // Metered as it came (usage taken out when the client did not ask for
                    // it), then passed on in whole events without the provider key.
                    let out = self.meter.feed(chunk);
                    let events = match self.framer.push(&out) {
                        Ok(events) => events,
                        Err(e) => {
                            tracing::warn!(error = %e, "upstream stream is not server-sent events");
                            self.end(false, "upstream_error");
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
                    self.end(false, "upstream_error");
                    return Poll::Ready(Some(Ok(sse_error(&GatewayError::bad_gateway(
                        "The model endpoint's stream broke off.",
                    )))));
                }
                Poll::Ready(None) => {
                    // A last line without its newline is metered (it may hold the
                    // usage); an event the upstream did not finish is dropped, as a
                    // client's parser would drop it.
                    let rest = self.meter.finish();
                    if self.framer.holds_part() || !rest.is_empty() {
                        tracing::warn!("upstream stream ended in the middle of an event");
                    }
                    self.end(true, "complete");
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if self.idle.as_mut().poll(cx).is_ready() {
                        let secs = self.timeout.as_secs();
                        self.end(false, "upstream_timeout");
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
            self.abandon("client_closed");
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

    fn feed_all(m: &mut SseMeter, chunks: &[&str]) -> String {
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&m.feed(Bytes::copy_from_slice(c.as_bytes())));
        }
        out.extend_from_slice(&m.finish());
        String::from_utf8(out).unwrap()
    }

    const USAGE: Usage = Usage {
        prompt: 3,
        completion: 4,
        total: 7,
    };

    #[test]
    fn usage_is_found_across_chunk_boundaries_and_passed_on_when_asked_for() {
        let chunks = [
            "data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"us",
            "age\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n",
        ];
        let mut m = SseMeter::new(false);
        assert_eq!(feed_all(&mut m, &chunks), chunks.concat());
        assert_eq!((m.usage, m.text_bytes), (Some(USAGE), 5));
    }

    #[test]
    fn usage_is_taken_out_for_a_client_that_did_not_ask() {
        // OpenAI's shape: `usage: null` in every chunk, then a usage-only chunk; CRLF and
        // a comment line on the way; a server that puts usage in its last content chunk.
        let mut m = SseMeter::new(true);
        let got = feed_all(
            &mut m,
            &[
                ": keep-alive\r\n\r\ndata: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\r\n\r\n",
                "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n",
                "\ndata: [DONE]\n\n",
            ],
        );
        assert_eq!(
            got,
            ": keep-alive\r\n\r\ndata: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\r\n\r\ndata: [DONE]\n\n"
        );
        assert_eq!((m.usage, m.text_bytes), (Some(USAGE), 2));
        let mut m = SseMeter::new(true);
        let got = feed_all(
            &mut m,
            &[
                "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"total_tokens\":9}}\n\ndata: [DONE]",
            ],
        );
        assert_eq!(
            got,
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]"
        );
        assert_eq!(m.usage.map(|u| u.total), Some(9));
    }

    #[test]
    fn running_totals_are_not_the_final_report() {
        let mut m = SseMeter::new(false);
        feed_all(
            &mut m,
            &[
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"total_tokens\":4}}\n\n",
            ],
        );
        assert_eq!((m.usage.map(|u| u.total), m.usage_final), (Some(4), false));
        feed_all(
            &mut m,
            &["data: {\"choices\":[],\"usage\":{\"total_tokens\":5}}\n\n"],
        );
        assert_eq!((m.usage.map(|u| u.total), m.usage_final), (Some(5), true));
    }

    #[test]
    fn what_is_not_json_passes_untouched() {
        let mut m = SseMeter::new(true);
        let text =
            "event: ping\ndata: not json \"usage\"\n\ndata: {\"choices\":[{}],\"usage\": 5}\n\n";
        assert_eq!(
            feed_all(&mut m, &[text]),
            "event: ping\ndata: not json \"usage\"\n\ndata: {\"choices\":[{}]}\n\n"
        );
        assert_eq!(m.usage, None);
    }

    #[test]
    fn generated_text_counts_every_kind_of_output() {
        let answer = serde_json::json!({"choices": [
            {"message": {"content": "abcd", "reasoning_content": "xy",
                         "tool_calls": [{"function": {"name": "f", "arguments": "{\"a\":1}"}}]}},
            {"message": {"content": [{"type": "text", "text": "123"}], "refusal": null}},
            {"text": "legacy"}
        ]});
        assert_eq!(generated_text_bytes(&answer), 4 + 2 + 7 + 3 + 6);
        assert_eq!(Usage::from_answer(&serde_json::json!({"usage": {}})), None);
        assert_eq!(
            Usage::from_answer(
                &serde_json::json!({"usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 1}})
            ),
            Some(Usage {
                prompt: 5,
                completion: 6,
                total: 11
            })
        );
    }
}
