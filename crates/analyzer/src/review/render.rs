//! The review as people read it: Markdown for a ticket or a wiki page, and a standalone HTML
//! page.

use super::{Access, Review};
use std::fmt::Write as _;

impl Review {
    /// Markdown, for a ticket or a wiki page.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Access review: {}\n", self.source);
        if let Some(n) = self
            .usage_window
            .as_ref()
            .and_then(crate::usage::Window::notice)
        {
            let _ = writeln!(s, "> Note: {n}\n");
        }
        for (title, rows) in self.tables() {
            let _ = writeln!(s, "## {title}\n");
            let Some((head, body)) = rows.split_first() else {
                s.push_str("None.\n\n");
                continue;
            };
            if body.is_empty() {
                s.push_str("None.\n\n");
                continue;
            }
            let _ = writeln!(s, "| {} |", head.join(" | "));
            let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
            for r in body {
                let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
            s.push('\n');
        }
        s
    }

    /// A standalone HTML page.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Access review: {0}</title>\
             <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}</style>\
             </head><body>\n<h1>Access review: {0}</h1>\n",
            escape(&self.source)
        );
        if let Some(n) = self
            .usage_window
            .as_ref()
            .and_then(crate::usage::Window::notice)
        {
            let _ = writeln!(s, "<p><strong>Note:</strong> {}</p>", escape(&n));
        }
        for (title, rows) in self.tables() {
            let _ = writeln!(s, "<h2>{}</h2>", escape(title));
            match rows.split_first() {
                Some((head, body)) if !body.is_empty() => {
                    s.push_str("<table>\n<tr>");
                    for h in head {
                        let _ = write!(s, "<th>{}</th>", escape(h));
                    }
                    s.push_str("</tr>\n");
                    for r in body {
                        s.push_str("<tr>");
                        for c in r {
                            let _ = write!(s, "<td>{}</td>", escape(c));
                        }
                        s.push_str("</tr>\n");
                    }
                    s.push_str("</table>\n");
                }
                _ => s.push_str("<p>None.</p>\n"),
            }
        }
        s.push_str("</body></html>\n");
        s
    }

    /// Each section as a title and rows (the first row is the header).
    fn tables(&self) -> Vec<(&'static str, Vec<Vec<String>>)> {
        let access_row = |a: &Access| {
            vec![
                a.principal.clone(),
                a.actions.join(", "),
                a.resource.clone(),
                a.when.clone(),
                a.through.join("; "),
            ]
        };
        let mut models = vec![vec![
            "Models".to_owned(),
            "Principal".into(),
            "Actions".into(),
            "When".into(),
            "Through".into(),
        ]];
        for m in &self.model_invocation {
            for a in &m.invokers {
                let mut r = access_row(a);
                r.remove(2);
                r.insert(0, m.models.clone());
                models.push(r);
            }
        }
        let mut guardrails = vec![vec![
            "Principal".to_owned(),
            "Actions".into(),
            "Guardrails".into(),
            "When".into(),
            "Through".into(),
        ]];
        guardrails.extend(self.guardrail_changes.iter().map(access_row));
        let mut trust = vec![vec![
            "Role".to_owned(),
            "Path".into(),
            "Principal".into(),
            "Conditions".into(),
        ]];
        trust.extend(self.trust_paths.iter().map(|t| {
            vec![
                t.role.clone(),
                t.kind.to_owned(),
                t.principal.clone(),
                if t.conditions.is_empty() {
                    "none".into()
                } else {
                    t.conditions.join(", ")
                },
            ]
        }));
        let mut services = vec![vec![
            "Role".to_owned(),
            "Assumed by".into(),
            "Actions allowed".into(),
            "Findings".into(),
        ]];
        services.extend(self.service_identities.iter().map(|s| {
            vec![
                s.role.clone(),
                s.services.join(", "),
                s.allowed_actions.to_string(),
                s.findings.join("; "),
            ]
        }));
        let mut unused = vec![vec![
            "Principal".to_owned(),
            "Basis".into(),
            "Granted".into(),
            "Used".into(),
            "Last used".into(),
            "Unused".into(),
        ]];
        unused.extend(self.unused_access.iter().map(|u| {
            vec![
                u.principal.clone(),
                u.basis.clone(),
                u.granted.to_string(),
                u.used.to_string(),
                u.last_used.clone().unwrap_or_else(|| "never".into()),
                u.unused
                    .iter()
                    .map(|g| {
                        if g.through.is_empty() {
                            g.actions.join(", ")
                        } else {
                            format!("{} (through {})", g.actions.join(", "), g.through)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        }));
        let mut deprecated = vec![vec![
            "Model".to_owned(),
            "Status".into(),
            "Principal".into(),
            "Actions".into(),
            "When".into(),
            "Through".into(),
        ]];
        for m in &self.deprecated_models {
            if m.invokers.is_empty() {
                deprecated.push(vec![
                    m.model.clone(),
                    m.status.clone(),
                    "nobody".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            for a in &m.invokers {
                deprecated.push(vec![
                    m.model.clone(),
                    m.status.clone(),
                    a.principal.clone(),
                    a.actions.join(", "),
                    a.when.clone(),
                    a.through.join("; "),
                ]);
            }
        }
        vec![
            ("Who can invoke which models", models),
            ("Who can change guardrails", guardrails),
            ("Cross-account, public and federated paths", trust),
            ("Over-privileged service identities", services),
            ("Identities holding more than they used", unused),
            ("Deprecated models still reachable", deprecated),
        ]
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
