//! Rendering a [`Report`]: text for people (grouped by severity, optionally coloured), JSON
//! for machines, and SARIF 2.1.0 for code-scanning tools. Each is written to a writer as it
//! is produced: an organization's report holds tens of thousands of findings, and building
//! the whole document in memory first cost several times the findings themselves.

use crate::Report;
use crate::finding::{Finding, RULES, Severity};
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::{Value, json};
use std::io::{self, Write};

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
pub fn write_text(report: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    for n in &report.notices {
        writeln!(out, "notice: {n}")?;
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
        writeln!(
            out,
            "{c}== {} ({}) =={r}",
            sev.as_str().to_uppercase(),
            group.len()
        )?;
        for f in group {
            writeln!(out, "{c}[{}]{r} {}: {}", f.rule, f.title, f.message)?;
            writeln!(out, "    at:  {}", f.location)?;
            writeln!(out, "    why: {}", f.why)?;
            writeln!(out, "    fix: {}", f.fix)?;
        }
        writeln!(out)?;
    }
    let counts: Vec<String> = report
        .counts()
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    writeln!(
        out,
        "{} finding(s) in {} file(s): {}",
        report.findings.len(),
        report.files,
        counts.join(", ")
    )
}

/// [`write_text`] into a string.
pub fn text(report: &Report, color: bool) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_text(report, color, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn on_off(color: bool, s: Severity) -> (&'static str, &'static str) {
    if color {
        (colour(s), "\x1b[0m")
    } else {
        ("", "")
    }
}

/// The JSON document: `{files, counts, findings: [...], notices}`.
#[derive(serde::Serialize)]
struct JsonDoc<'a> {
    files: usize,
    counts: serde_json::Map<String, Value>,
    findings: &'a [Finding],
    notices: &'a [String],
}

fn json_doc(report: &Report) -> JsonDoc<'_> {
    JsonDoc {
        files: report.files,
        counts: report
            .counts()
            .into_iter()
            .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
            .collect(),
        findings: &report.findings,
        notices: &report.notices,
    }
}

/// Writes the JSON document (pretty-printed, with a final newline).
pub fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &json_doc(report))?;
    writeln!(out)
}

/// The JSON document as a value.
pub fn json(report: &Report) -> Value {
    serde_json::to_value(json_doc(report)).unwrap_or(Value::Null)
}

/// SARIF results, one finding at a time.
struct SarifResults<'a>(&'a [Finding]);

impl Serialize for SarifResults<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for f in self.0 {
            seq.serialize_element(&sarif_result(f))?;
        }
        seq.end()
    }
}

fn sarif_result(f: &Finding) -> Value {
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
}

/// The SARIF log around its results (`results` stands in for them).
fn sarif_frame(report: &Report, results: Value) -> Value {
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

/// SARIF 2.1.0 as a value.
pub fn sarif(report: &Report) -> Value {
    let results = serde_json::to_value(SarifResults(&report.findings)).unwrap_or(Value::Null);
    sarif_frame(report, results)
}

/// Writes SARIF 2.1.0 (pretty-printed, with a final newline), one result at a time.
pub fn write_sarif(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    // The frame is written around a placeholder, which is replaced by the results as they
    // are serialized.
    const HOLE: &str = "\u{0}results\u{0}";
    let frame = serde_json::to_string_pretty(&sarif_frame(report, json!(HOLE)))?;
    let quoted = serde_json::to_string(HOLE)?;
    let (before, after) = frame
        .split_once(&quoted)
        .ok_or_else(|| io::Error::other("SARIF frame without its results"))?;
    out.write_all(before.as_bytes())?;
    // The results are pretty-printed on their own (indented from the left margin): JSON
    // readers do not mind, and the document is the same.
    let mut ser = serde_json::Serializer::pretty(&mut *out);
    SarifResults(&report.findings).serialize(&mut ser)?;
    out.write_all(after.as_bytes())?;
    writeln!(out)
}

/// A relative URI for a file path (forward slashes, spaces escaped).
fn uri(path: &str) -> String {
    path.replace('\\', "/").replace(' ', "%20")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::finding::Location;

    fn report() -> Report {
        Report {
            files: 1,
            findings: vec![
                Finding::new(
                    "GH-OP-001",
                    "everything",
                    Location::at("a.json", "$.Statement[0]"),
                ),
                Finding::new("GH-TR-003", "public \"x\"", Location::at("b.json", "$")),
            ],
            notices: vec!["a notice".into()],
        }
    }

    /// What is written equals the document built in memory.
    #[test]
    fn written_documents_equal_the_values() {
        let r = report();
        let mut json_out = Vec::new();
        write_json(&r, &mut json_out).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&json_out).unwrap(),
            json(&r)
        );
        let mut sarif_out = Vec::new();
        write_sarif(&r, &mut sarif_out).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&sarif_out).unwrap(),
            sarif(&r)
        );
    }
}
