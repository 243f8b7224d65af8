//! GCP: `getIamPolicy` output (bindings, members, conditions; also wrapped as `{"policy": ...}`)
//! and custom roles (`projects.roles.list` output `{"roles": [...]}`, or one role).

use super::{get, strings};
use crate::model::{GcpBinding, GcpRole, Inventory, Located};
use serde_json::Value;

pub(super) fn iam_policy(v: &Value, inv: &mut Inventory) {
    let (policy, base) = match get(v, "policy") {
        Some(p) if p.get("bindings").is_some() => (p, "$.policy"),
        _ => (v, "$"),
    };
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
