//! GCP rules: public members (GH-TR-003), primitive roles (GH-OP-005), and Vertex AI
//! administration or `aiplatform.*` wildcards (GH-OP-002). A binding on an organization or
//! folder is reported once, with the projects that inherit it (and its condition, which
//! holds for each of them too).

use crate::finding::{Finding, Location, Severity};
use crate::model::Inventory;

pub(crate) fn check(inv: &Inventory, out: &mut Vec<Finding>) {
    for b in &inv.gcp_bindings {
        let cond = format!(
            "{}{}",
            reach(b),
            b.condition
                .as_ref()
                .map(|c| format!(" (condition: {c})"))
                .unwrap_or_default()
        );
        let loc = |entity: String| Location {
            entity: Some(entity),
            policy: Some(b.role.clone()),
            ..Location::at(&inv.file, b.path.clone())
        };
        for m in &b.members {
            if m == "allUsers" || m == "allAuthenticatedUsers" {
                out.push(Finding::new(
                    "GH-TR-003",
                    format!("`{}` is granted to `{m}`{cond}", b.role),
                    loc(m.clone()),
                ));
            }
        }
        let members = b.members.join(", ");
        match b.role.as_str() {
            "roles/owner" => out.push(
                Finding::new(
                    "GH-OP-005",
                    format!("`roles/owner` is granted to {members}{cond}"),
                    loc(members.clone()),
                )
                .with_severity(Severity::Critical),
            ),
            "roles/editor" => out.push(Finding::new(
                "GH-OP-005",
                format!("`roles/editor` is granted to {members}{cond}"),
                loc(members.clone()),
            )),
            "roles/aiplatform.admin" => out.push(Finding::new(
                "GH-OP-002",
                format!(
                    "`roles/aiplatform.admin` (all of Vertex AI) is granted to {members}{cond}"
                ),
                loc(members.clone()),
            )),
            _ => {}
        }
    }
    for r in &inv.gcp_roles {
        for p in &r.permissions {
            let v = p.value.to_ascii_lowercase();
            if v.starts_with("aiplatform.") && v.contains('*') {
                out.push(Finding::new(
                    "GH-OP-002",
                    format!(
                        "custom role `{}` includes `{}`: every Vertex AI permission it matches",
                        r.name, p.value
                    ),
                    Location {
                        entity: Some(format!("gcp role {}", r.name)),
                        ..Location::at(&inv.file, p.path.clone())
                    },
                ));
            }
        }
    }
}

/// Where a binding is granted and which projects inherit it, as the message says it.
fn reach(b: &crate::model::GcpBinding) -> String {
    let Some(scope) = &b.scope else {
        return String::new();
    };
    match b.inherited_by.as_slice() {
        [] => format!(" on {scope}"),
        [one] => format!(" on {scope}, inherited by {one}"),
        many => format!(
            " on {scope}, inherited by {} projects ({})",
            many.len(),
            many.join(", ")
        ),
    }
}
