//! Why the pipeline could not authenticate a caller or resolve its principal.
//!
//! One typed error for every face: each face renders it in its own protocol's shape (AWS's
//! XML error for the Query API, OpenAI's error JSON under `/v1`), from the AWS error code
//! and HTTP status given here. Messages are safe to show; internal causes are logged.

use gatehouse_auth::session::SessionError;
use gatehouse_auth::sigv4::SigV4Error;
use gatehouse_store::StoreError;

/// A failure of the authenticate or principal step.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The SigV4 signature (or its credential scope, date, or key) did not verify.
    #[error(transparent)]
    Signature(#[from] SigV4Error),
    /// A session token that does not verify, expired, or whose principal is gone.
    #[error("{0}")]
    Token(SessionError),
    /// The credential is missing, presented twice, in an unsupported scheme, or unknown
    /// (the message says which, in words safe to show).
    #[error("{0}")]
    Credentials(&'static str),
    /// The session was opened under a just-in-time grant that has ended (revoked, or its
    /// window is over): the session is refused as expired.
    #[error(
        "The security token included in the request is expired: the session was opened under the just-in-time elevation {request_id}, which has ended (revoked or its window is over)."
    )]
    ElevationEnded {
        /// The access request (`REQ...`) whose grant ended.
        request_id: String,
    },
    /// The principal's stored policies do not compile: it is denied everything.
    #[error("The caller's policies could not be evaluated.")]
    PoliciesUnreadable,
    /// A session policy carried in a session does not parse.
    #[error("{0}")]
    MalformedSessionPolicy(String),
    /// The store failed (or the principal it was asked for does not exist).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PipelineError {
    /// The AWS error code of this failure.
    pub fn aws_code(&self) -> &str {
        match self {
            PipelineError::Signature(e) => e.aws_code(),
            PipelineError::Token(e) => e.aws_code(),
            PipelineError::ElevationEnded { .. } => "ExpiredToken",
            PipelineError::Credentials(_) => "InvalidClientTokenId",
            PipelineError::PoliciesUnreadable => "AccessDenied",
            PipelineError::MalformedSessionPolicy(_) => "MalformedPolicyDocument",
            PipelineError::Store(e) => e.aws_code(),
        }
    }

    /// The HTTP status of this failure on the Query API.
    pub fn http_status(&self) -> u16 {
        match self {
            PipelineError::Signature(e) => e.http_status(),
            PipelineError::Token(_)
            | PipelineError::ElevationEnded { .. }
            | PipelineError::Credentials(_)
            | PipelineError::PoliciesUnreadable => 403,
            PipelineError::MalformedSessionPolicy(_) => 400,
            PipelineError::Store(e) => match e.aws_code() {
                "NoSuchEntity" => 404,
                "EntityAlreadyExists" | "DeleteConflict" | "LimitExceeded" => 409,
                "ServiceFailure" => 500,
                _ => 400,
            },
        }
    }

    /// Whether the failure is the server's (a store failure), not the caller's.
    pub fn is_internal(&self) -> bool {
        self.http_status() >= 500
    }
}
