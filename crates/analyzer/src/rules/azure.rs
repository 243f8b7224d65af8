//! Azure role-definition rules: `*` actions (GH-OP-001), wildcards over AI providers
//! (GH-OP-002), and custom roles with wildcard actions assignable at the root or a whole
//! subscription (GH-TR-004). Administrator role assignments (GH-OP-001) join the run's
//! files: an assignment on a management group is inherited by every subscription below it,
//! which the management-group tree (another export) tells.

use crate::finding::{Finding, Location, Severity};
use crate::model::{AzureAssignment, AzureRole, Inventory};
use rustc_hash::FxHashMap;

/// Built-in roles that administer everything at their scope: `Owner`, and `User Access
/// Administrator`, which may assign itself any role there.
const ADMIN_ROLES: &[&str] = &["Owner", "User Access Administrator"];

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

/// Administrator role assignments in any of the run's inventories, each with the
/// subscriptions that inherit it through the management-group tree any of them holds.
pub(crate) fn assignments(invs: &[&Inventory]) -> Vec<Finding> {
    let parent: FxHashMap<&str, &str> = invs
        .iter()
        .flat_map(|i| &i.azure_tree)
        .map(|(c, p)| (c.as_str(), p.as_str()))
        .collect();
    let mut subscriptions: Vec<&str> = parent
        .keys()
        .copied()
        .filter(|c| c.starts_with("/subscriptions/"))
        .collect();
    subscriptions.sort_unstable();
    let under = |sub: &str, scope: &str| {
        let mut at = sub;
        // A tree is at most 7 levels deep below the root; the bound stops a cyclic file.
        for _ in 0..16 {
            match parent.get(at) {
                Some(p) if *p == scope => return true,
                Some(p) => at = p,
                None => return false,
            }
        }
        false
    };
    let mut out = Vec::new();
    for inv in invs {
        for a in inv
            .azure_assignments
            .iter()
            .filter(|a| ADMIN_ROLES.iter().any(|r| r.eq_ignore_ascii_case(&a.role)))
        {
            let scope = a.scope.trim_end_matches('/').to_ascii_lowercase();
            let below: Vec<&str> = subscriptions
                .iter()
                .copied()
                .filter(|s| under(s, &scope))
                .collect();
            out.push(admin_assignment(inv, a, &below));
        }
    }
    out
}

fn admin_assignment(inv: &Inventory, a: &AzureAssignment, below: &[&str]) -> Finding {
    let reach = match below {
        [] => String::new(),
        [one] => format!(", inherited by {one}"),
        many => format!(
            ", inherited by {} subscriptions ({})",
            many.len(),
            many.join(", ")
        ),
    };
    let condition = a
        .condition
        .as_ref()
        .map(|c| format!(" (condition: {c})"))
        .unwrap_or_default();
    Finding::new(
        "GH-OP-001",
        format!(
            "Azure role `{}` is assigned to {} ({}) at {}{reach}{condition}",
            a.role, a.principal, a.principal_type, a.scope
        ),
        Location {
            entity: Some(a.principal.clone()),
            policy: Some(a.role.clone()),
            ..Location::at(&inv.file, a.path.clone())
        },
    )
}
