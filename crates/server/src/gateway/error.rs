//! Errors in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`), so that
//! the caller's OpenAI client raises the exception it already knows (`AuthenticationError`,
//! `PermissionDeniedError`, `RateLimitError`, ...). Messages never carry a secret or policy
//! text; internal causes are logged with the request id instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered to a gateway caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct GatewayError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI error `type`.
    pub kind: &'static str,
    /// OpenAI error `code`.
    pub code: &'static str,
    /// Message safe to show.
    pub message: String,
    /// The offending parameter, when there is one.
    pub param: Option<&'static str>,
    /// Seconds to wait (429 only).
    pub retry_after: Option<u64>,
}

impl GatewayError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        GatewayError {
            status,
            kind,
            code,
            message,
            param: None,
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn invalid_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message.into(),
        )
    }

    /// 400 about one parameter.
    pub fn invalid_param(param: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::invalid_request("invalid_value", message);
        e.param = Some(param);
        e
    }

    /// 401: no credential, or one that does not verify.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message.into(),
        )
    }

    /// 403: the policy engine said no.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "access_denied",
            message.into(),
        )
    }

    /// 404: no such model (deployment) or job.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            code,
            message.into(),
        )
    }

    /// 413: body over the configured limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("The request body exceeds the limit of {limit} bytes."),
        )
    }

    /// 408: the body did not arrive within the listener's body timeout.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            "The request body was not received in time.".to_owned(),
        )
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "rate_limit_exceeded",
            message.into(),
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 502: the upstream could not be reached or answered nonsense.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "upstream_unavailable",
            message.into(),
        )
    }

    /// 504: the upstream did not answer in time.
    pub fn timeout(secs: u64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_error",
            "upstream_timeout",
            format!("The model endpoint did not answer within {secs} s."),
        )
    }

    /// 503: Gatehouse cannot record the decision right now (fail closed).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "service_unavailable",
            message.into(),
        )
    }

    /// 500: the cause is logged, not shown.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            "The server had an error while processing your request.".to_owned(),
        )
    }

    /// 400, 414 or 431: a request head the HTTP parser refused before any route ran.
    pub fn refused_head(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "request_header_fields_too_large",
                "The request's header lines are too many or too large.",
            ),
            StatusCode::URI_TOO_LONG => ("uri_too_long", "The request URI is too long."),
            _ => ("malformed_request", "The HTTP request head is malformed."),
        };
        Self::new(status, "invalid_request_error", code, message.to_owned())
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }

    /// The JSON body with `request_id` in the error object.
    pub fn body_with_request_id(&self, request_id: &str) -> String {
        let mut body = self.body();
        if let Some(e) = body.get_mut("error").and_then(|e| e.as_object_mut()) {
            e.insert("request_id".to_owned(), request_id.into());
        }
        body.to_string()
    }

    /// The response, with `request_id` as `x-request-id` and in the error object (the
    /// id to quote to an operator, who finds it in the logs and the audit record).
    pub fn response(&self, request_id: &str) -> Response {
        let mut resp = (self.status, self.body_with_request_id(request_id)).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-request-id", v);
        }
        resp
    }
}

impl From<gatehouse_store::StoreError> for GatewayError {
    fn from(e: gatehouse_store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure on the gateway path");
        GatewayError::internal()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_errors_carry_retry_after_and_openai_shape() {
        let e = GatewayError::rate_limited("slow down", 0);
        let r = e.response("req-1");
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let b = e.body();
        assert_eq!(b["error"]["type"], "rate_limit_exceeded");
        assert!(b["error"]["param"].is_null());
    }
}
