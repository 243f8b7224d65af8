//! The naive reference the fast paths are held to: the role-assumption graph found by asking
//! the engine about every (caller, role) pair of a whole export held in memory, and
//! `who-can` by compiling every principal's policies on its own — the way the analyzer
//! worked before it read exports as streams, indexed trust policies and shared compiled
//! policies. Slow (quadratic) on purpose; only for small random exports.

use gatehouse_analyzer::model::{AwsPrincipal, Inventory, PolicyKind, PrincipalType};
use gatehouse_analyzer::{Finding, Location, Severity};
use gatehouse_policy::{
    Decision, DecisionKind, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use std::collections::VecDeque;

/// A principal's identity policies and boundary, compiled; policies are named by their
/// index in the inventory.
pub struct Compiled {
    pub identity: PolicySet,
    pub boundary: Option<PolicySet>,
}

fn compile(inv: &Inventory, kind: PolicyType, indices: &[usize]) -> PolicySet {
    let named: Vec<NamedPolicy> = indices
        .iter()
        .filter(|i| inv.aws_policies[**i].compile_error.is_none())
        .map(|i| NamedPolicy::new(i.to_string(), inv.aws_policies[*i].document.clone()))
        .collect();
    PolicySet::new(kind, named).unwrap()
}

pub fn compiled(inv: &Inventory, p: &AwsPrincipal) -> Compiled {
    Compiled {
        identity: compile(inv, PolicyType::Identity, &p.policies),
        boundary: p.boundary.map(|b| compile(inv, PolicyType::Boundary, &[b])),
    }
}

impl Compiled {
    pub fn eval(&self) -> Evaluation<'_> {
        Evaluation {
            boundary: self.boundary.as_ref(),
            ..Evaluation::identity(&self.identity)
        }
    }
}

fn allow_all() -> PolicySet {
    let doc = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    )
    .unwrap();
    PolicySet::new(PolicyType::Identity, [NamedPolicy::new("all", doc)]).unwrap()
}

/// What an identity's own policies give it (from the per-identity findings, which the fast
/// and the reference paths share: the graph is what is checked here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    None,
    Admin,
    Escalation(&'static str),
}

fn power(inv: &Inventory, c: &Compiled, p: &AwsPrincipal, findings: &[Finding]) -> Power {
    let admin = c
        .eval()
        .decide(&Request::new(
            p.arn.as_str(),
            "gatehouseprobe:UnlistedAction",
            "arn:aws:gatehouseprobe:us-east-1:111122223333:thing/x",
        ))
        .is_allow();
    if admin && !c.identity.is_empty() {
        return Power::Admin;
    }
    let label = p.label();
    let mine: Vec<&'static str> = findings
        .iter()
        .filter(|f| f.location.entity.as_deref() == Some(label.as_str()))
        .filter(|f| f.rule.starts_with("GH-PE-") && f.rule != "GH-PE-006")
        .map(|f| f.rule)
        .collect();
    let _ = inv;
    // The rules report PassRole (GH-PE-005) before GH-PE-001..004.
    if mine.contains(&"GH-PE-005") {
        return Power::Escalation("GH-PE-005");
    }
    mine.iter()
        .min()
        .map_or(Power::None, |r| Power::Escalation(r))
}

fn trust(inv: &Inventory, p: &AwsPrincipal) -> Option<PolicySet> {
    let t = &inv.aws_policies[p.trust?];
    if p.kind != PrincipalType::Role || t.kind != PolicyKind::Trust || t.compile_error.is_some() {
        return None;
    }
    PolicySet::new(
        PolicyType::Resource,
        [NamedPolicy::new("trust", t.document.clone())],
    )
    .ok()
}

fn location(inv: &Inventory, label: &str, d: &Decision) -> Location {
    let st = d
        .statements
        .iter()
        .find(|s| s.policy_type == PolicyType::Identity)
        .or(d.statements.first())
        .unwrap();
    let p = &inv.aws_policies[st.policy.parse::<usize>().unwrap()];
    Location {
        file: inv.file.clone(),
        json_path: Some(p.statement_path(st.index)),
        entity: Some(label.to_owned()),
        policy: Some(p.name.clone()),
        statement: Some(p.statement_label(st.index)),
    }
}

/// GH-PE-006 by asking about every pair (`findings`: the other findings of the same scan).
pub fn escalation_paths(inv: &Inventory, findings: &[Finding]) -> Vec<Finding> {
    let all = allow_all();
    let nodes: Vec<&AwsPrincipal> = inv
        .aws_principals
        .iter()
        .filter(|p| p.kind != PrincipalType::Group)
        .collect();
    let compiled: Vec<Compiled> = nodes.iter().map(|p| compiled(inv, p)).collect();
    let powers: Vec<Power> = nodes
        .iter()
        .zip(&compiled)
        .map(|(p, c)| power(inv, c, p, findings))
        .collect();
    let trusts: Vec<Option<PolicySet>> = nodes.iter().map(|p| trust(inv, p)).collect();
    let mut edges: Vec<Vec<(usize, Decision)>> = vec![Vec::new(); nodes.len()];
    for a in 0..nodes.len() {
        for b in 0..nodes.len() {
            let Some(t) = &trusts[b] else { continue };
            if a == b {
                continue;
            }
            let d = compiled[a].eval().decide(&Request::new(
                nodes[a].arn.as_str(),
                "sts:AssumeRole",
                nodes[b].arn.as_str(),
            ));
            let mut req = Request::new(
                nodes[a].arn.as_str(),
                "sts:AssumeRole",
                nodes[b].arn.as_str(),
            );
            req.resource_account = Some("000000000000".into());
            let admitted = Evaluation {
                resource: Some(t),
                ..Evaluation::identity(&all)
            }
            .decide(&req)
            .is_allow();
            if d.decision == DecisionKind::Allow && admitted {
                edges[a].push((b, d));
            }
        }
    }
    let mut out = Vec::new();
    for a in 0..nodes.len() {
        if powers[a] == Power::Admin || edges[a].is_empty() {
            continue;
        }
        let mut prev = vec![None; nodes.len()];
        let mut seen = vec![false; nodes.len()];
        seen[a] = true;
        let mut queue = VecDeque::from([(a, 0)]);
        while let Some((n, depth)) = queue.pop_front() {
            if depth == 3 {
                continue;
            }
            for (m, _) in &edges[n] {
                if seen[*m] {
                    continue;
                }
                seen[*m] = true;
                prev[*m] = Some(n);
                if powers[*m] != Power::None {
                    let mut path = vec![*m];
                    while let Some(p) = path.last().and_then(|&x| prev[x]) {
                        path.push(p);
                    }
                    path.reverse();
                    let names: Vec<String> = path.iter().map(|n| nodes[*n].slug()).collect();
                    let (_, d) = edges[a].iter().find(|(b, _)| *b == path[1]).unwrap();
                    let (what, severity) = match powers[*m] {
                        Power::Admin => {
                            ("full administrative access".to_owned(), Severity::Critical)
                        }
                        Power::Escalation(r) => {
                            (format!("an escalation capability ({r})"), Severity::High)
                        }
                        Power::None => unreachable!(),
                    };
                    let label = nodes[a].label();
                    out.push(
                        Finding::new(
                            "GH-PE-006",
                            format!(
                                "{label} can reach {}, which has {what}, by assuming roles: {}",
                                names.last().unwrap(),
                                names.join(" → ")
                            ),
                            location(inv, &label, d),
                        )
                        .with_severity(severity),
                    );
                }
                if powers[*m] != Power::Admin {
                    queue.push_back((*m, depth + 1));
                }
            }
        }
    }
    out
}

/// `who-can`: every principal's own compiled policies asked, with the near misses of an
/// implicit deny as conditional grants. (principal ARN, allowed/conditional, through.)
pub fn who_can(
    inv: &Inventory,
    action: &str,
    resource: &str,
) -> Vec<(String, &'static str, Vec<String>)> {
    let mut out = Vec::new();
    for p in &inv.aws_principals {
        // Named as the analyzer names them, for `through`.
        let named = |i: &usize| {
            let pol = &inv.aws_policies[*i];
            NamedPolicy::new(
                pol.arn.clone().unwrap_or_else(|| {
                    format!("{}/{}", pol.owner.as_deref().unwrap_or(""), pol.name)
                }),
                pol.document.clone(),
            )
        };
        let identity = PolicySet::new(PolicyType::Identity, p.policies.iter().map(named)).unwrap();
        let boundary = p
            .boundary
            .map(|b| PolicySet::new(PolicyType::Boundary, [named(&b)]).unwrap());
        let e = Evaluation {
            boundary: boundary.as_ref(),
            ..Evaluation::identity(&identity)
        }
        .explain(&Request::new(p.arn.as_str(), action, resource));
        match e.decision.decision {
            DecisionKind::Allow => out.push((
                p.arn.clone(),
                "allowed",
                e.decision
                    .statements
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            )),
            DecisionKind::ExplicitDeny => {}
            DecisionKind::ImplicitDeny => {
                let near: Vec<String> = e
                    .near_misses
                    .iter()
                    .filter(|n| {
                        n.statement.effect == gatehouse_policy::Effect::Allow
                            && n.statement.policy_type == PolicyType::Identity
                    })
                    .map(|n| n.statement.to_string())
                    .collect();
                if !near.is_empty() {
                    out.push((p.arn.clone(), "conditional", near));
                }
            }
        }
    }
    out
}
