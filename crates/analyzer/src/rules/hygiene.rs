//! Hygiene of credentials (GH-HY-*), from an AWS credential report: keys not rotated or not
//! used for 90 days, and — joined with an authorization-details export scanned in the same
//! run — console users without MFA who can manage permissions or models.
//!
//! "Now" is the report's own time (its latest timestamp), not the clock of the machine that
//! scans it, so the same report always gives the same findings.

use crate::finding::{Finding, Location};
use crate::model::{CredentialRow, Inventory};
use crate::subject::Subject;

/// Days after which a key counts as long-lived or unused.
pub const MAX_AGE_DAYS: i64 = 90;

/// Actions that manage permissions, credentials or models.
const MANAGEMENT: &[&str] = &[
    "iam:CreatePolicyVersion",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:UpdateAssumeRolePolicy",
    "iam:PassRole",
    "ai:CreateDeployment",
    "ai:UpdateDeployment",
    "ai:UpdateGuardrail",
    "ai:DeleteGuardrail",
    "ai:CreateFineTuningJob",
    "bedrock:UpdateGuardrail",
    "bedrock:DeleteGuardrail",
    "bedrock:CreateModelCustomizationJob",
    "sagemaker:CreateEndpoint",
    "sagemaker:UpdateEndpoint",
];

fn place(file: &str, row: &CredentialRow, what: &str) -> Location {
    Location {
        entity: Some(format!("user {}", row.user)),
        ..Location::at(file, format!("line {}{what}", row.line))
    }
}

pub(crate) fn check(inv: &Inventory, out: &mut Vec<Finding>) {
    let Some(now) = inv
        .aws_credentials
        .iter()
        .flat_map(|r| &r.keys)
        .flat_map(|k| [k.last_rotated, k.last_used])
        .flatten()
        .max()
    else {
        return;
    };
    let days = |t: chrono::DateTime<chrono::FixedOffset>| (now - t).num_days();
    for row in &inv.aws_credentials {
        for k in row.keys.iter().filter(|k| k.active) {
            let rotated = k.last_rotated.map(days);
            if let Some(age) = rotated.filter(|a| *a > MAX_AGE_DAYS) {
                out.push(Finding::new(
                    "GH-HY-001",
                    format!(
                        "access key {} of {} was last rotated {age} days before the report",
                        k.slot, row.user
                    ),
                    place(
                        &inv.file,
                        row,
                        &format!(" access_key_{}_last_rotated", k.slot),
                    ),
                ));
            }
            let idle = match k.last_used {
                Some(t) => Some(days(t))
                    .filter(|d| *d > MAX_AGE_DAYS)
                    .map(|d| format!("unused for {d} days")),
                None => rotated
                    .filter(|a| *a > MAX_AGE_DAYS)
                    .map(|a| format!("never used in the {a} days since it was created")),
            };
            if let Some(idle) = idle {
                out.push(Finding::new(
                    "GH-HY-002",
                    format!("access key {} of {} is active but {idle}", k.slot, row.user),
                    place(
                        &inv.file,
                        row,
                        &format!(" access_key_{}_last_used_date", k.slot),
                    ),
                ));
            }
        }
    }
}

/// GH-HY-003 across files: a console user without MFA (a row of a credential report, the
/// file `report`) whose policies (from an authorization-details export) allow a management
/// action.
pub(crate) fn mfa_for_manager(
    s: &Subject<'_>,
    report: &str,
    row: &CredentialRow,
) -> Option<Finding> {
    if !row.password_enabled || row.mfa_active {
        return None;
    }
    let action = manages(s)?;
    Some(Finding::new(
        "GH-HY-003",
        format!(
            "{} signs in with a password and no MFA device, and may perform {action}",
            row.user
        ),
        place(report, row, " mfa_active"),
    ))
}

/// The first management action the principal may perform, decided by the engine on `*` and
/// on each resource its policies name.
fn manages(s: &Subject<'_>) -> Option<&'static str> {
    let resources = crate::usage::probe_resources(s);
    MANAGEMENT
        .iter()
        .copied()
        .find(|action| resources.iter().any(|r| s.allows(action, r)))
}

/// GH-HY-003 for Gatehouse's own store: Gatehouse has no passwords, so every user signs in
/// with access keys; a user with no MFA device enabled who may manage is reported.
pub(crate) fn mfa_for_store_user(s: &Subject<'_>) -> Option<Finding> {
    let p = s.principal;
    let action = manages(s)?;
    Some(Finding::new(
        "GH-HY-003",
        format!(
            "{} has no MFA device enabled, and may perform {action}",
            p.label()
        ),
        Location {
            entity: Some(p.label()),
            ..Location::at(&s.inv.file, p.path.clone())
        },
    ))
}
