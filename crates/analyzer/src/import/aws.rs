//! AWS: `get-account-authorization-details` (users, groups, roles with trust policies,
//! managed policies at their default version, inline policies, permissions boundaries) and
//! single policy documents (plain or `get-policy-version` output).

use super::get;
use crate::finding::{Finding, Location};
use crate::model::{
    AwsPolicy, AwsPrincipal, CredentialRow, Inventory, KeyRow, PolicyKind, PrincipalType,
};
use gatehouse_policy::parse_value;
use serde_json::Value;
use std::collections::HashMap;

/// A single policy document; its name is the file stem.
pub(super) fn single_policy(v: &Value, inv: &mut Inventory, problems: &mut Vec<Finding>) {
    let (doc, path) = if let Some(d) = get(v, "PolicyVersion").and_then(|p| get(p, "Document")) {
        (d, "$.PolicyVersion.Document")
    } else if let Some(d) = get(v, "PolicyDocument") {
        (d, "$.PolicyDocument")
    } else {
        (v, "$")
    };
    let name = std::path::Path::new(&inv.file)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_owned())
        .unwrap_or_else(|| inv.file.clone());
    let file = inv.file.clone();
    add_policy(
        inv,
        problems,
        &file,
        doc,
        path.into(),
        name,
        None,
        PolicyKind::Standalone,
        None,
    );
}

/// Adds a policy document; returns its index, or `None` (and a finding) if it is invalid.
#[allow(clippy::too_many_arguments)]
fn add_policy(
    inv: &mut Inventory,
    problems: &mut Vec<Finding>,
    file: &str,
    doc: &Value,
    path: String,
    name: String,
    arn: Option<String>,
    kind: PolicyKind,
    owner: Option<String>,
) -> Option<usize> {
    // The IAM API returns documents URL-encoded; the CLI decodes them. Accept both.
    let decoded;
    let doc = match doc {
        Value::String(s) => {
            decoded = serde_json::from_str::<Value>(s)
                .or_else(|_| serde_json::from_str::<Value>(&percent_decode(s)))
                .unwrap_or(Value::Null);
            &decoded
        }
        other => other,
    };
    let parsed = parse_value(doc);
    let Some(document) = parsed.document else {
        let errors: Vec<String> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        problems.push(Finding::new(
            "GH-IN-003",
            format!("policy `{name}` is invalid: {}", errors.join("; ")),
            Location {
                policy: Some(name),
                entity: owner,
                ..Location::at(file, path)
            },
        ));
        return None;
    };
    let single_statement = get(doc, "Statement").is_some_and(Value::is_object);
    inv.aws_policies.push(AwsPolicy {
        name,
        arn,
        kind,
        owner,
        path,
        single_statement,
        document,
    });
    Some(inv.aws_policies.len() - 1)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `get-account-authorization-details` output.
pub(super) fn authorization_details(v: &Value, inv: &mut Inventory, problems: &mut Vec<Finding>) {
    let file = inv.file.clone();
    // Managed policies: the default version of each, by ARN.
    let mut managed: HashMap<String, usize> = HashMap::new();
    for (i, p) in list(v, "Policies").iter().enumerate() {
        let name = str_of(p, "PolicyName");
        let arn = str_of(p, "Arn");
        let default = str_of(p, "DefaultVersionId");
        let versions = list(p, "PolicyVersionList");
        let chosen = versions.iter().enumerate().find(|(_, pv)| {
            get(pv, "IsDefaultVersion").and_then(Value::as_bool) == Some(true)
                || (!default.is_empty() && str_of(pv, "VersionId") == default)
        });
        let Some((j, pv)) = chosen else { continue };
        let Some(doc) = get(pv, "Document") else {
            continue;
        };
        let path = format!("$.Policies[{i}].PolicyVersionList[{j}].Document");
        if let Some(idx) = add_policy(
            inv,
            problems,
            &file,
            doc,
            path,
            name,
            Some(arn.clone()),
            PolicyKind::Managed,
            None,
        ) {
            managed.insert(arn, idx);
        }
    }
    let attach = |inv: &mut Inventory,
                  problems: &mut Vec<Finding>,
                  entry: &Value,
                  owner: &str,
                  owner_path: &str| {
        let mut idx = Vec::new();
        for (k, list_key) in [
            ("UserPolicyList", "UserPolicyList"),
            ("GroupPolicyList", "GroupPolicyList"),
            ("RolePolicyList", "RolePolicyList"),
        ] {
            for (i, p) in list(entry, list_key).iter().enumerate() {
                let Some(doc) = get(p, "PolicyDocument") else {
                    continue;
                };
                let path = format!("{owner_path}.{k}[{i}].PolicyDocument");
                if let Some(n) = add_policy(
                    inv,
                    problems,
                    &file,
                    doc,
                    path,
                    str_of(p, "PolicyName"),
                    None,
                    PolicyKind::Inline,
                    Some(owner.to_owned()),
                ) {
                    idx.push(n);
                }
            }
        }
        for (i, p) in list(entry, "AttachedManagedPolicies").iter().enumerate() {
            let arn = str_of(p, "PolicyArn");
            match managed.get(&arn) {
                Some(&n) => idx.push(n),
                None => problems.push(Finding::new(
                    "GH-IN-001",
                    format!("managed policy {arn} attached to {owner} is not in the export's `Policies`; its permissions were not analyzed"),
                    Location {
                        entity: Some(owner.to_owned()),
                        policy: Some(str_of(p, "PolicyName")),
                        ..Location::at(&file, format!("{owner_path}.AttachedManagedPolicies[{i}]"))
                    },
                )),
            }
        }
        idx
    };
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, g) in list(v, "GroupDetailList").iter().enumerate() {
        let name = str_of(g, "GroupName");
        let path = format!("$.GroupDetailList[{i}]");
        let pols = attach(inv, problems, g, &format!("group {name}"), &path);
        groups.insert(name.clone(), pols.clone());
        inv.aws_principals.push(AwsPrincipal {
            kind: PrincipalType::Group,
            name,
            arn: str_of(g, "Arn"),
            path,
            policies: pols,
            boundary: None,
            trust: None,
            created: time_of(g, "CreateDate"),
            last_used: None,
            usage_tracked: false,
        });
    }
    for (i, u) in list(v, "UserDetailList").iter().enumerate() {
        let name = str_of(u, "UserName");
        let path = format!("$.UserDetailList[{i}]");
        let mut pols = attach(inv, problems, u, &format!("user {name}"), &path);
        for g in super::strings(get(u, "GroupList")) {
            if let Some(gp) = groups.get(&g) {
                pols.extend(gp.iter().copied());
            }
        }
        let boundary = boundary_of(u, &managed);
        inv.aws_principals.push(AwsPrincipal {
            kind: PrincipalType::User,
            name,
            arn: str_of(u, "Arn"),
            path,
            policies: pols,
            boundary,
            trust: None,
            created: time_of(u, "CreateDate"),
            last_used: None,
            usage_tracked: false,
        });
    }
    for (i, r) in list(v, "RoleDetailList").iter().enumerate() {
        let name = str_of(r, "RoleName");
        let path = format!("$.RoleDetailList[{i}]");
        let pols = attach(inv, problems, r, &format!("role {name}"), &path);
        let trust = get(r, "AssumeRolePolicyDocument").and_then(|doc| {
            add_policy(
                inv,
                problems,
                &file,
                doc,
                format!("{path}.AssumeRolePolicyDocument"),
                format!("{name} trust policy"),
                None,
                PolicyKind::Trust,
                Some(format!("role {name}")),
            )
        });
        let boundary = boundary_of(r, &managed);
        inv.aws_principals.push(AwsPrincipal {
            kind: PrincipalType::Role,
            name,
            arn: str_of(r, "Arn"),
            path,
            policies: pols,
            boundary,
            trust,
            created: time_of(r, "CreateDate"),
            last_used: get(r, "RoleLastUsed").and_then(|l| time_of(l, "LastUsedDate")),
            usage_tracked: get(r, "RoleLastUsed").is_some(),
        });
    }
}

/// A date as the IAM API (`2019-08-16T17:27:59Z`) or the CLI's JSON
/// (`2019-08-16 17:27:59+00:00`) writes it.
fn time_of(v: &Value, key: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let s = get(v, key)?.as_str()?.trim();
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z"))
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .ok()
}

fn boundary_of(entry: &Value, managed: &HashMap<String, usize>) -> Option<usize> {
    let arn = get(entry, "PermissionsBoundary").map(|b| str_of(b, "PermissionsBoundaryArn"))?;
    managed.get(&arn).copied()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    get(v, key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn str_of(v: &Value, key: &str) -> String {
    get(v, key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// An `aws iam get-credential-report` CSV (the `Content` field, base64-decoded). Columns are
/// found by name, so AWS adding columns does not break the import.
pub(super) fn credential_report(bytes: &[u8], inv: &mut Inventory, problems: &mut Vec<Finding>) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        problems.push(Finding::new(
            "GH-IN-001",
            "credential report is not UTF-8",
            Location::at(&inv.file, "line 1"),
        ));
        return;
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let time =
        |v: Option<&str>| v.and_then(|v| chrono::DateTime::parse_from_rfc3339(v.trim()).ok());
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |name: &str| col(name).and_then(|c| cells.get(c).copied());
        let yes = |name: &str| cell(name).is_some_and(|v| v.trim() == "true");
        if cells.len() != header.len() {
            problems.push(Finding::new(
                "GH-IN-001",
                format!(
                    "credential report row has {} cells, the header {}",
                    cells.len(),
                    header.len()
                ),
                Location::at(&inv.file, format!("line {}", i + 2)),
            ));
            continue;
        }
        let keys = [1u8, 2]
            .into_iter()
            .map(|n| KeyRow {
                slot: n,
                active: yes(&format!("access_key_{n}_active")),
                last_rotated: time(cell(&format!("access_key_{n}_last_rotated"))),
                last_used: time(cell(&format!("access_key_{n}_last_used_date"))),
            })
            .collect();
        inv.aws_credentials.push(CredentialRow {
            user: cell("user").unwrap_or("").to_owned(),
            arn: cell("arn").unwrap_or("").to_owned(),
            line: i + 2,
            created: time(cell("user_creation_time")),
            password_enabled: yes("password_enabled"),
            password_last_used: time(cell("password_last_used")),
            mfa_active: yes("mfa_active"),
            keys,
        });
    }
}
