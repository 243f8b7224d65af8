//! GH-PE-006: privilege escalation as a path through role assumptions. The per-identity
//! rules (GH-PE-001..005, GH-OP-001) say what an identity can do itself; an identity that can
//! assume a role that can assume an administrator role escalates too, and only the graph shows
//! it. An edge P → R exists when the engine allows P `sts:AssumeRole` on R's ARN with P's own
//! policies and boundary, and the engine, evaluating R's trust policy as R's resource policy,
//! admits P (by P's ARN, P's account root or `*`).
//! Like the other engine rules, requests carry no context: a trust condition counts as unmet.

use super::principal::{Power, Prober};
use super::statements::Compiled;
use crate::finding::{Finding, Severity};
use crate::model::{AwsPrincipal, Inventory, PolicyKind, PrincipalType};
use gatehouse_policy::{Decision, Evaluation, NamedPolicy, PolicySet, PolicyType, Request};
use std::collections::VecDeque;

/// Longest path reported, in role assumptions.
const MAX_HOPS: usize = 3;

/// An account that is neither the caller's nor the role's (see [`trusted`]).
const OTHER_ACCOUNT: &str = "000000000000";

/// One user or role: its index in `aws_principals`, its engine view, and its own power.
pub(super) type Node<'a> = (usize, Option<Prober<'a>>, Power);

pub(super) fn check(inv: &Inventory, compiled: &Compiled, nodes: &[Node], out: &mut Vec<Finding>) {
    let Some(allow_all) = super::trust::allow_all() else {
        return;
    };
    let trusts: Vec<Option<PolicySet>> = nodes
        .iter()
        .map(|(i, _, _)| trust_set(inv, compiled, inv.aws_principals.get(*i)?))
        .collect();
    // edges[a] = (b, the decision allowing a's identity to call sts:AssumeRole on b).
    let mut edges: Vec<Vec<(usize, Decision)>> = vec![Vec::new(); nodes.len()];
    for (a, (ai, pr, _)) in nodes.iter().enumerate() {
        let (Some(pr), Some(from)) = (pr, inv.aws_principals.get(*ai)) else {
            continue;
        };
        for (b, (bi, _, _)) in nodes.iter().enumerate() {
            let (Some(trust), Some(to)) = (&trusts[b], inv.aws_principals.get(*bi)) else {
                continue;
            };
            if a == b {
                continue;
            }
            if let Some(d) = pr.decide("sts:AssumeRole", &to.arn)
                && trusted(&allow_all, from, to, trust)
            {
                edges[a].push((b, d));
            }
        }
    }
    for (a, (ai, pr, power)) in nodes.iter().enumerate() {
        let (Some(pr), Some(from)) = (pr, inv.aws_principals.get(*ai)) else {
            continue;
        };
        if *power == Power::Admin || edges[a].is_empty() {
            continue;
        }
        // Breadth first, so each target is reported with a shortest path.
        let mut prev: Vec<Option<usize>> = vec![None; nodes.len()];
        let mut seen = vec![false; nodes.len()];
        seen[a] = true;
        let mut queue = VecDeque::from([(a, 0usize)]);
        while let Some((n, depth)) = queue.pop_front() {
            if depth == MAX_HOPS {
                continue;
            }
            for (m, _) in &edges[n] {
                if seen[*m] {
                    continue;
                }
                seen[*m] = true;
                prev[*m] = Some(n);
                let target_power = nodes[*m].2;
                if target_power != Power::None {
                    let mut path = vec![*m];
                    while let Some(p) = path.last().and_then(|&x| prev[x]) {
                        path.push(p);
                    }
                    path.reverse();
                    report(inv, nodes, pr, from, &edges[a], &path, target_power, out);
                }
                // Past an administrator there is nothing more to gain.
                if target_power != Power::Admin {
                    queue.push_back((*m, depth + 1));
                }
            }
        }
    }
}

/// The role's trust policy as a resource policy, when it compiled.
fn trust_set(inv: &Inventory, compiled: &Compiled, p: &AwsPrincipal) -> Option<PolicySet> {
    if p.kind != PrincipalType::Role {
        return None;
    }
    let t = p.trust?;
    let policy = inv.aws_policies.get(t)?;
    if policy.kind != PolicyKind::Trust || !compiled.get(t).copied().unwrap_or(false) {
        return None;
    }
    PolicySet::new(
        PolicyType::Resource,
        [NamedPolicy::new("trust", policy.document.clone())],
    )
    .ok()
}

/// Whether R's trust policy admits `from`. Unlike other resource policies, a trust policy must
/// allow the caller even within its account (an identity allow alone does not let anyone
/// assume a role), so the engine's same-account rule does not apply: the request is put to the
/// engine as if from another account with every identity permission (the caller's own
/// policies were asked separately), so that only the trust policy, `Deny`s included, decides.
fn trusted(
    allow_all: &PolicySet,
    from: &AwsPrincipal,
    to: &AwsPrincipal,
    trust: &PolicySet,
) -> bool {
    let mut req = Request::new(from.arn.as_str(), "sts:AssumeRole", to.arn.as_str());
    req.resource_account = Some(OTHER_ACCOUNT.to_owned());
    Evaluation {
        resource: Some(trust),
        ..Evaluation::identity(allow_all)
    }
    .decide(&req)
    .is_allow()
}

fn slug(p: &AwsPrincipal) -> String {
    format!("{}/{}", p.kind.as_str(), p.name)
}

#[allow(clippy::too_many_arguments)]
fn report(
    inv: &Inventory,
    nodes: &[Node],
    pr: &Prober,
    from: &AwsPrincipal,
    first_edges: &[(usize, Decision)],
    path: &[usize],
    power: Power,
    out: &mut Vec<Finding>,
) {
    let names: Vec<String> = path
        .iter()
        .filter_map(|&n| inv.aws_principals.get(nodes[n].0).map(slug))
        .collect();
    let (Some(first), Some(target)) = (path.get(1), names.last()) else {
        return;
    };
    let Some((_, d)) = first_edges.iter().find(|(b, _)| b == first) else {
        return;
    };
    let (what, severity) = match power {
        Power::Admin => ("full administrative access".to_owned(), Severity::Critical),
        Power::Escalation(rule) => (format!("an escalation capability ({rule})"), Severity::High),
        Power::None => return,
    };
    out.push(
        Finding::new(
            "GH-PE-006",
            format!(
                "{} can reach {target}, which has {what}, by assuming roles: {}",
                from.label(),
                names.join(" → ")
            ),
            pr.location(d),
        )
        .with_severity(severity),
    );
}
