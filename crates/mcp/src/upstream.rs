//! Gatehouse as an MCP *client* of the operators' servers: streamable HTTP (headers opened
//! from the store injected on every request, never the caller's) and stdio (a program
//! Gatehouse starts, with only `PATH` and its sealed environment, and starts again when it
//! exits).
//!
//! One upstream session per server, shared by every caller: the server is the operator's,
//! and each caller's rights are decided by Gatehouse before anything is sent. A session the
//! upstream forgot (HTTP 404 with a session id) is opened again once.

use crate::protocol::PROTOCOL_VERSIONS;
use gatehouse_store::Secret;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// How long one upstream request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest upstream answer read (one JSON-RPC message).
pub const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Pause before a stdio program that exited is started again.
const RESTART_DELAY: Duration = Duration::from_millis(250);

/// Why an upstream request failed (the message is shown to callers: no secret in it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Could not connect or send.
    #[error("cannot reach the upstream MCP server: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("the upstream MCP server did not answer within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// An answer that is not MCP.
    #[error("the upstream MCP server answered with something that is not MCP: {0}")]
    Protocol(String),
    /// The program exited (it is being started again).
    #[error("the upstream MCP server's program exited; it is being restarted")]
    Exited,
}

/// How to reach one upstream, with its secrets opened.
#[derive(Debug)]
pub enum UpstreamSpec {
    /// Streamable HTTP.
    Http {
        /// The endpoint.
        url: String,
        /// Headers to inject (values opened from the store).
        headers: Vec<(String, Secret)>,
    },
    /// A program.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its environment (besides `PATH`).
        env: Vec<(String, Secret)>,
    },
}

/// A connection to one upstream server.
#[derive(Debug)]
pub enum Upstream {
    /// Streamable HTTP.
    Http(HttpUpstream),
    /// A supervised program.
    Stdio(Arc<StdioUpstream>),
}

impl Upstream {
    /// Connects lazily: nothing is sent or started until the first request.
    pub fn new(spec: UpstreamSpec, client: reqwest::Client) -> Upstream {
        match spec {
            UpstreamSpec::Http { url, headers } => Upstream::Http(HttpUpstream {
                url,
                headers,
                client,
                session: tokio::sync::Mutex::new(None),
                next_id: AtomicI64::new(1),
            }),
            UpstreamSpec::Stdio { command, args, env } => {
                Upstream::Stdio(Arc::new_cyclic(|me| StdioUpstream {
                    me: me.clone(),
                    command,
                    args,
                    env,
                    conn: tokio::sync::Mutex::new(None),
                    starts: AtomicU64::new(0),
                }))
            }
        }
    }

    /// Sends a request and returns the upstream's JSON-RPC response object (with `result`
    /// or `error`).
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let work = async {
            match self {
                Upstream::Http(h) => h.request(method, params).await,
                Upstream::Stdio(s) => s.request(method, params).await,
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    /// Every tool the upstream lists (following `nextCursor`, at most 50 pages).
    pub async fn list_tools(&self) -> Result<Vec<Value>, UpstreamError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..50 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let answer = self.request("tools/list", params).await?;
            let result = answer.get("result").ok_or_else(|| {
                UpstreamError::Protocol(format!(
                    "tools/list failed: {}",
                    answer
                        .get("error")
                        .map(Value::to_string)
                        .unwrap_or_default()
                ))
            })?;
            let page = result
                .get("tools")
                .and_then(Value::as_array)
                .ok_or_else(|| UpstreamError::Protocol("tools/list without tools".into()))?;
            tools.extend(page.iter().cloned());
            cursor = result
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                return Ok(tools);
            }
        }
        Err(UpstreamError::Protocol(
            "tools/list pages without end".into(),
        ))
    }

    /// How many times the stdio program was started (0 for HTTP).
    pub fn starts(&self) -> u64 {
        match self {
            Upstream::Http(_) => 0,
            Upstream::Stdio(s) => s.starts.load(Ordering::Relaxed),
        }
    }
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSIONS[0],
        "capabilities": {},
        "clientInfo": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// The upstream's answer to `initialize`, checked.
fn check_initialized(answer: &Value) -> Result<String, UpstreamError> {
    let version = answer
        .get("result")
        .and_then(|r| r.get("protocolVersion"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            UpstreamError::Protocol(format!(
                "initialize failed: {}",
                answer
                    .get("error")
                    .map(Value::to_string)
                    .unwrap_or_default()
            ))
        })?;
    Ok(version.to_owned())
}

#[derive(Debug, Clone)]
struct HttpSession {
    id: Option<String>,
    protocol: String,
}

/// A streamable-HTTP upstream.
#[derive(Debug)]
pub struct HttpUpstream {
    url: String,
    headers: Vec<(String, Secret)>,
    client: reqwest::Client,
    session: tokio::sync::Mutex<Option<HttpSession>>,
    next_id: AtomicI64,
}

impl HttpUpstream {
    async fn request(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        for attempt in 0..2 {
            let session = self.session().await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            match self.post(&msg, Some(&session)).await? {
                Posted::Answer(v) => return Ok(v),
                Posted::SessionGone if attempt == 0 => {
                    *self.session.lock().await = None;
                }
                Posted::SessionGone | Posted::Accepted => break,
            }
        }
        Err(UpstreamError::Protocol(format!("no answer to {method}")))
    }

    async fn session(&self) -> Result<HttpSession, UpstreamError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": initialize_params()});
        let (answer, session_id) = self.post_initialize(&msg).await?;
        let session = HttpSession {
            id: session_id,
            protocol: check_initialized(&answer)?,
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(&note, Some(&session)).await?;
        *guard = Some(session.clone());
        Ok(session)
    }

    fn builder(&self, session: Option<&HttpSession>) -> reqwest::RequestBuilder {
        let mut b = self
            .client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(s) = session {
            b = b.header("mcp-protocol-version", s.protocol.as_str());
            if let Some(id) = &s.id {
                b = b.header("mcp-session-id", id.as_str());
            }
        }
        for (name, value) in &self.headers {
            b = b.header(name.as_str(), value.expose());
        }
        b
    }

    async fn post_initialize(&self, msg: &Value) -> Result<(Value, Option<String>), UpstreamError> {
        let resp = self
            .builder(None)
            .body(msg.to_string())
            .send()
            .await
            .map_err(|e| UpstreamError::Unreachable(describe_reqwest(&e)))?;
        let session_id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match read_answer(resp, msg.get("id")).await? {
            Posted::Answer(v) => Ok((v, session_id)),
            _ => Err(UpstreamError::Protocol("no answer to initialize".into())),
        }
    }

    async fn post(
        &self,
        msg: &Value,
        session: Option<&HttpSession>,
    ) -> Result<Posted, UpstreamError> {
        let resp = self
            .builder(session)
            .body(msg.to_string())
            .send()
            .await
            .map_err(|e| UpstreamError::Unreachable(describe_reqwest(&e)))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND
            && session.is_some_and(|s| s.id.is_some())
        {
            return Ok(Posted::SessionGone);
        }
        read_answer(resp, msg.get("id")).await
    }
}

/// A reqwest error without the URL (it may carry a token in its query).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection refused or failed"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    kind.to_owned()
}

enum Posted {
    Answer(Value),
    Accepted,
    SessionGone,
}

/// Reads the answer to a POST: a JSON body, or an SSE stream read until the response with
/// `id` arrives (other events — notifications, server requests — are skipped).
async fn read_answer(resp: reqwest::Response, id: Option<&Value>) -> Result<Posted, UpstreamError> {
    use futures_util::StreamExt as _;
    let status = resp.status();
    if status == reqwest::StatusCode::ACCEPTED && id.is_none() {
        return Ok(Posted::Accepted);
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !status.is_success() {
        return Err(UpstreamError::Protocol(format!(
            "HTTP status {}",
            status.as_u16()
        )));
    }
    if id.is_none() {
        return Ok(Posted::Accepted);
    }
    if content_type.starts_with("text/event-stream") {
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| UpstreamError::Unreachable(describe_reqwest(&e)))?;
            buf.extend_from_slice(&chunk);
            if buf.len() > MAX_ANSWER_BYTES {
                return Err(UpstreamError::Protocol("answer too large".into()));
            }
            while let Some(end) = event_end(&buf) {
                let event: Vec<u8> = buf.drain(..end.1).collect();
                if let Some(v) = event_data(&event[..end.0])
                    && v.get("id") == id
                    && (v.get("result").is_some() || v.get("error").is_some())
                {
                    return Ok(Posted::Answer(v));
                }
            }
        }
        Err(UpstreamError::Protocol(
            "the event stream ended without an answer".into(),
        ))
    } else {
        let body = resp
            .bytes()
            .await
            .map_err(|e| UpstreamError::Unreachable(describe_reqwest(&e)))?;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(UpstreamError::Protocol("answer too large".into()));
        }
        serde_json::from_slice(&body)
            .map(Posted::Answer)
            .map_err(|e| UpstreamError::Protocol(format!("invalid JSON: {e}")))
    }
}

/// The end of the first complete SSE event in `buf`: (end of its text, end including the
/// blank line).
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    for (i, w) in buf.windows(2).enumerate() {
        if w == b"\n\n" {
            return Some((i, i + 2));
        }
        if i + 4 <= buf.len() && &buf[i..i + 4] == b"\r\n\r\n" {
            return Some((i, i + 4));
        }
    }
    None
}

/// The JSON of an event's `data:` lines.
fn event_data(event: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(event).ok()?;
    let mut data = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    serde_json::from_str(&data).ok()
}

/// A program Gatehouse starts and speaks MCP to over its standard input and output.
#[derive(Debug)]
pub struct StdioUpstream {
    me: Weak<StdioUpstream>,
    command: String,
    args: Vec<String>,
    env: Vec<(String, Secret)>,
    conn: tokio::sync::Mutex<Option<Arc<StdioConn>>>,
    starts: AtomicU64,
}

type Pending = Mutex<HashMap<i64, oneshot::Sender<Value>>>;

#[derive(Debug)]
struct StdioConn {
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: Arc<Pending>,
    alive: Arc<AtomicBool>,
    next_id: AtomicI64,
    pid: Option<u32>,
    /// Dropping it ends the program.
    _kill: oneshot::Sender<()>,
}

impl StdioUpstream {
    async fn request(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let conn = self.connection().await?;
        conn.call(method, params).await
    }

    /// The process id of the running program, if any.
    pub async fn pid(&self) -> Option<u32> {
        self.conn
            .lock()
            .await
            .as_ref()
            .filter(|c| c.alive.load(Ordering::Relaxed))
            .and_then(|c| c.pid)
    }

    async fn connection(&self) -> Result<Arc<StdioConn>, UpstreamError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.alive.load(Ordering::Relaxed)
        {
            return Ok(Arc::clone(c));
        }
        *guard = None;
        let conn = Arc::new(self.start()?);
        let answer = conn.call("initialize", initialize_params()).await?;
        check_initialized(&answer)?;
        conn.notify("notifications/initialized").await?;
        *guard = Some(Arc::clone(&conn));
        Ok(conn)
    }

    fn start(&self) -> Result<StdioConn, UpstreamError> {
        let mut cmd = tokio::process::Command::new(&self.command);
        cmd.args(&self.args)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in &self.env {
            match v.expose_str() {
                Some(text) => {
                    cmd.env(k, text);
                }
                None => {
                    return Err(UpstreamError::Unreachable(format!(
                        "environment value of {k} is not UTF-8"
                    )));
                }
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            UpstreamError::Unreachable(format!("cannot start {}: {}", self.command, e.kind()))
        })?;
        self.starts.fetch_add(1, Ordering::Relaxed);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(UpstreamError::Unreachable("no pipes to the program".into()));
        };
        let pid = child.id();
        let pending: Arc<Pending> = Arc::new(Mutex::new(HashMap::new()));
        let alive = Arc::new(AtomicBool::new(true));
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        if let Some(stderr) = child.stderr.take() {
            let command = self.command.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line: String = line.chars().take(1000).collect();
                    tracing::info!(program = %command, "{line}");
                }
            });
        }
        tokio::spawn(supervise(
            child,
            stdout,
            Arc::clone(&pending),
            Arc::clone(&alive),
            kill_rx,
            self.me.clone(),
        ));
        Ok(StdioConn {
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            alive,
            next_id: AtomicI64::new(1),
            pid,
            _kill: kill_tx,
        })
    }
}

impl StdioConn {
    async fn write(&self, msg: &Value) -> Result<(), UpstreamError> {
        let mut line = msg.to_string();
        line.push('\n');
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|_| UpstreamError::Exited)?;
        stdin.flush().await.map_err(|_| UpstreamError::Exited)
    }

    async fn notify(&self, method: &str) -> Result<(), UpstreamError> {
        self.write(&json!({"jsonrpc": "2.0", "method": method}))
            .await
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(e) = self.write(&msg).await {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            return Err(e);
        }
        // The sender is dropped (an error here) when the program exits.
        rx.await.map_err(|_| UpstreamError::Exited)
    }
}

/// Reads the program's answers until it exits (or the upstream is dropped), then starts it
/// again while the upstream is still in use.
async fn supervise(
    mut child: tokio::process::Child,
    stdout: tokio::process::ChildStdout,
    pending: Arc<Pending>,
    alive: Arc<AtomicBool>,
    mut kill: oneshot::Receiver<()>,
    upstream: Weak<StdioUpstream>,
) {
    let mut lines = BufReader::new(stdout).lines();
    loop {
        tokio::select! {
            _ = &mut kill => {
                let _ = child.kill().await;
                break;
            }
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                let answer = v.get("result").is_some() || v.get("error").is_some();
                if answer && let Some(id) = v.get("id").and_then(Value::as_i64) {
                    let tx = pending.lock().ok().and_then(|mut p| p.remove(&id));
                    if let Some(tx) = tx {
                        let _ = tx.send(v);
                    }
                }
                // Notifications and requests from the program are not read: Gatehouse
                // declares no client capabilities, so a server has nothing to ask of it.
            }
        }
    }
    alive.store(false, Ordering::Relaxed);
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
    let status = child.wait().await;
    // The upstream gone (server removed or changed): its program stays ended.
    let Some(up) = upstream.upgrade() else { return };
    tracing::warn!(program = %up.command, status = ?status.ok(), "MCP server program exited; starting it again");
    drop(up);
    tokio::time::sleep(RESTART_DELAY).await;
    if let Some(up) = upstream.upgrade()
        && let Err(e) = up.connection().await
    {
        tracing::warn!(program = %up.command, error = %e, "MCP server program could not be started again; retrying on the next call");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_sse_events() {
        let buf = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\nrest";
        let (text_end, end) = event_end(buf).unwrap();
        assert_eq!(&buf[end..], b"rest");
        let v = event_data(&buf[..text_end]).unwrap();
        assert_eq!(v["id"], 1);
        assert!(event_end(b"data: partial").is_none());
    }
}
