//! From probed cells to described changes: cells that change alike are merged, context
//! cells are covered by small conjunctions of condition literals, and a request can be
//! placed back into the reported changes (what the property tests check).

use super::context::Cube;
use super::principals::{PrincipalCellInner, PrincipalEntry};
use super::space::{ResourceCellInner, Space, instantiate};
use super::{Cells, Change, Literal, PrincipalCell, ResourceCell};
use gatehouse_policy::{ContextValue, Request};
use std::collections::{BTreeMap, BTreeSet};

impl Space {
    /// Groups (action class, resource cell, principal cell) → context cells into described
    /// changes.
    pub(super) fn changes(&self, cells: &Cells) -> Vec<Change> {
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
    pub(super) fn cover(&self, pi: usize, on: &BTreeSet<usize>) -> Vec<Cube> {
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

    pub(super) fn describe_invented(&self, sig: &[bool]) -> String {
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

    pub(super) fn describe_principal(&self, cell: &PrincipalCellInner) -> PrincipalCell {
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

    pub(super) fn describe_resource(&self, cell: &ResourceCellInner) -> ResourceCell {
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

    pub(super) fn covers(&self, changes: &[Change], request: &Request) -> bool {
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
