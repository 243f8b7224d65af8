//! API errors in AWS's terms: an error code, an HTTP status, a message safe to show.
//!
//! Every failure on the request path becomes an [`ApiError`]; nothing else reaches the
//! client, so no internal detail (and no secret) leaks into a response. Internal causes are
//! logged with the request id instead.

use axum::http::StatusCode;
use gatehouse_store::StoreError;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// AWS error code, e.g. `NoSuchEntity`.
    pub code: String,
    /// Message for the caller.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// `ValidationError` (400).
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    /// `InvalidAction` (400).
    pub fn invalid_action(action: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {action} for version 2010-05-08"),
        )
    }

    /// `MalformedPolicyDocument` (400).
    pub fn malformed_policy(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", message)
    }

    /// `AccessDenied` (403).
    pub fn access_denied(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// `ServiceFailure` (500): the cause is logged, not shown.
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceFailure",
            "The request processing has failed because of an unknown error.",
        )
    }

    /// `Sender` or `Receiver`, as AWS labels the party at fault.
    pub fn fault(&self) -> &'static str {
        if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let code = e.aws_code();
        let status = match code {
            "NoSuchEntity" => StatusCode::NOT_FOUND,
            "EntityAlreadyExists" | "DeleteConflict" | "LimitExceeded" => StatusCode::CONFLICT,
            "ServiceFailure" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "store failure");
            return ApiError::internal();
        }
        ApiError::new(status, code, e.to_string())
    }
}

impl From<gatehouse_auth::sigv4::SigV4Error> for ApiError {
    fn from(e: gatehouse_auth::sigv4::SigV4Error) -> ApiError {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN);
        ApiError::new(status, e.aws_code(), e.to_string())
    }
}

impl From<gatehouse_pipeline::PipelineError> for ApiError {
    fn from(e: gatehouse_pipeline::PipelineError) -> ApiError {
        use gatehouse_pipeline::PipelineError as P;
        match e {
            P::Signature(e) => e.into(),
            P::Store(e) => e.into(),
            P::PoliciesUnreadable => ApiError::access_denied(e.to_string()),
            P::MalformedSessionPolicy(m) => ApiError::malformed_policy(m),
            P::Token(_) | P::ElevationEnded { .. } | P::Credentials(_) => {
                let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN);
                ApiError::new(status, e.aws_code(), e.to_string())
            }
        }
    }
}
