//! Semantic policy diff: what a new version of a policy allows that the old one did not (and
//! the reverse), as actions × resource patterns × conditions — the offline equivalent of
//! Access Analyzer's `CheckNoNewAccess`.
//!
//! Why it is exact rather than textual: every pattern and condition in the two versions
//! splits the request space into cells whose members the engine must treat alike (an action
//! matches the same action patterns, a resource the same resource patterns, a context makes
//! the same condition entries true). The diff builds a witness request for every cell it can
//! reach — catalog actions and one invented action per action pattern, instances of every
//! resource pattern, boundary values of every condition (inside/outside a CIDR, ±1 around a
//! number, before/after a date, absent) — asks the engine for both versions' decisions, and
//! describes the cells whose answers differ. The property test in `tests/diff.rs` holds it
//! to that: a request is reported as newly allowed exactly when the engine denies it under
//! the old version and allows it under the new one.
//!
//! Resource-based policies and role trust policies (every statement names a `Principal` or
//! `NotPrincipal`) add one dimension: the principal. Each `Principal` entry of either version
//! is placed by two probes of the engine (a policy naming only it: does a principal match at
//! all — its own ARN, its role, its account, `*`? a `NotPrincipal` naming only it: is the
//! principal exempt, i.e. named directly?), and conditions on the keys the engine derives
//! from the principal (`aws:PrincipalAccount`, `aws:PrincipalArn`, `aws:username`) are read
//! from the principal rather than varied freely, so every answer is about a request that can
//! happen. "Allowed" for such a policy is what it grants on its own
//! ([`PolicySet::allows`]): the question Access Analyzer's `CheckNoNewAccess` asks of a
//! trust or resource policy.
//!
//! Limits, reported rather than hidden: policy variables in resources are matched as the
//! fixed probing principal would resolve them, and when the condition values multiply
//! beyond [`MAX_CONTEXTS`] combinations only the first ones are explored (`complete` is
//! then false). Principals are explored through witnesses (each named principal, members
//! of each named account — users and roles of every name mentioned, their sessions, the
//! root — and strangers); a principal related to the entries in a way none of them is
//! (say, a wildcard ARN pattern in `Principal` that only an unusual name matches) falls
//! outside every reported cell rather than into a wrong one.

use crate::actions::AwsActions;
use gatehouse_policy::model::{Principal, PrincipalKind, Statement};
use gatehouse_policy::{
    Arn, Catalog, ContextValue, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType,
    Request, WildcardPattern,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};

/// Context combinations explored at most.
pub const MAX_CONTEXTS: usize = 4096;

/// The principal the probes are made as (identity policies do not depend on it unless they
/// use policy variables).
pub const PROBE_PRINCIPAL: &str = "arn:aws:iam::111122223333:user/policy-diff";

/// Why a diff could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// One of the versions does not compile.
    #[error("{which}: {source}")]
    Compile {
        /// `old` or `new`.
        which: &'static str,
        /// The engine's error.
        #[source]
        source: gatehouse_policy::CompileError,
    },
    /// A document mixes statements with and without `Principal`, or the documents are not
    /// all of one kind (identity-based, or resource-based/trust).
    #[error("{policy}: {path}: {message}")]
    Kind {
        /// The policy's name (the file, on the command line).
        policy: String,
        /// JSON path of the statement at fault.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Why a document is neither clearly identity-based nor clearly resource-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KindError {
    /// JSON path of the statement at fault.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn principal_path(st: &Statement, index: usize) -> String {
    match &st.principal {
        Some(p) if p.negated => format!("$.Statement[{index}].NotPrincipal"),
        Some(_) => format!("$.Statement[{index}].Principal"),
        None => format!("$.Statement[{index}]"),
    }
}

/// The kind of a policy document: resource-based (every statement names a `Principal` or
/// `NotPrincipal`: a resource policy or a role's trust policy), identity-based (none does),
/// or `None` for a document without statements. AWS refuses both mixtures (a principal in
/// an identity policy, a resource policy statement naming no one), and so does the diff:
/// guessing would compare the wrong question.
pub fn policy_kind(doc: &PolicyDocument) -> Result<Option<PolicyType>, KindError> {
    let Some(first) = doc.statements.first() else {
        return Ok(None);
    };
    let resource = first.principal.is_some();
    for (i, st) in doc.statements.iter().enumerate().skip(1) {
        if st.principal.is_some() != resource {
            let message = if resource {
                "this statement names no Principal, but $.Statement[0] does: in a resource-based \
                 or trust policy every statement must name its principals"
            } else {
                "this statement names a principal, but $.Statement[0] does not: an identity-based \
                 policy cannot name principals, and a resource-based one must in every statement"
            };
            return Err(KindError {
                path: principal_path(st, i),
                message: message.into(),
            });
        }
    }
    Ok(Some(if resource {
        PolicyType::Resource
    } else {
        PolicyType::Identity
    }))
}

fn kind_name(kind: PolicyType) -> &'static str {
    match kind {
        PolicyType::Resource => "a resource-based or trust policy",
        _ => "an identity-based policy",
    }
}

/// The one kind every document has (identity-based when none has a statement).
fn common_kind(old: &[NamedPolicy], new: &[NamedPolicy]) -> Result<PolicyType, DiffError> {
    let mut seen: Option<(PolicyType, &str)> = None;
    for p in old.iter().chain(new) {
        let kind = policy_kind(&p.document).map_err(|e| DiffError::Kind {
            policy: p.name.clone(),
            path: e.path,
            message: e.message,
        })?;
        match (kind, seen) {
            (None, _) => {}
            (Some(k), None) => seen = Some((k, &p.name)),
            (Some(k), Some((first, first_name))) if k != first => {
                let path = p
                    .document
                    .statements
                    .first()
                    .map_or_else(|| "$".to_owned(), |st| principal_path(st, 0));
                let why = if k == PolicyType::Resource {
                    "it names a Principal"
                } else {
                    "it names no Principal"
                };
                return Err(DiffError::Kind {
                    policy: p.name.clone(),
                    path,
                    message: format!(
                        "this is {} ({why}) but {first_name} is {}: policy diff compares two \
                         versions of one kind of policy",
                        kind_name(k),
                        kind_name(first)
                    ),
                });
            }
            (Some(_), Some(_)) => {}
        }
    }
    Ok(seen.map_or(PolicyType::Identity, |(k, _)| k))
}

/// One condition entry (operator, key, values) as it appears in either version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Atom {
    /// The operator as written, e.g. `IpAddress` or `ForAnyValue:StringLike`.
    pub operator: String,
    /// The context key.
    pub key: String,
    /// The values, as text.
    pub values: Vec<String>,
}

/// A condition entry that must hold (or must not) for a change to apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Literal {
    /// The condition entry.
    #[serde(flatten)]
    pub atom: Atom,
    /// True when the entry must hold, false when it must not.
    pub holds: bool,
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.atom;
        let values = if a.values.len() == 1 {
            a.values[0].clone()
        } else {
            format!("[{}]", a.values.join(", "))
        };
        let base = a
            .operator
            .trim_start_matches("ForAnyValue:")
            .trim_start_matches("ForAllValues:");
        let plain = !a.operator.contains(':') && !base.ends_with("IfExists");
        let phrase = match (base, self.holds) {
            ("IpAddress", true) | ("NotIpAddress", false) if plain => {
                Some(format!("{} is in {values}", a.key))
            }
            ("IpAddress", false) | ("NotIpAddress", true) if plain => {
                Some(format!("{} is outside {values} (or absent)", a.key))
            }
            ("StringEquals" | "StringLike" | "ArnEquals" | "ArnLike", true) if plain => {
                Some(format!("{} matches {values}", a.key))
            }
            ("StringEquals" | "StringLike" | "ArnEquals" | "ArnLike", false) if plain => {
                Some(format!("{} does not match {values} (or is absent)", a.key))
            }
            ("Bool", true) if plain => Some(format!("{} is {values}", a.key)),
            ("Bool", false) if plain => Some(format!("{} is not {values} (or is absent)", a.key)),
            ("Null", true) if plain => Some(format!(
                "{} is {}",
                a.key,
                if values == "true" {
                    "absent"
                } else {
                    "present"
                }
            )),
            ("Null", false) if plain => Some(format!(
                "{} is {}",
                a.key,
                if values == "true" {
                    "present"
                } else {
                    "absent"
                }
            )),
            _ => None,
        };
        match phrase {
            Some(p) => f.write_str(&p),
            None if self.holds => write!(f, "{}({}, {values}) holds", a.operator, a.key),
            None => write!(f, "{}({}, {values}) does not hold", a.operator, a.key),
        }
    }
}

/// A set of resources: those matching every pattern in `matching` and none in `excluding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceCell {
    /// Resource patterns (of either version) the resources match.
    pub matching: Vec<String>,
    /// More specific patterns they do not match.
    pub excluding: Vec<String>,
    /// One such resource.
    pub example: String,
}

impl fmt::Display for ResourceCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matching.is_empty() {
            write!(f, "resources such as {}", self.example)?;
        } else {
            f.write_str(&self.matching.join(" ∩ "))?;
        }
        if !self.excluding.is_empty() {
            write!(f, " except {}", self.excluding.join(", "))?;
        }
        Ok(())
    }
}

/// A set of principals (resource-based and trust policies): those that match every
/// `Principal` entry in `matching` and none in `excluding`, as the engine matches them (an
/// account id or `arn:...:root` matches every principal of the account; a role matches its
/// sessions; `*` and `AWS:*` match everyone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalCell {
    /// Entries of either version that match, as `*` or `TYPE:ID` (`AWS:123456789012`,
    /// `Federated:token.actions.githubusercontent.com`, `Service:...`, `CanonicalUser:...`).
    pub matching: Vec<String>,
    /// Entries they do not match (named when the match is through a wildcard, or none).
    pub excluding: Vec<String>,
    /// One such principal.
    pub example: String,
}

impl fmt::Display for PrincipalCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matching.is_empty() {
            f.write_str("any principal")?;
        } else {
            write!(f, "principal {}", self.matching.join(" and "))?;
        }
        if !self.excluding.is_empty() {
            write!(f, " except {}", self.excluding.join(", "))?;
        }
        write!(f, " (such as {})", self.example)
    }
}

/// One difference: these actions on these resources under these conditions.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Catalog actions affected (canonical spelling).
    pub actions: Vec<String>,
    /// Actions outside the catalog (including ones a service adds later), described by the
    /// patterns they match.
    pub other_actions: Vec<String>,
    /// The principals (resource-based and trust policies only; empty for identity policies,
    /// whose principal is whoever holds them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<PrincipalCell>,
    /// The resources.
    pub resource: ResourceCell,
    /// When: any of these conjunctions (an empty conjunction: always).
    pub when: Vec<Vec<Literal>>,
    /// A concrete request in this change.
    pub example: Request,
    #[serde(skip)]
    action_sigs: Vec<Vec<bool>>,
    #[serde(skip)]
    resource_sig: Vec<bool>,
    #[serde(skip)]
    principal_sigs: Vec<Vec<bool>>,
}

impl Change {
    /// The actions as one line (long lists shortened).
    pub fn actions_label(&self) -> String {
        let mut parts: Vec<String> = self.actions.iter().take(6).cloned().collect();
        if self.actions.len() > 6 {
            parts.push(format!("… {} more", self.actions.len() - 6));
        }
        parts.extend(self.other_actions.iter().cloned());
        parts.join(", ")
    }

    /// The principals as one line (empty for identity policies).
    pub fn principals_label(&self) -> String {
        self.principals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The condition as one line.
    pub fn when_label(&self) -> String {
        if self.when.iter().any(Vec::is_empty) {
            return "always".into();
        }
        self.when
            .iter()
            .map(|c| {
                c.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect::<Vec<_>>()
            .join("; or when ")
    }
}

/// The difference between two versions.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff {
    /// Allowed by the new version, not by the old.
    pub newly_allowed: Vec<Change>,
    /// Allowed by the old version, not by the new.
    pub no_longer_allowed: Vec<Change>,
    /// The kind of policies compared (`identity` or `resource`, which includes trust
    /// policies).
    pub kind: PolicyType,
    /// False when the condition space was too large to explore whole.
    pub complete: bool,
    /// Requests decided (twice each: old and new).
    pub probes: usize,
    #[serde(skip)]
    space: Space,
}

impl PolicyDiff {
    /// True when the new version allows a request the old one denied.
    pub fn grants_new_access(&self) -> bool {
        !self.newly_allowed.is_empty()
    }

    /// Whether this request falls in a reported newly-allowed change.
    pub fn newly_allows(&self, request: &Request) -> bool {
        self.space.covers(&self.newly_allowed, request)
    }

    /// Whether this request falls in a reported no-longer-allowed change.
    pub fn no_longer_allows(&self, request: &Request) -> bool {
        self.space.covers(&self.no_longer_allowed, request)
    }

    /// Human-readable lines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.newly_allowed.is_empty() && self.no_longer_allowed.is_empty() {
            out.push_str("no difference in what is allowed\n");
        }
        for (label, list) in [
            ("newly allows", &self.newly_allowed),
            ("no longer allows", &self.no_longer_allowed),
        ] {
            for c in list {
                let _ = write!(out, "{label} {}", c.actions_label());
                if !c.principals.is_empty() {
                    let _ = write!(out, " for {}", c.principals_label());
                }
                // A trust policy usually names no resource: the role it is attached to.
                if !self.space.resource_patterns.is_empty() || c.principals.is_empty() {
                    let _ = write!(out, " on {}", c.resource);
                }
                let _ = writeln!(out, " when {}", c.when_label());
            }
        }
        if !self.complete {
            let _ = writeln!(
                out,
                "note: the conditions allow more than {MAX_CONTEXTS} combinations; only the first were explored"
            );
        }
        out
    }
}

/// Compares two versions of a policy (each one or more documents), all identity-based or
/// all resource-based (resource policies and role trust policies: the principal becomes a
/// dimension of the answer). Mixed kinds are [`DiffError::Kind`].
pub fn diff(old: &[NamedPolicy], new: &[NamedPolicy]) -> Result<PolicyDiff, DiffError> {
    let kind = common_kind(old, new)?;
    let old_set =
        PolicySet::new(kind, old.iter().cloned()).map_err(|source| DiffError::Compile {
            which: "old",
            source,
        })?;
    let new_set =
        PolicySet::new(kind, new.iter().cloned()).map_err(|source| DiffError::Compile {
            which: "new",
            source,
        })?;
    let statements: Vec<&Statement> = old
        .iter()
        .chain(new)
        .flat_map(|p| &p.document.statements)
        .collect();
    Ok(diff_with(
        kind,
        |r| old_set.allows(r),
        |r| new_set.allows(r),
        &statements,
    ))
}

/// Compares what two sets of policies allow (any policy types: a boundary or a guardrail
/// narrows what the identity policies grant). `statements` are every statement of both
/// sides: their patterns and conditions draw the cells.
pub fn diff_evaluations(
    old_eval: &Evaluation<'_>,
    new_eval: &Evaluation<'_>,
    statements: &[&Statement],
) -> PolicyDiff {
    diff_with(
        PolicyType::Identity,
        |r| old_eval.decide(r).is_allow(),
        |r| new_eval.decide(r).is_allow(),
        statements,
    )
}

/// (action class, resource cell, principal cell) -> that principal's context cells.
type Cells = BTreeMap<(usize, usize, usize), BTreeSet<usize>>;

fn diff_with(
    kind: PolicyType,
    old_allows: impl Fn(&Request) -> bool,
    new_allows: impl Fn(&Request) -> bool,
    statements: &[&Statement],
) -> PolicyDiff {
    let space = Space::build(statements, kind == PolicyType::Resource);
    let mut added = Cells::new();
    let mut removed = Cells::new();
    let mut probes = 0;
    for (ai, class) in space.classes.iter().enumerate() {
        for (ri, rcell) in space.resources.iter().enumerate() {
            for (pi, pcell) in space.principals.iter().enumerate() {
                for (ci, ctx) in space.contexts[pi].iter().enumerate() {
                    let req = space.request(
                        &pcell.witness,
                        &class.representative,
                        &rcell.witness,
                        &ctx.context,
                    );
                    probes += 1;
                    let was = old_allows(&req);
                    let is = new_allows(&req);
                    if is && !was {
                        added.entry((ai, ri, pi)).or_default().insert(ci);
                    } else if was && !is {
                        removed.entry((ai, ri, pi)).or_default().insert(ci);
                    }
                }
            }
        }
    }
    PolicyDiff {
        newly_allowed: space.changes(&added),
        no_longer_allowed: space.changes(&removed),
        kind,
        complete: space.complete,
        probes,
        space,
    }
}

/// Convenience: diff two single documents.
pub fn diff_documents(old: &PolicyDocument, new: &PolicyDocument) -> Result<PolicyDiff, DiffError> {
    diff(
        &[NamedPolicy::new("old", old.clone())],
        &[NamedPolicy::new("new", new.clone())],
    )
}

#[derive(Debug, Clone, Default)]
struct ActionClass {
    sig: Vec<bool>,
    catalog: Vec<String>,
    invented: bool,
    representative: String,
}

#[derive(Debug, Clone, Default)]
struct ResourceCellInner {
    sig: Vec<bool>,
    witness: String,
}

#[derive(Debug, Clone, Default)]
struct PrincipalCellInner {
    sig: Vec<bool>,
    witness: String,
}

/// One entry of a `Principal` element in either version, with the two probes that place a
/// principal against it: a `Principal` naming only this entry (does it match at all?) and a
/// `NotPrincipal` naming only it (is it exempt, i.e. named directly rather than through its
/// account or role?). Together they give everything a statement's principal match reads.
#[derive(Debug, Clone)]
struct PrincipalEntry {
    label: String,
    wildcard: bool,
    /// An account (`123456789012` or `arn:...:root`).
    account: bool,
    named: PolicySet,
    exempt: PolicySet,
}

#[derive(Debug, Clone, Default)]
struct ContextCell {
    vector: Vec<bool>,
    context: Vec<(String, ContextValue)>,
}

/// The cells of the request space and the probes that decide membership.
#[derive(Debug, Clone, Default)]
struct Space {
    /// As first written (for messages).
    action_patterns: Vec<String>,
    /// Lower case.
    action_patterns_lc: Vec<String>,
    /// Compiled, for matching (ASCII case folded, as the engine compares actions).
    action_globs: Vec<WildcardPattern>,
    resource_patterns: Vec<String>,
    resource_probes: Vec<PolicySet>,
    atoms: Vec<Atom>,
    atom_probes: Vec<PolicySet>,
    /// Resource-based policies: principals are a dimension. Identity policies: one
    /// principal, [`PROBE_PRINCIPAL`].
    principal_dimension: bool,
    principal_entries: Vec<PrincipalEntry>,
    classes: Vec<ActionClass>,
    resources: Vec<ResourceCellInner>,
    principals: Vec<PrincipalCellInner>,
    /// Per context key, the candidate values that draw every boundary.
    keys: Vec<(String, Vec<Candidate>)>,
    /// Per principal cell: derived keys (`aws:PrincipalAccount`, `aws:PrincipalArn`, ...)
    /// differ by principal, so the context cells are drawn for each.
    contexts: Vec<Vec<ContextCell>>,
    complete: bool,
}

/// The action every probe of a resource pattern or condition uses.
const PROBE_ACTION: &str = "zzprobe:Probe";

/// A resource policy whose one statement names `principal` (or exempts it, with
/// `NotPrincipal`) for every action and resource.
fn principal_probe(principal: &serde_json::Value, negated: bool) -> PolicySet {
    let key = if negated { "NotPrincipal" } else { "Principal" };
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", key: principal, "Action": "*", "Resource": "*"}]});
    gatehouse_policy::parse_value(&doc)
        .document
        .and_then(|d| PolicySet::new(PolicyType::Resource, [NamedPolicy::new("probe", d)]).ok())
        .unwrap_or_else(|| PolicySet::empty(PolicyType::Resource))
}

fn principal_entries(statements: &[&Statement]) -> Vec<PrincipalEntry> {
    let mut entries: BTreeMap<String, (bool, bool, serde_json::Value)> = BTreeMap::new();
    for st in statements {
        match st.principal.as_ref().map(|p| &p.principal) {
            None => {}
            Some(Principal::Any) => {
                entries.insert("*".into(), (true, false, serde_json::json!("*")));
            }
            Some(Principal::Typed(list)) => {
                for (kind, ids) in list {
                    for id in ids {
                        let account = *kind == PrincipalKind::Aws
                            && (id.bytes().all(|b| b.is_ascii_digit())
                                || Arn::parse(id).is_some_and(|a| a.resource == "root"));
                        entries.insert(
                            format!("{}:{id}", kind.as_str()),
                            (id == "*", account, serde_json::json!({ kind.as_str(): id })),
                        );
                    }
                }
            }
        }
    }
    entries
        .into_iter()
        .map(|(label, (wildcard, account, value))| PrincipalEntry {
            label,
            wildcard,
            account,
            named: principal_probe(&value, false),
            exempt: principal_probe(&value, true),
        })
        .collect()
}

/// Principals on both sides of every boundary the entries draw: each named principal, and
/// for every account named anywhere (entries, `aws:PrincipalArn`/`aws:PrincipalAccount`
/// conditions, plus a stranger account) its root, a user, a role session, and the users,
/// roles and role sessions of every name mentioned; then a service and an identity provider
/// nobody names.
///
/// In a stable order, most telling first: the first witness of a cell is its example.
fn principal_witnesses(statements: &[&Statement], atoms: &[Atom]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut aws_ids: Vec<String> = Vec::new();
    let mut users: BTreeSet<String> = BTreeSet::from(["Zz".to_owned()]);
    let mut roles: BTreeSet<String> = BTreeSet::from(["Zz".to_owned()]);
    for st in statements {
        let Some(Principal::Typed(list)) = st.principal.as_ref().map(|p| &p.principal) else {
            continue;
        };
        for (kind, ids) in list {
            if *kind == PrincipalKind::Aws {
                aws_ids.extend(ids.iter().cloned());
            } else {
                out.extend(
                    ids.iter()
                        .filter(|id| *id != "*")
                        .map(|id| instantiate(id, "Zz")),
                );
            }
        }
    }
    // Conditions on the keys the engine derives from the principal draw boundaries among
    // principals too.
    for a in atoms {
        if a.key.eq_ignore_ascii_case("aws:PrincipalArn")
            || a.key.eq_ignore_ascii_case("aws:PrincipalAccount")
        {
            aws_ids.extend(a.values.iter().cloned());
        } else if a.key.eq_ignore_ascii_case("aws:username") {
            users.extend(a.values.iter().map(|v| instantiate(v, "Zz")));
        }
    }
    let is_account = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    let mut accounts: BTreeSet<String> = BTreeSet::new();
    let mut partitions: BTreeSet<String> = BTreeSet::from(["aws".to_owned()]);
    for id in aws_ids.iter().filter(|id| *id != "*") {
        if is_account(id) {
            accounts.insert(id.clone());
            continue;
        }
        let named = instantiate(id, "Zz");
        let Some(arn) = Arn::parse(&named) else {
            continue;
        };
        partitions.insert(arn.partition.to_owned());
        // A wildcard account is any account: the others stand for it.
        let account = instantiate(id.split(':').nth(4).unwrap_or(""), "0");
        if is_account(&account) {
            accounts.insert(account);
        }
        let last = |r: &str| r.rsplit('/').next().unwrap_or(r).to_owned();
        if let Some(role) = arn.resource.strip_prefix("role/") {
            roles.insert(last(role));
        } else if let Some(user) = arn.resource.strip_prefix("user/") {
            users.insert(last(user));
        } else if let Some(session) = arn.resource.strip_prefix("assumed-role/")
            && let Some((role, _)) = session.split_once('/')
        {
            roles.insert(role.to_owned());
        }
        if is_account(arn.account) {
            out.push(named);
        }
    }
    accounts.insert("999999999999".into());
    for a in &accounts {
        for p in &partitions {
            out.extend(users.iter().map(|u| format!("arn:{p}:iam::{a}:user/{u}")));
            for r in &roles {
                out.push(format!("arn:{p}:sts::{a}:assumed-role/{r}/Zz"));
                out.push(format!("arn:{p}:iam::{a}:role/{r}"));
            }
            out.push(format!("arn:{p}:iam::{a}:root"));
        }
    }
    out.extend(["zz.service.example", "zz.idp.example"].map(str::to_owned));
    let mut seen = BTreeSet::new();
    out.retain(|w| seen.insert(w.clone()));
    out
}

fn probe_policy(resource: &str, condition: Option<&Atom>) -> Option<PolicySet> {
    let mut st = serde_json::json!({"Effect": "Allow", "Action": "*", "Resource": resource});
    if let Some(a) = condition {
        st["Condition"] = serde_json::json!({ a.operator.clone(): { a.key.clone(): a.values } });
    }
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [st]});
    let parsed = gatehouse_policy::parse_value(&doc).document?;
    PolicySet::new(PolicyType::Identity, [NamedPolicy::new("probe", parsed)]).ok()
}

/// A value of the kind `*`/`?` patterns accept, standing for "something else".
fn instantiate(pattern: &str, fill: &str) -> String {
    pattern.replace('*', fill).replace('?', "Z")
}

impl Space {
    fn build(statements: &[&Statement], principal_dimension: bool) -> Space {
        let mut action_patterns = BTreeMap::new();
        let mut resource_patterns = BTreeSet::new();
        let mut atoms = BTreeSet::new();
        for st in statements {
            for p in &st.action.patterns {
                action_patterns
                    .entry(p.to_ascii_lowercase())
                    .or_insert_with(|| p.clone());
            }
            if let Some(r) = &st.resource {
                resource_patterns.extend(r.patterns.iter().cloned());
            }
            for block in &st.condition {
                for e in &block.entries {
                    atoms.insert(Atom {
                        operator: block.operator.clone(),
                        key: e.key.clone(),
                        values: e.values.iter().map(|v| v.as_text().into_owned()).collect(),
                    });
                }
            }
        }
        let mut space = Space {
            action_globs: action_patterns
                .keys()
                .map(|p| WildcardPattern::new(p))
                .collect(),
            action_patterns_lc: action_patterns.keys().cloned().collect(),
            action_patterns: action_patterns.into_values().collect(),
            resource_patterns: resource_patterns.into_iter().collect(),
            atoms: atoms.into_iter().collect(),
            complete: true,
            principal_dimension,
            ..Space::default()
        };
        space.resource_probes = space
            .resource_patterns
            .iter()
            .map(|p| {
                probe_policy(p, None).unwrap_or_else(|| PolicySet::empty(PolicyType::Identity))
            })
            .collect();
        space.atom_probes = space
            .atoms
            .iter()
            .map(|a| {
                probe_policy("*", Some(a)).unwrap_or_else(|| PolicySet::empty(PolicyType::Identity))
            })
            .collect();
        space.build_actions();
        space.build_resources();
        space.build_principals(statements);
        space.build_contexts();
        space
    }

    /// How a principal stands against every entry (matched? exempt?), then the truth of
    /// every condition with only the keys derived from the principal.
    fn principal_sig(&self, principal: &str) -> Vec<bool> {
        let req = Request::new(principal, PROBE_ACTION, "*");
        let mut sig: Vec<bool> = self
            .principal_entries
            .iter()
            .flat_map(|e| [e.named.allows(&req), e.exempt.allows(&req)])
            .collect();
        sig.extend(self.atom_vector(principal, &[]));
        sig
    }

    fn build_principals(&mut self, statements: &[&Statement]) {
        if !self.principal_dimension {
            self.principals = vec![PrincipalCellInner {
                sig: Vec::new(),
                witness: PROBE_PRINCIPAL.into(),
            }];
            return;
        }
        self.principal_entries = principal_entries(statements);
        let mut seen = BTreeSet::new();
        self.principals = principal_witnesses(statements, &self.atoms)
            .into_iter()
            .filter_map(|w| {
                let sig = self.principal_sig(&w);
                seen.insert(sig.clone())
                    .then_some(PrincipalCellInner { sig, witness: w })
            })
            .collect();
    }

    /// The principal a request is placed by: its own, or for identity policies the probe's
    /// (an identity policy's principal is whoever holds it).
    fn placing_principal<'r>(&self, request: &'r Request) -> &'r str {
        if self.principal_dimension {
            &request.principal
        } else {
            PROBE_PRINCIPAL
        }
    }

    fn action_sig(&self, action: &str) -> Vec<bool> {
        self.action_globs
            .iter()
            .map(|g| g.matches_ignore_ascii_case(action))
            .collect()
    }

    fn build_actions(&mut self) {
        let aws = AwsActions::get();
        let gh = Catalog::builtin();
        let mut catalog: BTreeMap<String, String> = BTreeMap::new();
        for (p, glob) in self.action_patterns_lc.iter().zip(&self.action_globs) {
            for a in aws.expand(p) {
                catalog
                    .entry(a.name.to_ascii_lowercase())
                    .or_insert_with(|| a.name.clone());
            }
            for (prefix, svc) in &gh.services {
                for name in svc.actions.keys() {
                    let full = format!("{prefix}:{name}");
                    if glob.matches_ignore_ascii_case(&full) {
                        catalog.entry(full.to_ascii_lowercase()).or_insert(full);
                    }
                }
            }
        }
        let mut invented: Vec<String> = vec!["zzunlisted:ZzUnlisted".into()];
        for p in &self.action_patterns {
            if !p.contains(['*', '?']) {
                // A name the catalogs do not know is still an action the policy names.
                catalog
                    .entry(p.to_ascii_lowercase())
                    .or_insert_with(|| p.clone());
                continue;
            }
            let w = if p.contains(':') {
                instantiate(p, "ZzUnlisted")
            } else {
                format!("zzunlisted:{}", instantiate(p, "ZzUnlisted"))
            };
            invented.push(w);
        }
        let mut by_sig: HashMap<Vec<bool>, ActionClass> = HashMap::new();
        for name in catalog.into_values() {
            let sig = self.action_sig(&name);
            let c = by_sig.entry(sig.clone()).or_insert_with(|| ActionClass {
                sig,
                representative: name.clone(),
                ..ActionClass::default()
            });
            c.catalog.push(name);
        }
        for name in invented {
            let sig = self.action_sig(&name);
            let c = by_sig.entry(sig.clone()).or_insert_with(|| ActionClass {
                sig,
                representative: name.clone(),
                ..ActionClass::default()
            });
            c.invented = true;
        }
        let mut classes: Vec<ActionClass> = by_sig.into_values().collect();
        classes.sort_by(|a, b| a.representative.cmp(&b.representative));
        self.classes = classes;
    }

    fn resource_sig(&self, resource: &str, context: &[(String, ContextValue)]) -> Vec<bool> {
        let req = self.request(PROBE_PRINCIPAL, PROBE_ACTION, resource, context);
        self.resource_probes
            .iter()
            .map(|set| Evaluation::identity(set).decide(&req).is_allow())
            .collect()
    }

    fn build_resources(&mut self) {
        let mut witnesses = BTreeSet::new();
        witnesses.insert("arn:aws:zzunlisted:zz-region:999999999999:zzunlisted/Zz".to_owned());
        for p in &self.resource_patterns {
            for fill in ["", "Zz", "Zz/Zz", "Zz:Zz"] {
                witnesses.insert(instantiate(p, fill));
            }
        }
        let mut cells: Vec<ResourceCellInner> = Vec::new();
        let mut seen = BTreeSet::new();
        for w in witnesses {
            let sig = self.resource_sig(&w, &[]);
            if seen.insert(sig.clone()) {
                cells.push(ResourceCellInner { sig, witness: w });
            }
        }
        self.resources = cells;
    }

    fn atom_vector(&self, principal: &str, context: &[(String, ContextValue)]) -> Vec<bool> {
        let req = self.request(principal, PROBE_ACTION, "*", context);
        self.atom_probes
            .iter()
            .map(|set| Evaluation::identity(set).decide(&req).is_allow())
            .collect()
    }

    fn build_contexts(&mut self) {
        // Candidate values per key (keys compare case-insensitively).
        let mut keys: BTreeMap<String, (String, BTreeSet<Candidate>)> = BTreeMap::new();
        for a in &self.atoms {
            let entry = keys
                .entry(a.key.to_ascii_lowercase())
                .or_insert_with(|| (a.key.clone(), BTreeSet::new()));
            candidates(a, &mut entry.1);
        }
        // Each atom reads one key, so per key only the candidates that give its atoms a
        // different truth vector matter; the product is then over those few.
        let keys: Vec<(String, Vec<Candidate>)> = keys
            .into_values()
            .map(|(k, set)| {
                let mut all: Vec<Candidate> = vec![Candidate::Absent];
                // Where principals vary, the keys derived from them are theirs, not free:
                // a request's `aws:PrincipalAccount` is its principal's account.
                if !(self.principal_dimension && is_derived(&k)) {
                    all.extend(set.into_iter().filter(|c| *c != Candidate::Absent));
                }
                let mine: Vec<usize> = (0..self.atoms.len())
                    .filter(|i| self.atoms[*i].key.eq_ignore_ascii_case(&k))
                    .collect();
                let mut seen = BTreeSet::new();
                let kept = all
                    .into_iter()
                    .filter(|c| {
                        let v = self.atom_vector(PROBE_PRINCIPAL, &c.entry(&k));
                        seen.insert(mine.iter().map(|i| v[*i]).collect::<Vec<bool>>())
                    })
                    .collect();
                (k, kept)
            })
            .collect();
        let mut total: usize = 1;
        for (_, c) in &keys {
            total = total.saturating_mul(c.len());
        }
        if total > MAX_CONTEXTS {
            self.complete = false;
        }
        self.keys = keys;
        self.contexts = self
            .principals
            .iter()
            .map(|p| self.context_cells(&p.witness, total.min(MAX_CONTEXTS)))
            .collect();
    }

    /// The first `count` combinations of candidate values, one per distinct truth vector
    /// of the atoms for this principal.
    fn context_cells(&self, principal: &str, count: usize) -> Vec<ContextCell> {
        let mut seen = BTreeSet::new();
        let mut cells = Vec::new();
        for n in 0..count {
            let mut rest = n;
            let mut ctx = Vec::new();
            for (k, cands) in &self.keys {
                let c = &cands[rest % cands.len()];
                rest /= cands.len();
                ctx.extend(c.entry(k));
            }
            let vector = self.atom_vector(principal, &ctx);
            if seen.insert(vector.clone()) {
                cells.push(ContextCell {
                    vector,
                    context: ctx,
                });
            }
        }
        cells
    }

    fn request(
        &self,
        principal: &str,
        action: &str,
        resource: &str,
        context: &[(String, ContextValue)],
    ) -> Request {
        let mut r = Request::new(principal, action, resource);
        for (k, v) in context {
            r.context.insert(k.clone(), v.clone());
        }
        r
    }

    /// Groups (action class, resource cell, principal cell) → context cells into described
    /// changes.
    fn changes(&self, cells: &Cells) -> Vec<Change> {
        // Merge action classes that change identically, then principal cells that do.
        let mut by_actions: BTreeMap<(usize, usize, Vec<Cube>), Vec<usize>> = BTreeMap::new();
        for ((ai, ri, pi), on) in cells {
            let cubes = self.cover(*pi, on);
            by_actions.entry((*ri, *pi, cubes)).or_default().push(*ai);
        }
        let mut grouped: BTreeMap<(usize, Vec<usize>, Vec<Cube>), Vec<usize>> = BTreeMap::new();
        for ((ri, pi, cubes), classes) in by_actions {
            grouped.entry((ri, classes, cubes)).or_default().push(pi);
        }
        let mut out = Vec::new();
        for ((ri, classes, cubes), pcells) in grouped {
            let rcell = &self.resources[ri];
            let mut actions = Vec::new();
            let mut other = Vec::new();
            let mut sigs = Vec::new();
            for ai in &classes {
                let c = &self.classes[*ai];
                actions.extend(c.catalog.iter().cloned());
                if c.invented {
                    other.push(self.describe_invented(&c.sig));
                }
                sigs.push(c.sig.clone());
            }
            actions.sort_by_key(|a| a.to_ascii_lowercase());
            let first_ctx = cells
                .get(&(classes[0], ri, pcells[0]))
                .and_then(|s| s.iter().next())
                .map(|ci| self.contexts[pcells[0]][*ci].context.clone())
                .unwrap_or_default();
            let example = self.request(
                &self.principals[pcells[0]].witness,
                &self.classes[classes[0]].representative,
                &rcell.witness,
                &first_ctx,
            );
            let mut principals: Vec<PrincipalCell> = Vec::new();
            if self.principal_dimension {
                // Cells told apart only by how they match (an account's root itself, or
                // one of its users) read the same: name them once, with the first example.
                for pi in &pcells {
                    let d = self.describe_principal(&self.principals[*pi]);
                    if !principals
                        .iter()
                        .any(|p| p.matching == d.matching && p.excluding == d.excluding)
                    {
                        principals.push(d);
                    }
                }
            }
            out.push(Change {
                actions,
                other_actions: other,
                principals,
                resource: self.describe_resource(rcell),
                when: cubes
                    .iter()
                    .map(|cube| {
                        cube.iter()
                            .map(|(i, holds)| Literal {
                                atom: self.atoms[*i].clone(),
                                holds: *holds,
                            })
                            .collect()
                    })
                    .collect(),
                example,
                action_sigs: sigs,
                resource_sig: rcell.sig.clone(),
                principal_sigs: pcells
                    .iter()
                    .map(|pi| self.principals[*pi].sig.clone())
                    .collect(),
            });
        }
        out
    }

    /// A small set of cubes (conjunctions of atom literals) covering exactly the context
    /// cells in `on` among the explored ones: each cell's full literal set, widened one
    /// literal at a time while no explored cell outside `on` falls inside.
    fn cover(&self, pi: usize, on: &BTreeSet<usize>) -> Vec<Cube> {
        let contexts = &self.contexts[pi];
        let off: Vec<&Vec<bool>> = (0..contexts.len())
            .filter(|i| !on.contains(i))
            .map(|i| &contexts[i].vector)
            .collect();
        let inside = |cube: &[(usize, bool)], v: &[bool]| cube.iter().all(|(i, h)| v[*i] == *h);
        let mut cubes: BTreeSet<Vec<(usize, bool)>> = BTreeSet::new();
        for ci in on {
            let v = &contexts[*ci].vector;
            if cubes.iter().any(|c| inside(c, v)) {
                continue;
            }
            let mut cube: Vec<(usize, bool)> = v.iter().copied().enumerate().collect();
            let mut i = 0;
            while i < cube.len() {
                let mut wider = cube.clone();
                wider.remove(i);
                if off.iter().any(|o| inside(&wider, o)) {
                    i += 1;
                } else {
                    cube = wider;
                }
            }
            cubes.insert(cube);
        }
        cubes.into_iter().collect()
    }

    fn describe_invented(&self, sig: &[bool]) -> String {
        let matched: Vec<&str> = self
            .action_patterns
            .iter()
            .zip(sig)
            .filter(|(_, m)| **m)
            .map(|(p, _)| p.as_str())
            .collect();
        if matched.is_empty() {
            format!(
                "any action outside the catalog matching none of {}",
                self.action_patterns.join(", ")
            )
        } else {
            format!(
                "actions outside the catalog matching {}",
                matched.join(" and ")
            )
        }
    }

    fn describe_principal(&self, cell: &PrincipalCellInner) -> PrincipalCell {
        let named = |want: bool| {
            self.principal_entries
                .iter()
                .enumerate()
                .filter(move |(i, _)| cell.sig.get(2 * i) == Some(&want))
                .map(|(_, e)| e)
        };
        let mut matching: Vec<&PrincipalEntry> = named(true).collect();
        // `*` says nothing next to a narrower entry, nor an account next to one of its
        // users or roles.
        if matching.iter().any(|e| !e.wildcard) {
            matching.retain(|e| !e.wildcard);
        }
        if matching.iter().any(|e| !e.account) {
            matching.retain(|e| !e.account);
        }
        // What a cell is not needs saying only when what it is says "everyone".
        let through_wildcard = matching.iter().all(|e| e.wildcard);
        PrincipalCell {
            matching: matching.iter().map(|e| e.label.clone()).collect(),
            excluding: if through_wildcard {
                named(false).map(|e| e.label.clone()).collect()
            } else {
                Vec::new()
            },
            example: cell.witness.clone(),
        }
    }

    fn describe_resource(&self, cell: &ResourceCellInner) -> ResourceCell {
        let matching: Vec<String> = self
            .resource_patterns
            .iter()
            .zip(&cell.sig)
            .filter(|(_, m)| **m)
            .map(|(p, _)| p.clone())
            .collect();
        // `*` says nothing next to a narrower pattern.
        let mut matching = matching;
        if matching.len() > 1 {
            matching.retain(|p| p != "*");
        }
        // An excluded pattern worth naming is one whose own instance lies in a matched one.
        let excluding = self
            .resource_patterns
            .iter()
            .zip(&cell.sig)
            .filter(|(p, m)| {
                !**m && {
                    let inst = self.resource_sig(&instantiate(p, "Zz"), &[]);
                    cell.sig.iter().zip(&inst).all(|(c, i)| !*c || *i)
                }
            })
            .map(|(p, _)| p.clone())
            .collect();
        ResourceCell {
            matching,
            excluding,
            example: cell.witness.clone(),
        }
    }

    fn covers(&self, changes: &[Change], request: &Request) -> bool {
        let sig = self.action_sig(&request.action);
        let ctx: Vec<(String, ContextValue)> = request
            .context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        let rsig = self.resource_sig(&request.resource, &ctx);
        let principal = self.placing_principal(request);
        let psig = if self.principal_dimension {
            self.principal_sig(principal)
        } else {
            Vec::new()
        };
        let vector = self.atom_vector(principal, &ctx);
        changes.iter().any(|c| {
            c.resource_sig == rsig
                && c.principal_sigs.contains(&psig)
                && c.action_sigs.contains(&sig)
                && c.when.iter().any(|cube| {
                    cube.iter().all(|l| {
                        self.atoms
                            .iter()
                            .position(|a| *a == l.atom)
                            .is_some_and(|i| vector[i] == l.holds)
                    })
                })
        })
    }
}

/// Keys the engine derives from the principal when the context lacks them.
const DERIVED_KEYS: [&str; 3] = ["aws:PrincipalArn", "aws:PrincipalAccount", "aws:username"];

fn is_derived(key: &str) -> bool {
    DERIVED_KEYS.iter().any(|d| d.eq_ignore_ascii_case(key))
}

/// A conjunction of (atom index, must hold) literals.
type Cube = Vec<(usize, bool)>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Candidate {
    Absent,
    One(String),
    Many(Vec<String>),
}

impl Candidate {
    fn entry(&self, key: &str) -> Vec<(String, ContextValue)> {
        match self {
            Candidate::Absent => Vec::new(),
            Candidate::One(v) => vec![(key.to_owned(), ContextValue::One(v.clone()))],
            Candidate::Many(v) => vec![(key.to_owned(), ContextValue::Many(v.clone()))],
        }
    }
}

/// Values on both sides of every boundary an atom draws.
fn candidates(atom: &Atom, out: &mut BTreeSet<Candidate>) {
    let set_op =
        atom.operator.starts_with("ForAnyValue:") || atom.operator.starts_with("ForAllValues:");
    let base = atom
        .operator
        .trim_start_matches("ForAnyValue:")
        .trim_start_matches("ForAllValues:")
        .trim_end_matches("IfExists");
    let mut singles: Vec<String> = Vec::new();
    for v in &atom.values {
        if base.starts_with("Numeric") {
            if let Ok(n) = v.parse::<i64>() {
                singles.extend([n - 1, n, n + 1].map(|x| x.to_string()));
            } else if let Ok(n) = v.parse::<f64>() {
                singles.extend([n - 1.0, n, n + 1.0].map(|x| x.to_string()));
            }
        } else if base.starts_with("Date") {
            singles.extend([
                v.clone(),
                "1970-01-02T00:00:00Z".into(),
                "2999-12-31T00:00:00Z".into(),
            ]);
        } else if base.contains("IpAddress") {
            if let Ok(net) = v.parse::<ipnet::IpNet>() {
                singles.push(net.network().to_string());
                singles.push(net.broadcast().to_string());
                if let Some(before) = step(net.network(), false) {
                    singles.push(before.to_string());
                }
                if let Some(after) = step(net.broadcast(), true) {
                    singles.push(after.to_string());
                }
            } else {
                singles.push(v.clone());
            }
            singles.push("203.0.113.9".into());
        } else if base == "Bool" {
            singles.extend(["true".into(), "false".into()]);
        } else {
            singles.push(v.clone());
            if v.contains(['*', '?']) {
                singles.push(instantiate(v, "Zz"));
                singles.push(instantiate(v, ""));
            }
        }
    }
    singles.push("Zzother".into());
    if base.starts_with("Arn") {
        singles.push("arn:aws:zz:zz:999999999999:zz".into());
    }
    if set_op {
        out.insert(Candidate::Many(Vec::new()));
        out.insert(Candidate::Many(singles.clone()));
        for s in &singles {
            out.insert(Candidate::Many(vec![s.clone()]));
            out.insert(Candidate::Many(vec![s.clone(), "Zzother".into()]));
        }
    } else {
        out.extend(singles.into_iter().map(Candidate::One));
    }
}

fn step(ip: std::net::IpAddr, up: bool) -> Option<std::net::IpAddr> {
    match ip {
        std::net::IpAddr::V4(a) => {
            let n = u32::from(a);
            let m = if up {
                n.checked_add(1)?
            } else {
                n.checked_sub(1)?
            };
            Some(std::net::IpAddr::V4(m.into()))
        }
        std::net::IpAddr::V6(a) => {
            let n = u128::from(a);
            let m = if up {
                n.checked_add(1)?
            } else {
                n.checked_sub(1)?
            };
            Some(std::net::IpAddr::V6(m.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc(s: &str) -> PolicyDocument {
        PolicyDocument::parse(s).unwrap()
    }

    #[test]
    fn guardrail_update_outside_the_office_network() {
        let old = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ai:InvokeModel","Resource":"arn:aws:ai:local:111122223333:model/*"}]}"#);
        let new = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ai:InvokeModel","Resource":"arn:aws:ai:local:111122223333:model/*"},
            {"Effect":"Allow","Action":"ai:UpdateGuardrail","Resource":"arn:aws:ai:local:111122223333:guardrail/*",
             "Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#);
        let d = diff_documents(&old, &new).unwrap();
        assert!(d.grants_new_access());
        assert!(d.no_longer_allowed.is_empty());
        assert_eq!(d.newly_allowed.len(), 1, "{}", d.text());
        let c = &d.newly_allowed[0];
        assert_eq!(c.actions, vec!["ai:UpdateGuardrail".to_owned()]);
        assert_eq!(
            c.resource.matching,
            vec!["arn:aws:ai:local:111122223333:guardrail/*".to_owned()]
        );
        assert_eq!(c.when.len(), 1);
        assert_eq!(c.when[0].len(), 1);
        assert!(c.when[0][0].holds);
        assert_eq!(c.when[0][0].atom.key, "aws:SourceIp");
        let text = d.text();
        assert!(text.contains("newly allows ai:UpdateGuardrail"), "{text}");
        assert!(
            text.contains("aws:SourceIp is outside 10.0.0.0/8"),
            "{text}"
        );
        // No change in the reverse direction means no new access.
        let back = diff_documents(&new, &old).unwrap();
        assert!(!back.grants_new_access());
        assert_eq!(back.no_longer_allowed.len(), 1);
    }

    #[test]
    fn identical_and_reordered_policies_have_no_difference() {
        let a = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["ai:InvokeModel","ai:GetModel"],"Resource":"*"}]}"#);
        let b = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ai:GetModel","Resource":"*"},
            {"Effect":"Allow","Action":"AI:invokemodel","Resource":"*"}]}"#);
        let d = diff_documents(&a, &b).unwrap();
        assert!(!d.grants_new_access(), "{}", d.text());
        assert!(d.no_longer_allowed.is_empty(), "{}", d.text());
    }
}
