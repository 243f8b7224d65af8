//! A scan of a run's inputs. Small files (policies, Azure and GCP exports, credential
//! reports, audit logs) are read whole and analyzed in parallel; authorization-details
//! exports are read as streams, one after another, each in parts analyzed in parallel
//! ([`crate::export`]). What joins files is then added: credential reports' console users
//! without MFA (GH-HY-003) and audit logs' unused permissions (GH-HY-004) against the
//! exports' principals, part by part, and the role-assumption graph (GH-PE-006) over every
//! part of an export — or, in an organization, over every export of the run.

use crate::export::{AwsExport, ExportError, Part, Source};
use crate::finding::{Finding, Location};
use crate::generate::AuditRecord;
use crate::model::{Format, Inventory};
use crate::rules::{self, PartAnalysis, Scope, paths::Node};
use crate::spill::Spill;
use crate::subject::{Subject, subjects};
use crate::usage::{AuditIndex, CredentialIndex};
use crate::{Progress, Report, Settings};
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What a part's principals are joined with.
#[derive(Debug, Default)]
pub(crate) struct Joins<'a> {
    /// Credential reports (file, rows by ARN): GH-HY-003.
    pub reports: Vec<(&'a str, CredentialIndex<'a>)>,
    /// An audit log: GH-HY-004.
    pub audit: Option<AuditIndex>,
    /// Gatehouse users without an MFA device: GH-HY-003 for a store.
    pub store_without_mfa: Option<FxHashSet<&'a str>>,
}

impl Joins<'_> {
    fn findings(&self, file: &str, subjects: &[Subject<'_>]) -> Vec<Finding> {
        subjects
            .par_iter()
            .flat_map_iter(|s| {
                let arn = s.principal.arn.as_str();
                let mut out = Vec::new();
                for (report, index) in &self.reports {
                    if let Some(row) = index.row(arn) {
                        out.extend(rules::hygiene::mfa_for_manager(s, report, row));
                    }
                }
                if self
                    .store_without_mfa
                    .as_ref()
                    .is_some_and(|u| u.contains(arn))
                {
                    out.extend(rules::hygiene::mfa_for_store_user(s));
                }
                if let Some(audit) = &self.audit
                    && let Some(u) = crate::usage::usage_of(s, audit)
                {
                    out.extend(crate::usage::unused_finding(file, &audit.window, &u));
                }
                out
            })
            .collect()
    }
}

/// One part scanned: every rule but the graph, and the joins.
pub(crate) fn scan_part(part: &Part, scope: &Scope<'_>, joins: &Joins<'_>) -> PartAnalysis {
    scan_inventory(&part.inventory, &part.problems, scope, joins)
}

/// An inventory (a part, or a file read whole) scanned: every rule but the graph, the
/// importer's `problems`, and the joins.
fn scan_inventory(
    inv: &Inventory,
    problems: &[Finding],
    scope: &Scope<'_>,
    joins: &Joins<'_>,
) -> PartAnalysis {
    let guardrails = |a: &str| scope.guardrails(a);
    let subjects = subjects(inv, &guardrails);
    let mut a = rules::analyze_part(inv, &subjects, scope);
    a.findings.extend(problems.iter().cloned());
    a.findings.extend(joins.findings(&inv.file, &subjects));
    a
}

/// Scans an export, part by part, handing each part's findings to `sink` as soon as the
/// part is done; returns the graph's nodes.
fn scan_export_into(
    export: &AwsExport,
    settings: &Settings,
    joins: &Joins<'_>,
    progress: &dyn Progress,
    sink: &(dyn Fn(Vec<Finding>) + Sync),
) -> Result<Vec<Node>, ExportError> {
    let scope = Scope {
        settings,
        now: export.now(),
    };
    progress.add_total(export.principals() as u64);
    let parts = export.parts(&|n| progress.advance(n), &|part| {
        let a = scan_part(part, &scope, joins);
        sink(a.findings);
        a.nodes
    })?;
    // Sized once: a vector doubling as it grows would hold up to twice the nodes.
    let mut nodes = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for p in parts {
        nodes.extend(p);
    }
    Ok(nodes)
}

/// Scans an export, part by part; returns its findings and its graph's nodes.
pub(crate) fn scan_export(
    export: &AwsExport,
    settings: &Settings,
    joins: &Joins<'_>,
    progress: &dyn Progress,
) -> Result<PartAnalysis, ExportError> {
    let found = Mutex::new(Spill::default());
    let nodes = scan_export_into(export, settings, joins, progress, &|f| {
        lock(&found).add(f);
    })?;
    let findings = found
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .finish();
    Ok(PartAnalysis { findings, nodes })
}

/// The spill, even after a panic elsewhere (it only ever gains findings).
fn lock(spill: &Mutex<Spill>) -> std::sync::MutexGuard<'_, Spill> {
    spill.lock().unwrap_or_else(|e| e.into_inner())
}

/// The scope of a file read whole: its own "now".
fn whole_scope<'a>(inv: &Inventory, settings: &'a Settings) -> Scope<'a> {
    Scope {
        settings,
        now: crate::usage::export_time(inv),
    }
}

/// Whether a file looks like an authorization-details export from its first bytes (an
/// object naming one of the principal lists; the AWS CLI writes `UserDetailList` first).
/// Only a shortcut: a file that does not look like one is read whole, and still recognized.
fn looks_like_export(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::with_capacity(1 << 16);
    if f.take(1 << 16).read_to_end(&mut head).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    text.trim_start().starts_with('{')
        && [
            "\"userdetaillist\"",
            "\"roledetaillist\"",
            "\"groupdetaillist\"",
        ]
        .iter()
        .any(|k| text.contains(k))
}

fn unreadable(name: &str, e: impl std::fmt::Display) -> Finding {
    Finding::new(
        "GH-IN-001",
        format!("cannot read the file: {e}"),
        Location::at(name, "$"),
    )
}

/// A file read whole: its inventory and the findings of every rule but the graph.
fn scan_whole(path: &Path, settings: &Settings) -> (Option<Inventory>, Vec<Finding>, Vec<Node>) {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            let (inv, problems) = crate::import::import(&name, &bytes);
            let scope = whole_scope(&inv, settings);
            let part = scan_inventory(&inv, &problems, &scope, &Joins::default());
            (Some(inv), part.findings, part.nodes)
        }
        Err(e) => (None, vec![unreadable(&name, e)], Vec::new()),
    }
}

/// Scans files: small ones in parallel, exports streamed (see the module docs); `progress`
/// counts files and principals.
pub fn scan_files(files: &[PathBuf], settings: &Settings, progress: &dyn Progress) -> Report {
    progress.add_total(files.len() as u64);
    let (exports, small): (Vec<&PathBuf>, Vec<&PathBuf>) =
        files.iter().partition(|p| looks_like_export(p));
    let scanned: Vec<(Option<Inventory>, Vec<Finding>, Vec<Node>)> = small
        .par_iter()
        .map(|p| {
            let out = scan_whole(p, settings);
            progress.advance(1);
            out
        })
        .collect();
    let mut graphs: Vec<Vec<Node>> = Vec::new();
    let whole: Vec<(Option<Inventory>, Vec<Finding>)> = scanned
        .into_iter()
        .map(|(i, f, n)| {
            graphs.push(n);
            (i, f)
        })
        .collect();
    let kept: Vec<&Inventory> = whole.iter().filter_map(|(i, _)| i.as_ref()).collect();
    let mut findings: Vec<Finding> = rules::azure::assignments(&kept);
    let of =
        |f: Format| -> Vec<&Inventory> { kept.iter().copied().filter(|i| i.format == f).collect() };
    let records: Vec<AuditRecord> = of(Format::GatehouseAuditLog)
        .iter()
        .flat_map(|l| l.audit.iter().cloned())
        .collect();
    let mut notices = Vec::new();
    let joins = Joins {
        reports: of(Format::AwsCredentialReport)
            .into_iter()
            .map(|r| (r.file.as_str(), CredentialIndex::new(r)))
            .collect(),
        audit: audit_index(&records),
        store_without_mfa: None,
    };
    if let Some(a) = &joins.audit {
        notices.extend(a.window.notice());
    }
    let joined = !joins.reports.is_empty() || joins.audit.is_some();
    for (inv, found) in &whole {
        findings.extend(found.iter().cloned());
        // An export read whole (it did not look like one) joins like a streamed one.
        if let Some(inv) = inv
            .as_ref()
            .filter(|i| joined && i.format == Format::AwsAuthorizationDetails)
        {
            let scope = whole_scope(inv, settings);
            let subjects = subjects(inv, &|a: &str| scope.guardrails(a));
            findings.extend(joins.findings(&inv.file, &subjects));
        }
    }
    // The exports' findings wait on disk until the exports and the graph are done with
    // ([`crate::spill`]): the largest things a scan holds then take turns.
    let spill = Mutex::new(Spill::default());
    for path in exports {
        graphs.push(stream_or_whole(path, settings, &joins, progress, &spill));
        progress.advance(1);
    }
    append(&mut findings, graph(graphs, settings));
    drop(joins);
    append(
        &mut findings,
        spill
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .finish(),
    );
    finish(files.len(), findings, notices)
}

/// Appends without the spare capacity of a growing vector (an organization's findings are
/// the largest thing a scan holds); an empty vector takes the other's place.
fn append(findings: &mut Vec<Finding>, more: Vec<Finding>) {
    if findings.is_empty() {
        *findings = more;
    } else {
        findings.reserve_exact(more.len());
        findings.extend(more);
    }
}

/// The graph's findings: one graph per export, or one over all of them in an organization
/// (where trust across its accounts is followed).
fn graph(graphs: Vec<Vec<Node>>, settings: &Settings) -> Vec<Finding> {
    if settings.organization.is_some() {
        rules::paths::check(graphs.into_iter().flatten().collect())
    } else {
        graphs
            .into_par_iter()
            .flat_map_iter(rules::paths::check)
            .collect()
    }
}

/// Streams an export, its findings into `spill`; returns its graph's nodes. A file that is
/// not one after all is read whole.
fn stream_or_whole(
    path: &Path,
    settings: &Settings,
    joins: &Joins<'_>,
    progress: &dyn Progress,
    spill: &Mutex<Spill>,
) -> Vec<Node> {
    let name = path.display().to_string();
    let mark = lock(spill).mark();
    let scanned = AwsExport::open(&name, Source::File(path.to_path_buf())).and_then(|e| {
        e.map(|e| scan_export_into(&e, settings, joins, progress, &|f| lock(spill).add(f)))
            .transpose()
    });
    if scanned.is_err() {
        // The parts read before the error count for nothing, as when the file is read whole.
        lock(spill).rollback(mark);
    }
    let (findings, nodes) = match scanned {
        Ok(Some(nodes)) => (Vec::new(), nodes),
        // Not an export, or not JSON: the whole-file importers say what it is.
        Ok(None) | Err(ExportError::Json { .. }) => {
            let (_, findings, nodes) = scan_whole(path, settings);
            (findings, nodes)
        }
        Err(ExportError::Read { source, .. }) => (vec![unreadable(&name, source)], Vec::new()),
    };
    lock(spill).add(findings);
    nodes
}

/// The audit log's usage index: "now" is its latest record, the window the default.
fn audit_index(records: &[AuditRecord]) -> Option<AuditIndex> {
    let now = records
        .iter()
        .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.time).ok())
        .max()?
        .with_timezone(&chrono::Utc);
    Some(AuditIndex::new(
        records,
        now,
        crate::usage::DEFAULT_UNUSED_DAYS,
    ))
}

/// The report: findings sorted (most severe first), exact duplicates (the same finding from
/// two exports naming one principal) once.
pub(crate) fn finish(files: usize, mut findings: Vec<Finding>, mut notices: Vec<String>) -> Report {
    crate::sort(&mut findings);
    findings.dedup();
    notices.dedup();
    Report {
        files,
        findings,
        notices,
    }
}

/// Scans one authorization-details export: every rule, the graph included.
pub fn scan_export_report(
    export: &AwsExport,
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<Report, ExportError> {
    let a = scan_export(export, settings, &Joins::default(), progress)?;
    let mut findings = a.findings;
    append(&mut findings, rules::paths::check(a.nodes));
    Ok(finish(1, findings, Vec::new()))
}

/// Scans one input held in memory (an export is read in parts like a file).
pub fn scan_bytes_with(file: &str, bytes: &[u8], settings: &Settings) -> Vec<Finding> {
    let streamed = AwsExport::from_bytes(file, bytes).and_then(|e| {
        e.map(|e| scan_export(&e, settings, &Joins::default(), &crate::NoProgress))
            .transpose()
    });
    let (mut findings, nodes) = match streamed {
        Ok(Some(a)) => (a.findings, a.nodes),
        _ => {
            let (inv, problems) = crate::import::import(file, bytes);
            let scope = whole_scope(&inv, settings);
            let mut part = scan_inventory(&inv, &problems, &scope, &Joins::default());
            part.findings.extend(rules::azure::assignments(&[&inv]));
            (part.findings, part.nodes)
        }
    };
    findings.extend(rules::paths::check(nodes));
    findings
}
