//! The request space of a diff: action classes, resource cells and the witnesses that
//! represent them, built from the patterns of every statement compared, plus the probe
//! policies that place any request in its cell.

use super::context::{Candidate, ContextCell};
use super::principals::{PrincipalCellInner, PrincipalEntry};
use super::{Atom, PROBE_ACTION, PROBE_PRINCIPAL};
use crate::actions::AwsActions;
use gatehouse_policy::model::Statement;
use gatehouse_policy::{
    Catalog, ContextValue, Evaluation, NamedPolicy, PolicySet, PolicyType, Request, WildcardPattern,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Default)]
pub(super) struct ActionClass {
    pub(super) sig: Vec<bool>,
    pub(super) catalog: Vec<String>,
    pub(super) invented: bool,
    pub(super) representative: String,
}

#[derive(Debug, Clone, Default)]
pub(super) struct ResourceCellInner {
    pub(super) sig: Vec<bool>,
    pub(super) witness: String,
}

/// The cells of the request space and the probes that decide membership.
#[derive(Debug, Clone, Default)]
pub(super) struct Space {
    /// As first written (for messages).
    pub(super) action_patterns: Vec<String>,
    /// Lower case.
    pub(super) action_patterns_lc: Vec<String>,
    /// Compiled, for matching (ASCII case folded, as the engine compares actions).
    pub(super) action_globs: Vec<WildcardPattern>,
    pub(super) resource_patterns: Vec<String>,
    pub(super) resource_probes: Vec<PolicySet>,
    pub(super) atoms: Vec<Atom>,
    pub(super) atom_probes: Vec<PolicySet>,
    /// Resource-based policies: principals are a dimension. Identity policies: one
    /// principal, [`PROBE_PRINCIPAL`].
    pub(super) principal_dimension: bool,
    pub(super) principal_entries: Vec<PrincipalEntry>,
    pub(super) classes: Vec<ActionClass>,
    pub(super) resources: Vec<ResourceCellInner>,
    pub(super) principals: Vec<PrincipalCellInner>,
    /// Per context key, the candidate values that draw every boundary.
    pub(super) keys: Vec<(String, Vec<Candidate>)>,
    /// Per principal cell: derived keys (`aws:PrincipalAccount`, `aws:PrincipalArn`, ...)
    /// differ by principal, so the context cells are drawn for each.
    pub(super) contexts: Vec<Vec<ContextCell>>,
    pub(super) complete: bool,
}

/// An identity policy allowing everything on `resource` (under one condition entry): the
/// probe that tells whether a request lies inside the pattern or makes the entry true.
pub(super) fn probe_policy(resource: &str, condition: Option<&Atom>) -> Option<PolicySet> {
    let mut st = serde_json::json!({"Effect": "Allow", "Action": "*", "Resource": resource});
    if let Some(a) = condition {
        st["Condition"] = serde_json::json!({ a.operator.clone(): { a.key.clone(): a.values } });
    }
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [st]});
    let parsed = gatehouse_policy::parse_value(&doc).document?;
    PolicySet::new(PolicyType::Identity, [NamedPolicy::new("probe", parsed)]).ok()
}

/// A resource both patterns match, when segment by segment (of an ARN) one can be found:
/// where one segment is `*` or names a value the other accepts, that value; otherwise an
/// instance of one that the other accepts.
fn intersection(a: &str, b: &str) -> Option<String> {
    if a == "*" || b == "*" || a == b {
        return None;
    }
    let (sa, sb): (Vec<&str>, Vec<&str>) = (a.splitn(6, ':').collect(), b.splitn(6, ':').collect());
    if sa.len() != sb.len() {
        return None;
    }
    let fits = |p: &str, v: &str| gatehouse_policy::wildcard_match(p, v);
    let mut out = Vec::with_capacity(sa.len());
    for (x, y) in sa.iter().zip(&sb) {
        let candidates = [
            instantiate(x, "Zz"),
            instantiate(y, "Zz"),
            instantiate(x, ""),
            instantiate(y, ""),
        ];
        out.push(candidates.into_iter().find(|c| fits(x, c) && fits(y, c))?);
    }
    let w = out.join(":");
    (fits(a, &w) && fits(b, &w)).then_some(w)
}

/// A value of the kind `*`/`?` patterns accept, standing for "something else".
pub(super) fn instantiate(pattern: &str, fill: &str) -> String {
    pattern.replace('*', fill).replace('?', "Z")
}

impl Space {
    /// The space drawn by `statements`; `only`, when given, limits the actions to those.
    pub(super) fn build(
        statements: &[&Statement],
        principal_dimension: bool,
        only: Option<&[&str]>,
    ) -> Space {
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
        match only {
            Some(actions) => space.build_only(actions),
            None => space.build_actions(),
        }
        space.build_resources();
        space.build_principals(statements);
        space.build_contexts();
        space
    }

    pub(super) fn action_sig(&self, action: &str) -> Vec<bool> {
        self.action_globs
            .iter()
            .map(|g| g.matches_ignore_ascii_case(action))
            .collect()
    }

    /// Action classes of the given actions alone, spelled as the catalogs (or, for names
    /// they do not know, the policies) spell them; an action neither knows stands in a class
    /// of its own kind, as actions outside the catalog do in the full space.
    pub(super) fn build_only(&mut self, actions: &[&str]) {
        let aws = AwsActions::get();
        let gh = Catalog::builtin();
        // In the full space's order (by lower-case name), so each class has the same
        // representative there and here.
        let mut catalog: BTreeMap<String, String> = BTreeMap::new();
        let mut invented: Vec<String> = Vec::new();
        for a in actions {
            let gatehouse = a.split_once(':').and_then(|(prefix, name)| {
                let svc = gh.services.get(&prefix.to_ascii_lowercase())?;
                let known = svc.actions.keys().find(|k| k.eq_ignore_ascii_case(name))?;
                Some(format!("{}:{known}", prefix.to_ascii_lowercase()))
            });
            let literal = || {
                self.action_patterns
                    .iter()
                    .find(|p| !p.contains(['*', '?']) && p.eq_ignore_ascii_case(a))
                    .cloned()
            };
            match aws
                .action(a)
                .map(|i| i.name.clone())
                .or(gatehouse)
                .or_else(literal)
            {
                Some(name) => {
                    catalog.entry(name.to_ascii_lowercase()).or_insert(name);
                }
                None => invented.push((*a).to_owned()),
            }
        }
        self.classify(catalog.into_values().collect(), invented);
    }

    /// Groups named actions and invented ones (outside the catalogs) by how the action
    /// patterns match them.
    fn classify(&mut self, named: Vec<String>, invented: Vec<String>) {
        let mut by_sig: HashMap<Vec<bool>, ActionClass> = HashMap::new();
        for name in named {
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

    pub(super) fn build_actions(&mut self) {
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
        self.classify(catalog.into_values().collect(), invented);
    }

    pub(super) fn resource_sig(
        &self,
        resource: &str,
        context: &[(String, ContextValue)],
    ) -> Vec<bool> {
        let req = self.request(PROBE_PRINCIPAL, PROBE_ACTION, resource, context);
        self.resource_probes
            .iter()
            .map(|set| Evaluation::identity(set).decide(&req).is_allow())
            .collect()
    }

    pub(super) fn build_resources(&mut self) {
        let mut witnesses = BTreeSet::new();
        witnesses.insert("arn:aws:zzunlisted:zz-region:999999999999:zzunlisted/Zz".to_owned());
        for p in &self.resource_patterns {
            for fill in ["", "Zz", "Zz/Zz", "Zz:Zz"] {
                witnesses.insert(instantiate(p, fill));
            }
        }
        let mut cells: Vec<ResourceCellInner> = Vec::new();
        let mut seen = BTreeSet::new();
        // Instances of one pattern may all miss another that overlaps it
        // (`arn:aws:bedrock:*::foundation-model/anthropic.*` and
        // `arn:aws:bedrock:us-east-1::foundation-model/*`): a resource in both is a cell of
        // its own, found by intersecting the patterns segment by segment. Asked after the
        // instances, so it only adds the cells they miss.
        let mut meets = BTreeSet::new();
        for (i, a) in self.resource_patterns.iter().enumerate() {
            for b in self.resource_patterns.iter().skip(i + 1) {
                meets.extend(intersection(a, b));
            }
        }
        for w in witnesses.into_iter().chain(meets) {
            let sig = self.resource_sig(&w, &[]);
            if seen.insert(sig.clone()) {
                cells.push(ResourceCellInner { sig, witness: w });
            }
        }
        self.resources = cells;
    }

    pub(super) fn request(
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
}
