//! Azure role-definition rules: `*` actions (GH-OP-001), wildcards over AI providers
//! (GH-OP-002), and custom roles with wildcard actions assignable at the root or a whole
//! subscription (GH-TR-004).

use crate::finding::{Finding, Location, Severity};
use crate::model::{AzureRole, Inventory};

const AI_PROVIDERS: &[&str] = &[
    "Microsoft.CognitiveServices",
    "Microsoft.MachineLearningServices",
];

pub(crate) fn check(inv: &Inventory, out: &mut Vec<Finding>) {
    for role in &inv.azure_roles {
        let loc = |path: &str| Location {
            entity: Some(format!("azure role {}", role.name)),
            ..Location::at(&inv.file, path)
        };
        for a in role.actions.iter().chain(&role.data_actions) {
            if a.value == "*" || a.value == "*/*" {
                out.push(Finding::new(
                    "GH-OP-001",
                    format!(
                        "Azure role `{}` allows every operation (`{}`)",
                        role.name, a.value
                    ),
                    loc(&a.path),
                ));
                continue;
            }
            if let Some((provider, rest)) = a.value.split_once('/')
                && AI_PROVIDERS
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(provider))
                && rest.chars().all(|c| c == '*')
            {
                out.push(Finding::new(
                    "GH-OP-002",
                    format!(
                        "Azure role `{}` allows `{}`: every operation of {provider}",
                        role.name, a.value
                    ),
                    loc(&a.path),
                ));
            }
        }
        broad_custom(inv, role, out);
    }
}

fn broad_custom(inv: &Inventory, role: &AzureRole, out: &mut Vec<Finding>) {
    if !role.is_custom {
        return;
    }
    let broad: Vec<&str> = role
        .assignable_scopes
        .iter()
        .filter(|s| {
            let t = s.trim_end_matches('/');
            t.is_empty() || (t.starts_with("/subscriptions/") && t.matches('/').count() == 2)
        })
        .map(String::as_str)
        .collect();
    if broad.is_empty() {
        return;
    }
    let wild: Vec<_> = role
        .actions
        .iter()
        .chain(&role.data_actions)
        .filter(|a| a.value.contains('*') && !a.value.to_ascii_lowercase().ends_with("/read"))
        .collect();
    let Some(first) = wild.first() else { return };
    let names: Vec<&str> = wild.iter().map(|a| a.value.as_str()).collect();
    let root = broad.iter().any(|s| s.trim_end_matches('/').is_empty());
    let f = Finding::new(
        "GH-TR-004",
        format!(
            "custom role `{}` grants wildcard actions ({}) and is assignable at {}",
            role.name,
            names.join(", "),
            broad.join(", ")
        ),
        Location {
            entity: Some(format!("azure role {}", role.name)),
            ..Location::at(&inv.file, first.path.clone())
        },
    );
    out.push(if root && names.contains(&"*") {
        f.with_severity(Severity::Critical)
    } else {
        f
    });
}
