//! The principal dimension of resource-based and trust policies: each `Principal` entry of
//! either version, placed by two engine probes, and the witnesses (named principals, members
//! of named accounts, strangers) that stand for every way a caller can relate to them.

use super::space::{Space, instantiate};
use super::{Atom, PROBE_ACTION, PROBE_PRINCIPAL};
use gatehouse_policy::model::{Principal, PrincipalKind, Statement};
use gatehouse_policy::{Arn, NamedPolicy, PolicySet, PolicyType, Request};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub(super) struct PrincipalCellInner {
    pub(super) sig: Vec<bool>,
    pub(super) witness: String,
}

/// One entry of a `Principal` element in either version, with the two probes that place a
/// principal against it: a `Principal` naming only this entry (does it match at all?) and a
/// `NotPrincipal` naming only it (is it exempt, i.e. named directly rather than through its
/// account or role?). Together they give everything a statement's principal match reads.
#[derive(Debug, Clone)]
pub(super) struct PrincipalEntry {
    pub(super) label: String,
    pub(super) wildcard: bool,
    /// An account (`123456789012` or `arn:...:root`).
    pub(super) account: bool,
    pub(super) named: PolicySet,
    pub(super) exempt: PolicySet,
}

/// A resource policy whose one statement names `principal` (or exempts it, with
/// `NotPrincipal`) for every action and resource.
pub(super) fn principal_probe(principal: &serde_json::Value, negated: bool) -> PolicySet {
    let key = if negated { "NotPrincipal" } else { "Principal" };
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", key: principal, "Action": "*", "Resource": "*"}]});
    gatehouse_policy::parse_value(&doc)
        .document
        .and_then(|d| PolicySet::new(PolicyType::Resource, [NamedPolicy::new("probe", d)]).ok())
        .unwrap_or_else(|| PolicySet::empty(PolicyType::Resource))
}

pub(super) fn principal_entries(statements: &[&Statement]) -> Vec<PrincipalEntry> {
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
pub(super) fn principal_witnesses(statements: &[&Statement], atoms: &[Atom]) -> Vec<String> {
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

impl Space {
    /// How a principal stands against every entry (matched? exempt?), then the truth of
    /// every condition with only the keys derived from the principal.
    pub(super) fn principal_sig(&self, principal: &str) -> Vec<bool> {
        let req = Request::new(principal, PROBE_ACTION, "*");
        let mut sig: Vec<bool> = self
            .principal_entries
            .iter()
            .flat_map(|e| [e.named.allows(&req), e.exempt.allows(&req)])
            .collect();
        sig.extend(self.atom_vector(principal, &[]));
        sig
    }

    pub(super) fn build_principals(&mut self, statements: &[&Statement]) {
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
    pub(super) fn placing_principal<'r>(&self, request: &'r Request) -> &'r str {
        if self.principal_dimension {
            &request.principal
        } else {
            PROBE_PRINCIPAL
        }
    }
}
