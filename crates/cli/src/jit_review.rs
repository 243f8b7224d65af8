//! The just-in-time part of `gatehouse review` on a store: beside the standing access the
//! analyzer reviews, who is eligible to ask for what, who holds an elevated grant now, and
//! who approved (or denied, or revoked) what in the review period. It reads the store's
//! access rows; the analyzer, which knows no store, is not involved.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use gatehouse_store::Store;
use serde::Serialize;
use std::fmt::Write as _;

/// Eligible, elevated, decided: the review's just-in-time section.
#[derive(Debug, Serialize)]
pub(crate) struct JitReview {
    /// The review's time.
    pub at: DateTime<Utc>,
    /// The start of the period decisions are listed for.
    pub since: DateTime<Utc>,
    /// Who may ask for what.
    pub eligible: Vec<EligibleLine>,
    /// Grants active at `at`.
    pub elevated: Vec<ElevatedLine>,
    /// Approvals, denials and revocations in the period, oldest first.
    pub decisions: Vec<DecisionLine>,
}

/// One eligibility.
#[derive(Debug, Serialize)]
pub(crate) struct EligibleLine {
    pub eligibility_id: String,
    pub subject: String,
    pub target: String,
    pub max_duration_secs: i64,
    pub approval_required: bool,
    pub approvers: Vec<String>,
    pub mfa_required: bool,
}

/// One grant active now.
#[derive(Debug, Serialize)]
pub(crate) struct ElevatedLine {
    pub request_id: String,
    pub requester: String,
    pub target: String,
    pub until: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub justification: String,
}

/// One decision on a request.
#[derive(Debug, Serialize)]
pub(crate) struct DecisionLine {
    pub time: DateTime<Utc>,
    /// `approved`, `denied` or `revoked`.
    pub decision: &'static str,
    pub by: String,
    pub request_id: String,
    pub requester: String,
    pub target: String,
}

/// Reads the section for `account` at `at`, decisions since `days` before it.
pub(crate) async fn read(
    store: &Store,
    account: &str,
    at: DateTime<Utc>,
    days: i64,
) -> Result<JitReview> {
    let since = at - Duration::days(days.max(0));
    let eligible = store
        .list_eligibilities(account)
        .await?
        .into_iter()
        .map(|e| EligibleLine {
            eligibility_id: e.eligibility_id,
            subject: e.subject_arn,
            target: e.target_arn,
            max_duration_secs: e.max_duration_secs,
            approval_required: e.approval_required,
            approvers: e.approvers.into_iter().map(|a| a.arn).collect(),
            mfa_required: e.mfa_required,
        })
        .collect();
    let mut elevated = Vec::new();
    let mut decisions = Vec::new();
    for v in gatehouse_access::list(store, account, None, at).await? {
        let r = v.record;
        if v.state == gatehouse_access::RequestState::Active
            && let Some(until) = r.active_until
        {
            elevated.push(ElevatedLine {
                request_id: r.request_id.clone(),
                requester: r.requester_arn.clone(),
                target: r.target_arn.clone(),
                until,
                approved_by: r.decided_by_arn.clone(),
                justification: r.justification.clone(),
            });
        }
        let decided = match (r.decided, &r.decided_by_arn) {
            (Some(t), Some(by)) => Some((t, by.clone())),
            _ => None,
        };
        if let Some((t, by)) = decided
            && t >= since
            && t <= at
        {
            decisions.push(DecisionLine {
                time: t,
                decision: if r.state == "denied" {
                    "denied"
                } else {
                    "approved"
                },
                by,
                request_id: r.request_id.clone(),
                requester: r.requester_arn.clone(),
                target: r.target_arn.clone(),
            });
        }
        if let (Some(t), Some(by)) = (r.ended, &r.ended_by_arn)
            && t >= since
            && t <= at
        {
            decisions.push(DecisionLine {
                time: t,
                decision: "revoked",
                by: by.clone(),
                request_id: r.request_id,
                requester: r.requester_arn,
                target: r.target_arn,
            });
        }
    }
    decisions.sort_by(|a, b| (a.time, &a.request_id).cmp(&(b.time, &b.request_id)));
    Ok(JitReview {
        at,
        since,
        eligible,
        elevated,
        decisions,
    })
}

impl JitReview {
    /// The section as Markdown (appended to the analyzer's review).
    pub(crate) fn markdown(&self) -> String {
        let mut s = String::from("\n## Just-in-time access\n\n");
        let _ = writeln!(
            s,
            "Standing access is reviewed above; this is access held by nobody standing.\n"
        );
        let _ = writeln!(s, "### Eligible (may ask)\n");
        if self.eligible.is_empty() {
            s.push_str("None.\n");
        }
        for e in &self.eligible {
            let approval = if e.approval_required {
                format!("approved by {}", e.approvers.join(", "))
            } else {
                "no approval".to_owned()
            };
            let mfa = if e.mfa_required {
                ", MFA to activate"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "- {} → {} (at most {} s; {approval}{mfa}) `{}`",
                e.subject, e.target, e.max_duration_secs, e.eligibility_id
            );
        }
        let _ = writeln!(
            s,
            "\n### Currently elevated (at {})\n",
            self.at.to_rfc3339()
        );
        if self.elevated.is_empty() {
            s.push_str("None.\n");
        }
        for e in &self.elevated {
            let _ = writeln!(
                s,
                "- {} → {} until {}, approved by {}: {:?} `{}`",
                e.requester,
                e.target,
                e.until.to_rfc3339(),
                e.approved_by.as_deref().unwrap_or("(no approval needed)"),
                e.justification,
                e.request_id
            );
        }
        let _ = writeln!(s, "\n### Decisions since {}\n", self.since.to_rfc3339());
        if self.decisions.is_empty() {
            s.push_str("None.\n");
        }
        for d in &self.decisions {
            let _ = writeln!(
                s,
                "- {} {} {} {}'s request for {} `{}`",
                d.time.to_rfc3339(),
                d.by,
                d.decision,
                d.requester,
                d.target,
                d.request_id
            );
        }
        s
    }
}
