//! What can go wrong in sign-in's management steps, with the AWS error code and HTTP status
//! the Query API answers with, so every face reports the same failure the same way.

use gatehouse_store::StoreError;

/// A refused or failed sign-in management step.
#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    /// Input that breaks a rule (a name, a URL, a claim name, a duration...).
    #[error("{0}")]
    Validation(String),
    /// The environment variable that should hold a client secret is not set.
    #[error("identity source {source_name}: environment variable {variable} is not set")]
    MissingSecret {
        /// The source.
        source_name: String,
        /// The variable named in the configuration.
        variable: String,
    },
    /// The assignment's role does not exist (as named: path and name).
    #[error("the role {0} does not exist")]
    NoSuchRole(String),
    /// An OAuth request refused (RFC 6749 error code and description).
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SigninError {
    /// The AWS error code.
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigninError::Validation(_) | SigninError::MissingSecret { .. } => "ValidationError",
            SigninError::NoSuchRole(_) => "NoSuchEntity",
            SigninError::OAuth(_) => "InvalidRequest",
            SigninError::Store(e) => e.aws_code(),
        }
    }

    /// The HTTP status of the Query API's answer (a store error keeps the server's own
    /// mapping of store errors).
    pub fn http_status(&self) -> u16 {
        match self {
            SigninError::NoSuchRole(_) => 404,
            _ => 400,
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> SigninError {
    SigninError::Validation(message.into())
}
