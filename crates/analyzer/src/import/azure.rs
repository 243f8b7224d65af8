//! Azure role definitions: the flat `Actions/NotActions/DataActions/NotDataActions` shape,
//! the `Permissions: [...]` shape, and `az role definition list` output (`roleName`,
//! `permissions`, or ARM's `properties`); one object or a list. Malformed action names are
//! reported (GH-IN-002) and kept out of the analysis. Also role assignments (`az role
//! assignment list --all`) and the management-group tree (`az account management-group
//! show --name ROOT --expand --recurse`), which together say what an assignment on a
//! management group reaches: every subscription below it.

use super::{get, strings};
use crate::finding::{Finding, Location};
use crate::model::{AzureAssignment, AzureRole, Inventory, Located};
use serde_json::Value;

pub(super) fn role_definitions(v: &Value, inv: &mut Inventory, problems: &mut Vec<Finding>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                one(item, format!("$[{i}]"), inv, problems);
            }
        }
        other => one(other, "$".into(), inv, problems),
    }
}

fn one(v: &Value, path: String, inv: &mut Inventory, problems: &mut Vec<Finding>) {
    let (body, body_path) = match get(v, "properties") {
        Some(p) if p.is_object() => (p, format!("{path}.properties")),
        _ => (v, path.clone()),
    };
    let name = get(body, "roleName")
        .or_else(|| get(body, "Name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed role)")
        .to_owned();
    let is_custom = get(body, "IsCustom")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || ["Type", "roleType"].iter().any(|k| {
            get(body, k)
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("CustomRole"))
        });
    let mut role = AzureRole {
        name,
        is_custom,
        path: path.clone(),
        assignable_scopes: strings(get(body, "AssignableScopes")),
        ..AzureRole::default()
    };
    let key_name = |k: &str| -> String {
        // Report the key as written in the file.
        body.as_object()
            .and_then(|o| o.keys().find(|x| x.eq_ignore_ascii_case(k)).cloned())
            .unwrap_or_else(|| k.to_owned())
    };
    let blocks: Vec<(&Value, String)> = match get(body, "Permissions").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, b)| (b, format!("{body_path}.{}[{i}]", key_name("Permissions"))))
            .collect(),
        None => vec![(body, body_path.clone())],
    };
    for (block, bpath) in blocks {
        for (key, dest) in [
            ("Actions", &mut role.actions),
            ("NotActions", &mut role.not_actions),
            ("DataActions", &mut role.data_actions),
            ("NotDataActions", &mut role.not_data_actions),
        ] {
            let written = block
                .as_object()
                .and_then(|o| o.keys().find(|x| x.eq_ignore_ascii_case(key)).cloned())
                .unwrap_or_else(|| key.to_owned());
            for (i, a) in strings(get(block, key)).into_iter().enumerate() {
                let apath = format!("{bpath}.{written}[{i}]");
                if let Some(why) = invalid_action(&a) {
                    problems.push(Finding::new(
                        "GH-IN-002",
                        format!(
                            "Azure role `{}`: invalid action `{a}`: {why}; it matches no operation",
                            role.name
                        ),
                        Location {
                            entity: Some(role.name.clone()),
                            ..Location::at(&inv.file, apath)
                        },
                    ));
                    continue;
                }
                dest.push(Located {
                    value: a,
                    path: apath,
                });
            }
        }
    }
    inv.azure_roles.push(role);
}

/// Why an Azure operation name is malformed, if it is.
pub(crate) fn invalid_action(a: &str) -> Option<&'static str> {
    if a == "*" {
        return None;
    }
    if a.chars().any(char::is_whitespace) {
        return Some("operation names contain no spaces");
    }
    let Some((provider, rest)) = a.split_once('/') else {
        return Some("expected `Provider.Namespace/resourceType/operation`");
    };
    if rest.is_empty() {
        return Some("expected `Provider.Namespace/resourceType/operation`");
    }
    let ok_provider = provider == "*"
        || (provider.contains('.')
            && provider
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '*' || c == '-'));
    if !ok_provider {
        return Some("the resource provider must look like `Microsoft.Storage`");
    }
    None
}

pub(super) fn role_assignments(v: &Value, inv: &mut Inventory) {
    let text = |a: &Value, k: &str| get(a, k).and_then(Value::as_str).map(str::to_owned);
    for (i, a) in v
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .enumerate()
    {
        let (Some(role), Some(scope)) = (text(a, "roleDefinitionName"), text(a, "scope")) else {
            continue;
        };
        inv.azure_assignments.push(AzureAssignment {
            role,
            principal: text(a, "principalName")
                .filter(|n| !n.is_empty())
                .or_else(|| text(a, "principalId"))
                .unwrap_or_default(),
            principal_type: text(a, "principalType").unwrap_or_default(),
            scope,
            condition: text(a, "condition").filter(|c| !c.is_empty()),
            path: format!("$[{i}]"),
        });
    }
}

pub(super) fn management_groups(v: &Value, inv: &mut Inventory) {
    let Some(parent) = get(v, "id").and_then(Value::as_str) else {
        return;
    };
    let parent = parent.to_ascii_lowercase();
    for child in get(v, "children")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        if let Some(id) = get(child, "id").and_then(Value::as_str) {
            inv.azure_tree
                .push((id.to_ascii_lowercase(), parent.clone()));
            management_groups(child, inv);
        }
    }
}
