//! Statement rules over every AWS policy document: administrator access (GH-OP-001), AI
//! service wildcards (GH-OP-002), negated elements in `Allow` (GH-OP-003), and resource `*`
//! on scopable write / permissions-management actions (GH-OP-004), and GH-IN-003 for a
//! document the engine refused when it was imported.

use crate::actions::{AccessLevel, AwsActions};
use crate::finding::{Finding, Location, Severity};
use crate::model::{AwsPolicy, Inventory, PolicyKind};
use gatehouse_policy::Effect;
use gatehouse_policy::model::Statement;

/// The AWS service prefixes (and Gatehouse's `ai`) treated as AI services.
pub(crate) const AI_SERVICES: &[&str] = &["ai", "bedrock", "sagemaker"];

/// GH-IN-003 for each of the inventory's own policies the engine refuses, and the
/// statement rules over the others' `Allow` statements.
pub(crate) fn check(inv: &Inventory, out: &mut Vec<Finding>) {
    for p in inv.own_policies() {
        if let Some(e) = &p.compile_error {
            out.push(Finding::new(
                "GH-IN-003",
                format!("policy `{}` cannot be compiled: {e}", p.name),
                Location {
                    entity: p.owner.clone(),
                    policy: Some(p.name.clone()),
                    ..Location::at(&inv.file, p.path.clone())
                },
            ));
        }
        for (i, st) in p.document.statements.iter().enumerate() {
            if st.effect == Effect::Allow {
                statement(inv, p, i, st, out);
            }
        }
    }
}

/// A location for statement `i` of policy `p`.
pub(crate) fn statement_location(
    inv: &Inventory,
    p: &AwsPolicy,
    i: usize,
    element: Option<&str>,
) -> Location {
    let mut path = p.statement_path(i);
    if let Some(e) = element {
        path = format!("{path}.{e}");
    }
    Location {
        file: inv.file.clone(),
        json_path: Some(path),
        entity: p.owner.clone(),
        policy: Some(p.name.clone()),
        statement: Some(p.statement_label(i)),
    }
}

fn statement(inv: &Inventory, p: &AwsPolicy, i: usize, st: &Statement, out: &mut Vec<Finding>) {
    let action_key = if st.action.negated {
        "NotAction"
    } else {
        "Action"
    };
    let res_star = st
        .resource
        .as_ref()
        .is_some_and(|r| !r.negated && r.patterns.iter().any(|x| x == "*"));
    let conditional = !st.condition.is_empty();
    let all_actions =
        !st.action.negated && st.action.patterns.iter().any(|a| a == "*" || a == "*:*");
    let is_trust = p.kind == PolicyKind::Trust;

    // GH-OP-001: every action on every resource.
    if all_actions && (res_star || st.resource.is_none()) && !is_trust {
        let f = Finding::new(
            "GH-OP-001",
            format!(
                "policy `{}` allows every action on every resource{}",
                p.name,
                if conditional {
                    " (under conditions)"
                } else {
                    ""
                }
            ),
            statement_location(inv, p, i, Some(action_key)),
        );
        out.push(if conditional {
            f.with_severity(Severity::High)
        } else {
            f
        });
    }

    // GH-OP-002: wildcards over a whole AI service.
    if !st.action.negated && !all_actions {
        for a in &st.action.patterns {
            if let Some((svc, rest)) = a.split_once(':')
                && AI_SERVICES.iter().any(|s| s.eq_ignore_ascii_case(svc))
                && rest.chars().all(|c| c == '*')
            {
                out.push(Finding::new(
                    "GH-OP-002",
                    format!("policy `{}` allows `{a}`: every {svc} action", p.name),
                    statement_location(inv, p, i, Some(action_key)),
                ));
            }
        }
    }

    // GH-OP-003: negated elements in Allow.
    if st.action.negated {
        out.push(Finding::new(
            "GH-OP-003",
            format!(
                "policy `{}` uses Allow with NotAction {:?}",
                p.name, st.action.patterns
            ),
            statement_location(inv, p, i, Some("NotAction")),
        ));
    }
    if st.resource.as_ref().is_some_and(|r| r.negated) {
        out.push(Finding::new(
            "GH-OP-003",
            format!("policy `{}` uses Allow with NotResource", p.name),
            statement_location(inv, p, i, Some("NotResource")),
        ));
    }
    if st.principal.as_ref().is_some_and(|pr| pr.negated) {
        out.push(Finding::new(
            "GH-OP-003",
            format!("policy `{}` uses Allow with NotPrincipal", p.name),
            statement_location(inv, p, i, Some("NotPrincipal")),
        ));
    }

    // GH-OP-004: resource `*` on scopable write / permissions-management actions.
    if res_star && !all_actions && !st.action.negated && !is_trust {
        let catalog = AwsActions::get();
        let mut hits: Vec<&str> = Vec::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut perms = false;
        for a in &st.action.patterns {
            for info in catalog.expand(a) {
                let risky = matches!(
                    info.access,
                    AccessLevel::Write | AccessLevel::PermissionsManagement
                );
                if risky && info.resource_scoped && seen.insert(info.name.as_str()) {
                    perms |= info.access == AccessLevel::PermissionsManagement;
                    hits.push(&info.name);
                }
            }
        }
        if !hits.is_empty() {
            let shown: Vec<&str> = hits.iter().take(5).copied().collect();
            let more = if hits.len() > 5 {
                format!(" and {} more", hits.len() - 5)
            } else {
                String::new()
            };
            let f = Finding::new(
                "GH-OP-004",
                format!(
                    "policy `{}` allows {} scopable {} action(s) on `*`: {}{more}{}",
                    p.name,
                    hits.len(),
                    if perms {
                        "write/permissions-management"
                    } else {
                        "write"
                    },
                    shown.join(", "),
                    if conditional {
                        " (under conditions)"
                    } else {
                        ""
                    }
                ),
                statement_location(inv, p, i, Some("Resource")),
            );
            out.push(if perms && !conditional {
                f.with_severity(Severity::High)
            } else {
                f
            });
        }
    }
}
