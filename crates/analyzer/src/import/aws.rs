//! AWS: `get-account-authorization-details` (users, groups, roles with trust policies,
//! managed policies at their default version, inline policies, permissions boundaries) and
//! single policy documents (plain or `get-policy-version` output).

use super::get;
use crate::finding::{Finding, Location};
use crate::model::Format;
use crate::model::{
    AwsPolicy, AwsPrincipal, CredentialRow, Inventory, KeyRow, PolicyKind, PrincipalType,
};
use gatehouse_policy::{NamedPolicy, PolicySet, PolicyType, parse_value};
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::sync::Arc;

/// A single policy document; its name is the file stem.
pub(super) fn single_policy(v: &Value, inv: &mut Inventory, problems: &mut Vec<Finding>) {
    let (doc, path) = if let Some(d) = get(v, "PolicyVersion").and_then(|p| get(p, "Document")) {
        (d, "$.PolicyVersion.Document")
    } else if let Some(d) = get(v, "PolicyDocument") {
        (d, "$.PolicyDocument")
    } else {
        (v, "$")
    };
    let name = std::path::Path::new(&inv.file)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_owned())
        .unwrap_or_else(|| inv.file.clone());
    let source = Source {
        file: &inv.file,
        path: path.into(),
        name,
    };
    if let Some(p) = policy(problems, doc, source, None, PolicyKind::Standalone, None) {
        inv.aws_policies.push(Arc::new(p));
    }
}

/// Where a policy document was read.
struct Source<'a> {
    file: &'a str,
    path: String,
    name: String,
}

/// Parses a policy document and checks that the engine compiles it; `None` (and a finding)
/// if it is invalid.
fn policy(
    problems: &mut Vec<Finding>,
    doc: &Value,
    source: Source<'_>,
    arn: Option<String>,
    kind: PolicyKind,
    owner: Option<String>,
) -> Option<AwsPolicy> {
    let Source { file, path, name } = source;
    // The IAM API returns documents URL-encoded; the CLI decodes them. Accept both.
    let decoded;
    let doc = match doc {
        Value::String(s) => {
            decoded = serde_json::from_str::<Value>(s)
                .or_else(|_| serde_json::from_str::<Value>(&percent_decode(s)))
                .unwrap_or(Value::Null);
            &decoded
        }
        other => other,
    };
    let parsed = parse_value(doc);
    let Some(document) = parsed.document else {
        let errors: Vec<String> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        problems.push(Finding::new(
            "GH-IN-003",
            format!("policy `{name}` is invalid: {}", errors.join("; ")),
            Location {
                policy: Some(name),
                entity: owner,
                ..Location::at(file, path)
            },
        ));
        return None;
    };
    let policy_type = if kind == PolicyKind::Trust {
        PolicyType::Resource
    } else {
        PolicyType::Identity
    };
    let compile_error = PolicySet::new(
        policy_type,
        [NamedPolicy::new(name.as_str(), document.clone())],
    )
    .err()
    .map(|e| format!("{}: {}", e.path, e.message));
    Some(AwsPolicy {
        single_statement: get(doc, "Statement").is_some_and(Value::is_object),
        name,
        arn,
        kind,
        owner,
        path,
        document,
        compile_error,
    })
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A user, group or role as its export entry gives it, before the managed policies and
/// groups it names are resolved (they may come later in the file, or from another part of
/// a streamed export).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The principal; `policies`, `boundary` and `trust` are filled by [`Assembly::add`].
    pub principal: AwsPrincipal,
    /// Its inline policies.
    pub inline: Vec<AwsPolicy>,
    /// A role's trust policy.
    pub trust: Option<AwsPolicy>,
    /// Attached managed policies: ARN, name and JSON path of the attachment.
    pub attached: Vec<(String, String, String)>,
    /// A user's groups, by name.
    pub groups: Vec<String>,
    /// The permissions boundary's ARN.
    pub boundary: Option<String>,
}

/// Which principals' names repeat across the accounts of an export: their labels name the
/// account, so that `role admin` of one account is not mistaken for another's.
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    first: FxHashMap<(PrincipalType, String), String>,
    repeated: rustc_hash::FxHashSet<(PrincipalType, String)>,
}

impl Names {
    /// Notes a principal (by kind, name and ARN).
    pub fn note(&mut self, kind: PrincipalType, name: &str, arn: &str) {
        let account = arn.split(':').nth(4).unwrap_or("");
        match self.first.get(&(kind, name.to_owned())) {
            Some(a) if a != account => {
                self.repeated.insert((kind, name.to_owned()));
            }
            Some(_) => {}
            None => {
                self.first
                    .insert((kind, name.to_owned()), account.to_owned());
            }
        }
    }

    /// Whether a principal of this kind and name exists in two accounts.
    pub fn repeated(&self, kind: PrincipalType, name: &str) -> bool {
        !self.repeated.is_empty() && self.repeated.contains(&(kind, name.to_owned()))
    }
}

/// The key of a principal's name in its export entry.
pub(crate) fn name_key(kind: PrincipalType) -> &'static str {
    match kind {
        PrincipalType::Group => "GroupName",
        PrincipalType::User => "UserName",
        PrincipalType::Role => "RoleName",
    }
}

/// The lists of an authorization-details export, and the kind of principal each holds.
pub(crate) const LISTS: [(&str, PrincipalType); 3] = [
    ("GroupDetailList", PrincipalType::Group),
    ("UserDetailList", PrincipalType::User),
    ("RoleDetailList", PrincipalType::Role),
];

/// The managed policy at `$.Policies[index]`: its default version, or `None` (and a finding
/// when the document is invalid).
pub(crate) fn managed_policy(
    file: &str,
    index: usize,
    p: &Value,
    problems: &mut Vec<Finding>,
) -> Option<AwsPolicy> {
    let default = str_of(p, "DefaultVersionId");
    let versions = list(p, "PolicyVersionList");
    let (j, pv) = versions.iter().enumerate().find(|(_, pv)| {
        get(pv, "IsDefaultVersion").and_then(Value::as_bool) == Some(true)
            || (!default.is_empty() && str_of(pv, "VersionId") == default)
    })?;
    let doc = get(pv, "Document")?;
    let source = Source {
        file,
        path: format!("$.Policies[{index}].PolicyVersionList[{j}].Document"),
        name: str_of(p, "PolicyName"),
    };
    policy(
        problems,
        doc,
        source,
        Some(str_of(p, "Arn")),
        PolicyKind::Managed,
        None,
    )
}

/// The user, group or role at `$.LIST[index]`.
pub(crate) fn entry(
    file: &str,
    kind: PrincipalType,
    index: usize,
    v: &Value,
    names: &Names,
    problems: &mut Vec<Finding>,
) -> Entry {
    let (list_key, name_key, inline_key) = match kind {
        PrincipalType::Group => ("GroupDetailList", "GroupName", "GroupPolicyList"),
        PrincipalType::User => ("UserDetailList", "UserName", "UserPolicyList"),
        PrincipalType::Role => ("RoleDetailList", "RoleName", "RolePolicyList"),
    };
    let name = str_of(v, name_key);
    let arn = str_of(v, "Arn");
    let path = format!("$.{list_key}[{index}]");
    let account_in_label = names.repeated(kind, &name);
    let owner = crate::model::label(
        kind,
        &name,
        arn.split(':').nth(4).unwrap_or(""),
        account_in_label,
    );
    let inline = list(v, inline_key)
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let doc = get(p, "PolicyDocument")?;
            let source = Source {
                file,
                path: format!("{path}.{inline_key}[{i}].PolicyDocument"),
                name: str_of(p, "PolicyName"),
            };
            policy(
                problems,
                doc,
                source,
                None,
                PolicyKind::Inline,
                Some(owner.clone()),
            )
        })
        .collect();
    let trust = match kind {
        PrincipalType::Role => get(v, "AssumeRolePolicyDocument").and_then(|doc| {
            let source = Source {
                file,
                path: format!("{path}.AssumeRolePolicyDocument"),
                name: format!("{name} trust policy"),
            };
            policy(
                problems,
                doc,
                source,
                None,
                PolicyKind::Trust,
                Some(owner.clone()),
            )
        }),
        _ => None,
    };
    let attached = list(v, "AttachedManagedPolicies")
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                str_of(p, "PolicyArn"),
                str_of(p, "PolicyName"),
                format!("{path}.AttachedManagedPolicies[{i}]"),
            )
        })
        .collect();
    let last_used = (kind == PrincipalType::Role)
        .then(|| get(v, "RoleLastUsed"))
        .flatten();
    Entry {
        principal: AwsPrincipal {
            kind,
            name,
            arn,
            path,
            policies: Vec::new(),
            boundary: None,
            trust: None,
            created: time_of(v, "CreateDate"),
            last_used: last_used.and_then(|l| time_of(l, "LastUsedDate")),
            usage_tracked: last_used.is_some(),
            account_in_label,
        },
        inline,
        trust,
        attached,
        groups: match kind {
            PrincipalType::User => super::strings(get(v, "GroupList")),
            _ => Vec::new(),
        },
        boundary: get(v, "PermissionsBoundary")
            .map(|b| str_of(b, "PermissionsBoundaryArn"))
            .filter(|a| !a.is_empty()),
    }
}

/// What principals share across an export: its managed policies by ARN, and each group's
/// policies (inline and attached) by group name.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub managed: Vec<Arc<AwsPolicy>>,
    pub by_arn: FxHashMap<String, usize>,
    pub groups: FxHashMap<String, Vec<Arc<AwsPolicy>>>,
}

impl Tables {
    /// Adds a managed policy (the first of an ARN wins, as a lookup in the file would).
    pub fn add_managed(&mut self, p: AwsPolicy) {
        let arn = p.arn.clone().unwrap_or_default();
        self.by_arn.entry(arn).or_insert(self.managed.len());
        self.managed.push(Arc::new(p));
    }

    fn managed(&self, arn: &str) -> Option<&Arc<AwsPolicy>> {
        self.by_arn.get(arn).and_then(|i| self.managed.get(*i))
    }
}

/// Builds an [`Inventory`] from entries: places each policy once (by identity, so a managed
/// policy attached to many principals is one entry) and resolves attachments, groups and
/// boundaries against the [`Tables`].
pub(crate) struct Assembly {
    inv: Inventory,
    /// Policy (by address) to its index in `inv.aws_policies`.
    placed: FxHashMap<usize, usize>,
    /// Whether each placed policy belongs to this inventory (else it is shared).
    own: Vec<bool>,
    /// Whether policies from the tables are this inventory's own (the part of a stream
    /// that reports on them, or a whole export read at once).
    tables_own: bool,
}

impl Assembly {
    pub fn new(file: &str, tables_own: bool) -> Assembly {
        Assembly {
            inv: Inventory {
                file: file.to_owned(),
                format: Format::AwsAuthorizationDetails,
                ..Inventory::default()
            },
            placed: FxHashMap::default(),
            own: Vec::new(),
            tables_own,
        }
    }

    fn place(&mut self, p: &Arc<AwsPolicy>, own: bool) -> usize {
        let key = Arc::as_ptr(p) as usize;
        if let Some(i) = self.placed.get(&key) {
            return *i;
        }
        let i = self.inv.aws_policies.len();
        self.inv.aws_policies.push(Arc::clone(p));
        self.own.push(own);
        self.placed.insert(key, i);
        i
    }

    /// Places every managed policy of the tables (a whole export reports on each, attached
    /// or not).
    pub fn add_all_managed(&mut self, tables: &Tables) {
        let own = self.tables_own;
        for p in &tables.managed {
            self.place(p, own);
        }
    }

    /// Adds a principal with its policies; returns the policies a group passes to its
    /// members.
    pub fn add(
        &mut self,
        tables: &Tables,
        e: Entry,
        problems: &mut Vec<Finding>,
    ) -> Vec<Arc<AwsPolicy>> {
        let mut p = e.principal;
        let mut passed = Vec::new();
        for pol in e.inline {
            let pol = Arc::new(pol);
            p.policies.push(self.place(&pol, true));
            passed.push(pol);
        }
        for (arn, name, path) in &e.attached {
            match tables.managed(arn) {
                Some(m) => {
                    p.policies.push(self.place(m, self.tables_own));
                    passed.push(Arc::clone(m));
                }
                None => problems.push(Finding::new(
                    "GH-IN-001",
                    format!("managed policy {arn} attached to {} is not in the export's `Policies`; its permissions were not analyzed", p.label()),
                    Location {
                        entity: Some(p.label()),
                        policy: Some(name.clone()),
                        ..Location::at(&self.inv.file, path.clone())
                    },
                )),
            }
        }
        for g in &e.groups {
            for gp in tables.groups.get(g).into_iter().flatten() {
                p.policies.push(self.place(gp, self.tables_own));
            }
        }
        p.boundary = e
            .boundary
            .as_deref()
            .and_then(|arn| tables.managed(arn))
            .map(|m| self.place(m, self.tables_own));
        p.trust = e.trust.map(|t| self.place(&Arc::new(t), true));
        self.inv.aws_principals.push(p);
        passed
    }

    /// The inventory, its own policies first and the shared ones after them.
    pub fn finish(mut self) -> Inventory {
        let order: Vec<usize> = (0..self.own.len())
            .filter(|i| self.own[*i])
            .chain((0..self.own.len()).filter(|i| !self.own[*i]))
            .collect();
        let mut new_index = vec![0; order.len()];
        for (new, old) in order.iter().enumerate() {
            new_index[*old] = new;
        }
        let old = std::mem::take(&mut self.inv.aws_policies);
        let mut slots: Vec<Option<Arc<AwsPolicy>>> = old.into_iter().map(Some).collect();
        self.inv.aws_policies = order.iter().filter_map(|i| slots[*i].take()).collect();
        self.inv.shared_policies = self.own.iter().filter(|o| !**o).count();
        for p in &mut self.inv.aws_principals {
            for i in p
                .policies
                .iter_mut()
                .chain(&mut p.boundary)
                .chain(&mut p.trust)
            {
                *i = new_index[*i];
            }
        }
        self.inv
    }
}

/// `get-account-authorization-details` output, read whole.
pub(super) fn authorization_details(v: &Value, inv: &mut Inventory, problems: &mut Vec<Finding>) {
    let file = inv.file.clone();
    let mut tables = Tables::default();
    for (i, p) in list(v, "Policies").iter().enumerate() {
        if let Some(m) = managed_policy(&file, i, p, problems) {
            tables.add_managed(m);
        }
    }
    let mut names = Names::default();
    for (key, kind) in LISTS {
        for e in list(v, key) {
            names.note(kind, &str_of(e, name_key(kind)), &str_of(e, "Arn"));
        }
    }
    let groups: Vec<Entry> = list(v, "GroupDetailList")
        .iter()
        .enumerate()
        .map(|(i, g)| entry(&file, PrincipalType::Group, i, g, &names, problems))
        .collect();
    let mut assembly = Assembly::new(&file, true);
    assembly.add_all_managed(&tables);
    for g in groups {
        let name = g.principal.name.clone();
        let passed = assembly.add(&tables, g, problems);
        tables.groups.insert(name, passed);
    }
    // Users come after groups: their groups' policies must be known.
    for (key, kind) in &LISTS[1..] {
        for (i, e) in list(v, key).iter().enumerate() {
            let e = entry(&file, *kind, i, e, &names, problems);
            assembly.add(&tables, e, problems);
        }
    }
    let built = assembly.finish();
    inv.aws_policies = built.aws_policies;
    inv.aws_principals = built.aws_principals;
}

/// The date under `key`.
pub(crate) fn time_of(v: &Value, key: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    parse_time(get(v, key)?.as_str()?)
}

/// A date as the IAM API (`2019-08-16T17:27:59Z`) or the CLI's JSON
/// (`2019-08-16 17:27:59+00:00`) writes it.
pub(crate) fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z"))
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .ok()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    get(v, key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn str_of(v: &Value, key: &str) -> String {
    get(v, key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// An `aws iam get-credential-report` CSV (the `Content` field, base64-decoded). Columns are
/// found by name, so AWS adding columns does not break the import.
pub(super) fn credential_report(bytes: &[u8], inv: &mut Inventory, problems: &mut Vec<Finding>) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        problems.push(Finding::new(
            "GH-IN-001",
            "credential report is not UTF-8",
            Location::at(&inv.file, "line 1"),
        ));
        return;
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let time =
        |v: Option<&str>| v.and_then(|v| chrono::DateTime::parse_from_rfc3339(v.trim()).ok());
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |name: &str| col(name).and_then(|c| cells.get(c).copied());
        let yes = |name: &str| cell(name).is_some_and(|v| v.trim() == "true");
        if cells.len() != header.len() {
            problems.push(Finding::new(
                "GH-IN-001",
                format!(
                    "credential report row has {} cells, the header {}",
                    cells.len(),
                    header.len()
                ),
                Location::at(&inv.file, format!("line {}", i + 2)),
            ));
            continue;
        }
        let keys = [1u8, 2]
            .into_iter()
            .map(|n| KeyRow {
                slot: n,
                active: yes(&format!("access_key_{n}_active")),
                last_rotated: time(cell(&format!("access_key_{n}_last_rotated"))),
                last_used: time(cell(&format!("access_key_{n}_last_used_date"))),
            })
            .collect();
        inv.aws_credentials.push(CredentialRow {
            user: cell("user").unwrap_or("").to_owned(),
            arn: cell("arn").unwrap_or("").to_owned(),
            line: i + 2,
            created: time(cell("user_creation_time")),
            password_enabled: yes("password_enabled"),
            password_last_used: time(cell("password_last_used")),
            mfa_active: yes("mfa_active"),
            keys,
        });
    }
}
