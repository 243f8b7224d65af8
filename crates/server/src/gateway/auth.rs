//! Who is calling the gateway: the pipeline's authenticate and principal steps
//! ([`gatehouse_pipeline::Core::authenticate`]: SigV4 for the `ai` service, a Bearer access
//! key or a Bearer session token), answered in OpenAI's error shape, plus what only the
//! gateway needs of a caller: the session's own budget from its `gatehouse:*` tags.

use super::budget::{SessionBudget, Subject, session_limits};
use super::error::GatewayError;
use crate::AppState;
use gatehouse_pipeline::{PipelineError, Principal, RequestParts};

pub use gatehouse_pipeline::authenticate::{CallerSource, declared_body_matches, signs_body};

/// An authenticated gateway caller: the pipeline's principal and its session budget.
#[derive(Debug, Clone)]
pub struct GatewayCaller {
    /// Who calls, with its compiled policies.
    pub principal: Principal,
    /// The session's own budget from its `gatehouse:*` session tags, for sessions.
    pub session_budget: Option<SessionBudget>,
}

impl std::ops::Deref for GatewayCaller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl GatewayCaller {
    fn of(principal: Principal) -> GatewayCaller {
        let session_budget = principal.session.as_ref().map(|s| SessionBudget {
            key: s.claims.access_key_id.clone(),
            limits: session_limits(&s.claims.tags),
        });
        GatewayCaller {
            principal,
            session_budget,
        }
    }

    /// What this caller's traffic counts against, for budget matching.
    pub fn budget_subject(&self) -> Subject<'_> {
        Subject {
            principal: &self.principal.arn,
            role: self
                .principal
                .session
                .as_ref()
                .and_then(|s| s.claims.role_arn.as_deref()),
            groups: self.principal.group_arns(),
            session: self.session_budget.as_ref(),
        }
    }
}

/// The gateway's answer to a failed authenticate or principal step: 401 for a credential
/// that is missing, malformed or does not verify; 403 when the caller's policies cannot be
/// evaluated; 500 when the store failed.
fn answer(e: PipelineError) -> GatewayError {
    match e {
        PipelineError::PoliciesUnreadable => {
            GatewayError::denied("The caller's policies could not be evaluated.")
        }
        e if e.is_internal() => GatewayError::internal(),
        PipelineError::Store(_) => {
            GatewayError::denied("The caller's policies could not be evaluated.")
        }
        e => GatewayError::unauthenticated(e.to_string()),
    }
}

/// Authenticates a gateway request; `Err` is a 401 (403, 500) in OpenAI's shape.
///
/// `body` is the request's body when it has been read (or `b""` for a request without
/// one); `None` before it is read: a SigV4 signature is then checked against the SHA-256
/// the request declares in a signed `x-amz-content-sha256` header (required), so that no
/// one without a valid signature makes the gateway read and hold a body, and the caller
/// checks the body against it once read ([`declared_body_matches`]).
pub async fn authenticate(
    state: &AppState,
    method: &str,
    path: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: Option<&[u8]>,
) -> Result<GatewayCaller, GatewayError> {
    let parts = RequestParts {
        method,
        path,
        query,
        headers,
        body,
    };
    // The gateway's actions are the `ai` service's: a signature for `iam` or `sts` is not
    // one for this API.
    let principal = state.authenticate(&parts, "ai").await.map_err(answer)?;
    Ok(GatewayCaller::of(principal))
}

/// Resolves a bare STS session token (`Authorization: Bearer SESSION_TOKEN`) to a caller
/// (the pipeline's [`gatehouse_pipeline::Core::session_token`]).
pub async fn resolve_session_token(
    state: &AppState,
    token: &str,
) -> Result<GatewayCaller, GatewayError> {
    let principal = state.session_token(token).await.map_err(answer)?;
    Ok(GatewayCaller::of(principal))
}

/// Loads a caller again with what the store says now (key status, policies, session
/// validity), so that a revocation made while a stream runs reaches it.
pub async fn refresh(
    state: &AppState,
    caller: &GatewayCaller,
) -> Result<GatewayCaller, GatewayError> {
    let principal = state.refresh(&caller.principal).await.map_err(answer)?;
    Ok(GatewayCaller {
        principal,
        session_budget: caller.session_budget.clone(),
    })
}
