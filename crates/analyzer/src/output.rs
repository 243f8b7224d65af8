//! Rendering a [`Report`]: text for people (grouped by severity, optionally coloured), JSON
//! for machines, and SARIF 2.1.0 for code-scanning tools.

use crate::Report;
use crate::finding::{RULES, Severity};
use serde_json::{Value, json};
use std::fmt::Write as _;

fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "\x1b[1;31m",
        Severity::High => "\x1b[31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[36m",
        Severity::Info => "\x1b[2m",
    }
}

/// Text grouped by severity; ANSI colour when `color` (the caller decides: a terminal).
pub fn text(report: &Report, color: bool) -> String {
    let mut out = String::new();
    for n in &report.notices {
        let _ = writeln!(out, "notice: {n}");
    }
    for sev in Severity::ALL {
        let group: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == sev)
            .collect();
        if group.is_empty() {
            continue;
        }
        let (c, r) = on_off(color, sev);
        let _ = writeln!(
            out,
            "{c}== {} ({}) =={r}",
            sev.as_str().to_uppercase(),
            group.len()
        );
        for f in group {
            let _ = writeln!(out, "{c}[{}]{r} {}: {}", f.rule, f.title, f.message);
            let _ = writeln!(out, "    at:  {}", f.location);
            let _ = writeln!(out, "    why: {}", f.why);
            let _ = writeln!(out, "    fix: {}", f.fix);
        }
        out.push('\n');
    }
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = writeln!(
        out,
        "{} finding(s) in {} file(s): {}",
        report.findings.len(),
        report.files,
        counts.join(", ")
    );
    out
}

fn on_off(color: bool, s: Severity) -> (&'static str, &'static str) {
    if color {
        (colour(s), "\x1b[0m")
    } else {
        ("", "")
    }
}

/// One JSON document: `{files, counts, findings: [...]}`.
pub fn json(report: &Report) -> Value {
    let counts: serde_json::Map<String, Value> = report
        .counts()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    json!({
        "files": report.files,
        "counts": counts,
        "findings": report.findings,
        "notices": report.notices,
    })
}

/// SARIF 2.1.0.
pub fn sarif(report: &Report) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.why},
                "help": {"text": r.fix},
                "defaultConfiguration": {"level": r.severity.sarif_level()},
                "properties": {"severity": r.severity.as_str()},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let logical = f.location.logical();
            let mut loc = json!({
                "physicalLocation": {"artifactLocation": {"uri": uri(&f.location.file)}},
                "logicalLocations": [{
                    "name": if logical.is_empty() { f.location.file.clone() } else { logical },
                    "fullyQualifiedName": f.location.json_path.clone().unwrap_or_else(|| "$".into()),
                    "kind": "object",
                }],
            });
            if let Some(p) = &f.location.json_path {
                loc["properties"] = json!({"jsonPath": p});
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule),
                "level": f.severity.sarif_level(),
                "message": {"text": format!("{} — {} Fix: {}", f.message, f.why, f.fix)},
                "locations": [loc],
                "properties": {"severity": f.severity.as_str()},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gatehouse",
                "informationUri": "https://example.invalid/gatehouse",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": report.notices.iter()
                    .map(|n| json!({"level": "warning", "message": {"text": n}}))
                    .collect::<Vec<_>>(),
            }],
        }],
    })
}

/// A relative URI for a file path (forward slashes, spaces escaped).
fn uri(path: &str) -> String {
    path.replace('\\', "/").replace(' ', "%20")
}
