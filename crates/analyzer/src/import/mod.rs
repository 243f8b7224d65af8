//! Importers: read one file, recognize its format from its shape, and normalize it into an
//! [`Inventory`]. Problems with the input (not JSON, invalid documents, malformed action
//! names) become findings rather than errors, so one bad file never stops a run.

pub(crate) mod aws;
mod azure;
mod gcp;
pub(crate) mod stream;

use crate::finding::{Finding, Location};
use crate::model::{Format, Inventory};
use serde_json::Value;

/// Imports one file's bytes. `file` is the name used in locations.
pub fn import(file: &str, bytes: &[u8]) -> (Inventory, Vec<Finding>) {
    let mut inv = Inventory {
        file: file.to_owned(),
        ..Inventory::default()
    };
    let mut problems = Vec::new();
    if bytes.starts_with(b"user,arn,") {
        inv.format = Format::AwsCredentialReport;
        aws::credential_report(bytes, &mut inv, &mut problems);
        return (inv, problems);
    }
    if let Some(records) = audit_log(file, bytes, &mut problems) {
        inv.format = Format::GatehouseAuditLog;
        inv.audit = records;
        return (inv, problems);
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let what = if bytes.iter().all(u8::is_ascii_whitespace) {
                "the file is empty".to_owned()
            } else {
                format!("not JSON: {e}")
            };
            problems.push(Finding::new("GH-IN-001", what, Location::at(file, "$")));
            return (inv, problems);
        }
    };
    inv.format = detect(&value);
    match inv.format {
        Format::AwsAuthorizationDetails => aws::authorization_details(&value, &mut inv, &mut problems),
        Format::AwsPolicy => aws::single_policy(&value, &mut inv, &mut problems),
        Format::AzureRoleDefinitions => azure::role_definitions(&value, &mut inv, &mut problems),
        Format::AzureRoleAssignments => azure::role_assignments(&value, &mut inv),
        Format::AzureManagementGroups => azure::management_groups(&value, &mut inv),
        Format::GcpIamPolicy => gcp::iam_policy(&value, &mut inv),
        Format::GcpAssetIamPolicies => gcp::asset_iam_policies(&value, &mut inv),
        Format::GcpCustomRoles => gcp::custom_roles(&value, &mut inv),
        // Recognized from the first bytes above, never from JSON.
        Format::AwsCredentialReport | Format::GatehouseAuditLog => {}
        Format::Unknown => problems.push(Finding::new(
            "GH-IN-001",
            "JSON of an unrecognized shape (not AWS authorization details or policy, Azure role definitions, assignments or management groups, or GCP IAM policies / custom roles)",
            Location::at(file, "$"),
        )),
    }
    (inv, problems)
}

/// Gatehouse's audit log (JSON lines), recognized by its first line: an object with `time`,
/// `principal`, `action` and `decision`. Lines that are not records are reported.
fn audit_log(
    file: &str,
    bytes: &[u8],
    problems: &mut Vec<Finding>,
) -> Option<Vec<crate::generate::AuditRecord>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.clone().next()?;
    let v: Value = serde_json::from_str(first).ok()?;
    if !["time", "principal", "action", "decision"]
        .iter()
        .all(|k| v.get(k).is_some())
    {
        return None;
    }
    let mut out = Vec::new();
    for (i, line) in lines.by_ref() {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(e) => problems.push(Finding::new(
                "GH-IN-001",
                format!("not an audit record: {e}"),
                Location::at(file, format!("line {}", i + 1)),
            )),
        }
    }
    Some(out)
}

/// Recognizes the format of a parsed file from its shape.
pub fn detect(v: &Value) -> Format {
    let first = match v {
        Value::Array(items) => match items.first() {
            Some(f) => f,
            None => return Format::Unknown,
        },
        other => other,
    };
    let Some(obj) = first.as_object() else {
        return Format::Unknown;
    };
    let has = |k: &str| obj.keys().any(|key| key.eq_ignore_ascii_case(k));
    if v.is_array() && has("resource") && obj.get("policy").is_some_and(Value::is_object) {
        return Format::GcpAssetIamPolicies;
    }
    if v.is_array() && has("roleDefinitionName") && has("scope") {
        return Format::AzureRoleAssignments;
    }
    if v.is_object()
        && has("children")
        && obj
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Management/managementGroups"))
    {
        return Format::AzureManagementGroups;
    }
    if v.is_object() && (has("UserDetailList") || has("RoleDetailList") || has("GroupDetailList")) {
        return Format::AwsAuthorizationDetails;
    }
    if v.is_object() && (has("PolicyVersion") || has("Statement") || has("PolicyDocument")) {
        return Format::AwsPolicy;
    }
    if v.is_object() && (has("bindings") || (has("etag") && has("version"))) {
        return Format::GcpIamPolicy;
    }
    if v.is_object()
        && has("policy")
        && obj
            .get("policy")
            .is_some_and(|p| p.get("bindings").is_some())
    {
        return Format::GcpIamPolicy;
    }
    if has("includedPermissions")
        || (v.is_object()
            && obj.get("roles").and_then(Value::as_array).is_some_and(|r| {
                r.iter()
                    .all(|x| x.get("includedPermissions").is_some() || x.get("name").is_some())
            }))
    {
        return Format::GcpCustomRoles;
    }
    if has("Actions") || has("Permissions") || has("AssignableScopes") || has("roleName") {
        return Format::AzureRoleDefinitions;
    }
    if has("properties")
        && obj
            .get("properties")
            .is_some_and(|p| p.get("permissions").is_some())
    {
        return Format::AzureRoleDefinitions;
    }
    Format::Unknown
}

/// Gets a key case-insensitively.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The string or strings under a key (a single string counts as a list of one).
pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
