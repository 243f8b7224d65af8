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
//! Limits, reported rather than hidden: policy variables in resources are matched as the
//! fixed probing principal would resolve them, and when the condition values multiply
//! beyond [`MAX_CONTEXTS`] combinations only the first ones are explored (`complete` is
//! then false).

use crate::actions::{AwsActions, glob_match};
use gatehouse_policy::model::Statement;
use gatehouse_policy::{
    Catalog, ContextValue, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
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

/// One difference: these actions on these resources under these conditions.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Catalog actions affected (canonical spelling).
    pub actions: Vec<String>,
    /// Actions outside the catalog (including ones a service adds later), described by the
    /// patterns they match.
    pub other_actions: Vec<String>,
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
                let _ = writeln!(
                    out,
                    "{label} {} on {} when {}",
                    c.actions_label(),
                    c.resource,
                    c.when_label()
                );
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

/// Compares two versions of an identity-based policy (each one or more documents).
pub fn diff(old: &[NamedPolicy], new: &[NamedPolicy]) -> Result<PolicyDiff, DiffError> {
    let old_set = PolicySet::new(PolicyType::Identity, old.iter().cloned()).map_err(|source| {
        DiffError::Compile {
            which: "old",
            source,
        }
    })?;
    let new_set = PolicySet::new(PolicyType::Identity, new.iter().cloned()).map_err(|source| {
        DiffError::Compile {
            which: "new",
            source,
        }
    })?;
    let statements: Vec<&Statement> = old
        .iter()
        .chain(new)
        .flat_map(|p| &p.document.statements)
        .collect();
    Ok(diff_evaluations(
        &Evaluation::identity(&old_set),
        &Evaluation::identity(&new_set),
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
    let space = Space::build(statements);
    // (class, resource cell) -> context cells where the answer changed.
    let mut added: BTreeMap<(usize, usize), BTreeSet<usize>> = BTreeMap::new();
    let mut removed: BTreeMap<(usize, usize), BTreeSet<usize>> = BTreeMap::new();
    let mut probes = 0;
    for (ai, class) in space.classes.iter().enumerate() {
        for (ri, rcell) in space.resources.iter().enumerate() {
            for (ci, ctx) in space.contexts.iter().enumerate() {
                let req = space.request(&class.representative, &rcell.witness, &ctx.context);
                probes += 1;
                let was = old_eval.decide(&req).is_allow();
                let is = new_eval.decide(&req).is_allow();
                if is && !was {
                    added.entry((ai, ri)).or_default().insert(ci);
                } else if was && !is {
                    removed.entry((ai, ri)).or_default().insert(ci);
                }
            }
        }
    }
    PolicyDiff {
        newly_allowed: space.changes(&added),
        no_longer_allowed: space.changes(&removed),
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
struct ContextCell {
    vector: Vec<bool>,
    context: Vec<(String, ContextValue)>,
}

/// The cells of the request space and the probes that decide membership.
#[derive(Debug, Clone, Default)]
struct Space {
    /// As first written (for messages).
    action_patterns: Vec<String>,
    /// Lower case, for matching.
    action_patterns_lc: Vec<String>,
    resource_patterns: Vec<String>,
    resource_probes: Vec<PolicySet>,
    atoms: Vec<Atom>,
    atom_probes: Vec<PolicySet>,
    classes: Vec<ActionClass>,
    resources: Vec<ResourceCellInner>,
    contexts: Vec<ContextCell>,
    complete: bool,
}

/// The action every probe of a resource pattern or condition uses.
const PROBE_ACTION: &str = "zzprobe:Probe";

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
    fn build(statements: &[&Statement]) -> Space {
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
            action_patterns_lc: action_patterns.keys().cloned().collect(),
            action_patterns: action_patterns.into_values().collect(),
            resource_patterns: resource_patterns.into_iter().collect(),
            atoms: atoms.into_iter().collect(),
            complete: true,
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
        space.build_contexts();
        space
    }

    fn action_sig(&self, action: &str) -> Vec<bool> {
        self.action_patterns_lc
            .iter()
            .map(|p| glob_match(p, action))
            .collect()
    }

    fn build_actions(&mut self) {
        let aws = AwsActions::get();
        let gh = Catalog::builtin();
        let mut catalog: BTreeMap<String, String> = BTreeMap::new();
        for p in &self.action_patterns_lc {
            for a in aws.expand(p) {
                catalog
                    .entry(a.name.to_ascii_lowercase())
                    .or_insert_with(|| a.name.clone());
            }
            for (prefix, svc) in &gh.services {
                for name in svc.actions.keys() {
                    let full = format!("{prefix}:{name}");
                    if glob_match(p, &full) {
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
        let req = self.request(PROBE_ACTION, resource, context);
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

    fn atom_vector(&self, context: &[(String, ContextValue)]) -> Vec<bool> {
        let req = self.request(PROBE_ACTION, "*", context);
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
                all.extend(set.into_iter().filter(|c| *c != Candidate::Absent));
                let mine: Vec<usize> = (0..self.atoms.len())
                    .filter(|i| self.atoms[*i].key.eq_ignore_ascii_case(&k))
                    .collect();
                let mut seen = BTreeSet::new();
                let kept = all
                    .into_iter()
                    .filter(|c| {
                        let v = self.atom_vector(&c.entry(&k));
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
        let mut seen = BTreeSet::new();
        let mut cells = Vec::new();
        for n in 0..total.min(MAX_CONTEXTS) {
            let mut rest = n;
            let mut ctx = Vec::new();
            for (k, cands) in &keys {
                let c = &cands[rest % cands.len()];
                rest /= cands.len();
                ctx.extend(c.entry(k));
            }
            let vector = self.atom_vector(&ctx);
            if seen.insert(vector.clone()) {
                cells.push(ContextCell {
                    vector,
                    context: ctx,
                });
            }
        }
        self.contexts = cells;
    }

    fn request(&self, action: &str, resource: &str, context: &[(String, ContextValue)]) -> Request {
        let mut r = Request::new(PROBE_PRINCIPAL, action, resource);
        for (k, v) in context {
            r.context.insert(k.clone(), v.clone());
        }
        r
    }

    /// Groups (action class, resource cell) → context cells into described changes.
    fn changes(&self, cells: &BTreeMap<(usize, usize), BTreeSet<usize>>) -> Vec<Change> {
        // Merge action classes that change identically.
        let mut grouped: BTreeMap<(usize, Vec<Cube>), Vec<usize>> = BTreeMap::new();
        for ((ai, ri), on) in cells {
            let cubes = self.cover(on);
            grouped.entry((*ri, cubes)).or_default().push(*ai);
        }
        let mut out = Vec::new();
        for ((ri, cubes), classes) in grouped {
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
                .get(&(classes[0], ri))
                .and_then(|s| s.iter().next())
                .map(|ci| self.contexts[*ci].context.clone())
                .unwrap_or_default();
            let example = self.request(
                &self.classes[classes[0]].representative,
                &rcell.witness,
                &first_ctx,
            );
            out.push(Change {
                actions,
                other_actions: other,
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
            });
        }
        out
    }

    /// A small set of cubes (conjunctions of atom literals) covering exactly the context
    /// cells in `on` among the explored ones: each cell's full literal set, widened one
    /// literal at a time while no explored cell outside `on` falls inside.
    fn cover(&self, on: &BTreeSet<usize>) -> Vec<Cube> {
        let off: Vec<&Vec<bool>> = (0..self.contexts.len())
            .filter(|i| !on.contains(i))
            .map(|i| &self.contexts[i].vector)
            .collect();
        let inside = |cube: &[(usize, bool)], v: &[bool]| cube.iter().all(|(i, h)| v[*i] == *h);
        let mut cubes: BTreeSet<Vec<(usize, bool)>> = BTreeSet::new();
        for ci in on {
            let v = &self.contexts[*ci].vector;
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
        let vector = self.atom_vector(&ctx);
        changes.iter().any(|c| {
            c.resource_sig == rsig
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
