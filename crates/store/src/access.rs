//! What just-in-time access keeps (migration `0050_access.sql`): eligibilities, and access
//! requests with their grant windows.
//!
//! The store knows rows, not rules: which moves are allowed, who may approve, how long a
//! request may last is `gatehouse-access`'s. What the store guarantees is that each move
//! is one write transaction conditional on the state it leaves
//! ([`Store::transition_access_request`]): a replayed approval, or two nodes approving and
//! denying at once, change the row once and report `None` to the loser. Every move bumps
//! the store generation like any policy change, so every node recompiles the principal and
//! learns of a grant (or its revocation) through the existing change notifications.

use crate::db::{Conn, Row, args};
use crate::error::{Result, StoreError};
use crate::model::{Timestamp, new_id, now_ms, ts};
use crate::store::{Store, require_account};
use serde::{Deserialize, Serialize};

/// Who may approve a request: a principal or group by its stored unique id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRef {
    /// `user`, `role` or `group`.
    pub kind: String,
    /// The stored unique id (`AIDA...`, `AROA...`, `AGPA...`).
    pub id: String,
    /// Its ARN when the eligibility was made (for display).
    pub arn: String,
}

/// A new eligibility (validated by `gatehouse-access` before it gets here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEligibility {
    /// The account the target is in.
    pub account_id: String,
    /// `user`, `role`, `group` or `federated-group`.
    pub subject_kind: String,
    /// The subject's stored unique id, or the federated group's name.
    pub subject_id: String,
    /// The subject's ARN (or the federated group's name) for display.
    pub subject_arn: String,
    /// `role` or `policy`.
    pub target_kind: String,
    /// The role's or managed policy's ARN.
    pub target_arn: String,
    /// The longest grant a request may ask for, in seconds.
    pub max_duration_secs: i64,
    /// Whether a request needs an approval before it can be activated.
    pub approval_required: bool,
    /// Who may approve.
    pub approvers: Vec<ApproverRef>,
    /// Whether activation needs an MFA-authenticated caller.
    pub mfa_required: bool,
    /// Whether a request must carry a ticket reference.
    pub ticket_required: bool,
}

/// A stored eligibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    /// `ELIG...`.
    pub eligibility_id: String,
    /// The account the target is in.
    pub account_id: String,
    /// `user`, `role`, `group` or `federated-group`.
    pub subject_kind: String,
    /// The subject's stored unique id, or the federated group's name.
    pub subject_id: String,
    /// The subject's ARN (or the federated group's name).
    pub subject_arn: String,
    /// `role` or `policy`.
    pub target_kind: String,
    /// The role's or managed policy's ARN.
    pub target_arn: String,
    /// The longest grant a request may ask for, in seconds.
    pub max_duration_secs: i64,
    /// Whether a request needs an approval.
    pub approval_required: bool,
    /// Who may approve.
    pub approvers: Vec<ApproverRef>,
    /// Whether activation needs MFA.
    pub mfa_required: bool,
    /// Whether a request must carry a ticket reference.
    pub ticket_required: bool,
    /// Creation time.
    pub created: Timestamp,
}

/// A new access request, in its first state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessRequest {
    /// The eligibility it is made under (its account and target are copied).
    pub eligibility_id: String,
    /// The requester's stored unique id.
    pub requester_id: String,
    /// The requester's ARN (a role session's ARN for an agent).
    pub requester_arn: String,
    /// The source identity of the requester's role session, if any.
    pub requester_source_identity: Option<String>,
    /// The grant's length in seconds.
    pub duration_secs: i64,
    /// Why.
    pub justification: String,
    /// A ticket reference.
    pub ticket: Option<String>,
    /// The earliest time the grant may start.
    pub start: Option<Timestamp>,
    /// The first state (`pending`, or `approved` when no approval is needed).
    pub state: String,
    /// When it was requested (the caller's clock).
    pub requested: Timestamp,
    /// When a pending request expires.
    pub pending_until: Timestamp,
}

/// A stored access request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequestRecord {
    /// `REQ...`.
    pub request_id: String,
    /// The account the target is in.
    pub account_id: String,
    /// The eligibility it was made under.
    pub eligibility_id: String,
    /// The requester's stored unique id.
    pub requester_id: String,
    /// The requester's ARN.
    pub requester_arn: String,
    /// The source identity of the requester's role session, if any.
    pub requester_source_identity: Option<String>,
    /// `role` or `policy`.
    pub target_kind: String,
    /// The role's or managed policy's ARN.
    pub target_arn: String,
    /// The grant's length in seconds.
    pub duration_secs: i64,
    /// Why.
    pub justification: String,
    /// A ticket reference.
    pub ticket: Option<String>,
    /// The earliest time the grant may start.
    pub start: Option<Timestamp>,
    /// The stored state (`pending`, `approved`, `denied`, `active`, `revoked`).
    pub state: String,
    /// When it was requested.
    pub requested: Timestamp,
    /// When it expires if nobody decides.
    pub pending_until: Timestamp,
    /// Who approved or denied it (stored unique id).
    pub decided_by_id: Option<String>,
    /// Who approved or denied it (ARN).
    pub decided_by_arn: Option<String>,
    /// When.
    pub decided: Option<Timestamp>,
    /// The approver's comment.
    pub decision_comment: Option<String>,
    /// When the grant started.
    pub active_from: Option<Timestamp>,
    /// When the grant ends.
    pub active_until: Option<Timestamp>,
    /// Who revoked it.
    pub ended_by_arn: Option<String>,
    /// When it was revoked.
    pub ended: Option<Timestamp>,
}

/// The columns a move sets besides the state; `None` leaves a column as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessStateChange {
    /// Who decided (stored unique id).
    pub decided_by_id: Option<String>,
    /// Who decided (ARN).
    pub decided_by_arn: Option<String>,
    /// When it was decided.
    pub decided: Option<Timestamp>,
    /// The decider's comment.
    pub decision_comment: Option<String>,
    /// When the grant starts.
    pub active_from: Option<Timestamp>,
    /// When the grant ends.
    pub active_until: Option<Timestamp>,
    /// Who revoked it.
    pub ended_by_arn: Option<String>,
    /// When it was revoked.
    pub ended: Option<Timestamp>,
}

/// The condition a move is made under, besides the state it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessGuard {
    /// Only the state.
    StateOnly,
    /// The request has not passed its pending expiry at this time.
    PendingBefore(Timestamp),
    /// The grant's window has not ended at this time.
    ActiveBefore(Timestamp),
}

/// A grant active (or activated and not yet ended) for a principal, as the engine applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveElevation {
    /// The request's id (`gatehouse:ElevationId`).
    pub request_id: String,
    /// `role` or `policy`.
    pub target_kind: String,
    /// The role's or managed policy's ARN.
    pub target_arn: String,
    /// The managed policy's default version (for a policy target; `None` for a role, or a
    /// policy deleted since: it then grants nothing).
    pub document: Option<String>,
    /// Start of the window.
    pub active_from: Timestamp,
    /// End of the window: the grant stops applying at this instant.
    pub active_until: Timestamp,
    /// The justification (`gatehouse:ElevationJustification`).
    pub justification: String,
    /// Who approved it (`gatehouse:ElevationApprovedBy`), if approval was needed.
    pub approved_by: Option<String>,
}

const ELIGIBILITY_COLS: &str = "eligibility_id, account_id, subject_kind, subject_id, subject_arn, \
     target_kind, target_arn, max_duration_secs, approval_required, approvers, mfa_required, \
     ticket_required, created_ms";

const REQUEST_COLS: &str = "request_id, account_id, eligibility_id, requester_id, requester_arn, \
     requester_source_identity, target_kind, target_arn, duration_secs, justification, ticket, \
     start_ms, state, requested_ms, pending_until_ms, decided_by_id, decided_by_arn, decided_ms, \
     decision_comment, active_from_ms, active_until_ms, ended_by_arn, ended_ms";

fn eligibility_from(r: &Row) -> Result<Eligibility> {
    let approvers: Vec<ApproverRef> = serde_json::from_str(&r.text(9)?)
        .map_err(|e| StoreError::Database(format!("stored approvers do not parse: {e}")))?;
    Ok(Eligibility {
        eligibility_id: r.text(0)?,
        account_id: r.text(1)?,
        subject_kind: r.text(2)?,
        subject_id: r.text(3)?,
        subject_arn: r.text(4)?,
        target_kind: r.text(5)?,
        target_arn: r.text(6)?,
        max_duration_secs: r.i64(7)?,
        approval_required: r.i64(8)? != 0,
        approvers,
        mfa_required: r.i64(10)? != 0,
        ticket_required: r.i64(11)? != 0,
        created: ts(r.i64(12)?),
    })
}

fn request_from(r: &Row) -> Result<AccessRequestRecord> {
    Ok(AccessRequestRecord {
        request_id: r.text(0)?,
        account_id: r.text(1)?,
        eligibility_id: r.text(2)?,
        requester_id: r.text(3)?,
        requester_arn: r.text(4)?,
        requester_source_identity: r.opt_text(5)?,
        target_kind: r.text(6)?,
        target_arn: r.text(7)?,
        duration_secs: r.i64(8)?,
        justification: r.text(9)?,
        ticket: r.opt_text(10)?,
        start: r.opt_i64(11)?.map(ts),
        state: r.text(12)?,
        requested: ts(r.i64(13)?),
        pending_until: ts(r.i64(14)?),
        decided_by_id: r.opt_text(15)?,
        decided_by_arn: r.opt_text(16)?,
        decided: r.opt_i64(17)?.map(ts),
        decision_comment: r.opt_text(18)?,
        active_from: r.opt_i64(19)?.map(ts),
        active_until: r.opt_i64(20)?.map(ts),
        ended_by_arn: r.opt_text(21)?,
        ended: r.opt_i64(22)?.map(ts),
    })
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

async fn get_request_in(c: &mut Conn, id: &str) -> Result<Option<AccessRequestRecord>> {
    c.opt(
        &format!("SELECT {REQUEST_COLS} FROM access_requests WHERE request_id = $1"),
        args![id],
    )
    .await?
    .map(|r| request_from(&r))
    .transpose()
}

impl Store {
    /// Stores an eligibility.
    pub async fn create_eligibility(&self, e: &NewEligibility) -> Result<Eligibility> {
        let approvers = serde_json::to_string(&e.approvers)
            .map_err(|err| StoreError::Validation(format!("approvers: {err}")))?;
        let id = new_id("ELIG");
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, &e.account_id).await?;
        tx.conn
            .exec(
                &format!(
                    "INSERT INTO access_eligibility ({ELIGIBILITY_COLS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ),
                args![
                    id.as_str(),
                    e.account_id.as_str(),
                    e.subject_kind.as_str(),
                    e.subject_id.as_str(),
                    e.subject_arn.as_str(),
                    e.target_kind.as_str(),
                    e.target_arn.as_str(),
                    e.max_duration_secs,
                    i64::from(e.approval_required),
                    approvers,
                    i64::from(e.mfa_required),
                    i64::from(e.ticket_required),
                    now_ms()
                ],
            )
            .await?;
        let row = tx
            .conn
            .opt(
                &format!(
                    "SELECT {ELIGIBILITY_COLS} FROM access_eligibility WHERE eligibility_id = $1"
                ),
                args![id.as_str()],
            )
            .await?
            .ok_or_else(|| {
                StoreError::Database("eligibility vanished in its own transaction".into())
            })?;
        let stored = eligibility_from(&row)?;
        self.commit(tx).await?;
        Ok(stored)
    }

    /// An eligibility by id.
    pub async fn get_eligibility(&self, id: &str) -> Result<Option<Eligibility>> {
        let mut c = self.inner.pool.conn().await?;
        c.opt(
            &format!("SELECT {ELIGIBILITY_COLS} FROM access_eligibility WHERE eligibility_id = $1"),
            args![id],
        )
        .await?
        .map(|r| eligibility_from(&r))
        .transpose()
    }

    /// Every eligibility of an account, oldest first (not the deleted ones).
    pub async fn list_eligibilities(&self, account: &str) -> Result<Vec<Eligibility>> {
        let mut c = self.inner.pool.conn().await?;
        c.all(
            &format!(
                "SELECT {ELIGIBILITY_COLS} FROM access_eligibility WHERE account_id = $1 \
                 AND deleted_ms IS NULL ORDER BY created_ms, eligibility_id"
            ),
            args![account],
        )
        .await?
        .iter()
        .map(eligibility_from)
        .collect()
    }

    /// Deletes an eligibility of `account`: no request can be made under it any more. The
    /// row stays (marked) for the requests that name it. Refused with `DeleteConflict` while
    /// a request under it is pending, approved or active at `now` (revoke those first), and
    /// `NoSuchEntity` for an unknown or already deleted one. Writes are serialized (every
    /// write transaction bumps the one generation row first), so no request can slip in
    /// between the check and the mark.
    pub async fn delete_eligibility(&self, account: &str, id: &str, now: Timestamp) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let marked = tx
            .conn
            .exec(
                "UPDATE access_eligibility SET deleted_ms = $1 WHERE eligibility_id = $2 \
                 AND account_id = $3 AND deleted_ms IS NULL",
                args![ms(now), id, account],
            )
            .await?;
        if marked == 0 {
            return Err(StoreError::no_such(
                crate::error::EntityKind::Eligibility,
                id,
            ));
        }
        let open = tx
            .conn
            .scalar_i64(
                "SELECT COUNT(*) FROM access_requests WHERE eligibility_id = $1 AND \
                 ((state IN ('pending', 'approved') AND pending_until_ms > $2) OR \
                 (state = 'active' AND active_until_ms > $2))",
                args![id, ms(now)],
            )
            .await?;
        if open > 0 {
            // Dropping the transaction rolls the mark back.
            return Err(StoreError::DeleteConflict(format!(
                "Eligibility {id} has {open} open access request(s) (pending, approved or active); revoke them first."
            )));
        }
        self.commit(tx).await?;
        Ok(())
    }

    /// Stores a new request under its eligibility (whose account and target it copies);
    /// not under a deleted one.
    pub async fn create_access_request(&self, r: &NewAccessRequest) -> Result<AccessRequestRecord> {
        let id = new_id("REQ");
        let mut tx = self.begin_write().await?;
        let eligibility = tx
            .conn
            .opt(
                &format!(
                    "SELECT {ELIGIBILITY_COLS} FROM access_eligibility WHERE eligibility_id = $1 \
                     AND deleted_ms IS NULL"
                ),
                args![r.eligibility_id.as_str()],
            )
            .await?
            .map(|row| eligibility_from(&row))
            .transpose()?
            .ok_or_else(|| {
                StoreError::Validation(format!("no eligibility {}", r.eligibility_id))
            })?;
        tx.conn
            .exec(
                "INSERT INTO access_requests (request_id, account_id, eligibility_id, requester_id, \
                 requester_arn, requester_source_identity, target_kind, target_arn, duration_secs, \
                 justification, ticket, start_ms, state, requested_ms, pending_until_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                args![
                    id.as_str(),
                    eligibility.account_id.as_str(),
                    eligibility.eligibility_id.as_str(),
                    r.requester_id.as_str(),
                    r.requester_arn.as_str(),
                    r.requester_source_identity.clone(),
                    eligibility.target_kind.as_str(),
                    eligibility.target_arn.as_str(),
                    r.duration_secs,
                    r.justification.as_str(),
                    r.ticket.clone(),
                    r.start.map(ms),
                    r.state.as_str(),
                    ms(r.requested),
                    ms(r.pending_until)
                ],
            )
            .await?;
        let stored = get_request_in(&mut tx.conn, &id).await?.ok_or_else(|| {
            StoreError::Database("request vanished in its own transaction".into())
        })?;
        self.commit(tx).await?;
        Ok(stored)
    }

    /// A request by id.
    pub async fn get_access_request(&self, id: &str) -> Result<Option<AccessRequestRecord>> {
        let mut c = self.inner.pool.conn().await?;
        get_request_in(&mut c, id).await
    }

    /// Requests of an account, newest first; only `requester_id`'s when given.
    pub async fn list_access_requests(
        &self,
        account: &str,
        requester_id: Option<&str>,
    ) -> Result<Vec<AccessRequestRecord>> {
        let mut c = self.inner.pool.conn().await?;
        c.all(
            &format!(
                "SELECT {REQUEST_COLS} FROM access_requests WHERE account_id = $1 \
                 AND ($2 IS NULL OR requester_id = $2) ORDER BY requested_ms DESC, request_id"
            ),
            args![account, requester_id],
        )
        .await?
        .iter()
        .map(request_from)
        .collect()
    }

    /// Moves a request from the state `from` to `to`, setting `change`'s columns, in one
    /// transaction conditional on the row still being in `from` (and on `guard`). `None`
    /// when it was not (already moved by someone else, a replay, expired, or no such
    /// request): nothing was changed.
    pub async fn transition_access_request(
        &self,
        request_id: &str,
        from: &str,
        to: &str,
        guard: AccessGuard,
        change: &AccessStateChange,
    ) -> Result<Option<AccessRequestRecord>> {
        let (guard_sql, guard_ms) = match guard {
            AccessGuard::StateOnly => ("", None),
            AccessGuard::PendingBefore(t) => (" AND pending_until_ms > $13", Some(ms(t))),
            AccessGuard::ActiveBefore(t) => (
                " AND active_until_ms IS NOT NULL AND active_until_ms > $13",
                Some(ms(t)),
            ),
        };
        let mut tx = self.begin_write().await?;
        let mut values = args![
            to,
            change.decided_by_id.clone(),
            change.decided_by_arn.clone(),
            change.decided.map(ms),
            change.decision_comment.clone(),
            change.active_from.map(ms),
            change.active_until.map(ms),
            change.ended_by_arn.clone(),
            change.ended.map(ms),
            request_id,
            from,
            // $12 is unused; keeps the guard's placeholder number fixed.
            0_i64
        ];
        if let Some(g) = guard_ms {
            values.push(g.into());
        }
        let changed = tx
            .conn
            .exec(
                &format!(
                    "UPDATE access_requests SET state = $1, \
                     decided_by_id = COALESCE($2, decided_by_id), \
                     decided_by_arn = COALESCE($3, decided_by_arn), \
                     decided_ms = COALESCE($4, decided_ms), \
                     decision_comment = COALESCE($5, decision_comment), \
                     active_from_ms = COALESCE($6, active_from_ms), \
                     active_until_ms = COALESCE($7, active_until_ms), \
                     ended_by_arn = COALESCE($8, ended_by_arn), \
                     ended_ms = COALESCE($9, ended_ms) \
                     WHERE request_id = $10 AND state = $11 AND $12 = 0{guard_sql}"
                ),
                values,
            )
            .await?;
        if changed == 0 {
            // Dropping the transaction rolls back the generation bump too.
            return Ok(None);
        }
        let stored = get_request_in(&mut tx.conn, request_id).await?;
        self.commit(tx).await?;
        Ok(stored)
    }
}

/// The grants of `principal_id` activated and ending after `after` (every node compiles
/// them with the principal; the decision compares their window with its clock).
pub(crate) async fn active_elevations_in(
    c: &mut Conn,
    principal_id: &str,
    after: Timestamp,
) -> Result<Vec<ActiveElevation>> {
    let rows = c
        .all(
            "SELECT r.request_id, r.target_kind, r.target_arn, v.document, r.active_from_ms, \
             r.active_until_ms, r.justification, r.decided_by_arn \
             FROM access_requests r \
             LEFT JOIN policies p ON r.target_kind = 'policy' AND p.arn = r.target_arn \
             LEFT JOIN policy_versions v ON v.policy_id = p.policy_id \
             AND v.version_num = p.default_version \
             WHERE r.requester_id = $1 AND r.state = 'active' AND r.active_until_ms > $2 \
             ORDER BY r.active_from_ms, r.request_id",
            args![principal_id, ms(after)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ActiveElevation {
                request_id: r.text(0)?,
                target_kind: r.text(1)?,
                target_arn: r.text(2)?,
                document: r.opt_text(3)?,
                active_from: r.opt_i64(4)?.map(ts).unwrap_or_default(),
                active_until: r.opt_i64(5)?.map(ts).unwrap_or_default(),
                justification: r.text(6)?,
                approved_by: r.opt_text(7)?,
            })
        })
        .collect()
}
