//! The life of an access request, as one table: which event moves which state where.
//!
//! requested (`pending`) → `approved` / `denied` → `active` → `expired` / `revoked`.
//! `expired` is never stored for a grant: a request's effective state is its stored state
//! read against the clock ([`RequestState::effective`]), so a pending request past its
//! expiry, or a grant past its window, is expired at that instant on every node, whether
//! or not anything ran at that moment.

use chrono::{DateTime, Utc};
use gatehouse_store::AccessRequestRecord;
use serde::Serialize;

use crate::error::AccessError;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    /// Waiting for an approver.
    Pending,
    /// Approved (or needing no approval), not yet activated.
    Approved,
    /// Refused by an approver.
    Denied,
    /// The grant applies (within its window).
    Active,
    /// Not decided or not activated in time, or the grant's window is over.
    Expired,
    /// Ended early by the requester, an approver or an administrator.
    Revoked,
}

impl RequestState {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
            RequestState::Active => "active",
            RequestState::Expired => "expired",
            RequestState::Revoked => "revoked",
        }
    }

    /// A stored word; anything else is a store that this build cannot read (fail closed).
    pub fn parse(stored: &str) -> Result<RequestState, AccessError> {
        Ok(match stored {
            "pending" => RequestState::Pending,
            "approved" => RequestState::Approved,
            "denied" => RequestState::Denied,
            "active" => RequestState::Active,
            "expired" => RequestState::Expired,
            "revoked" => RequestState::Revoked,
            other => {
                return Err(AccessError::Corrupt(format!(
                    "unknown stored request state {other:?}"
                )));
            }
        })
    }

    /// The state of `record` at `now`: its stored state, unless a pending or approved
    /// request passed its pending expiry, or an active grant its window.
    pub fn effective(
        record: &AccessRequestRecord,
        now: DateTime<Utc>,
    ) -> Result<RequestState, AccessError> {
        let stored = RequestState::parse(&record.state)?;
        Ok(match stored {
            RequestState::Pending | RequestState::Approved if now >= record.pending_until => {
                RequestState::Expired
            }
            RequestState::Active if record.active_until.is_none_or(|until| now >= until) => {
                RequestState::Expired
            }
            s => s,
        })
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What someone does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestEvent {
    /// An approver says yes.
    Approve,
    /// An approver says no.
    Deny,
    /// The requester starts the grant.
    Activate,
    /// The requester, an approver or an administrator ends it early (or withdraws it).
    Revoke,
}

impl RequestEvent {
    /// The verb shown in errors and events.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestEvent::Approve => "approve",
            RequestEvent::Deny => "deny",
            RequestEvent::Activate => "activate",
            RequestEvent::Revoke => "revoke",
        }
    }
}

/// The table: the state `event` moves `from` to, or `None` when it may not happen there.
pub fn next_state(from: RequestState, event: RequestEvent) -> Option<RequestState> {
    use RequestEvent as E;
    use RequestState as S;
    match (from, event) {
        (S::Pending, E::Approve) => Some(S::Approved),
        (S::Pending, E::Deny) => Some(S::Denied),
        (S::Approved, E::Activate) => Some(S::Active),
        (S::Pending | S::Approved | S::Active, E::Revoke) => Some(S::Revoked),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use RequestEvent as E;
    use RequestState as S;

    const STATES: [S; 6] = [
        S::Pending,
        S::Approved,
        S::Denied,
        S::Active,
        S::Expired,
        S::Revoked,
    ];
    const EVENTS: [E; 4] = [E::Approve, E::Deny, E::Activate, E::Revoke];

    /// Every (state, event) pair, with the expected outcome written out: anything not
    /// listed here must be refused.
    #[test]
    fn the_transition_table_is_exactly_the_documented_one() {
        let allowed = [
            (S::Pending, E::Approve, S::Approved),
            (S::Pending, E::Deny, S::Denied),
            (S::Approved, E::Activate, S::Active),
            (S::Pending, E::Revoke, S::Revoked),
            (S::Approved, E::Revoke, S::Revoked),
            (S::Active, E::Revoke, S::Revoked),
        ];
        for from in STATES {
            for event in EVENTS {
                let expected = allowed
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                assert_eq!(next_state(from, event), expected, "{from} --{event:?}-->");
            }
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for from in [S::Denied, S::Expired, S::Revoked] {
            for event in EVENTS {
                assert_eq!(next_state(from, event), None, "{from} {event:?}");
            }
        }
    }

    fn record(state: &str, pending_until: i64, active_until: Option<i64>) -> AccessRequestRecord {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
        AccessRequestRecord {
            request_id: "REQ1".into(),
            account_id: "111122223333".into(),
            eligibility_id: "ELIG1".into(),
            requester_id: "AIDA1".into(),
            requester_arn: "arn:gatehouse:iam::111122223333:user/dev".into(),
            requester_source_identity: None,
            target_kind: "policy".into(),
            target_arn: "arn:gatehouse:iam::111122223333:policy/deploy".into(),
            duration_secs: 3600,
            justification: "why".into(),
            ticket: None,
            start: None,
            state: state.into(),
            requested: t(0),
            pending_until: t(pending_until),
            decided_by_id: None,
            decided_by_arn: None,
            decided: None,
            decision_comment: None,
            active_from: active_until.map(|_| t(0)),
            active_until: active_until.map(t),
            ended_by_arn: None,
            ended: None,
        }
    }

    /// The effective state at instants just before and at each deadline.
    #[test]
    fn effective_state_reads_the_clock() {
        let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
        let cases = [
            ("pending", 100, None, 99, S::Pending),
            ("pending", 100, None, 100, S::Expired),
            ("approved", 100, None, 99, S::Approved),
            ("approved", 100, None, 100, S::Expired),
            ("active", 100, Some(500), 499, S::Active),
            ("active", 100, Some(500), 500, S::Expired),
            // An active row without a window end never applies.
            ("active", 100, None, 0, S::Expired),
            ("denied", 100, None, 1_000, S::Denied),
            ("revoked", 100, Some(500), 10, S::Revoked),
        ];
        for (stored, pending, active, now, expected) in cases {
            let r = record(stored, pending, active);
            assert_eq!(
                RequestState::effective(&r, at(now)).unwrap(),
                expected,
                "{stored} at {now}"
            );
        }
    }

    #[test]
    fn an_unknown_stored_state_is_an_error() {
        assert!(matches!(
            RequestState::parse("granted"),
            Err(AccessError::Corrupt(_))
        ));
        for s in STATES {
            assert_eq!(RequestState::parse(s.as_str()).unwrap(), s);
        }
    }
}
