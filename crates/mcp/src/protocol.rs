//! What Gatehouse reads of MCP's JSON-RPC messages, and the errors it answers with.
//!
//! The gateway never forwards a client's message as written: it reads the method, the id
//! and the parameters it decides on, and builds the upstream message from what it read
//! (so a repeated key, an extra field or an unusual encoding cannot make the upstream
//! see something other than what the policy saw).

use serde_json::{Map, Value, json};

/// The protocol revisions Gatehouse speaks, newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC: invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: invalid parameters (also MCP's "unknown tool").
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// Gatehouse: no valid credentials (with HTTP 401).
pub const UNAUTHENTICATED: i64 = -32001;
/// Gatehouse: refused by policy.
pub const DENIED: i64 = -32003;
/// Gatehouse: the upstream MCP server could not be reached or failed.
pub const UPSTREAM_UNAVAILABLE: i64 = -32010;

/// A JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// The message (shown to people: no secret, no policy text).
    pub message: String,
    /// Structured detail.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The error object of a response.
    pub fn to_value(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

/// A JSON-RPC id: a string or an integer (MCP forbids null ids on requests).
pub type RequestId = Value;

/// One message from a client, as Gatehouse reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request: answered with the same id.
    Request {
        /// Its id.
        id: RequestId,
        /// The method.
        method: String,
        /// The parameters (an object, or absent).
        params: Map<String, Value>,
    },
    /// A notification: no answer.
    Notification {
        /// The method.
        method: String,
    },
    /// A response to a request the server sent (Gatehouse sends none; accepted and dropped).
    Response,
}

/// The refusal of a message: the id when it could be read, and the error.
pub type Refusal = Box<(Option<RequestId>, RpcError)>;

/// Reads one message. Batches (arrays) are refused: MCP removed them in 2025-06-18 and a
/// batch would let one HTTP request carry any number of decisions.
pub fn parse(body: &[u8]) -> Result<Incoming, Refusal> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new((
            None,
            RpcError::new(PARSE_ERROR, format!("Parse error: {e}")),
        ))
    })?;
    let obj = match v {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(Box::new((
                None,
                RpcError::new(
                    INVALID_REQUEST,
                    "Invalid Request: JSON-RPC batches are not accepted; send one message per request",
                ),
            )));
        }
        _ => {
            return Err(Box::new((
                None,
                RpcError::new(INVALID_REQUEST, "Invalid Request: not a JSON-RPC object"),
            )));
        }
    };
    let id = obj.get("id").cloned();
    let invalid = |why: &str| -> Refusal {
        Box::new((
            id.clone().filter(valid_id),
            RpcError::new(INVALID_REQUEST, format!("Invalid Request: {why}")),
        ))
    };
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid("\"jsonrpc\" must be \"2.0\""));
    }
    if let Some(id) = &id
        && !valid_id(id)
    {
        return Err(invalid("\"id\" must be a string or an integer"));
    }
    let Some(method) = obj.get("method") else {
        if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
            return Ok(Incoming::Response);
        }
        return Err(invalid("no \"method\""));
    };
    let Some(method) = method.as_str() else {
        return Err(invalid("\"method\" must be a string"));
    };
    if method.is_empty() || method.len() > 128 {
        return Err(invalid("\"method\" must be 1-128 characters"));
    }
    let params = match obj.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => {
            return Err(Box::new((
                id.clone(),
                RpcError::new(
                    INVALID_PARAMS,
                    "Invalid params: \"params\" must be an object",
                ),
            )));
        }
    };
    Ok(match id {
        Some(id) => Incoming::Request {
            id,
            method: method.to_owned(),
            params,
        },
        None => Incoming::Notification {
            method: method.to_owned(),
        },
    })
}

fn valid_id(id: &Value) -> bool {
    match id {
        Value::String(s) => s.len() <= 256,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// A success response.
pub fn result(id: &RequestId, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response (`id` null when the request's id could not be read).
pub fn error(id: Option<&RequestId>, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": e.to_value()})
}

/// The revision to answer `initialize` with: the client's when Gatehouse speaks it, else
/// the newest (the client then decides whether to go on).
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| PROTOCOL_VERSIONS.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(PROTOCOL_VERSIONS[0])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_notifications_and_refuses_the_rest() {
        let r = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).unwrap();
        assert!(matches!(r, Incoming::Request { ref method, .. } if method == "tools/list"));
        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(n, Incoming::Notification { .. }));
        let cases: &[(&[u8], i64)] = &[
            (b"{not json", PARSE_ERROR),
            (
                b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                INVALID_REQUEST,
            ),
            (b"\"ping\"", INVALID_REQUEST),
            (
                br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
                INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                INVALID_REQUEST,
            ),
            (br#"{"jsonrpc":"2.0","id":1,"method":5}"#, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1}"#, INVALID_REQUEST),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#,
                INVALID_PARAMS,
            ),
        ];
        for (body, code) in cases {
            match parse(body) {
                Err(refusal) => {
                    let e = &refusal.1;
                    assert_eq!(e.code, *code, "{}", String::from_utf8_lossy(body));
                }
                Ok(m) => panic!("accepted {}: {m:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn negotiates_a_revision_it_speaks() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("1999-01-01")), PROTOCOL_VERSIONS[0]);
        assert_eq!(negotiate(None), PROTOCOL_VERSIONS[0]);
    }
}
