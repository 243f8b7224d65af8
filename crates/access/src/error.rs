//! Why a just-in-time access step was refused. Each variant maps to the AWS error code a
//! Query API answers with ([`AccessError::aws_code`]); messages never hold a secret.

use crate::state::{RequestEvent, RequestState};

/// A refused or failed just-in-time access step. Nothing stored was changed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A field is missing or malformed.
    #[error("{0}")]
    Validation(String),
    /// The named role, policy, principal or group does not exist.
    #[error("The {kind} {name} cannot be found.")]
    NoSuchTarget {
        /// `role`, `policy`, `user`, `group`.
        kind: &'static str,
        /// What was named.
        name: String,
    },
    /// No such eligibility.
    #[error("The eligibility {0} cannot be found.")]
    NoSuchEligibility(String),
    /// No such request (in the caller's account).
    #[error("The access request {0} cannot be found.")]
    NoSuchRequest(String),
    /// The caller is not eligible for the target.
    #[error("{caller} is not eligible to request {target}.")]
    NotEligible {
        /// The caller's ARN.
        caller: String,
        /// The role or policy asked for.
        target: String,
    },
    /// The duration asked for is over the eligibility's maximum.
    #[error("The requested duration {requested} s exceeds the maximum of {max} s for {target}.")]
    DurationTooLong {
        /// Seconds asked for.
        requested: i64,
        /// The eligibility's maximum.
        max: i64,
        /// The role or policy.
        target: String,
    },
    /// The eligibility requires a ticket reference and none was given.
    #[error("A ticket reference is required to request {0}.")]
    TicketRequired(String),
    /// The approver is the requester (directly, or as the person behind a role session).
    #[error(
        "{approver} cannot {event} access request {request_id}: it was requested by the same identity ({why})."
    )]
    SelfApproval {
        /// The caller's ARN.
        approver: String,
        /// The request.
        request_id: String,
        /// `approve` or `deny`.
        event: &'static str,
        /// Which comparison matched.
        why: String,
    },
    /// The caller is not one of the eligibility's approvers.
    #[error("{caller} is not an approver of access request {request_id}.")]
    NotAnApprover {
        /// The caller's ARN.
        caller: String,
        /// The request.
        request_id: String,
    },
    /// A role session without a source identity cannot approve: the person behind it is
    /// not known, so self-approval could not be ruled out.
    #[error(
        "{caller} is a role session without a source identity; approvals through a role need sts:SourceIdentity so that the person approving is known."
    )]
    ApproverUnknown {
        /// The caller's ARN.
        caller: String,
    },
    /// Activation needs MFA and the caller did not authenticate with it.
    #[error("Activating access request {0} requires multi-factor authentication.")]
    MfaRequired(String),
    /// Only the requester may activate.
    #[error("{caller} cannot {event} access request {request_id}: {why}")]
    NotPermitted {
        /// The caller's ARN.
        caller: String,
        /// The request.
        request_id: String,
        /// What was attempted.
        event: &'static str,
        /// Why not.
        why: &'static str,
    },
    /// The request's start time has not come yet.
    #[error("Access request {request_id} cannot be activated before {start}.")]
    NotStarted {
        /// The request.
        request_id: String,
        /// Its start time (RFC 3339).
        start: String,
    },
    /// The request is in a state where this event cannot happen (already decided, replayed,
    /// expired, revoked...).
    #[error("Access request {request_id} is {state}; it cannot be {}.", past(*.event))]
    InvalidState {
        /// The request.
        request_id: String,
        /// Its state now.
        state: RequestState,
        /// What was attempted.
        event: RequestEvent,
    },
    /// Stored data this build cannot read.
    #[error("stored access data is corrupt: {0}")]
    Corrupt(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] gatehouse_store::StoreError),
}

fn past(event: RequestEvent) -> &'static str {
    match event {
        RequestEvent::Approve => "approved",
        RequestEvent::Deny => "denied",
        RequestEvent::Activate => "activated",
        RequestEvent::Revoke => "revoked",
    }
}

impl AccessError {
    /// The AWS error code the Query API answers with.
    pub fn aws_code(&self) -> &'static str {
        match self {
            AccessError::Validation(_)
            | AccessError::DurationTooLong { .. }
            | AccessError::TicketRequired(_) => "ValidationError",
            AccessError::NoSuchTarget { .. }
            | AccessError::NoSuchEligibility(_)
            | AccessError::NoSuchRequest(_) => "NoSuchEntity",
            AccessError::NotEligible { .. }
            | AccessError::SelfApproval { .. }
            | AccessError::NotAnApprover { .. }
            | AccessError::ApproverUnknown { .. }
            | AccessError::MfaRequired(_)
            | AccessError::NotPermitted { .. } => "AccessDenied",
            AccessError::NotStarted { .. } | AccessError::InvalidState { .. } => {
                "InvalidRequestState"
            }
            AccessError::Corrupt(_) => "ServiceFailure",
            AccessError::Store(e) => e.aws_code(),
        }
    }

    /// The HTTP status that goes with [`AccessError::aws_code`].
    pub fn http_status(&self) -> u16 {
        match self.aws_code() {
            "NoSuchEntity" => 404,
            "AccessDenied" => 403,
            "InvalidRequestState" | "EntityAlreadyExists" | "DeleteConflict" => 409,
            "ServiceFailure" => 500,
            _ => 400,
        }
    }
}
