//! Serving HTTP/1.1 connections so that slow, idle or abandoned clients cannot hold a
//! listener: `axum::serve` has no header, body or idle timeouts and no connection limit,
//! so a few hundred silent or trickling sockets were enough to stop a server answering.
//!
//! Each connection is watched ([`Conn`]): its reads mark when the next request's first
//! byte came, its requests in flight are counted (until the response body is done), and
//! a watchdog in the connection's task closes it when
//! - it has sent part of a request head for longer than the header timeout (slowloris),
//! - it has had nothing in flight and sent nothing for longer than the idle timeout
//!   (a fresh connection that never speaks, or a kept-alive one);
//!
//! a request body not read whole within the body timeout of its head fails the read
//! ([`BodyTimeout`]; the handlers answer 408). At most `max_connections` are served per
//! listener: at the limit, the connection that has been idle (nothing in flight) the
//! longest is closed to make room — so sockets that only wait cannot keep a well-behaved
//! client out — and when every connection is busy, accepting waits (the kernel's backlog
//! holds the rest).
//!
//! A request head hyper refuses itself (too many or too large header lines: 431; a
//! malformed request line or header: 400) is answered by hyper before any route runs, with
//! an empty body, and hyper has no hook to change that. The socket wrapper recognises that
//! answer as it is written (a bare 400, 414 or 431 head with `content-length: 0` and no
//! content type, which no route answers) and writes the caller's protocol's error instead
//! ([`RefusedHead`], chosen by the path of the last request line read).

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Response, StatusCode};
use axum::serve::Listener;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time from a request's first byte to the end of its head.
    pub header_read: Duration,
    /// Time from a request's head to the end of its body.
    pub body_read: Duration,
    /// Time a connection may sit with no request in flight and nothing sent.
    pub idle: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// The answer to a request head the HTTP parser refused (status 400, 414 or 431), given the
/// path of its request line when that could be read.
pub type RefusedHead = fn(path: Option<&str>, status: StatusCode) -> Response<String>;

/// The request body did not arrive whole within [`Limits::body_read`].
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// True when a body read failed because of [`BodyTimeout`].
pub fn is_body_timeout(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<BodyTimeout>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// What the watchdog and the limit know of one connection.
#[derive(Debug)]
struct Conn {
    epoch: Instant,
    /// Requests in flight (head received, response body not yet done).
    busy: AtomicUsize,
    /// Milliseconds since `epoch` of the last change: accepted, a response done, or the
    /// first byte of the next request.
    since_ms: AtomicU64,
    /// Bytes of the next request have arrived (reset when a response is done).
    reading: AtomicBool,
    /// Chosen to make room for a new connection.
    evicted: AtomicBool,
    /// The first bytes of the request being read (for [`RefusedHead`]).
    head_start: Mutex<Vec<u8>>,
    changed: Notify,
}

/// Bytes of a request's start kept to find the path of a refused request line.
const HEAD_START: usize = 256;

impl Conn {
    fn new() -> Conn {
        Conn {
            epoch: Instant::now(),
            busy: AtomicUsize::new(0),
            since_ms: AtomicU64::new(0),
            reading: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            head_start: Mutex::new(Vec::new()),
            changed: Notify::new(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_ms.store(ms, Ordering::Release);
    }

    fn since(&self) -> Instant {
        self.epoch + Duration::from_millis(self.since_ms.load(Ordering::Acquire))
    }

    fn on_read(&self, bytes: &[u8]) {
        // A read that starts with a request line starts a request (hyper may still hold
        // the previous one's response when a kept-alive client sends the next).
        if request_path(bytes).is_some()
            && let Ok(mut start) = self.head_start.lock()
        {
            start.clear();
            start.extend_from_slice(&bytes[..bytes.len().min(HEAD_START)]);
        }
        if self.busy.load(Ordering::Acquire) == 0 && !self.reading.swap(true, Ordering::AcqRel) {
            self.touch();
            self.changed.notify_one();
        }
    }

    /// The path of the request line being read, when its start was seen.
    fn path_being_read(&self) -> Option<String> {
        let start = self.head_start.lock().ok()?;
        request_path(&start).map(str::to_owned)
    }

    fn start_request(self: &Arc<Self>) -> InFlight {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(Arc::clone(self))
    }

    /// When the watchdog closes the connection unless something changes; `None` while a
    /// request is in flight.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let wait = if self.reading.load(Ordering::Acquire) {
            limits.header_read
        } else {
            limits.idle
        };
        Some(self.since() + wait)
    }

    /// Resolves when the connection must be closed.
    async fn watchdog(&self, limits: Limits) {
        loop {
            if self.evicted.load(Ordering::Acquire) {
                if self.busy.load(Ordering::Acquire) == 0 {
                    return;
                }
                // A request started after it was chosen: it stays.
                self.evicted.store(false, Ordering::Release);
            }
            let changed = self.changed.notified();
            match self.deadline(&limits) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// One request in flight; dropped when its response body is done.
#[derive(Debug)]
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let c = &self.0;
        if c.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            c.reading.store(false, Ordering::Release);
            c.touch();
        }
        c.changed.notify_one();
    }
}

/// The listener's connections, for the limit.
#[derive(Debug, Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    freed: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().map_or(0, |c| c.len())
    }

    /// Closes the connection idle the longest; false when every one is busy.
    fn evict_idle(&self) -> bool {
        let Ok(conns) = self.conns.lock() else {
            return false;
        };
        let victim = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0 && !c.evicted.load(Ordering::Acquire))
            .min_by_key(|c| c.since());
        match victim {
            Some(c) => {
                c.evicted.store(true, Ordering::Release);
                c.changed.notify_one();
                true
            }
            None => false,
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut c) = self.conns.lock() {
            c.remove(&id);
        }
        self.freed.notify_waiters();
    }
}

/// The path in a request line (`METHOD SP /target SP ...`, after optional empty lines),
/// when `start` begins with one.
fn request_path(start: &[u8]) -> Option<&str> {
    let line = start
        .split(|&b| b == b'\n')
        .find(|l| !l.trim_ascii().is_empty())?;
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) || !target.starts_with(b"/")
    {
        return None;
    }
    let path = target.split(|&b| b == b'?').next()?;
    std::str::from_utf8(path).ok()
}

/// Where hyper's own answer to a refused head starts in `written`, and its status: a bare
/// `HTTP/1.1 400|414|431` head with `content-length: 0` and no content type at the end of
/// the write (anything before it is the end of an earlier response).
fn hyper_refusal(written: &[u8]) -> Option<(usize, StatusCode)> {
    const MARK: &[u8] = b"HTTP/1.1 ";
    if !written.ends_with(b"\r\n\r\n") {
        return None;
    }
    let at = written.windows(MARK.len()).rposition(|w| w == MARK)?;
    let head = written[at..].to_ascii_lowercase();
    let status = StatusCode::from_bytes(head.get(MARK.len()..MARK.len() + 3)?).ok()?;
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    let bare = head.len() <= 256
        && contains(b"\r\ncontent-length: 0\r\n")
        && !contains(b"\r\ncontent-type:");
    (bare
        && matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::URI_TOO_LONG
                | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ))
    .then_some((at, status))
}

/// `resp` as HTTP/1.1 bytes, closing the connection.
fn encode_closing(resp: &Response<String>) -> Vec<u8> {
    let status = resp.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in resp.headers() {
        if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::CONNECTION {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            resp.body().len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(resp.body().as_bytes());
    out
}

/// The socket, noting when bytes arrive, and writing [`RefusedHead`]'s answer in place of
/// hyper's empty one.
struct Watched<T> {
    io: T,
    conn: Arc<Conn>,
    refused: RefusedHead,
    /// Bytes taken from hyper (the answer to a refused head) not yet written.
    pending: Vec<u8>,
}

impl<T: AsyncWrite + Unpin> Watched<T> {
    /// Writes `pending` out; ready when it is empty.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.on_read(&buf.filled()[before..]);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        if let Some((at, status)) = hyper_refusal(buf) {
            let path = this.conn.path_being_read();
            this.pending.extend_from_slice(&buf[..at]);
            this.pending
                .extend(encode_closing(&(this.refused)(path.as_deref(), status)));
            // Taken whole; written out by the flush hyper makes next.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(f) => Poll::Ready(f.map(|r| r.map_err(Into::into))),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that ends its request's [`InFlight`] when it is done (or dropped).
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` resolves, then lets the
/// requests in flight finish; heads the HTTP parser refuses are answered by `refused`.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: Limits,
    refused: RefusedHead,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_id = 0u64;
    let max = limits.max_connections.max(1);
    loop {
        // Room first: close the longest-idle connection, or wait for one to end.
        while registry.len() >= max {
            let freed = registry.freed.notified();
            if !registry.evict_idle() {
                tokio::select! {
                    () = freed => {}
                    () = &mut shutdown => return drain(registry, stop_tx).await,
                }
            } else {
                // Give the evicted connection's task a moment to go.
                tokio::select! {
                    () = freed => {}
                    () = tokio::time::sleep(Duration::from_millis(50)) => break,
                }
            }
        }
        let (io, peer) = tokio::select! {
            x = listener.accept() => x,
            () = &mut shutdown => return drain(registry, stop_tx).await,
        };
        next_id += 1;
        let id = next_id;
        let conn = Arc::new(Conn::new());
        if let Ok(mut c) = registry.conns.lock() {
            c.insert(id, Arc::clone(&conn));
        }
        let (app, registry, mut stop) = (app.clone(), Arc::clone(&registry), stop_rx.clone());
        tokio::spawn(async move {
            let watched = Watched {
                io,
                conn: Arc::clone(&conn),
                refused,
                pending: Vec::new(),
            };
            serve_connection(watched, peer, app, conn, limits, &mut stop).await;
            registry.remove(id);
        });
    }
}

async fn drain(registry: Arc<Registry>, stop: watch::Sender<bool>) -> std::io::Result<()> {
    let _ = stop.send(true);
    while registry.len() > 0 {
        let freed = registry.freed.notified();
        if registry.len() == 0 {
            break;
        }
        freed.await;
    }
    Ok(())
}

async fn serve_connection<I>(
    watched: Watched<I>,
    peer: SocketAddr,
    app: Router,
    conn: Arc<Conn>,
    limits: Limits,
    stop: &mut watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_conn = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = service_conn.start_request();
        let app = app.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let body = Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(limits.body_read)),
                limit: limits.body_read,
            });
            let resp = tower::ServiceExt::oneshot(app, hyper::Request::from_parts(parts, body))
                .await
                .unwrap_or_else(|never| match never {});
            Ok::<_, std::convert::Infallible>(resp.map(|b| {
                Body::new(Tracked {
                    inner: b,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Gatehouse's own watchdog times header reads (hyper's needs a timer and also bounds
    // kept-alive connections by the header timeout).
    builder.header_read_timeout(None);
    let http = builder.serve_connection(TokioIo::new(watched), service);
    let mut http = std::pin::pin!(http);
    let mut stopping = *stop.borrow();
    if stopping {
        http.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn.watchdog(limits) => {
                tracing::debug!(%peer, "connection closed: idle, slow or evicted");
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    http.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
