//! Gatehouse's analyzer: reads IAM exports of AWS, Azure and GCP (and single AWS policy
//! documents), normalizes them into one model, and reports what is too broad — with the
//! risks specific to AI services — as findings with a stable rule id, a severity, the exact
//! place, why it matters and how to fix it.
//!
//! ```no_run
//! let settings = gatehouse_analyzer::Settings::default();
//! let report = gatehouse_analyzer::scan_paths(&["exports/".into()], &settings, &gatehouse_analyzer::NoProgress)?;
//! print!("{}", gatehouse_analyzer::output::text(&report, false));
//! # Ok::<(), gatehouse_analyzer::ScanError>(())
//! ```
//!
//! Whether an identity can do something is decided by the policy engine
//! (`gatehouse-policy`), not by string matching: see the `rules` module docs.

pub mod access;
pub mod actions;
pub mod diff;
pub mod export;
pub mod finding;
pub mod generate;
pub mod import;
pub mod lifecycle;
pub mod model;
pub mod org;
pub mod output;
pub mod review;
pub(crate) mod rules;
mod scan;
mod spill;
pub(crate) mod subject;
pub mod usage;

pub use finding::{Finding, Location, RULES, Rule, Severity};
pub use model::Inventory;
pub use scan::{scan_bytes_with, scan_export_report, scan_files};

use std::path::{Path, PathBuf};

/// What a run knows beside its inputs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deprecated Bedrock models: the committed list, plus the account's own
    /// (`--bedrock-models`).
    pub bedrock: lifecycle::BedrockLifecycle,
    /// Days without use after which access counts as unused (audit logs).
    pub unused_days: i64,
    /// AWS Organizations data: the accounts' tree and service control policies, which then
    /// bound every decision, and whose accounts are not "external" to each other.
    pub organization: Option<org::Organization>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            bedrock: lifecycle::BedrockLifecycle::committed(),
            unused_days: usage::DEFAULT_UNUSED_DAYS,
            organization: None,
        }
    }
}

/// Told how far a long run has come (the CLI draws a progress bar from it).
pub trait Progress: Sync {
    /// More work is known: `n` more units (files, principals).
    fn add_total(&self, n: u64);
    /// `n` units are done.
    fn advance(&self, n: u64);
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn add_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

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

/// Imports and analyzes one file's contents, with the default settings.
pub fn scan_bytes(file: &str, bytes: &[u8]) -> Vec<Finding> {
    scan_bytes_with(file, bytes, &Settings::default())
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
    settings: &Settings,
) -> Result<Report, access::AccessError> {
    let export = export::AwsExport::from_bytes(&s.name, &s.details)?
        .ok_or_else(|| access::not_details(&s.name, &s.details))?;
    let joins = scan::Joins {
        audit: Some(usage::AuditIndex::new(&s.audit, now, days)),
        store_without_mfa: Some(s.users_without_mfa.iter().map(String::as_str).collect()),
        ..scan::Joins::default()
    };
    let mut a = scan::scan_export(&export, settings, &joins, &NoProgress)?;
    a.findings.extend(rules::paths::check(a.nodes));
    let today = now.format("%Y-%m-%d").to_string();
    let targets = lifecycle::gatehouse_targets(&s.deprecated, &s.region, &today);
    let reach = review::reach(&export, settings, &targets, lifecycle::GATEHOUSE_INVOKE)?;
    let reachable = reach.models(targets, lifecycle::GATEHOUSE_INVOKE, true);
    a.findings
        .extend(lifecycle::gatehouse_findings(&s.name, &reachable));
    let notices = joins
        .audit
        .iter()
        .filter_map(|j| j.window.notice())
        .collect();
    Ok(scan::finish(1, a.findings, notices))
}

/// Collects and scans paths (see [`collect_files`], [`scan_files`]).
pub fn scan_paths(
    paths: &[PathBuf],
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<Report, ScanError> {
    Ok(scan_files(&collect_files(paths)?, settings, progress))
}

pub(crate) fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(b.rule))
            .then_with(|| a.location.file.cmp(&b.location.file))
            .then_with(|| a.location.json_path.cmp(&b.location.json_path))
            .then_with(|| a.message.cmp(&b.message))
    });
}
