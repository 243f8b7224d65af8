//! Gatehouse's analyzer: reads IAM exports of AWS, Azure and GCP (and single AWS policy
//! documents), normalizes them into one model, and reports what is too broad — with the
//! risks specific to AI services — as findings with a stable rule id, a severity, the exact
//! place, why it matters and how to fix it.
//!
//! ```no_run
//! let report = gatehouse_analyzer::scan_paths(&["exports/".into()], &|| {})?;
//! print!("{}", gatehouse_analyzer::output::text(&report, false));
//! # Ok::<(), gatehouse_analyzer::ScanError>(())
//! ```
//!
//! Whether an identity can do something is decided by the policy engine
//! (`gatehouse-policy`), not by string matching: see the `rules` module docs.

pub mod access;
pub mod actions;
pub mod diff;
pub mod finding;
pub mod generate;
pub mod import;
pub mod lifecycle;
pub mod model;
pub mod output;
pub mod review;
pub(crate) mod rules;
pub mod usage;

pub use finding::{Finding, Location, RULES, Rule, Severity};
pub use model::Inventory;

use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Errors that stop a scan before it starts (unreadable inputs are findings, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A path given on the command line does not exist or cannot be listed.
    #[error("cannot read {path}: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The result of a scan.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Number of files read.
    pub files: usize,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// What could not be assessed, and why (e.g. an audit log younger than the window).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

impl Report {
    /// The number of findings at each severity, most severe first.
    pub fn counts(&self) -> Vec<(Severity, usize)> {
        Severity::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    self.findings.iter().filter(|f| f.severity == *s).count(),
                )
            })
            .collect()
    }

    /// Adds another report's files, findings and notices, keeping the order (most severe
    /// first).
    pub fn merge(&mut self, other: Report) {
        self.files += other.files;
        self.findings.extend(other.findings);
        self.notices.extend(other.notices);
        sort(&mut self.findings);
    }

    /// The most severe finding's severity.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Imports and analyzes one file's contents.
pub fn scan_bytes(file: &str, bytes: &[u8]) -> Vec<Finding> {
    let (inv, mut findings) = import::import(file, bytes);
    findings.extend(rules::analyze(&inv));
    findings
}

/// The files to read for the given paths: files as given; directories recursively, keeping
/// files named `*.json`, `*.jsonl` (Gatehouse audit logs), `*.csv` (credential reports) or
/// without an extension (the AWS managed-policy corpus has none).
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScanError> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| ScanError::Path {
            path: p.clone(),
            source,
        })?;
        if !meta.is_dir() {
            files.push(p.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
            let entry = entry.map_err(|e| ScanError::Path {
                path: e.path().map_or_else(|| p.clone(), Path::to_path_buf),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
            })?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if entry.file_type().is_file()
                && !hidden
                && path.extension().is_none_or(|e| {
                    ["json", "jsonl", "csv"]
                        .iter()
                        .any(|x| e.eq_ignore_ascii_case(x))
                })
            {
                files.push(path.to_path_buf());
            }
        }
    }
    Ok(files)
}

/// Scans files in parallel; `progress` is called once per file done. Credential reports and
/// Gatehouse audit logs are then joined with the authorization-details exports of the same
/// run (GH-HY-003; GH-HY-004 with "now" the log's latest record and the default window).
pub fn scan_files(files: &[PathBuf], progress: &(dyn Fn() + Sync)) -> Report {
    let scanned: Vec<(Option<Inventory>, Vec<Finding>)> = files
        .par_iter()
        .map(|path| {
            let name = path.display().to_string();
            let out = match std::fs::read(path) {
                Ok(bytes) => {
                    let (inv, mut findings) = import::import(&name, &bytes);
                    findings.extend(rules::analyze(&inv));
                    let keep = matches!(
                        inv.format,
                        model::Format::AwsCredentialReport
                            | model::Format::AwsAuthorizationDetails
                            | model::Format::GatehouseAuditLog
                    );
                    (keep.then_some(inv), findings)
                }
                Err(e) => (
                    None,
                    vec![Finding::new(
                        "GH-IN-001",
                        format!("cannot read the file: {e}"),
                        Location::at(&name, "$"),
                    )],
                ),
            };
            progress();
            out
        })
        .collect();
    let kept: Vec<&Inventory> = scanned.iter().filter_map(|(i, _)| i.as_ref()).collect();
    let of = |f: model::Format| -> Vec<&Inventory> {
        kept.iter().copied().filter(|i| i.format == f).collect()
    };
    let (reports, details, logs) = (
        of(model::Format::AwsCredentialReport),
        of(model::Format::AwsAuthorizationDetails),
        of(model::Format::GatehouseAuditLog),
    );
    let mut joined = rules::hygiene::mfa_for_managers(&reports, &details);
    let mut notices = Vec::new();
    if !logs.is_empty() {
        let records: Vec<generate::AuditRecord> =
            logs.iter().flat_map(|l| l.audit.iter().cloned()).collect();
        let now = records
            .iter()
            .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.time).ok())
            .max()
            .map(|t| t.with_timezone(&chrono::Utc));
        for d in &details {
            let (Some(now), Ok(dir)) = (now, access::Directory::new((*d).clone())) else {
                continue;
            };
            if let Ok((window, usage)) =
                usage::audit_usage(&dir, &records, now, usage::DEFAULT_UNUSED_DAYS)
            {
                notices.extend(window.notice());
                joined.extend(usage::unused_findings(&d.file, &dir, &window, &usage));
            }
        }
    }
    let mut findings: Vec<Finding> = scanned.into_iter().flat_map(|(_, f)| f).collect();
    findings.extend(joined);
    sort(&mut findings);
    notices.dedup();
    Report {
        files: files.len(),
        findings,
        notices,
    }
}

/// What the CLI reads from Gatehouse's own store for a scan or a review.
#[derive(Debug, Clone, Default)]
pub struct StoreSnapshot {
    /// The name used in locations (e.g. `gatehouse store (gatehouse-data)`).
    pub name: String,
    /// The store as an authorization-details document.
    pub details: Vec<u8>,
    /// The audit log's records.
    pub audit: Vec<generate::AuditRecord>,
    /// ARNs of users with no MFA device enabled.
    pub users_without_mfa: Vec<String>,
    /// Deployments that carry a deprecation date.
    pub deprecated: Vec<lifecycle::DeployedModel>,
    /// The region in model ARNs.
    pub region: String,
}

/// Scans Gatehouse's own store: every rule that reads authorization details, plus unused
/// permissions from its audit log over the last `days` before `now` (GH-HY-004), users
/// without MFA who may manage (GH-HY-003), and deprecated deployments still invocable
/// (GH-AI-007).
pub fn scan_store(
    s: &StoreSnapshot,
    now: chrono::DateTime<chrono::Utc>,
    days: i64,
) -> Result<Report, access::AccessError> {
    let (inv, mut findings) = import::import(&s.name, &s.details);
    findings.extend(rules::analyze(&inv));
    findings.extend(rules::hygiene::mfa_for_store_users(
        &inv,
        &s.users_without_mfa,
    ));
    let dir = access::Directory::new(inv)?;
    let (window, usage) = usage::audit_usage(&dir, &s.audit, now, days)?;
    findings.extend(usage::unused_findings(&s.name, &dir, &window, &usage));
    let today = now.format("%Y-%m-%d").to_string();
    let reachable = lifecycle::gatehouse_reachable(&dir, &s.deprecated, &s.region, &today);
    findings.extend(lifecycle::gatehouse_findings(&s.name, &reachable));
    sort(&mut findings);
    Ok(Report {
        files: 1,
        findings,
        notices: window.notice().into_iter().collect(),
    })
}

/// Collects and scans paths (see [`collect_files`], [`scan_files`]).
pub fn scan_paths(paths: &[PathBuf], progress: &(dyn Fn() + Sync)) -> Result<Report, ScanError> {
    Ok(scan_files(&collect_files(paths)?, progress))
}

fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(b.rule))
            .then_with(|| a.location.file.cmp(&b.location.file))
            .then_with(|| a.location.json_path.cmp(&b.location.json_path))
            .then_with(|| a.message.cmp(&b.message))
    });
}
