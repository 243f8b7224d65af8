//! The condition dimension: candidate values on both sides of every boundary a condition
//! entry draws, and the context cells (one per distinct truth vector of the entries) that
//! the diff probes.

use super::space::{Space, instantiate};
use super::{Atom, MAX_CONTEXTS, PROBE_ACTION, PROBE_PRINCIPAL};
use gatehouse_policy::{ContextValue, Evaluation};
use std::collections::{BTreeMap, BTreeSet};

/// One explored combination of context values, with the truth of every condition entry.
#[derive(Debug, Clone, Default)]
pub(super) struct ContextCell {
    pub(super) vector: Vec<bool>,
    pub(super) context: Vec<(String, ContextValue)>,
}

/// Keys the engine derives from the principal when the context lacks them.
pub(super) const DERIVED_KEYS: [&str; 3] =
    ["aws:PrincipalArn", "aws:PrincipalAccount", "aws:username"];

pub(super) fn is_derived(key: &str) -> bool {
    DERIVED_KEYS.iter().any(|d| d.eq_ignore_ascii_case(key))
}

/// A conjunction of (atom index, must hold) literals.
pub(super) type Cube = Vec<(usize, bool)>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Candidate {
    Absent,
    One(String),
    Many(Vec<String>),
}

impl Candidate {
    pub(super) fn entry(&self, key: &str) -> Vec<(String, ContextValue)> {
        match self {
            Candidate::Absent => Vec::new(),
            Candidate::One(v) => vec![(key.to_owned(), ContextValue::One(v.clone()))],
            Candidate::Many(v) => vec![(key.to_owned(), ContextValue::Many(v.clone()))],
        }
    }
}

/// Values on both sides of every boundary an atom draws.
pub(super) fn candidates(atom: &Atom, out: &mut BTreeSet<Candidate>) {
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

pub(super) fn step(ip: std::net::IpAddr, up: bool) -> Option<std::net::IpAddr> {
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

impl Space {
    pub(super) fn atom_vector(
        &self,
        principal: &str,
        context: &[(String, ContextValue)],
    ) -> Vec<bool> {
        let req = self.request(principal, PROBE_ACTION, "*", context);
        self.atom_probes
            .iter()
            .map(|set| Evaluation::identity(set).decide(&req).is_allow())
            .collect()
    }

    pub(super) fn build_contexts(&mut self) {
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
    pub(super) fn context_cells(&self, principal: &str, count: usize) -> Vec<ContextCell> {
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
}
