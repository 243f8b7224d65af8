//! GCP: `getIamPolicy` output (bindings, members, conditions; also wrapped as `{"policy": ...}`),
//! `gcloud asset search-all-iam-policies` output (every policy of an organization, each with
//! the folders and organization above it: a binding on an organization or folder is
//! inherited by every project below, so each is listed with the projects it reaches), and
//! custom roles (`projects.roles.list` output `{"roles": [...]}`, or one role).

use super::{get, strings};
use crate::model::{GcpBinding, GcpRole, Inventory, Located};
use serde_json::Value;

pub(super) fn iam_policy(v: &Value, inv: &mut Inventory) {
    let (policy, base) = match get(v, "policy") {
        Some(p) if p.get("bindings").is_some() => (p, "$.policy"),
        _ => (v, "$"),
    };
    bindings(policy, base, None, inv);
}

const RESOURCE_MANAGER: &str = "//cloudresourcemanager.googleapis.com/";

/// A Resource Manager resource's short name (`folders/N`); other resources keep their
/// full name.
fn scope_name(resource: &str) -> String {
    resource
        .strip_prefix(RESOURCE_MANAGER)
        .unwrap_or(resource)
        .to_owned()
}

pub(super) fn asset_iam_policies(v: &Value, inv: &mut Inventory) {
    let results = v.as_array().map_or(&[][..], Vec::as_slice);
    // Each project, and the folders and organization above it.
    let projects: Vec<(String, Vec<String>)> = results
        .iter()
        .filter_map(|r| {
            let name = scope_name(get(r, "resource")?.as_str()?);
            name.starts_with("projects/").then(|| {
                let mut above = strings(get(r, "folders"));
                above.extend(strings(get(r, "organization")));
                (name, above)
            })
        })
        .collect();
    for (i, r) in results.iter().enumerate() {
        let Some(policy) = get(r, "policy") else {
            continue;
        };
        let scope = get(r, "resource").and_then(Value::as_str).map(scope_name);
        let first = inv.gcp_bindings.len();
        bindings(policy, &format!("$[{i}].policy"), scope.clone(), inv);
        let Some(scope) =
            scope.filter(|s| s.starts_with("folders/") || s.starts_with("organizations/"))
        else {
            continue;
        };
        let below: Vec<String> = projects
            .iter()
            .filter(|(_, above)| above.contains(&scope))
            .map(|(p, _)| p.clone())
            .collect();
        for b in &mut inv.gcp_bindings[first..] {
            b.inherited_by.clone_from(&below);
        }
    }
}

fn bindings(policy: &Value, base: &str, scope: Option<String>, inv: &mut Inventory) {
    let bindings = get(policy, "bindings")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, b) in bindings.iter().enumerate() {
        let condition = get(b, "condition").map(|c| {
            get(c, "expression")
                .or_else(|| get(c, "title"))
                .and_then(Value::as_str)
                .unwrap_or("(condition)")
                .to_owned()
        });
        inv.gcp_bindings.push(GcpBinding {
            role: get(b, "role")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            members: strings(get(b, "members")),
            condition,
            path: format!("{base}.bindings[{i}]"),
            scope: scope.clone(),
            inherited_by: Vec::new(),
        });
    }
}

pub(super) fn custom_roles(v: &Value, inv: &mut Inventory) {
    let roles: Vec<(&Value, String)> = match get(v, "roles").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, r)| (r, format!("$.roles[{i}]")))
            .collect(),
        None => match v {
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, r)| (r, format!("$[{i}]")))
                .collect(),
            other => vec![(other, "$".to_owned())],
        },
    };
    for (r, path) in roles {
        let permissions = strings(get(r, "includedPermissions"))
            .into_iter()
            .enumerate()
            .map(|(i, p)| Located {
                value: p,
                path: format!("{path}.includedPermissions[{i}]"),
            })
            .collect();
        inv.gcp_roles.push(GcpRole {
            name: get(r, "name")
                .or_else(|| get(r, "title"))
                .and_then(Value::as_str)
                .unwrap_or("(unnamed role)")
                .to_owned(),
            permissions,
            path,
        });
    }
}
