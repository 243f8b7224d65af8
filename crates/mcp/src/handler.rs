//! `/mcp/NAME`: MCP's streamable HTTP transport, server side.
//!
//! POST carries one JSON-RPC message. Gatehouse answers `initialize` and `ping` itself
//! (for any authenticated caller), decides `tools/list` and `tools/call`, and refuses every
//! other method (it declares only the `tools` capability). Answers are JSON, or one SSE
//! event for a client that accepts only `text/event-stream`. Gatehouse is stateless toward
//! the client: it hands out an `Mcp-Session-Id` at `initialize` (recorded in the audit), and
//! decides every request on its own credentials, so any node can serve any request. GET
//! (a server-initiated stream) is 405; DELETE ends nothing and answers 204.

use crate::gateway::{ServerEntry, ToolState};
use crate::protocol::{self, Incoming, RpcError};
use crate::tools::{self, ARGUMENT_PREFIX};
use crate::{McpAuditRecord, McpHost, Principal, mcp_arn};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use gatehouse_pipeline::origin::ListenerInfo;
use gatehouse_policy::ContextValue;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The largest request body read (one JSON-RPC message with its arguments).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The MCP face's routes, merged into the server's router.
pub fn routes<H: McpHost>() -> Router<Arc<H>> {
    use axum::routing::{any, post};
    Router::new()
        .route(
            "/mcp/{name}",
            post(handle::<H>)
                .get(stream_not_offered)
                .delete(end_session)
                .fallback(method_not_allowed),
        )
        .route("/mcp", any(unknown_server))
        .route("/mcp/", any(unknown_server))
        .route("/mcp/{name}/", any(unknown_server))
        .route("/mcp/{name}/{*rest}", any(unknown_server))
}

/// What one request builds up on its way.
struct Exchange<'a, H: McpHost> {
    host: &'a H,
    call: H::Call,
    started: Instant,
    record: McpAuditRecord,
    sse: bool,
}

impl<H: McpHost> Exchange<'_, H> {
    /// Answers with a JSON-RPC message and writes the record; 503 when the record cannot be
    /// queued (nothing is answered that is not recorded).
    fn answer(mut self, status: StatusCode, body: Value, session: Option<&str>) -> Response {
        self.record.status = status.as_u16();
        self.record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        if !self.host.record(&self.call, &self.record) {
            tracing::error!("audit queue full; MCP request refused");
            let e = RpcError::new(
                protocol::INTERNAL_ERROR,
                "Gatehouse cannot record the request now; try again",
            );
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                &protocol::error(None, &e),
                false,
                None,
            );
        }
        message(status, &body, self.sse, session)
    }

    fn fail(mut self, status: StatusCode, id: Option<&Value>, e: RpcError, code: &str) -> Response {
        self.record.error_code = Some(code.to_owned());
        self.answer(status, protocol::error(id, &e), None)
    }

    fn decide(
        &mut self,
        action: &str,
        resource: &str,
        keys: &[(String, ContextValue)],
    ) -> crate::Verdict {
        let v = self.host.decide(&self.call, action, resource, keys, None);
        self.record.decision = v.decision.clone();
        self.record.statement = v.statement.clone();
        v
    }
}

fn message(status: StatusCode, body: &Value, sse: bool, session: Option<&str>) -> Response {
    let mut resp = if sse {
        let text = format!("event: message\ndata: {body}\n\n");
        (status, [(header::CONTENT_TYPE, "text/event-stream")], text).into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    };
    if let Some(s) = session
        && let Ok(v) = HeaderValue::from_str(s)
    {
        resp.headers_mut().insert("mcp-session-id", v);
    }
    resp
}

/// A client that accepts only an event stream gets one; JSON otherwise.
fn wants_sse(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    accept.contains("text/event-stream")
        && !accept.contains("application/json")
        && !accept.contains("*/*")
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[allow(clippy::too_many_arguments)]
async fn handle<H: McpHost>(
    State(host): State<Arc<H>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    listener: Option<Extension<ListenerInfo>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let host = &*host;
    let call = host.begin(peer, listener.map(|Extension(l)| l), &headers);
    let mut x = Exchange {
        host,
        call,
        started: Instant::now(),
        record: McpAuditRecord {
            decision: "Error".into(),
            server: name.clone(),
            session: header_text(&headers, "mcp-session-id").map(|s| s.chars().take(128).collect()),
            ..McpAuditRecord::default()
        },
        sse: wants_sse(&headers),
    };

    // Credentials first; the body only after them, unless a SigV4 signature covers it.
    let signs_body =
        header_text(&headers, "authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"));
    let mut raw = Bytes::new();
    let mut body = Some(body);
    if signs_body && let Some(b) = body.take() {
        raw = match read_body(b, &headers).await {
            Ok(b) => b,
            Err((status, e, code)) => return x.fail(status, None, e, code),
        };
    }
    let principal = match host
        .authenticate(&mut x.call, &method, &uri, &headers, &raw)
        .await
    {
        Ok(p) => p,
        Err(why) => {
            x.record.error_code = Some("unauthenticated".into());
            x.record.status = 401;
            let e = RpcError::new(protocol::UNAUTHENTICATED, why);
            let mut resp = x.answer(StatusCode::UNAUTHORIZED, protocol::error(None, &e), None);
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return resp;
        }
    };
    x.record.principal = principal.arn.clone();
    if let Some(b) = body.take() {
        raw = match read_body(b, &headers).await {
            Ok(b) => b,
            Err((status, e, code)) => return x.fail(status, None, e, code),
        };
    }
    if let Some(v) = header_text(&headers, "mcp-protocol-version")
        && !protocol::PROTOCOL_VERSIONS.contains(&v)
    {
        let e = RpcError::new(
            protocol::INVALID_REQUEST,
            format!("Unsupported MCP-Protocol-Version {v:?}"),
        );
        return x.fail(
            StatusCode::BAD_REQUEST,
            None,
            e,
            "unsupported_protocol_version",
        );
    }
    let incoming = match protocol::parse(&raw) {
        Ok(m) => m,
        Err(refusal) => {
            let (id, e) = *refusal;
            return x.fail(StatusCode::BAD_REQUEST, id.as_ref(), e, "invalid_request");
        }
    };
    let (id, method_name, params) = match incoming {
        Incoming::Request { id, method, params } => (id, method, params),
        // Nothing of a notification or a response is forwarded (Gatehouse holds the
        // upstream session itself); accepted so clients go on.
        Incoming::Notification { .. } | Incoming::Response => {
            return StatusCode::ACCEPTED.into_response();
        }
    };
    x.record.method = method_name.chars().take(128).collect();
    let server_arn = mcp_arn(host.region(), &principal.account, &format!("server/{name}"));
    x.record.resource = server_arn.clone();

    let entry = if gatehouse_store::validate_mcp_server_name(&name).is_ok() {
        match host
            .mcp()
            .server(host.store(), host.generation(), &principal.account, &name)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "MCP server table unavailable");
                let e = RpcError::new(
                    protocol::INTERNAL_ERROR,
                    "Gatehouse cannot read its MCP servers now",
                );
                return x.fail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(&id),
                    e,
                    "store_unavailable",
                );
            }
        }
    } else {
        None
    };
    let Some(entry) = entry else {
        let e = RpcError::new(
            protocol::INVALID_PARAMS,
            format!("No MCP server named {name:?}"),
        );
        return x.fail(StatusCode::NOT_FOUND, Some(&id), e, "unknown_server");
    };

    match method_name.as_str() {
        "initialize" => {
            x.record.action = "mcp:Initialize".into();
            x.record.decision = "Allow".into();
            let requested = params.get("protocolVersion").and_then(Value::as_str);
            let session = new_session_id();
            x.record.session = Some(session.clone());
            let result = json!({
                "protocolVersion": protocol::negotiate(requested),
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": format!("gatehouse/{name}"), "version": env!("CARGO_PKG_VERSION")},
                "instructions": "Tools of this server are offered through Gatehouse: each call is authorized by policy and audited.",
            });
            x.answer(
                StatusCode::OK,
                protocol::result(&id, result),
                Some(&session),
            )
        }
        "ping" => {
            x.record.action = "mcp:Ping".into();
            x.record.decision = "Allow".into();
            x.answer(StatusCode::OK, protocol::result(&id, json!({})), None)
        }
        "tools/list" => list_tools(x, &entry, &principal, &id).await,
        "tools/call" => call_tool(x, &entry, &principal, &id, &params).await,
        other => {
            let e = RpcError::new(
                protocol::METHOD_NOT_FOUND,
                format!("Method not found: {other} is not offered through Gatehouse"),
            );
            x.fail(StatusCode::OK, Some(&id), e, "method_not_found")
        }
    }
}

fn new_session_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

async fn read_body(
    body: Body,
    headers: &HeaderMap,
) -> Result<Bytes, (StatusCode, RpcError, &'static str)> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            RpcError::new(
                protocol::INVALID_REQUEST,
                format!("Invalid Request: the body is larger than {MAX_BODY_BYTES} bytes"),
            ),
            "body_too_large",
        )
    };
    // A declared length over the limit is refused without waiting for the bytes.
    let declared = header_text(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if is_length_limit(&e) {
                too_large()
            } else {
                // The server's body timeout (a slow client) or a broken connection: not a
                // size problem, and not the client's JSON.
                (
                    StatusCode::REQUEST_TIMEOUT,
                    RpcError::new(
                        protocol::INVALID_REQUEST,
                        "Invalid Request: the body was not received in time or could not be read",
                    ),
                    "body_timeout",
                )
            }
        })
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn denied_text(principal: &Principal, action: &str, resource: &str, v: &crate::Verdict) -> String {
    format!(
        "denied by Gatehouse: User: {} is not authorized to perform: {action} on resource: {resource}. Encoded authorization failure message: {}",
        principal.arn,
        v.encoded_message.as_deref().unwrap_or("")
    )
}

fn upstream_failed<H: McpHost>(
    x: Exchange<'_, H>,
    id: &Value,
    server: &str,
    e: &crate::gateway::GatewayError,
) -> Response {
    let mut x = x;
    x.record.upstream = Some("unavailable".into());
    let e = RpcError::new(
        protocol::UPSTREAM_UNAVAILABLE,
        format!("MCP server {server} is unavailable: {e}"),
    );
    x.fail(StatusCode::OK, Some(id), e, "upstream_unavailable")
}

fn blocked(server: &str, tool: &str) -> RpcError {
    RpcError::new(
        protocol::INVALID_PARAMS,
        format!(
            "Tool {tool} of {server} is blocked by Gatehouse: its definition changed upstream since it was pinned, and waits for an operator's approval"
        ),
    )
}

fn server_keys(name: &str) -> Vec<(String, ContextValue)> {
    vec![("mcp:ServerName".into(), ContextValue::One(name.to_owned()))]
}

fn tool_keys(server: &str, def: &tools::ToolDefinition) -> Vec<(String, ContextValue)> {
    let mut keys = server_keys(server);
    keys.push(("mcp:ToolName".into(), ContextValue::One(def.name.clone())));
    keys.extend(def.annotation_keys());
    keys
}

async fn list_tools<H: McpHost>(
    mut x: Exchange<'_, H>,
    entry: &ServerEntry,
    principal: &Principal,
    id: &Value,
) -> Response {
    let name = &entry.server.name;
    x.record.action = "mcp:ListTools".into();
    let resource = x.record.resource.clone();
    let v = x.decide("mcp:ListTools", &resource, &server_keys(name));
    if !v.allowed {
        x.record.error_code = Some("access_denied".into());
        let mut e = RpcError::new(
            protocol::DENIED,
            denied_text(principal, "mcp:ListTools", &resource, &v),
        );
        e.data = Some(json!({"encodedMessage": v.encoded_message}));
        return x.answer(StatusCode::OK, protocol::error(Some(id), &e), None);
    }
    // Decided on the stored pins first: the upstream is asked only when the caller may
    // call something of it.
    let approved = match entry.decidable(x.host.store()).await {
        Ok(a) => a,
        Err(e) => return upstream_failed(x, id, name, &e),
    };
    let region = x.host.region().to_owned();
    let may_call: HashSet<&str> = approved
        .values()
        .filter(|def| {
            let arn = mcp_arn(
                &region,
                &principal.account,
                &format!("tool/{name}/{}", def.name),
            );
            x.host
                .decide(
                    &x.call,
                    "mcp:CallTool",
                    &arn,
                    &tool_keys(name, def),
                    Some(ARGUMENT_PREFIX),
                )
                .allowed
        })
        .map(|def| def.name.as_str())
        .collect();
    if may_call.is_empty() {
        return x.answer(
            StatusCode::OK,
            protocol::result(id, json!({"tools": []})),
            None,
        );
    }
    let tools = match entry.tools(x.host.store(), true).await {
        Ok(t) => t,
        Err(e) => return upstream_failed(x, id, name, &e),
    };
    x.record.upstream = Some("ok".into());
    // Offered: what the upstream lists now, as pinned, and the caller may call.
    let offered: Vec<Value> = tools
        .into_iter()
        .filter_map(|(tool, state)| match state {
            ToolState::Current(def) if may_call.contains(tool.as_str()) => Some(def.object),
            _ => None,
        })
        .collect();
    x.answer(
        StatusCode::OK,
        protocol::result(id, json!({"tools": offered})),
        None,
    )
}

async fn call_tool<H: McpHost>(
    mut x: Exchange<'_, H>,
    entry: &ServerEntry,
    principal: &Principal,
    id: &Value,
    params: &Map<String, Value>,
) -> Response {
    let name = &entry.server.name;
    x.record.action = "mcp:CallTool".into();
    let invalid =
        |why: String| RpcError::new(protocol::INVALID_PARAMS, format!("Invalid params: {why}"));
    let Some(tool) = params.get("name").and_then(Value::as_str) else {
        return x.fail(
            StatusCode::OK,
            Some(id),
            invalid("\"name\" must be a string".into()),
            "invalid_params",
        );
    };
    if gatehouse_store::validate_mcp_tool_name(tool).is_err() {
        let shown: String = tool.chars().take(64).collect();
        let e = invalid(format!(
            "{shown:?} is not a tool name (1-128 letters, digits, _ - .)"
        ));
        return x.fail(StatusCode::OK, Some(id), e, "invalid_tool_name");
    }
    x.record.tool = Some(tool.to_owned());
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => {
            return x.fail(
                StatusCode::OK,
                Some(id),
                invalid("\"arguments\" must be an object".into()),
                "invalid_params",
            );
        }
    };
    x.record.arguments_sha256 = Some(tools::sha256_hex(&tools::canonical_json(&Value::Object(
        arguments.clone(),
    ))));
    let resource = mcp_arn(
        x.host.region(),
        &principal.account,
        &format!("tool/{name}/{tool}"),
    );
    x.record.resource = resource.clone();
    let argument_keys = match tools::argument_keys(&arguments) {
        Ok(k) => k,
        Err(e) => {
            return x.fail(
                StatusCode::OK,
                Some(id),
                invalid(e.to_string()),
                "invalid_arguments",
            );
        }
    };
    // Decided on the stored pin, before anything is asked of the upstream.
    let approved = match entry.decidable(x.host.store()).await {
        Ok(a) => a,
        Err(e) => return upstream_failed(x, id, name, &e),
    };
    let Some(def) = approved.get(tool).cloned() else {
        drop(approved);
        return if entry.pins.contains_key(tool) {
            x.fail(
                StatusCode::OK,
                Some(id),
                blocked(name, tool),
                "tool_not_approved",
            )
        } else {
            let e = RpcError::new(protocol::INVALID_PARAMS, format!("Unknown tool: {tool}"));
            x.fail(StatusCode::OK, Some(id), e, "unknown_tool")
        };
    };
    drop(approved);
    let mut keys = tool_keys(name, &def);
    keys.extend(argument_keys);
    let v = x.decide("mcp:CallTool", &resource, &keys);
    if !v.allowed {
        x.record.error_code = Some("access_denied".into());
        // A tool error the client shows to the model and the user; nothing was sent.
        let result = json!({
            "content": [{"type": "text", "text": denied_text(principal, "mcp:CallTool", &resource, &v)}],
            "isError": true,
        });
        return x.answer(StatusCode::OK, protocol::result(id, result), None);
    }
    // Allowed on the pin: the upstream must still list the tool as pinned (a rug pull
    // since the pin is blocked here, before the call is sent).
    match entry.tool(x.host.store(), tool).await {
        Ok(ToolState::Current(current)) if current.digest == def.digest => {}
        Ok(ToolState::Current(_) | ToolState::Changed) => {
            return x.fail(
                StatusCode::OK,
                Some(id),
                blocked(name, tool),
                "tool_not_approved",
            );
        }
        Ok(ToolState::Unknown) => {
            let e = RpcError::new(
                protocol::INVALID_PARAMS,
                format!("Unknown tool: {tool} is no longer listed by {name}"),
            );
            return x.fail(StatusCode::OK, Some(id), e, "unknown_tool");
        }
        Err(e) => return upstream_failed(x, id, name, &e),
    }
    // Forwarded: the name and the arguments as decided, nothing else of the client's.
    let forwarded = json!({"name": tool, "arguments": Value::Object(arguments)});
    match entry
        .upstream
        .upstream
        .request("tools/call", forwarded)
        .await
    {
        Ok(answer) => {
            if let Some(result) = answer.get("result") {
                let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
                x.record.upstream = Some(if is_error { "tool_error" } else { "ok" }.into());
                let result = result.clone();
                x.answer(StatusCode::OK, protocol::result(id, result), None)
            } else {
                x.record.upstream = Some("error".into());
                let err = answer.get("error").cloned().unwrap_or_else(|| {
                    json!({"code": protocol::INTERNAL_ERROR, "message": "the upstream answered without a result"})
                });
                x.answer(
                    StatusCode::OK,
                    json!({"jsonrpc": "2.0", "id": id, "error": err}),
                    None,
                )
            }
        }
        Err(e) => upstream_failed(x, id, name, &e.into()),
    }
}

async fn stream_not_offered() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST, DELETE")],
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    stream_not_offered().await
}

async fn end_session() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn unknown_server() -> Response {
    let e = RpcError::new(
        protocol::INVALID_REQUEST,
        "No MCP server here: use /mcp/NAME with a registered server's name",
    );
    message(
        StatusCode::NOT_FOUND,
        &protocol::error(None, &e),
        false,
        None,
    )
}
