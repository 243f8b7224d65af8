//! Just-in-time elevated access: nobody holds deploy or guardrail rights standing; they
//! ask, an approver agrees, and the grant applies for a window.
//!
//! This crate is the domain, with no HTTP: who may ask for what ([`create_eligibility`]),
//! asking ([`request`]), deciding ([`approve`], [`deny`]), starting ([`activate`]) and
//! ending early ([`revoke`]), each step a conditional move of the store
//! ([`gatehouse_store::Store::transition_access_request`]) checked against the table in
//! [`state`]. The time of every step is the caller's clock (`now`), read by the face from
//! the pipeline's `Clock`, so tests move time instead of sleeping.
//!
//! Enforcement is not here: the store hands a principal's activated grants to the policy
//! pipeline with its policies, and the decision compares each window with its clock.
//!
//! No self-approval, ever: the approver's stored unique id must differ from the
//! requester's, a role session may approve only with a source identity (so the person
//! behind it is known), and that source identity must not name the requester.

pub mod error;
pub mod state;

use chrono::{DateTime, Duration, Utc};
use gatehouse_store::{
    AccessGuard, AccessRequestRecord, AccessStateChange, ApproverRef, Eligibility,
    NewAccessRequest, NewEligibility, Store, StoreError,
};
use serde::Serialize;

pub use error::AccessError;
pub use state::{RequestEvent, RequestState, next_state};

/// How long a request may wait for a decision (and an approved one for activation) unless
/// the operator configures otherwise.
pub const DEFAULT_PENDING_TTL: Duration = Duration::hours(24);
/// The shortest grant.
pub const MIN_DURATION_SECS: i64 = 60;
/// The longest maximum an eligibility may allow (12 hours, AWS's longest role session).
pub const MAX_DURATION_SECS: i64 = 12 * 3600;
const MAX_JUSTIFICATION: usize = 1024;
const MAX_TICKET: usize = 256;

/// What kind of identity is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerKind {
    /// An IAM user (or a session of one from `GetSessionToken`).
    User,
    /// A role session (`AssumeRole`...).
    RoleSession,
    /// The account's root / the operator of the store.
    Root,
}

/// Who is calling, as authenticated by the face: stored ids, never names as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's account.
    pub account_id: String,
    /// The stored unique id of the user or role (`AIDA...`/`AROA...`); empty for root.
    pub principal_id: String,
    /// The caller's ARN (a session's `assumed-role/...` ARN).
    pub principal_arn: String,
    /// What kind of identity it is.
    pub kind: CallerKind,
    /// The user's name (for a user), or the role's name.
    pub name: String,
    /// Stored unique ids of the user's groups.
    pub group_ids: Vec<String>,
    /// Federated groups the session carries.
    pub federated_groups: Vec<String>,
    /// The session's source identity (`sts:SourceIdentity`).
    pub source_identity: Option<String>,
    /// Whether the caller authenticated with MFA.
    pub mfa: bool,
}

/// An eligibility to create, as an operator names it (ARNs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilitySpec {
    /// The account.
    pub account_id: String,
    /// A user, role or group ARN, or `federated-group:NAME`.
    pub subject: String,
    /// A role or managed-policy ARN.
    pub target: String,
    /// The longest grant, in seconds.
    pub max_duration_secs: i64,
    /// Whether an approval is needed.
    pub approval_required: bool,
    /// Approver user, role or group ARNs.
    pub approvers: Vec<String>,
    /// Whether activation needs MFA.
    pub mfa_required: bool,
    /// Whether a ticket reference is required.
    pub ticket_required: bool,
}

/// A request, as the requester phrases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// The role or managed-policy ARN asked for.
    pub target: String,
    /// The grant's length in seconds.
    pub duration_secs: i64,
    /// Why.
    pub justification: String,
    /// A ticket reference.
    pub ticket: Option<String>,
    /// The earliest start.
    pub start: Option<DateTime<Utc>>,
}

/// A request with its state at the time it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestView {
    /// The state now (expiry applied).
    pub state: RequestState,
    /// What is stored.
    #[serde(flatten)]
    pub record: AccessRequestRecord,
}

/// One state change, for the audit log and the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessEvent {
    /// `requested`, `approved`, `denied`, `activated`, `revoked`.
    pub event: &'static str,
    /// Who did it.
    pub actor: String,
    /// When (the caller's clock).
    pub time: DateTime<Utc>,
    /// The request after the change.
    pub request: RequestView,
}

/// An IAM ARN split into account, kind and name (the path dropped).
struct IamArn<'a> {
    account: &'a str,
    kind: &'a str,
    name: &'a str,
}

fn parse_iam_arn(arn: &str) -> Result<IamArn<'_>, AccessError> {
    let bad = || {
        AccessError::Validation(format!(
            "{arn:?} is not an IAM ARN (arn:gatehouse:iam::ACCOUNT:KIND/NAME)"
        ))
    };
    let rest = arn.strip_prefix("arn:gatehouse:iam::").ok_or_else(bad)?;
    let (account, resource) = rest.split_once(':').ok_or_else(bad)?;
    let (kind, path_name) = resource.split_once('/').ok_or_else(bad)?;
    let name = path_name
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(bad)?;
    Ok(IamArn {
        account,
        kind,
        name,
    })
}

fn not_found(kind: &'static str, name: &str) -> impl FnOnce(StoreError) -> AccessError {
    let name = name.to_owned();
    move |e| match e {
        StoreError::NoSuchEntity { .. } => AccessError::NoSuchTarget { kind, name },
        other => AccessError::Store(other),
    }
}

/// The stored kind and unique id of a user, role or group ARN in `account`.
async fn resolve_principal(
    store: &Store,
    account: &str,
    arn: &str,
) -> Result<(String, String), AccessError> {
    let a = parse_iam_arn(arn)?;
    if a.account != account {
        return Err(AccessError::Validation(format!(
            "{arn} is not in account {account}"
        )));
    }
    let id = match a.kind {
        "user" => {
            store
                .get_user(account, a.name)
                .await
                .map_err(not_found("user", arn))?
                .user_id
        }
        "role" => {
            store
                .get_role(account, a.name)
                .await
                .map_err(not_found("role", arn))?
                .role_id
        }
        "group" => {
            store
                .get_group(account, a.name)
                .await
                .map_err(not_found("group", arn))?
                .group_id
        }
        other => {
            return Err(AccessError::Validation(format!(
                "{arn}: a subject or approver is a user, role or group, not {other}"
            )));
        }
    };
    Ok((a.kind.to_owned(), id))
}

/// The kind (`role` or `policy`) of a target ARN, which must exist in `account`.
async fn resolve_target(
    store: &Store,
    account: &str,
    arn: &str,
) -> Result<&'static str, AccessError> {
    let a = parse_iam_arn(arn)?;
    if a.account != account {
        return Err(AccessError::Validation(format!(
            "{arn} is not in account {account}"
        )));
    }
    match a.kind {
        "role" => {
            store
                .get_role(account, a.name)
                .await
                .map_err(not_found("role", arn))?;
            Ok("role")
        }
        "policy" => {
            store
                .get_policy(account, arn)
                .await
                .map_err(not_found("policy", arn))?;
            Ok("policy")
        }
        other => Err(AccessError::Validation(format!(
            "{arn}: a target is a role or a managed policy, not {other}"
        ))),
    }
}

/// Resolves the caller a CLI operator names with an ARN (a user or role of the store).
pub async fn caller_from_arn(store: &Store, arn: &str) -> Result<Caller, AccessError> {
    let a = parse_iam_arn(arn)?;
    let account = a.account.to_owned();
    match a.kind {
        "user" => {
            let u = store
                .get_user(&account, a.name)
                .await
                .map_err(not_found("user", arn))?;
            let groups = store
                .list_groups_for_user(&account, &u.name, &gatehouse_store::ListParams::default())
                .await?;
            Ok(Caller {
                principal_arn: u.arn(),
                account_id: account,
                principal_id: u.user_id,
                kind: CallerKind::User,
                name: u.name,
                group_ids: groups.items.into_iter().map(|g| g.group_id).collect(),
                federated_groups: Vec::new(),
                source_identity: None,
                mfa: false,
            })
        }
        "role" => {
            let r = store
                .get_role(&account, a.name)
                .await
                .map_err(not_found("role", arn))?;
            Ok(Caller {
                principal_arn: r.arn(),
                account_id: account,
                principal_id: r.role_id,
                kind: CallerKind::RoleSession,
                name: r.name,
                group_ids: Vec::new(),
                federated_groups: Vec::new(),
                source_identity: None,
                mfa: false,
            })
        }
        other => Err(AccessError::Validation(format!(
            "{arn}: a caller is a user or a role, not {other}"
        ))),
    }
}

/// Stores who may ask for what.
pub async fn create_eligibility(
    store: &Store,
    spec: &EligibilitySpec,
) -> Result<Eligibility, AccessError> {
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&spec.max_duration_secs) {
        return Err(AccessError::Validation(format!(
            "MaxDurationSeconds {} must be between {MIN_DURATION_SECS} and {MAX_DURATION_SECS}",
            spec.max_duration_secs
        )));
    }
    if spec.approval_required && spec.approvers.is_empty() {
        return Err(AccessError::Validation(
            "an eligibility that needs approval needs at least one approver".into(),
        ));
    }
    let account = spec.account_id.as_str();
    let target_kind = resolve_target(store, account, &spec.target).await?;
    let (subject_kind, subject_id, subject_arn) =
        match spec.subject.strip_prefix("federated-group:") {
            Some(group) if !group.is_empty() && group.len() <= 256 => (
                "federated-group".to_owned(),
                group.to_owned(),
                spec.subject.clone(),
            ),
            Some(_) => {
                return Err(AccessError::Validation(
                    "federated-group: needs a group name of 1 to 256 characters".into(),
                ));
            }
            None => {
                let (kind, id) = resolve_principal(store, account, &spec.subject).await?;
                (kind, id, spec.subject.clone())
            }
        };
    let mut approvers = Vec::with_capacity(spec.approvers.len());
    for arn in &spec.approvers {
        let (kind, id) = resolve_principal(store, account, arn).await?;
        approvers.push(ApproverRef {
            kind,
            id,
            arn: arn.clone(),
        });
    }
    Ok(store
        .create_eligibility(&NewEligibility {
            account_id: account.to_owned(),
            subject_kind,
            subject_id,
            subject_arn,
            target_kind: target_kind.to_owned(),
            target_arn: spec.target.clone(),
            max_duration_secs: spec.max_duration_secs,
            approval_required: spec.approval_required,
            approvers,
            mfa_required: spec.mfa_required,
            ticket_required: spec.ticket_required,
        })
        .await?)
}

/// Deletes an eligibility of `account`: nobody can ask under it any more. Refused while a
/// request under it is open (pending, approved or active at `now`): revoke those first.
pub async fn delete_eligibility(
    store: &Store,
    account: &str,
    eligibility_id: &str,
    now: DateTime<Utc>,
) -> Result<(), AccessError> {
    store
        .delete_eligibility(account, eligibility_id, now)
        .await
        .map_err(|e| match e {
            StoreError::NoSuchEntity { .. } => {
                AccessError::NoSuchEligibility(eligibility_id.to_owned())
            }
            other => AccessError::Store(other),
        })
}

/// Whether `caller` is the eligibility's subject.
fn is_subject(e: &Eligibility, caller: &Caller) -> bool {
    match e.subject_kind.as_str() {
        "user" | "role" => e.subject_id == caller.principal_id,
        "group" => caller.group_ids.contains(&e.subject_id),
        "federated-group" => caller.federated_groups.contains(&e.subject_id),
        _ => false,
    }
}

/// Whether `caller` is one of the approvers.
fn is_approver(e: &Eligibility, caller: &Caller) -> bool {
    e.approvers.iter().any(|a| match a.kind.as_str() {
        "user" | "role" => a.id == caller.principal_id,
        "group" => caller.group_ids.contains(&a.id),
        _ => false,
    })
}

/// Why `caller` deciding `r` would be self-approval, if it would.
pub fn self_approval(r: &AccessRequestRecord, caller: &Caller) -> Option<String> {
    if caller.principal_id == r.requester_id {
        return Some(format!("same principal {}", r.requester_id));
    }
    let requester_name = parse_iam_arn(&r.requester_arn)
        .ok()
        .filter(|a| a.kind == "user")
        .map(|a| a.name);
    if let Some(si) = &caller.source_identity
        && (Some(si.as_str()) == requester_name
            || r.requester_source_identity.as_deref() == Some(si.as_str())
            || *si == r.requester_arn)
    {
        return Some(format!(
            "the approver's source identity {si} is the requester"
        ));
    }
    if let Some(rsi) = &r.requester_source_identity
        && caller.kind == CallerKind::User
        && (*rsi == caller.name || *rsi == caller.principal_arn)
    {
        return Some(format!("the request was made for {rsi}, the approver"));
    }
    None
}

async fn load_request(
    store: &Store,
    caller: &Caller,
    id: &str,
) -> Result<AccessRequestRecord, AccessError> {
    match store.get_access_request(id).await? {
        Some(r) if r.account_id == caller.account_id => Ok(r),
        _ => Err(AccessError::NoSuchRequest(id.to_owned())),
    }
}

async fn load_eligibility(store: &Store, id: &str) -> Result<Eligibility, AccessError> {
    store
        .get_eligibility(id)
        .await?
        .ok_or_else(|| AccessError::NoSuchEligibility(id.to_owned()))
}

fn view(record: AccessRequestRecord, now: DateTime<Utc>) -> Result<RequestView, AccessError> {
    Ok(RequestView {
        state: RequestState::effective(&record, now)?,
        record,
    })
}

fn event(
    name: &'static str,
    caller: &Caller,
    now: DateTime<Utc>,
    record: AccessRequestRecord,
) -> Result<AccessEvent, AccessError> {
    Ok(AccessEvent {
        event: name,
        actor: caller.principal_arn.clone(),
        time: now,
        request: view(record, now)?,
    })
}

/// Asks for a role or a managed policy.
pub async fn request(
    store: &Store,
    caller: &Caller,
    spec: &RequestSpec,
    now: DateTime<Utc>,
    pending_ttl: Duration,
) -> Result<AccessEvent, AccessError> {
    let justification = spec.justification.trim();
    if justification.is_empty() || justification.len() > MAX_JUSTIFICATION {
        return Err(AccessError::Validation(format!(
            "Justification must be 1 to {MAX_JUSTIFICATION} characters"
        )));
    }
    if let Some(t) = &spec.ticket
        && (t.trim().is_empty() || t.len() > MAX_TICKET)
    {
        return Err(AccessError::Validation(format!(
            "Ticket must be 1 to {MAX_TICKET} characters"
        )));
    }
    if spec.duration_secs < MIN_DURATION_SECS {
        return Err(AccessError::Validation(format!(
            "DurationSeconds {} is below the minimum of {MIN_DURATION_SECS}",
            spec.duration_secs
        )));
    }
    if caller.kind == CallerKind::Root {
        return Err(AccessError::Validation(
            "the root identity holds every permission and requests no elevation".into(),
        ));
    }
    resolve_target(store, &caller.account_id, &spec.target).await?;
    let eligible: Vec<Eligibility> = store
        .list_eligibilities(&caller.account_id)
        .await?
        .into_iter()
        .filter(|e| e.target_arn == spec.target && is_subject(e, caller))
        .collect();
    let Some(longest) = eligible.iter().map(|e| e.max_duration_secs).max() else {
        return Err(AccessError::NotEligible {
            caller: caller.principal_arn.clone(),
            target: spec.target.clone(),
        });
    };
    // The least demanding eligibility that allows the duration: an approval-free one first.
    let Some(e) = eligible
        .iter()
        .filter(|e| spec.duration_secs <= e.max_duration_secs)
        .filter(|e| spec.ticket.is_some() || !e.ticket_required)
        .min_by_key(|e| (e.approval_required, e.mfa_required))
    else {
        if spec.duration_secs > longest {
            return Err(AccessError::DurationTooLong {
                requested: spec.duration_secs,
                max: longest,
                target: spec.target.clone(),
            });
        }
        return Err(AccessError::TicketRequired(spec.target.clone()));
    };
    let start = spec.start.filter(|s| *s > now);
    let record = store
        .create_access_request(&NewAccessRequest {
            eligibility_id: e.eligibility_id.clone(),
            requester_id: caller.principal_id.clone(),
            requester_arn: caller.principal_arn.clone(),
            requester_source_identity: caller.source_identity.clone(),
            duration_secs: spec.duration_secs,
            justification: justification.to_owned(),
            ticket: spec.ticket.clone(),
            start,
            state: if e.approval_required {
                RequestState::Pending
            } else {
                RequestState::Approved
            }
            .as_str()
            .to_owned(),
            requested: now,
            pending_until: start.unwrap_or(now) + pending_ttl,
        })
        .await?;
    event("requested", caller, now, record)
}

/// The state `record` can move to on `event` at `now`, or why not.
fn check_transition(
    record: &AccessRequestRecord,
    ev: RequestEvent,
    now: DateTime<Utc>,
) -> Result<RequestState, AccessError> {
    let state = RequestState::effective(record, now)?;
    next_state(state, ev).ok_or_else(|| AccessError::InvalidState {
        request_id: record.request_id.clone(),
        state,
        event: ev,
    })
}

/// Moves the stored row; when the conditional write finds it moved already (a replay, a
/// race with another node, an expiry at this instant), answers with its state now.
async fn commit_transition(
    store: &Store,
    record: &AccessRequestRecord,
    ev: RequestEvent,
    to: RequestState,
    change: &AccessStateChange,
    now: DateTime<Utc>,
) -> Result<AccessRequestRecord, AccessError> {
    let guard = if record.state == RequestState::Active.as_str() {
        AccessGuard::ActiveBefore(now)
    } else {
        AccessGuard::PendingBefore(now)
    };
    match store
        .transition_access_request(
            &record.request_id,
            &record.state,
            to.as_str(),
            guard,
            change,
        )
        .await?
    {
        Some(updated) => Ok(updated),
        None => {
            let state = match store.get_access_request(&record.request_id).await? {
                Some(r) => RequestState::effective(&r, now)?,
                None => return Err(AccessError::NoSuchRequest(record.request_id.clone())),
            };
            Err(AccessError::InvalidState {
                request_id: record.request_id.clone(),
                state,
                event: ev,
            })
        }
    }
}

async fn decide(
    store: &Store,
    caller: &Caller,
    id: &str,
    ev: RequestEvent,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AccessEvent, AccessError> {
    let record = load_request(store, caller, id).await?;
    let eligibility = load_eligibility(store, &record.eligibility_id).await?;
    if let Some(why) = self_approval(&record, caller) {
        return Err(AccessError::SelfApproval {
            approver: caller.principal_arn.clone(),
            request_id: record.request_id,
            event: ev.as_str(),
            why,
        });
    }
    if caller.kind == CallerKind::RoleSession && caller.source_identity.is_none() {
        return Err(AccessError::ApproverUnknown {
            caller: caller.principal_arn.clone(),
        });
    }
    if !is_approver(&eligibility, caller) {
        return Err(AccessError::NotAnApprover {
            caller: caller.principal_arn.clone(),
            request_id: record.request_id,
        });
    }
    if let Some(c) = comment
        && c.len() > MAX_JUSTIFICATION
    {
        return Err(AccessError::Validation(format!(
            "Comment must be at most {MAX_JUSTIFICATION} characters"
        )));
    }
    let to = check_transition(&record, ev, now)?;
    let change = AccessStateChange {
        decided_by_id: Some(caller.principal_id.clone()),
        decided_by_arn: Some(caller.principal_arn.clone()),
        decided: Some(now),
        decision_comment: comment.map(str::to_owned),
        ..AccessStateChange::default()
    };
    let updated = commit_transition(store, &record, ev, to, &change, now).await?;
    let name = if ev == RequestEvent::Approve {
        "approved"
    } else {
        "denied"
    };
    event(name, caller, now, updated)
}

/// An approver approves a pending request.
pub async fn approve(
    store: &Store,
    caller: &Caller,
    id: &str,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AccessEvent, AccessError> {
    decide(store, caller, id, RequestEvent::Approve, comment, now).await
}

/// An approver denies a pending request.
pub async fn deny(
    store: &Store,
    caller: &Caller,
    id: &str,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AccessEvent, AccessError> {
    decide(store, caller, id, RequestEvent::Deny, comment, now).await
}

/// The requester starts an approved grant: it applies from `now` for its duration.
pub async fn activate(
    store: &Store,
    caller: &Caller,
    id: &str,
    now: DateTime<Utc>,
) -> Result<AccessEvent, AccessError> {
    let record = load_request(store, caller, id).await?;
    if caller.principal_id != record.requester_id {
        return Err(AccessError::NotPermitted {
            caller: caller.principal_arn.clone(),
            request_id: record.request_id,
            event: "activate",
            why: "only the requester activates a grant",
        });
    }
    let to = check_transition(&record, RequestEvent::Activate, now)?;
    let eligibility = load_eligibility(store, &record.eligibility_id).await?;
    if eligibility.mfa_required && !caller.mfa {
        return Err(AccessError::MfaRequired(record.request_id));
    }
    if let Some(start) = record.start
        && start > now
    {
        return Err(AccessError::NotStarted {
            request_id: record.request_id,
            start: start.to_rfc3339(),
        });
    }
    let change = AccessStateChange {
        active_from: Some(now),
        active_until: Some(now + Duration::seconds(record.duration_secs)),
        ..AccessStateChange::default()
    };
    let updated =
        commit_transition(store, &record, RequestEvent::Activate, to, &change, now).await?;
    event("activated", caller, now, updated)
}

/// Ends a request or grant early: by its requester, one of its approvers, or root.
pub async fn revoke(
    store: &Store,
    caller: &Caller,
    id: &str,
    now: DateTime<Utc>,
) -> Result<AccessEvent, AccessError> {
    let record = load_request(store, caller, id).await?;
    let eligibility = load_eligibility(store, &record.eligibility_id).await?;
    let allowed = caller.kind == CallerKind::Root
        || caller.principal_id == record.requester_id
        || is_approver(&eligibility, caller);
    if !allowed {
        return Err(AccessError::NotPermitted {
            caller: caller.principal_arn.clone(),
            request_id: record.request_id,
            event: "revoke",
            why: "only the requester, an approver or an administrator revokes",
        });
    }
    let to = check_transition(&record, RequestEvent::Revoke, now)?;
    let change = AccessStateChange {
        ended_by_arn: Some(caller.principal_arn.clone()),
        ended: Some(now),
        ..AccessStateChange::default()
    };
    let updated = commit_transition(store, &record, RequestEvent::Revoke, to, &change, now).await?;
    event("revoked", caller, now, updated)
}

/// Requests of the caller's account (only `requester_id`'s when given), with their state
/// at `now`.
pub async fn list(
    store: &Store,
    account: &str,
    requester_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<RequestView>, AccessError> {
    store
        .list_access_requests(account, requester_id)
        .await?
        .into_iter()
        .map(|r| view(r, now))
        .collect()
}

/// The root caller of `account` (the store's operator).
pub fn root_caller(account: &str) -> Caller {
    Caller {
        account_id: account.to_owned(),
        principal_id: String::new(),
        principal_arn: format!("arn:gatehouse:iam::{account}:root"),
        kind: CallerKind::Root,
        name: "root".to_owned(),
        group_ids: Vec::new(),
        federated_groups: Vec::new(),
        source_identity: None,
        mfa: false,
    }
}

/// The ARN a request is authorized and audited as:
/// `arn:gatehouse:gatehouse::ACCOUNT:access-request/ID`.
pub fn request_arn(account: &str, request_id: &str) -> String {
    format!("arn:gatehouse:gatehouse::{account}:access-request/{request_id}")
}

/// The ARN eligibilities are authorized and audited as:
/// `arn:gatehouse:gatehouse::ACCOUNT:eligibility/ID` (`*` for one not made yet).
pub fn eligibility_arn(account: &str, eligibility_id: &str) -> String {
    format!("arn:gatehouse:gatehouse::{account}:eligibility/{eligibility_id}")
}
