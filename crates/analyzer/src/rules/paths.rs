//! GH-PE-006: privilege escalation as a path through role assumptions. The per-identity
//! rules (GH-PE-001..005, GH-OP-001) say what an identity can do itself; an identity that can
//! assume a role that can assume an administrator role escalates too, and only the graph shows
//! it. An edge P → R exists when the engine allows P `sts:AssumeRole` on R's ARN with P's own
//! policies, boundary and service control policies, and the engine, evaluating R's trust
//! policy as R's resource policy, admits P (by P's ARN, P's account root or `*`).
//! Like the other engine rules, requests carry no context: a trust condition counts as unmet.
//!
//! The graph spans every part of an export (and, in an organization, every account's export),
//! so each user and role leaves a small [`Node`]: its power, the few of its policies that can
//! allow `sts:AssumeRole` (compiled), and a role's trust policy. Edges are not found by asking
//! about every pair: each trust policy names whom it admits (an ARN, an account, or anyone),
//! and only those callers are put to the engine; a role open to anyone is asked about every
//! caller only when a stranger would be admitted too, or when its conditions read the
//! caller. The engine decides every edge, so the answer is the all-pairs answer (a property
//! test holds it to a naive all-pairs reference).

use super::principal::{Power, Prober};
use crate::finding::{Finding, Location, Severity};
use crate::model::{AwsPolicy, AwsPrincipal, Inventory, PolicyKind, PrincipalType};
use crate::subject::Reduced;
use gatehouse_policy::model::{Principal, PrincipalKind, Statement};
use gatehouse_policy::{
    Arn, Decision, Effect, Evaluation, NamedPolicy, PolicySet, PolicyType, Request,
};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// Longest path reported, in role assumptions.
const MAX_HOPS: usize = 3;

/// An account that is neither the caller's nor the role's (see [`trusted`]).
const OTHER_ACCOUNT: &str = "000000000000";

/// A caller nobody names, to tell whether a trust policy open to anyone admits anyone.
const STRANGER: &str = "arn:aws:iam::000000000001:user/gatehouse-probe-stranger";

const ASSUME: &str = "sts:AssumeRole";

/// One user or role in the graph.
#[derive(Debug)]
pub(crate) struct Node {
    /// Where it was read, for ordering (file, users before roles, position in its list).
    order: (Arc<str>, u8, usize),
    label: Box<str>,
    slug: Box<str>,
    power: Power,
    /// Its policies that can allow `sts:AssumeRole` (and its ARN); `None` for an
    /// administrator (nothing to gain past it) and for an identity no policy of which can.
    /// Boxed: most identities have none, and an organization's run keeps every node.
    assume: Option<Box<Reduced>>,
    /// A role's ARN and trust policy, when the policy compiled and names any AWS principal
    /// (a role only services assume is no step on a path).
    trust: Option<(Box<str>, Arc<AwsPolicy>)>,
}

/// The node of a user or role, from its prober and power.
pub(super) fn node(
    inv: &Inventory,
    file: &Arc<str>,
    p: &AwsPrincipal,
    pr: &Prober<'_>,
    power: Power,
) -> Node {
    let assume = (power != Power::Admin)
        .then(|| Reduced::new(inv, p, pr.guardrails.clone(), &[ASSUME]))
        .flatten()
        .map(Box::new);
    let trust = p
        .trust
        .and_then(|t| inv.aws_policies.get(t))
        .filter(|t| p.kind == PrincipalType::Role && t.kind == PolicyKind::Trust)
        .filter(|t| t.compile_error.is_none())
        .filter(|t| admits(t).any())
        .map(|t| (Box::from(p.arn.as_str()), Arc::clone(t)));
    Node {
        order: (
            Arc::clone(file),
            u8::from(p.kind == PrincipalType::Role),
            list_index(&p.path),
        ),
        label: p.label().into(),
        slug: p.slug().into(),
        power,
        assume,
        trust,
    }
}

/// The position in its list, from a JSON path such as `$.RoleDetailList[12]`.
fn list_index(path: &str) -> usize {
    path.rsplit('[')
        .next()
        .and_then(|s| s.trim_end_matches(']').parse().ok())
        .unwrap_or(0)
}

/// The decision allowing `caller` to assume `role`, if its policies allow it.
fn may_assume(caller: &Reduced, role: &str) -> Option<Decision> {
    let d = caller
        .evaluation()
        .decide(&Request::new(&*caller.arn, ASSUME, role));
    d.is_allow().then_some(d)
}

/// Where the statement allowing a caller's first step is.
fn location(caller: &Reduced, file: &str, entity: &str, d: &Decision) -> Location {
    let st = d
        .statements
        .iter()
        .find(|s| s.policy_type == PolicyType::Identity)
        .or(d.statements.first());
    match st.and_then(|s| caller.policy_of(s)) {
        Some((p, i)) => Location {
            file: file.to_owned(),
            json_path: Some(p.statement_path(i)),
            entity: Some(entity.to_owned()),
            policy: Some(p.name.clone()),
            statement: Some(p.statement_label(i)),
        },
        None => Location {
            file: file.to_owned(),
            entity: Some(entity.to_owned()),
            ..Location::default()
        },
    }
}

/// Whom a trust policy's `Allow` statements name.
#[derive(Debug, Default)]
struct Admits {
    arns: Vec<String>,
    accounts: Vec<String>,
    /// `*`, `NotPrincipal`, or a pattern: anyone may match.
    anyone: bool,
    /// Some statement open to anyone reads the caller in its conditions.
    reads_caller: bool,
}

const CALLER_KEYS: [&str; 5] = [
    "aws:principalarn",
    "aws:principalaccount",
    "aws:username",
    "aws:userid",
    "aws:principaltype",
];

impl Admits {
    fn any(&self) -> bool {
        self.anyone || !self.arns.is_empty() || !self.accounts.is_empty()
    }
}

fn reads_caller(st: &Statement) -> bool {
    st.condition.iter().flat_map(|b| &b.entries).any(|e| {
        CALLER_KEYS.contains(&e.key.to_ascii_lowercase().as_str())
            || e.values.iter().any(|v| v.as_text().contains("${"))
    })
}

fn admits(trust: &AwsPolicy) -> Admits {
    let mut a = Admits::default();
    for st in trust
        .document
        .statements
        .iter()
        .filter(|s| s.effect == Effect::Allow)
    {
        let Some(binding) = &st.principal else {
            continue;
        };
        let mut open = binding.negated;
        match &binding.principal {
            Principal::Any => open = true,
            Principal::Typed(entries) => {
                for (kind, ids) in entries {
                    if *kind != PrincipalKind::Aws {
                        continue;
                    }
                    for id in ids {
                        if id.contains(['*', '?']) {
                            open = true;
                        } else if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
                            a.accounts.push(id.clone());
                        } else {
                            match Arn::parse(id) {
                                Some(arn) if arn.resource == "root" => {
                                    a.accounts.push(arn.account.to_owned());
                                }
                                _ => a.arns.push(id.to_ascii_lowercase()),
                            }
                        }
                    }
                }
            }
        }
        if open {
            a.anyone = true;
            a.reads_caller |= reads_caller(st);
        }
    }
    a
}

/// Callers whose policies can allow `sts:AssumeRole`, indexed the ways a trust policy names them.
struct Callers {
    by_arn: FxHashMap<String, usize>,
    by_account: FxHashMap<String, Vec<usize>>,
    all: Vec<usize>,
}

impl Callers {
    fn new(nodes: &[Node]) -> Callers {
        let mut c = Callers {
            by_arn: FxHashMap::default(),
            by_account: FxHashMap::default(),
            all: Vec::new(),
        };
        for (i, n) in nodes.iter().enumerate() {
            let Some(caller) = &n.assume else { continue };
            let account = caller.arn.split(':').nth(4).unwrap_or("");
            c.by_arn.insert(caller.arn.to_ascii_lowercase(), i);
            c.by_account.entry(account.to_owned()).or_default().push(i);
            c.all.push(i);
        }
        c
    }

    /// Every caller the trust policy might admit (the engine decides which do).
    fn candidates(&self, admits: &Admits, open: bool) -> Vec<usize> {
        if open {
            return self.all.clone();
        }
        let mut out: Vec<usize> = admits
            .arns
            .iter()
            .filter_map(|a| self.by_arn.get(a).copied())
            .chain(
                admits
                    .accounts
                    .iter()
                    .filter_map(|a| self.by_account.get(a))
                    .flatten()
                    .copied(),
            )
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Every edge into role `r`: (caller, the decision allowing it `sts:AssumeRole` on `r`).
fn edges_into(
    nodes: &[Node],
    callers: &Callers,
    allow_all: &PolicySet,
    r: usize,
) -> Vec<(usize, usize, Decision)> {
    let Some((to, trust)) = nodes[r].trust.as_ref() else {
        return Vec::new();
    };
    let Ok(set) = PolicySet::new(
        PolicyType::Resource,
        [NamedPolicy::new("trust", trust.document.clone())],
    ) else {
        return Vec::new();
    };
    let a = admits(trust);
    let open = a.anyone && (a.reads_caller || trusted(allow_all, STRANGER, to, &set));
    callers
        .candidates(&a, open)
        .into_iter()
        .filter(|c| *c != r)
        .filter_map(|c| {
            let caller = nodes[c].assume.as_ref()?;
            let d = may_assume(caller, to)?;
            trusted(allow_all, &caller.arn, to, &set).then_some((c, r, d))
        })
        .collect()
}

/// GH-PE-006 over the nodes of every part of a run.
pub(crate) fn check(mut nodes: Vec<Node>) -> Vec<Finding> {
    let Some(allow_all) = super::trust::allow_all() else {
        return Vec::new();
    };
    nodes.sort_by(|a, b| a.order.cmp(&b.order));
    let callers = Callers::new(&nodes);
    let found: Vec<(usize, usize, Decision)> = (0..nodes.len())
        .into_par_iter()
        .flat_map_iter(|r| edges_into(&nodes, &callers, &allow_all, r))
        .collect();
    // edges[a] = (b, decision), b ascending: the order the breadth-first search visits.
    let mut edges: Vec<Vec<(usize, Decision)>> = vec![Vec::new(); nodes.len()];
    for (c, r, d) in found {
        edges[c].push((r, d));
    }
    for e in &mut edges {
        e.sort_by_key(|(b, _)| *b);
    }
    (0..nodes.len())
        .into_par_iter()
        .flat_map_iter(|a| paths_from(&nodes, &edges, a))
        .collect()
}

/// Breadth first from `a`, so each target is reported with a shortest path.
fn paths_from(nodes: &[Node], edges: &[Vec<(usize, Decision)>], a: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    if nodes[a].power == Power::Admin || edges[a].is_empty() {
        return out;
    }
    let mut prev: FxHashMap<usize, usize> = FxHashMap::default();
    let mut seen = rustc_hash::FxHashSet::default();
    seen.insert(a);
    let mut queue = VecDeque::from([(a, 0usize)]);
    while let Some((n, depth)) = queue.pop_front() {
        if depth == MAX_HOPS {
            continue;
        }
        for (m, _) in &edges[n] {
            if !seen.insert(*m) {
                continue;
            }
            prev.insert(*m, n);
            let target_power = nodes[*m].power;
            if target_power != Power::None {
                let mut path = vec![*m];
                while let Some(p) = path.last().and_then(|x| prev.get(x)) {
                    path.push(*p);
                }
                path.reverse();
                out.extend(report(nodes, &edges[a], &path, target_power));
            }
            // Past an administrator there is nothing more to gain.
            if target_power != Power::Admin {
                queue.push_back((*m, depth + 1));
            }
        }
    }
    out
}

/// Whether R's trust policy admits `from`. Unlike other resource policies, a trust policy must
/// allow the caller even within its account (an identity allow alone does not let anyone
/// assume a role), so the engine's same-account rule does not apply: the request is put to the
/// engine as if from another account with every identity permission (the caller's own
/// policies were asked separately), so that only the trust policy, `Deny`s included, decides.
fn trusted(allow_all: &PolicySet, from: &str, to: &str, trust: &PolicySet) -> bool {
    let mut req = Request::new(from, ASSUME, to);
    req.resource_account = Some(OTHER_ACCOUNT.to_owned());
    Evaluation {
        resource: Some(trust),
        ..Evaluation::identity(allow_all)
    }
    .decide(&req)
    .is_allow()
}

/// What joins the steps of a GH-PE-006 finding's path in its message.
const STEP: &str = " → ";
/// What precedes the path in a GH-PE-006 finding's message.
const PATH_INTRO: &str = ", by assuming roles: ";

/// The path of a GH-PE-006 finding: the identity it starts from and each role assumed, in
/// order (read back from the message [`report`] writes, so the two stay in this file).
pub(crate) fn steps(f: &Finding) -> Option<Vec<String>> {
    if f.rule != "GH-PE-006" {
        return None;
    }
    let (_, path) = f.message.rsplit_once(PATH_INTRO)?;
    Some(path.split(STEP).map(str::to_owned).collect())
}

fn report(
    nodes: &[Node],
    first_edges: &[(usize, Decision)],
    path: &[usize],
    power: Power,
) -> Option<Finding> {
    let names: Vec<&str> = path.iter().map(|&n| &*nodes[n].slug).collect();
    let (from, first, target) = (&nodes[*path.first()?], path.get(1)?, names.last()?);
    let (_, d) = first_edges.iter().find(|(b, _)| b == first)?;
    let (what, severity) = match power {
        Power::Admin => ("full administrative access".to_owned(), Severity::Critical),
        Power::Escalation(rule) => (format!("an escalation capability ({rule})"), Severity::High),
        Power::None => return None,
    };
    let location = location(from.assume.as_ref()?, &from.order.0, &from.label, d);
    Some(
        Finding::new(
            "GH-PE-006",
            format!(
                "{} can reach {target}, which has {what}{PATH_INTRO}{}",
                from.label,
                names.join(STEP)
            ),
            location,
        )
        .with_severity(severity),
    )
}
