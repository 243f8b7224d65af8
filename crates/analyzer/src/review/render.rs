//! The review as people read it: Markdown for a ticket or a wiki page, and a standalone HTML
//! page.

use super::{Access, Review};
use std::collections::{BTreeMap, BTreeSet};
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

    /// A standalone HTML page, written to be read: a summary first (by severity, per model,
    /// per cloud), then each section folded (`<details>`), grants grouped by the policy
    /// statements that give them (the actions said once per group, not on every row), the
    /// paths into and between roles drawn as an SVG graph, and a principal × model matrix.
    /// No external assets; long names wrap, so no table is wider than the page.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>Access review: {0}</title><style>{STYLE}</style></head><body>\n\
             <h1>Access review: {0}</h1>\n",
            escape(&self.source)
        );
        if let Some(n) = self
            .usage_window
            .as_ref()
            .and_then(crate::usage::Window::notice)
        {
            let _ = writeln!(s, "<p><strong>Note:</strong> {}</p>", inline(&n));
        }
        self.summary_html(&mut s);
        let tables = self.tables();
        for (title, rows) in &tables {
            let count = rows.len().saturating_sub(1);
            let open = if count > 0 && count <= 50 {
                " open"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "<details{open}><summary><h2>{} ({count})</h2></summary>",
                escape(title)
            );
            match *title {
                MODELS => grouped_html(
                    &mut s,
                    "Models",
                    self.model_invocation
                        .iter()
                        .flat_map(|m| m.invokers.iter().map(move |a| (m.models.as_str(), a))),
                ),
                GUARDRAILS => grouped_html(
                    &mut s,
                    "Guardrails",
                    self.guardrail_changes
                        .iter()
                        .map(|a| (a.resource.as_str(), a)),
                ),
                _ => table_html(&mut s, rows),
            }
            if *title == TRUST {
                self.graph_html(&mut s);
            }
            s.push_str("</details>\n");
        }
        self.matrix_html(&mut s);
        s.push_str("</body></html>\n");
        s
    }

    /// Counts first: findings by severity, who can invoke each model, identities per cloud,
    /// and the size of each section.
    fn summary_html(&self, s: &mut String) {
        s.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
        let mut by_severity: BTreeMap<crate::Severity, usize> = BTreeMap::new();
        for p in &self.escalation_paths {
            *by_severity.entry(p.severity).or_default() += 1;
        }
        for f in self.service_identities.iter().flat_map(|i| &i.findings) {
            let rule = f.split(':').next().unwrap_or("");
            if let Some(r) = crate::finding::rule_by_id(rule) {
                *by_severity.entry(r.severity).or_default() += 1;
            }
        }
        s.push_str("<table class=\"counts\"><tr><th>Severity</th><th>Findings (escalation paths, service identities)</th></tr>\n");
        for sev in crate::Severity::ALL {
            if let Some(n) = by_severity.get(&sev) {
                let _ = writeln!(
                    s,
                    "<tr><td class=\"sev-{0}\">{0}</td><td>{n}</td></tr>",
                    sev.as_str()
                );
            }
        }
        if by_severity.is_empty() {
            s.push_str("<tr><td>—</td><td>none</td></tr>\n");
        }
        s.push_str("</table>\n");
        s.push_str("<table class=\"counts\"><tr><th>Models</th><th>Identities that can invoke them</th></tr>\n");
        for m in &self.model_invocation {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&m.models),
                m.invokers.len()
            );
        }
        for m in self
            .deprecated_models
            .iter()
            .filter(|m| !m.invokers.is_empty())
        {
            let _ = writeln!(
                s,
                "<tr><td>{} ({})</td><td>{}</td></tr>",
                escape(&m.model),
                escape(&m.status),
                m.invokers.len()
            );
        }
        s.push_str("</table>\n");
        let mut clouds: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
        for a in self.model_invocation.iter().flat_map(|m| &m.invokers) {
            let (cloud, account) = cloud_of(&a.principal);
            let e = clouds.entry(cloud).or_default();
            e.0.insert(&a.principal);
            e.1.insert(account);
        }
        s.push_str("<table class=\"counts\"><tr><th>Cloud</th><th>Identities that can invoke a model</th><th>Accounts</th></tr>\n");
        for (cloud, (ids, accounts)) in &clouds {
            let _ = writeln!(
                s,
                "<tr><td>{cloud}</td><td>{}</td><td>{}</td></tr>",
                ids.len(),
                accounts.len()
            );
        }
        s.push_str("</table>\n</section>\n");
    }

    /// The cross-account, federated and public ways into roles, and the escalation paths
    /// between roles, as a left-to-right graph.
    fn graph_html(&self, s: &mut String) {
        let mut edges: Vec<(&str, &str, &'static str)> = self
            .trust_paths
            .iter()
            .map(|t| (t.principal.as_str(), t.role.as_str(), t.kind))
            .collect();
        for p in &self.escalation_paths {
            for w in p.steps.windows(2) {
                if let [a, b] = w {
                    edges.push((a.as_str(), b.as_str(), "escalation"));
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        if edges.is_empty() {
            return;
        }
        let shown = edges.len().min(MAX_EDGES);
        let _ = writeln!(
            s,
            "<h3>As a graph</h3><p>{shown} of {} edges drawn (all are in the tables): \
             <span class=\"k-escalation\">escalation</span>, \
             <span class=\"k-cross-account\">cross-account</span>, \
             <span class=\"k-federated\">federated</span>, \
             <span class=\"k-any\">anyone</span>, \
             <span class=\"k-service\">service</span>.</p>",
            edges.len()
        );
        s.push_str(&svg_graph(&edges[..shown]));
    }

    /// Who can invoke what, one row per identity, one column per model pattern (and per
    /// deprecated model still reachable).
    fn matrix_html(&self, s: &mut String) {
        let mut columns: Vec<(String, BTreeSet<&str>)> = self
            .model_invocation
            .iter()
            .map(|m| {
                (
                    m.models.clone(),
                    m.invokers.iter().map(|a| a.principal.as_str()).collect(),
                )
            })
            .collect();
        columns.extend(
            self.deprecated_models
                .iter()
                .filter(|m| !m.invokers.is_empty())
                .map(|m| {
                    (
                        format!("{} ({})", m.model, m.status),
                        m.invokers.iter().map(|a| a.principal.as_str()).collect(),
                    )
                }),
        );
        let rows: BTreeSet<&str> = columns
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        let _ = writeln!(
            s,
            "<details><summary><h2>Identity × model ({} identities, {} models)</h2></summary>",
            rows.len(),
            columns.len()
        );
        if rows.is_empty() {
            s.push_str("<p>None.</p></details>\n");
            return;
        }
        s.push_str(
            "<table class=\"matrix\"><colgroup><col class=\"who\"></colgroup><tr><th>Identity</th>",
        );
        for (c, _) in &columns {
            let _ = write!(s, "<th>{}</th>", escape(c));
        }
        s.push_str("</tr>\n");
        for r in &rows {
            let _ = write!(s, "<tr><td>{}</td>", escape(r));
            for (_, who) in &columns {
                s.push_str(if who.contains(r) {
                    "<td>✓</td>"
                } else {
                    "<td></td>"
                });
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table></details>\n");
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
        let mut escalation = vec![vec!["Severity".to_owned(), "Path".into(), "Finding".into()]];
        escalation.extend(self.escalation_paths.iter().map(|p| {
            vec![
                p.severity.as_str().to_owned(),
                p.steps.join(" → "),
                p.message.clone(),
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
            (MODELS, models),
            (GUARDRAILS, guardrails),
            (TRUST, trust),
            ("Privilege-escalation paths", escalation),
            ("Over-privileged service identities", services),
            ("Identities holding more than they used", unused),
            ("Deprecated models still reachable", deprecated),
        ]
    }
}

impl super::people::ByPerson {
    /// A standalone HTML page: the person × model matrix first, then each person's grants
    /// (folded) and the grants nobody could be named behind.
    pub fn html(&self) -> String {
        let mut s = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>Model access by person</title><style>{STYLE}</style></head><body>\n\
             <h1>Who can invoke or manage models, by person</h1>\n"
        );
        let columns: BTreeSet<(&str, &str)> = self
            .people
            .iter()
            .flat_map(|p| &p.grants)
            .map(|g| (g.cloud, g.models.as_str()))
            .collect();
        let _ = writeln!(
            s,
            "<section id=\"summary\"><h2>Person × model ({} people, {} unmatched grants)</h2>",
            self.people.len(),
            self.unmatched.len()
        );
        s.push_str(
            "<table class=\"matrix\"><colgroup><col class=\"who\"></colgroup><tr><th>Person</th>",
        );
        for (cloud, models) in &columns {
            let _ = write!(s, "<th>{cloud}: {}</th>", escape(models));
        }
        s.push_str("</tr>\n");
        for p in &self.people {
            let _ = write!(s, "<tr><td>{}</td>", escape(&p.person));
            for (cloud, models) in &columns {
                let access: BTreeSet<&str> = p
                    .grants
                    .iter()
                    .filter(|g| g.cloud == *cloud && g.models == *models)
                    .map(|g| g.access)
                    .collect();
                let _ = write!(
                    s,
                    "<td>{}</td>",
                    access.into_iter().collect::<Vec<_>>().join(", ")
                );
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table></section>\n");
        let mut rows = |title: &str, grants: &[super::people::PersonGrant]| {
            let _ = writeln!(
                s,
                "<details><summary><h2>{} ({})</h2></summary>",
                escape(title),
                grants.len()
            );
            let mut table = vec![vec![
                "Cloud".to_owned(),
                "Access".into(),
                "Models".into(),
                "Identity".into(),
                "Through".into(),
                "Via".into(),
            ]];
            table.extend(grants.iter().map(|g| {
                vec![
                    g.cloud.to_owned(),
                    g.access.to_owned(),
                    g.models.clone(),
                    g.identity.clone(),
                    g.through.clone(),
                    if g.via.is_empty() {
                        "directly".to_owned()
                    } else {
                        g.via.join(" → ")
                    },
                ]
            }));
            table_html(&mut s, &table);
            s.push_str("</details>\n");
        };
        for p in &self.people {
            rows(&p.person, &p.grants);
        }
        rows("Unmatched identities", &self.unmatched);
        s.push_str("</body></html>\n");
        s
    }
}

const MODELS: &str = "Who can invoke which models";
const GUARDRAILS: &str = "Who can change guardrails";
const TRUST: &str = "Cross-account, public and federated paths";

/// Edges drawn at most: past that a graph is no longer read, and the tables list them all.
const MAX_EDGES: usize = 150;

const STYLE: &str = "body{font-family:sans-serif;margin:1em;max-width:100%;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%;table-layout:fixed;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:3px 5px;vertical-align:top;text-align:left;overflow-wrap:anywhere;word-break:break-word}\
table.counts{width:auto;max-width:100%;table-layout:auto}\
table.matrix td{text-align:center}table.matrix td:first-child{text-align:left}col.who{width:40%}\
summary h2,summary h3{display:inline}details{margin:.6em 0}\
code{background:#f3f3f3;padding:0 2px}\
.grant{border-left:3px solid #89a;padding-left:.6em;margin:.8em 0}.grant p{margin:.2em 0}\
.sev-critical{color:#b00;font-weight:bold}.sev-high{color:#c60}\
svg{max-width:100%;height:auto;display:block}\
.k-escalation{color:#c00}.k-cross-account{color:#d70}.k-federated{color:#06c}.k-any{color:#000}.k-service{color:#080}";

/// A group of grants: the statements behind them, the actions, the conditions.
type GrantKey<'a> = (String, String, &'a str);

/// The rows of a section that gives access, grouped by the statements behind them, the
/// actions and the conditions: each group's header says them once, its table lists the
/// resources and identities.
fn grouped_html<'a>(
    s: &mut String,
    resource_title: &str,
    grants: impl Iterator<Item = (&'a str, &'a Access)>,
) {
    let mut groups: BTreeMap<GrantKey<'_>, Vec<(&str, &str)>> = BTreeMap::new();
    for (resource, a) in grants {
        groups
            .entry((a.through.join("; "), a.actions.join(", "), a.when.as_str()))
            .or_default()
            .push((resource, a.principal.as_str()));
    }
    if groups.is_empty() {
        s.push_str("<p>None.</p>\n");
        return;
    }
    for ((through, actions, when), rows) in &groups {
        let _ = writeln!(
            s,
            "<div class=\"grant\"><p><strong>Through</strong> {}</p><p><strong>Actions</strong> {}</p><p><strong>When</strong> {}</p>",
            inline(through),
            escape(actions),
            inline(when)
        );
        let _ = writeln!(
            s,
            "<table><tr><th>{}</th><th>Identity</th></tr>",
            escape(resource_title)
        );
        for (resource, principal) in rows {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(resource),
                escape(principal)
            );
        }
        s.push_str("</table></div>\n");
    }
}

/// A section's rows (the first is the header) as a table.
fn table_html(s: &mut String, rows: &[Vec<String>]) {
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
                    let _ = write!(s, "<td>{}</td>", inline(c));
                }
                s.push_str("</tr>\n");
            }
            s.push_str("</table>\n");
        }
        _ => s.push_str("<p>None.</p>\n"),
    }
}

/// The cloud of an identity and its account (AWS ARNs; anything else by its prefix).
fn cloud_of(principal: &str) -> (&'static str, &str) {
    let mut parts = principal.split(':');
    match (parts.next(), parts.next(), parts.nth(2)) {
        (Some("arn"), Some(p), Some(account)) if p.starts_with("aws") => ("AWS", account),
        _ => ("other", ""),
    }
}

/// A short label for a graph node: an ARN's account and the last part of its resource.
fn short(name: &str) -> String {
    let mut parts = name.splitn(6, ':');
    let label = match (parts.next(), parts.nth(3), parts.next()) {
        (Some("arn"), Some(account), Some(resource)) => {
            let tail = resource.rsplit('/').next().unwrap_or(resource);
            if account.is_empty() {
                tail.to_owned()
            } else {
                format!("{account}:{tail}")
            }
        }
        _ => name.to_owned(),
    };
    if label.chars().count() > 40 {
        let mut cut: String = label.chars().take(39).collect();
        cut.push('…');
        cut
    } else {
        label
    }
}

/// Edges (from, to, kind) drawn left to right: each node in the column of its longest way in
/// (at most four hops), nodes in order of first mention; self-contained SVG that scales down
/// to the page's width.
fn svg_graph(edges: &[(&str, &str, &'static str)]) -> String {
    const COL: usize = 300;
    const BOX: usize = 270;
    const ROW: usize = 24;
    let mut order: Vec<&str> = Vec::new();
    let mut column: BTreeMap<&str, usize> = BTreeMap::new();
    for (a, b, _) in edges {
        for n in [*a, *b] {
            if !column.contains_key(n) {
                column.insert(n, 0);
                order.push(n);
            }
        }
    }
    // Longest way in, by relaxation; bounded so that cycles cannot run on.
    for _ in 0..4 {
        for (a, b, _) in edges {
            let next = (column.get(a).copied().unwrap_or(0) + 1).min(4);
            if let Some(c) = column.get_mut(b)
                && *c < next
            {
                *c = next;
            }
        }
    }
    let mut rows_in: BTreeMap<usize, usize> = BTreeMap::new();
    let mut at: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for n in &order {
        let c = column.get(n).copied().unwrap_or(0);
        let r = rows_in.entry(c).or_default();
        at.insert(*n, (10 + c * COL, 10 + *r * ROW));
        *r += 1;
    }
    let width = 20 + (column.values().max().copied().unwrap_or(0) + 1) * COL;
    let height = 20 + rows_in.values().max().copied().unwrap_or(1) * ROW;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" aria-label=\"paths into and between roles\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker></defs>\n"
    );
    for (a, b, kind) in edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(a), at.get(b)) else {
            continue;
        };
        let (sx, sy, ex, ey) = (x1 + BOX, y1 + 9, x2, y2 + 9);
        let mid = (sx + ex) / 2;
        let color = match *kind {
            "escalation" => "#c00",
            "cross-account" => "#d70",
            "federated" => "#06c",
            "service" => "#080",
            _ => "#000",
        };
        let _ = writeln!(
            s,
            "<path class=\"edge {kind}\" d=\"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}\" fill=\"none\" stroke=\"{color}\" marker-end=\"url(#arrow)\"><title>{} → {} ({kind})</title></path>",
            escape(a),
            escape(b)
        );
    }
    for n in &order {
        if let Some(&(x, y)) = at.get(n) {
            let _ = writeln!(
                s,
                "<g><title>{0}</title><rect x=\"{x}\" y=\"{y}\" width=\"{BOX}\" height=\"18\" rx=\"3\" fill=\"#eef\" stroke=\"#89a\"/><text x=\"{1}\" y=\"{2}\" font-size=\"11\" font-family=\"sans-serif\">{3}</text></g>",
                escape(n),
                x + 4,
                y + 13,
                escape(&short(n))
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Escaped text with Markdown code spans (`` `x` ``) as `<code>`, so that no backtick shows.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let pieces: Vec<&str> = text.split('`').collect();
    let closed = pieces.len() % 2 == 1;
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        if i % 2 == 1 && (closed || !last) {
            let _ = write!(out, "<code>{}</code>", escape(piece));
        } else {
            if i % 2 == 1 {
                // An unmatched backtick: kept as a quote mark, not as Markdown.
                out.push('\'');
            }
            out.push_str(&escape(piece));
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_become_code_and_no_backtick_is_left() {
        assert_eq!(
            inline("identity-based policy `user bob/<x>` statement #0"),
            "identity-based policy <code>user bob/&lt;x&gt;</code> statement #0"
        );
        assert_eq!(inline("a `b` c `d"), "a <code>b</code> c 'd");
        assert!(!inline("``` `").contains('`'));
    }

    #[test]
    fn graph_nodes_sit_right_of_the_nodes_that_lead_to_them() {
        let svg = svg_graph(&[
            (
                "arn:aws:iam::111111111111:root",
                "arn:aws:iam::222222222222:role/a",
                "cross-account",
            ),
            (
                "arn:aws:iam::222222222222:role/a",
                "arn:aws:iam::222222222222:role/admin",
                "escalation",
            ),
        ]);
        assert_eq!(svg.matches("<path class=\"edge").count(), 2);
        assert!(
            svg.contains("<rect x=\"10\"") && svg.contains("<rect x=\"610\""),
            "{svg}"
        );
        assert!(svg.contains(">222222222222:admin</text>"), "{svg}");
    }
}
