//! AWS Organizations: the tree of accounts and organizational units, and the service control
//! policies attached along it. In an organization every decision about a member account's
//! principals is bounded by the SCPs on the path from the root to the account (each level
//! must allow), and an account of the organization is not "external" to another.
//!
//! The data is what `aws organizations` prints, one file per call, in one directory (the
//! commands are in README.md, "AWS Organizations"):
//!
//! - `describe-organization.json`, `list-accounts.json`, `list-roots.json`;
//! - `ous/PARENT.json` (`list-organizational-units-for-parent --parent-id PARENT`) and
//!   `ous/PARENT.accounts.json` (`list-accounts-for-parent --parent-id PARENT`) for the root
//!   and every OU: the calls do not repeat the parent in their output, so the file name does;
//! - `policies/POLICY.json` (`describe-policy --policy-id POLICY`) and
//!   `policies/POLICY.targets.json` (`list-targets-for-policy --policy-id POLICY`) for every
//!   service control policy.
//!
//! AWS keeps at least one SCP on every root, OU and account, so a level with none in the
//! files is one whose policies were not exported: it is left out (it restricts nothing)
//! rather than read as denying everything, so missing data shows more access, never less.

use gatehouse_policy::{NamedPolicy, PolicyDocument, PolicySet, PolicyType};
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why Organizations data could not be read: the file, and where in it.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    /// A file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A file is not what its `aws organizations` command prints.
    #[error("{file}: {json_path}: {message}")]
    Shape {
        file: String,
        json_path: String,
        message: String,
    },
    /// A service control policy's content is not a policy the engine compiles.
    #[error("{file}: $.Policy.Content: {message}")]
    Policy { file: String, message: String },
    /// An account listed by `list-accounts` is under no root or OU in `ous/`.
    #[error("{dir}: account {account} is not listed under any root or OU (ous/*.accounts.json)")]
    Unplaced { dir: String, account: String },
}

/// An organization: its accounts and, per account, the SCP levels that bound it.
#[derive(Debug, Clone, Default)]
pub struct Organization {
    /// The organization's id (`o-...`).
    pub id: String,
    /// The management account (not bound by SCPs).
    pub management_account: String,
    /// Every account of the organization.
    pub accounts: BTreeSet<String>,
    /// Per member account, the SCP levels from the root down (each must allow).
    levels: FxHashMap<String, Arc<[PolicySet]>>,
}

impl Organization {
    /// The SCP levels over an account (none for the management account and for accounts
    /// outside the organization).
    pub fn guardrails(&self, account: &str) -> Arc<[PolicySet]> {
        self.levels
            .get(account)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Whether the account belongs to the organization.
    pub fn contains(&self, account: &str) -> bool {
        self.accounts.contains(account)
    }
}

/// One `aws organizations` output file, parsed.
struct OrgFile {
    name: String,
    value: Value,
}

impl OrgFile {
    fn read(path: &Path) -> Result<OrgFile, OrgError> {
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| OrgError::Read {
            file: name.clone(),
            source,
        })?;
        let value = serde_json::from_slice(&text).map_err(|e| OrgError::Shape {
            file: name.clone(),
            json_path: "$".into(),
            message: format!("not JSON: {e}"),
        })?;
        Ok(OrgFile { name, value })
    }

    fn shape(&self, json_path: &str, message: &str) -> OrgError {
        OrgError::Shape {
            file: self.name.clone(),
            json_path: json_path.into(),
            message: message.into(),
        }
    }

    /// The string at `$.outer.inner`.
    fn text(&self, outer: &str, inner: &str) -> Result<&str, OrgError> {
        self.value
            .get(outer)
            .and_then(|o| o.get(inner))
            .and_then(Value::as_str)
            .ok_or_else(|| self.shape(&format!("$.{outer}.{inner}"), "missing or not a string"))
    }

    /// The `field` of every entry of the list `$.list`.
    fn ids(&self, list: &str, field: &str) -> Result<Vec<String>, OrgError> {
        let entries = self
            .value
            .get(list)
            .and_then(Value::as_array)
            .ok_or_else(|| self.shape(&format!("$.{list}"), "missing or not a list"))?;
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.get(field)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        self.shape(&format!("$.{list}[{i}].{field}"), "missing or not a string")
                    })
            })
            .collect()
    }
}

/// The files of one kind in `dir`: (the id the name carries, the path), sorted by name.
fn listed(dir: &Path, suffix: &str, not: Option<&str>) -> Result<Vec<(String, PathBuf)>, OrgError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OrgError::Read {
                file: dir.display().to_string(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| OrgError::Read {
                file: dir.display().to_string(),
                source,
            })?
            .path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if not.is_some_and(|n| name.ends_with(n)) {
            continue;
        }
        if let Some(id) = name.strip_suffix(suffix) {
            out.push((id.to_owned(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
}

/// A service control policy's content, compiled as a guardrail.
fn scp(file: &OrgFile) -> Result<Option<(String, NamedPolicy)>, OrgError> {
    if file
        .value
        .pointer("/Policy/PolicySummary/Type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "SERVICE_CONTROL_POLICY")
    {
        // Other policy types (tag, backup, resource control policies) bound nothing here.
        return Ok(None);
    }
    let id = file
        .value
        .pointer("/Policy/PolicySummary/Id")
        .and_then(Value::as_str)
        .ok_or_else(|| file.shape("$.Policy.PolicySummary.Id", "missing or not a string"))?;
    let name = file
        .value
        .pointer("/Policy/PolicySummary/Name")
        .and_then(Value::as_str)
        .unwrap_or(id);
    let content = file.text("Policy", "Content")?;
    let refused = |message: String| OrgError::Policy {
        file: file.name.clone(),
        message,
    };
    let document = PolicyDocument::parse(content).map_err(|e| refused(e.to_string()))?;
    let policy = NamedPolicy::new(name, document);
    PolicySet::new(PolicyType::Guardrail, [policy.clone()]).map_err(|e| refused(e.to_string()))?;
    Ok(Some((id.to_owned(), policy)))
}

/// Reads Organizations data from a directory laid out as the module docs say.
pub fn load(dir: &Path) -> Result<Organization, OrgError> {
    let org = OrgFile::read(&dir.join("describe-organization.json"))?;
    let accounts = OrgFile::read(&dir.join("list-accounts.json"))?.ids("Accounts", "Id")?;
    let roots = OrgFile::read(&dir.join("list-roots.json"))?.ids("Roots", "Id")?;
    // child (OU or account) -> its parent
    let mut parent: FxHashMap<String, String> = FxHashMap::default();
    let ous = dir.join("ous");
    for (id, path) in listed(&ous, ".accounts.json", None)? {
        for a in OrgFile::read(&path)?.ids("Accounts", "Id")? {
            parent.insert(a, id.clone());
        }
    }
    for (id, path) in listed(&ous, ".json", Some(".accounts.json"))? {
        for ou in OrgFile::read(&path)?.ids("OrganizationalUnits", "Id")? {
            parent.insert(ou, id.clone());
        }
    }
    // target (root, OU, account) -> the SCPs attached to it
    let mut attached: FxHashMap<String, Vec<NamedPolicy>> = FxHashMap::default();
    let policies = dir.join("policies");
    for (id, path) in listed(&policies, ".json", Some(".targets.json"))? {
        let Some((_, policy)) = scp(&OrgFile::read(&path)?)? else {
            continue;
        };
        let targets = policies.join(format!("{id}.targets.json"));
        for t in OrgFile::read(&targets)?.ids("Targets", "TargetId")? {
            attached.entry(t).or_default().push(policy.clone());
        }
    }
    let management_account = org.text("Organization", "MasterAccountId")?.to_owned();
    let mut by_path: FxHashMap<Vec<String>, Arc<[PolicySet]>> = FxHashMap::default();
    let mut levels = FxHashMap::default();
    for account in accounts.iter().filter(|a| **a != management_account) {
        let mut path = vec![account.clone()];
        while let Some(p) = parent.get(path.last().map_or("", String::as_str)) {
            if path.contains(p) {
                break;
            }
            path.push(p.clone());
        }
        if !path.last().is_some_and(|top| roots.contains(top)) {
            return Err(OrgError::Unplaced {
                dir: dir.display().to_string(),
                account: account.clone(),
            });
        }
        path.reverse();
        let sets = by_path.entry(path).or_insert_with_key(|path| {
            path.iter()
                .filter_map(|node| attached.get(node))
                // Each policy compiled on its own above, so together they do too.
                .filter_map(|ps| PolicySet::new(PolicyType::Guardrail, ps.iter().cloned()).ok())
                .collect()
        });
        levels.insert(account.clone(), Arc::clone(sets));
    }
    Ok(Organization {
        id: org.text("Organization", "Id")?.to_owned(),
        management_account,
        accounts: accounts.into_iter().collect(),
        levels,
    })
}
