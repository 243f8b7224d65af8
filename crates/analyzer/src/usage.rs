//! Usage against grants: what an identity may do that it has not done. Two sources, each
//! only as far as it reaches:
//!
//! - **Gatehouse's audit log** records every call by principal, action and decision. An
//!   identity's granted actions (the engine's answer: the diff from nothing to its policies,
//!   over the actions of Gatehouse's services) minus the
//!   actions it was allowed in the last N days are its unused permissions (GH-HY-004). Only
//!   actions of the services Gatehouse serves (`ai`, `iam`, `sts`) are counted: nothing else
//!   can appear in its log. The log must reach back N days for "unused" to mean that; when
//!   it is younger the finding says how many days it covers and drops to low severity, and
//!   an empty log gives no finding at all (a notice instead).
//! - **AWS authorization details** have no per-action history, only
//!   `RoleLastUsed.LastUsedDate`: a role idle for N days that still may write or change
//!   permissions is standing access nobody uses (GH-HY-005). "Now" is the export's own
//!   latest date, so the same export always gives the same answer.

use crate::actions::{AccessLevel, ActionInfo, AwsActions};
use crate::finding::{Finding, Location, Severity};
use crate::generate::AuditRecord;
use crate::model::{AwsPrincipal, CredentialRow, Inventory, PrincipalType};
use crate::subject::Subject;
use chrono::{DateTime, FixedOffset, Utc};
use gatehouse_policy::{Catalog, Request};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Days without use after which access counts as unused, unless asked otherwise.
pub const DEFAULT_UNUSED_DAYS: i64 = 90;

/// How much of the asked window the audit log covers.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// The window asked for, in days.
    pub asked_days: i64,
    /// Whole days from the log's first record to `now` (capped at `asked_days`).
    pub covered_days: i64,
    /// The log's first record (RFC 3339), when it has any.
    pub first_record: Option<String>,
    /// The end of the window (RFC 3339).
    pub now: String,
}

impl Window {
    /// True when the log reaches back the whole window.
    pub fn complete(&self) -> bool {
        self.first_record.is_some() && self.covered_days >= self.asked_days
    }

    /// A sentence for reports when the window is not complete.
    pub fn notice(&self) -> Option<String> {
        match &self.first_record {
            None => Some(format!(
                "the audit log is empty: unused permissions (last {} days) were not assessed",
                self.asked_days
            )),
            Some(first) if !self.complete() => Some(format!(
                "the audit log starts at {first}, {} of the {} days asked: permissions are \
                 reported as unused only within those {} days, at low severity",
                self.covered_days, self.asked_days, self.covered_days
            )),
            Some(_) => None,
        }
    }
}

/// Actions one policy statement grants that were not used.
#[derive(Debug, Clone, Serialize)]
pub struct UnusedGrant {
    /// The statement that allows them (`identity `POLICY` statement SID`).
    pub through: String,
    /// The actions, a whole service written `service:*` when none of it was used.
    pub actions: Vec<String>,
}

/// One identity's granted against used actions.
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalUsage {
    /// ARN.
    pub principal: String,
    /// `user` or `role`.
    pub kind: &'static str,
    /// Number of actions granted (of the services Gatehouse serves).
    pub granted: usize,
    /// Actions used (allowed calls) in the window.
    pub used: Vec<String>,
    /// Granted actions not used in the window, by the statement that grants them.
    pub unused: Vec<UnusedGrant>,
    /// The last allowed call in the window (RFC 3339).
    pub last_used: Option<String>,
    /// How many used actions are among the granted ones.
    #[serde(skip)]
    used_granted: usize,
    /// How findings name it, and where it is.
    #[serde(skip)]
    label: String,
    #[serde(skip)]
    path: String,
}

impl PrincipalUsage {
    /// Number of unused actions (a `service:*` entry counts its catalog actions).
    pub fn unused_count(&self) -> usize {
        self.granted.saturating_sub(self.used_granted)
    }
}

/// True when an audit record's principal is `arn` — the identity itself, or a session of the
/// role `arn` names (`arn:P:sts::A:assumed-role/NAME/SESSION` for `arn:P:iam::A:role/PATH/NAME`).
pub fn is_principal(recorded: &str, arn: &str) -> bool {
    if recorded == arn {
        return true;
    }
    let (Some((rp, rest)), Some((ap, role))) =
        (recorded.split_once(":sts::"), arn.split_once(":iam::"))
    else {
        return false;
    };
    let (Some((racct, session)), Some((aacct, role_path))) =
        (rest.split_once(':'), role.split_once(':'))
    else {
        return false;
    };
    let Some(name) = session
        .strip_prefix("assumed-role/")
        .and_then(|s| s.split('/').next())
    else {
        return false;
    };
    rp == ap
        && racct == aacct
        && role_path
            .strip_prefix("role/")
            .is_some_and(|p| p.rsplit('/').next() == Some(name))
}

/// An audit log indexed for usage questions: the window's coverage, and per recorded caller
/// the actions it was allowed in the window and its last allowed call.
#[derive(Debug, Clone)]
pub struct AuditIndex {
    /// How much of the window the log covers.
    pub window: Window,
    by_caller: Vec<(String, BTreeSet<String>, Option<DateTime<FixedOffset>>)>,
}

impl AuditIndex {
    /// The log's time span and each caller's use over the last `days` before `now`.
    pub fn new(records: &[AuditRecord], now: DateTime<Utc>, days: i64) -> AuditIndex {
        let parsed: Vec<(DateTime<FixedOffset>, &AuditRecord)> = records
            .iter()
            .filter_map(|r| Some((DateTime::parse_from_rfc3339(&r.time).ok()?, r)))
            .collect();
        let first = parsed.iter().map(|(t, _)| *t).min();
        let since = now - chrono::Duration::days(days);
        let window = Window {
            asked_days: days,
            covered_days: first.map_or(0, |f| (now - f.with_timezone(&Utc)).num_days().min(days)),
            first_record: first.map(|f| f.to_rfc3339()),
            now: now.to_rfc3339(),
        };
        // Use per recorded principal first (few distinct callers, many records), then per
        // identity: its own calls and its sessions'.
        let mut by_caller: BTreeMap<&str, (BTreeSet<String>, Option<DateTime<FixedOffset>>)> =
            BTreeMap::new();
        for (t, r) in &parsed {
            if r.allowed() && *t >= since {
                let e = by_caller.entry(r.principal.as_str()).or_default();
                e.0.insert(r.action.to_ascii_lowercase());
                e.1 = e.1.max(Some(*t));
            }
        }
        AuditIndex {
            window,
            by_caller: by_caller
                .into_iter()
                .map(|(c, (a, t))| (c.to_owned(), a, t))
                .collect(),
        }
    }
}

/// Every action of the services Gatehouse serves (its own catalog's, and AWS's catalog of
/// the same services): the only ones its audit log can show used.
fn gatehouse_actions() -> &'static [&'static str] {
    static CELL: OnceLock<Vec<&'static str>> = OnceLock::new();
    CELL.get_or_init(|| {
        let gh = Catalog::builtin();
        let aws = AwsActions::get();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for (prefix, svc) in &gh.services {
            names.extend(svc.actions.keys().map(|a| format!("{prefix}:{a}")));
            names.extend(aws.expand(&format!("{prefix}:*")).map(|a| a.name.clone()));
        }
        names
            .into_iter()
            .map(|n| &*Box::leak(n.into_boxed_str()))
            .collect()
    })
}

/// One user's or role's granted against used actions; `None` for a group.
pub(crate) fn usage_of(s: &Subject<'_>, audit: &AuditIndex) -> Option<PrincipalUsage> {
    let p = s.principal;
    if p.kind == PrincipalType::Group {
        return None;
    }
    let mut used = BTreeSet::new();
    let mut last: Option<DateTime<FixedOffset>> = None;
    for (caller, actions, t) in &audit.by_caller {
        if is_principal(caller, &p.arn) {
            used.extend(actions.iter().cloned());
            last = last.max(*t);
        }
    }
    let catalog = Catalog::builtin();
    let allowed = crate::access::what_can_of(s, gatehouse_actions());
    let eval = s.evaluation();
    let mut granted = BTreeSet::new();
    let mut unused: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for change in &allowed.newly_allowed {
        for action in &change.actions {
            if !granted.insert(action.to_ascii_lowercase())
                || used.contains(&action.to_ascii_lowercase())
            {
                continue;
            }
            let mut req = change.example.clone();
            req.action.clone_from(action);
            let through = crate::access::through(&eval, &p.arn, &req).join("; ");
            unused.entry(through).or_default().insert(action.clone());
        }
    }
    let used_granted = used.iter().filter(|u| granted.contains(*u)).count();
    Some(PrincipalUsage {
        principal: p.arn.clone(),
        kind: p.kind.as_str(),
        granted: granted.len(),
        used: used.into_iter().collect(),
        unused: unused
            .into_iter()
            .map(|(through, actions)| UnusedGrant {
                through,
                actions: compress(catalog, actions),
            })
            .collect(),
        last_used: last.map(|t| t.to_rfc3339()),
        used_granted,
        label: p.label(),
        path: p.path.clone(),
    })
}

/// Writes a whole service as `service:*` when every one of its catalog actions is listed.
fn compress(catalog: &Catalog, actions: BTreeSet<String>) -> Vec<String> {
    let mut by_service: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in actions {
        let svc = a
            .split_once(':')
            .map_or("", |(s, _)| s)
            .to_ascii_lowercase();
        by_service.entry(svc).or_default().push(a);
    }
    let mut out = Vec::new();
    for (svc, list) in by_service {
        match catalog.services.get(&svc) {
            Some(s) if s.actions.len() == list.len() => out.push(format!("{svc}:*")),
            _ => out.extend(list),
        }
    }
    out
}

/// Write and permissions-management actions, each service all of whose such actions are
/// listed written `service:*`: an administrator's list is a few hundred services, not
/// twelve thousand actions.
pub(crate) fn compress_writes(actions: &[&'static str]) -> Vec<String> {
    static PER_SERVICE: OnceLock<FxHashMap<String, usize>> = OnceLock::new();
    let per_service = PER_SERVICE.get_or_init(|| {
        let mut m: FxHashMap<String, usize> = FxHashMap::default();
        for a in Levels::Write.catalog() {
            let svc = a.name.split_once(':').map_or("", |(s, _)| s);
            *m.entry(svc.to_ascii_lowercase()).or_default() += 1;
        }
        m
    });
    let mut by_service: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for a in actions {
        let svc = a
            .split_once(':')
            .map_or("", |(s, _)| s)
            .to_ascii_lowercase();
        by_service.entry(svc).or_default().push(a);
    }
    let mut out = Vec::new();
    for (svc, list) in by_service {
        if per_service.get(&svc) == Some(&list.len()) {
            out.push(format!("{svc}:*"));
        } else {
            out.extend(list.into_iter().map(str::to_owned));
        }
    }
    out
}

/// GH-HY-004 from one identity's usage, when it holds unused actions.
pub(crate) fn unused_finding(file: &str, window: &Window, u: &PrincipalUsage) -> Option<Finding> {
    if window.first_record.is_none() || u.unused.is_empty() {
        return None;
    }
    let span = if window.complete() {
        format!("in the last {} days", window.asked_days)
    } else {
        format!(
            "in the {} days the audit log covers (of {} asked; older use is unknown)",
            window.covered_days, window.asked_days
        )
    };
    let grants: Vec<String> = u
        .unused
        .iter()
        .map(|g| format!("{} (through {})", g.actions.join(", "), g.through))
        .collect();
    let message = format!(
        "{} has not used {} of its {} allowed actions {span}: {}. A policy of what it did use: \
         `gatehouse policy generate --principal {} --since {}d`",
        u.label,
        u.unused_count(),
        u.granted,
        grants.join("; "),
        u.principal,
        window.asked_days
    );
    let f = Finding::new(
        "GH-HY-004",
        message,
        Location {
            entity: Some(u.label.clone()),
            policy: u
                .unused
                .first()
                .and_then(|g| g.through.split('`').nth(1))
                .map(str::to_owned),
            ..Location::at(file, u.path.clone())
        },
    );
    Some(if window.complete() {
        f
    } else {
        f.with_severity(Severity::Low)
    })
}

/// An identity idle for the window that still holds write or permissions-management access.
#[derive(Debug, Clone, Serialize)]
pub struct IdleIdentity {
    /// The role's or user's ARN.
    pub principal: String,
    /// When it was last used (RFC 3339), `None` when the export records no use.
    pub last_used: Option<String>,
    /// Days between that (or its creation, when never used) and the export's latest date.
    pub idle_days: i64,
    /// Write and permissions-management actions it may perform (catalog order).
    pub write_actions: Vec<&'static str>,
    /// How many of those manage permissions.
    pub permissions_management: usize,
}

/// The export's own "now": its latest creation or last-used date.
pub fn export_time(inv: &Inventory) -> Option<DateTime<FixedOffset>> {
    inv.aws_principals
        .iter()
        .flat_map(|p| [p.created, p.last_used])
        .flatten()
        .max()
}

/// Roles not used for `days` before `now` (by `RoleLastUsed`, or since creation when the
/// export records no use) that may still write or manage permissions.
///
/// One at a time: an administrator's write list is thousands of actions, and a part's idle
/// administrators held together were the largest thing a scan's part allocated.
pub(crate) fn idle_roles<'a, 's>(
    subjects: &'s [Subject<'a>],
    now: Option<DateTime<FixedOffset>>,
    days: i64,
) -> impl Iterator<Item = (&'a AwsPrincipal, IdleIdentity)> + 's {
    subjects
        .iter()
        .filter(|s| s.principal.kind == PrincipalType::Role && s.principal.usage_tracked)
        .filter_map(move |s| {
            let p = s.principal;
            Some((p, idle_identity(s, p.last_used, p.created, now?, days)?))
        })
}

/// A credential report's rows by user ARN, and the report's own "now" (its latest date).
#[derive(Debug, Clone, Default)]
pub struct CredentialIndex<'a> {
    rows: FxHashMap<&'a str, &'a CredentialRow>,
    now: Option<DateTime<FixedOffset>>,
}

impl<'a> CredentialIndex<'a> {
    /// The row of a user, by ARN.
    pub fn row(&self, arn: &str) -> Option<&'a CredentialRow> {
        self.rows.get(arn).copied()
    }

    /// Indexes a credential report.
    pub fn new(report: &'a Inventory) -> CredentialIndex<'a> {
        CredentialIndex {
            rows: report
                .aws_credentials
                .iter()
                .map(|r| (r.arn.as_str(), r))
                .collect(),
            now: report
                .aws_credentials
                .iter()
                .flat_map(|r| {
                    r.keys
                        .iter()
                        .flat_map(|k| [k.last_rotated, k.last_used])
                        .chain([r.created, r.password_last_used])
                })
                .flatten()
                .max(),
        }
    }
}

/// Users of a credential report whose password and access keys have not been used for
/// `days` before the report's latest date (or, never used, created that long before) and
/// who may still write according to their policies.
pub(crate) fn idle_users(
    subjects: &[Subject<'_>],
    report: &CredentialIndex<'_>,
    days: i64,
) -> Vec<IdleIdentity> {
    let Some(now) = report.now else {
        return Vec::new();
    };
    subjects
        .iter()
        .filter_map(|s| {
            let row = report.rows.get(s.principal.arn.as_str())?;
            let used = row
                .keys
                .iter()
                .filter_map(|k| k.last_used)
                .chain(row.password_last_used)
                .max();
            idle_identity(s, used, row.created, now, days)
        })
        .collect()
}

/// The identity, when its last use (or, never used, its creation) is `days` or more before
/// `now` and it may still write.
fn idle_identity(
    s: &Subject<'_>,
    last_used: Option<DateTime<FixedOffset>>,
    created: Option<DateTime<FixedOffset>>,
    now: DateTime<FixedOffset>,
    days: i64,
) -> Option<IdleIdentity> {
    let idle_days = (now - last_used.or(created)?).num_days();
    if idle_days < days {
        return None;
    }
    let writes = granted_actions(s, Levels::Write, true);
    if writes.is_empty() {
        return None;
    }
    Some(IdleIdentity {
        principal: s.principal.arn.clone(),
        last_used: last_used.map(|t| t.to_rfc3339()),
        idle_days,
        permissions_management: writes
            .iter()
            .filter(|a| a.access == AccessLevel::PermissionsManagement)
            .count(),
        write_actions: writes.iter().map(|a| a.name.as_str()).collect(),
    })
}

/// GH-HY-005: idle roles with write access, from one export.
pub(crate) fn idle_role_findings(
    inv: &Inventory,
    subjects: &[Subject<'_>],
    now: Option<DateTime<FixedOffset>>,
    out: &mut Vec<Finding>,
) {
    for (p, r) in idle_roles(subjects, now, DEFAULT_UNUSED_DAYS) {
        let when = match &r.last_used {
            Some(t) => format!("was last used {t}, {} days before the export", r.idle_days),
            None => format!(
                "has no recorded use, and was created {} days before the export",
                r.idle_days
            ),
        };
        let sample: Vec<&str> = r.write_actions.iter().take(5).copied().collect();
        let more = r.write_actions.len().saturating_sub(sample.len());
        let message = format!(
            "{} {when}, yet may still perform {} write or permissions-management actions ({} of them permissions management), e.g. {}{}",
            p.label(),
            r.write_actions.len(),
            r.permissions_management,
            sample.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        let f = Finding::new(
            "GH-HY-005",
            message,
            Location {
                entity: Some(p.label()),
                ..Location::at(
                    &inv.file,
                    format!(
                        "{}.{}",
                        p.path,
                        if r.last_used.is_some() {
                            "RoleLastUsed"
                        } else {
                            "CreateDate"
                        }
                    ),
                )
            },
        );
        out.push(if r.permissions_management > 0 {
            f.with_severity(Severity::High)
        } else {
            f
        });
    }
}

/// Resources to decide on for a principal: `*` and one instance of each resource pattern its
/// policies name (wildcards filled), so that scoped grants are found too.
pub(crate) fn probe_resources(s: &Subject<'_>) -> Vec<String> {
    let mut resources: Vec<String> = vec!["*".into()];
    for st in s
        .principal
        .policies
        .iter()
        .filter_map(|i| s.inv.aws_policies.get(*i))
        .flat_map(|x| &x.document.statements)
    {
        if let Some(r) = &st.resource {
            resources.extend(r.patterns.iter().map(|p| p.replace(['*', '?'], "x")));
        }
    }
    resources.sort();
    resources.dedup();
    resources
}

/// Which access levels a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Levels {
    /// Write and permissions management.
    Write,
    /// Every level.
    Any,
}

impl Levels {
    fn accepts(self, level: AccessLevel) -> bool {
        match self {
            Levels::Write => matches!(
                level,
                AccessLevel::Write | AccessLevel::PermissionsManagement
            ),
            Levels::Any => true,
        }
    }

    /// Every action of the catalog at these levels, sorted by name, computed once.
    fn catalog(self) -> &'static [&'static ActionInfo] {
        static WRITE: OnceLock<Vec<&'static ActionInfo>> = OnceLock::new();
        static ANY: OnceLock<Vec<&'static ActionInfo>> = OnceLock::new();
        let cell = match self {
            Levels::Write => &WRITE,
            Levels::Any => &ANY,
        };
        cell.get_or_init(|| {
            let mut v: Vec<&'static ActionInfo> = AwsActions::get()
                .expand("*")
                .filter(|a| self.accepts(a.access))
                .collect();
            v.sort_unstable_by(|x, y| x.name.cmp(&y.name));
            v
        })
    }
}

/// Number of catalog actions (any level) the principal may perform on some resource its
/// policies name.
pub(crate) fn allowed_action_count(s: &Subject<'_>) -> usize {
    granted_actions(s, Levels::Any, true).len()
}

/// Catalog actions at `levels` that the principal may perform on some
/// resource its policies name, decided by the engine. `shortcut: false` asks the engine
/// about every action (the reference the shortcut is tested against).
fn granted_actions(s: &Subject<'_>, levels: Levels, shortcut: bool) -> Vec<&'static ActionInfo> {
    let eval = s.evaluation();
    let resources = probe_resources(s);
    let aws = AwsActions::get();
    let statements: Vec<&gatehouse_policy::Statement> = s
        .principal
        .policies
        .iter()
        .filter_map(|i| s.inv.aws_policies.get(*i))
        .filter(|p| p.compile_error.is_none())
        .flat_map(|x| &x.document.statements)
        .collect();
    // Without a Deny, a boundary or a service control policy, an unconditional Allow of plain
    // resource patterns allows each action it names on them: the engine would answer yes to
    // every probe, so it is not asked (administrator roles expand to ~12,000 write actions).
    // Anything else is decided.
    let plain = shortcut
        && s.boundary.is_none()
        && s.guardrails.is_empty()
        && statements
            .iter()
            .all(|s| s.effect == gatehouse_policy::Effect::Allow);
    let certain = |st: &gatehouse_policy::Statement| {
        plain
            && st.effect == gatehouse_policy::Effect::Allow
            && !st.action.negated
            && st.condition.is_empty()
            && st
                .resource
                .as_ref()
                .is_some_and(|r| !r.negated && r.patterns.iter().all(|x| !x.contains("${")))
    };
    // An administrator (`*` certain on some resource) may perform every such action: the
    // catalog's list, computed once.
    if statements
        .iter()
        .any(|st| certain(st) && st.action.patterns.iter().any(|x| x == "*" || x == "*:*"))
    {
        return levels.catalog().to_vec();
    }
    // Pointers into the static catalog: an administrator's ~12,000 actions are deduplicated
    // and kept without copying a name.
    let mut seen: FxHashSet<*const ActionInfo> = FxHashSet::default();
    let mut out: Vec<&'static ActionInfo> = Vec::new();
    let mut candidates: Vec<&'static ActionInfo> = Vec::new();
    for st in statements
        .iter()
        .filter(|s| s.effect == gatehouse_policy::Effect::Allow && !s.action.negated)
    {
        let certain = certain(st);
        for pattern in &st.action.patterns {
            for a in aws.expand(pattern).filter(|a| levels.accepts(a.access)) {
                if certain {
                    if seen.insert(std::ptr::from_ref(a)) {
                        out.push(a);
                    }
                } else {
                    candidates.push(a);
                }
            }
        }
    }
    let arn = s.principal.arn.as_str();
    for a in candidates {
        if !seen.insert(std::ptr::from_ref(a)) {
            continue;
        }
        if resources.iter().any(|r| {
            eval.decide(&Request::new(arn, a.name.as_str(), r.as_str()))
                .is_allow()
        }) {
            out.push(a);
        }
    }
    out.sort_unstable_by(|x, y| x.name.cmp(&y.name));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The shortcut gives exactly the engine's answer, on the shared corpus's exports (when
    /// present) and on a policy set with a Deny, a condition and a boundary.
    #[test]
    fn write_actions_shortcut_equals_the_engine() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<std::path::PathBuf> =
            vec![dir.join("tests/fixtures/GH-HY-005/fire.json")];
        let corpus = std::env::var_os("GATEHOUSE_CORPUS").map_or_else(
            || dir.join("../../../shared/corpus"),
            std::path::PathBuf::from,
        );
        for f in ["example.json", "example-authz-details.json"] {
            let p = corpus.join("authorization-details").join(f);
            if p.exists() {
                files.push(p);
            }
        }
        let mixed = r#"{"UserDetailList": [{"UserName": "u", "Arn": "arn:aws:iam::111122223333:user/u",
            "GroupList": [], "AttachedManagedPolicies": [],
            "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
              {"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"},
              {"Effect": "Deny", "Action": "iam:Delete*", "Resource": "*"},
              {"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}}]}],
            "GroupDetailList": [], "RoleDetailList": [], "Policies": []}"#;
        let mut inventories: Vec<Inventory> = files
            .iter()
            .map(|f| crate::import::import(&f.display().to_string(), &std::fs::read(f).unwrap()).0)
            .collect();
        inventories.push(crate::import::import("mixed.json", mixed.as_bytes()).0);
        let mut compared = 0;
        let none = |_: &str| std::sync::Arc::from(Vec::new());
        for inv in &inventories {
            for s in crate::subject::subjects(inv, &none) {
                for levels in [Levels::Write, Levels::Any] {
                    assert_eq!(
                        granted_actions(&s, levels, true),
                        granted_actions(&s, levels, false),
                        "{} in {}",
                        s.principal.arn,
                        inv.file
                    );
                }
                compared += 1;
            }
        }
        assert!(compared >= 3);
        let mixed = inventories.last().unwrap();
        let subjects = crate::subject::subjects(mixed, &none);
        let w: Vec<&str> = granted_actions(&subjects[0], Levels::Write, true)
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert!(w.contains(&"iam:CreateUser"));
        assert!(
            !w.iter()
                .any(|a| a.starts_with("iam:Delete") || a.starts_with("ec2:"))
        );
    }

    /// A role is judged idle only where the export tracks use: `RoleLastUsed: {}` (AWS, never
    /// used) with an old `CreateDate` is idle; the same role without the key (Gatehouse's
    /// API, which has no use data) is not.
    #[test]
    fn idleness_needs_tracked_use() {
        let export = |last_used: &str| {
            format!(
                r#"{{"UserDetailList": [], "GroupDetailList": [], "Policies": [],
                "RoleDetailList": [{{"RoleName": "old", "Arn": "arn:aws:iam::111122223333:role/old",
                  "CreateDate": "2020-01-01T00:00:00Z", {last_used}
                  "AssumeRolePolicyDocument": {{"Version": "2012-10-17", "Statement": []}},
                  "AttachedManagedPolicies": [], "InstanceProfileList": [],
                  "RolePolicyList": [{{"PolicyName": "w", "PolicyDocument": {{"Version": "2012-10-17",
                    "Statement": [{{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}}]}}}}]}},
                 {{"RoleName": "new", "Arn": "arn:aws:iam::111122223333:role/new",
                  "CreateDate": "2024-06-01T00:00:00Z", "RoleLastUsed": {{}},
                  "AssumeRolePolicyDocument": {{"Version": "2012-10-17", "Statement": []}},
                  "AttachedManagedPolicies": [], "InstanceProfileList": [], "RolePolicyList": []}}]}}"#
            )
        };
        let idle = |last_used: &str| -> Vec<String> {
            let inv = crate::import::import("e.json", export(last_used).as_bytes()).0;
            let subjects = crate::subject::subjects(&inv, &|_| std::sync::Arc::from(Vec::new()));
            idle_roles(&subjects, export_time(&inv), DEFAULT_UNUSED_DAYS)
                .map(|(_, r)| r.principal)
                .collect()
        };
        assert_eq!(
            idle(r#""RoleLastUsed": {},"#),
            ["arn:aws:iam::111122223333:role/old"]
        );
        assert!(idle("").is_empty());
    }
}
