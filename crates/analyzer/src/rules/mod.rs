//! The rules: each reads the normalized [`Inventory`] and returns findings. Statement rules
//! look at what a policy says; principal and trust rules ask the policy engine what an
//! identity's policies (with their `Deny` statements, boundaries, service control policies
//! and conditions) decide.
//!
//! An inventory is a whole file or one part of an export read as a stream
//! ([`crate::export`]): every rule but one needs only the part's principals and the policies
//! they use. The exception, the role-assumption graph (GH-PE-006), spans the parts: each part
//! leaves its [`paths::Node`]s, and [`paths::check`] runs once over all of them.

pub(crate) mod azure;
mod gcp;
pub(crate) mod hygiene;
pub(crate) mod paths;
pub(crate) mod principal;
pub(crate) mod statements;
pub(crate) mod trust;

use crate::Settings;
use crate::finding::Finding;
use crate::model::{Format, Inventory};
use crate::subject::Subject;
use gatehouse_policy::PolicySet;
use std::sync::Arc;

/// What the rules know beside the inventory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The run's settings (deprecated models, organization, windows).
    pub settings: &'a Settings,
    /// The export's own "now" (its latest date), for idleness.
    pub now: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl Scope<'_> {
    /// The service control policies over an account, by level (none outside an
    /// organization, and none for its management account).
    pub fn guardrails(&self, account: &str) -> Arc<[PolicySet]> {
        match &self.settings.organization {
            Some(org) => org.guardrails(account),
            None => Arc::from(Vec::new()),
        }
    }

    /// Whether both accounts belong to the run's organization (so neither is "external"
    /// to the other).
    pub fn same_organization(&self, a: &str, b: &str) -> bool {
        self.settings
            .organization
            .as_ref()
            .is_some_and(|o| o.contains(a) && o.contains(b))
    }
}

/// What the rules found in one part, and its users and roles for the graph.
#[derive(Debug, Default)]
pub(crate) struct PartAnalysis {
    pub findings: Vec<Finding>,
    pub nodes: Vec<paths::Node>,
}

/// Runs every rule but the graph over one inventory, whose principals `subjects` holds.
pub(crate) fn analyze_part(
    inv: &Inventory,
    subjects: &[Subject<'_>],
    scope: &Scope<'_>,
) -> PartAnalysis {
    let mut out = Vec::new();
    statements::check(inv, &mut out);
    let nodes = principal::check(inv, subjects, &mut out);
    trust::check(inv, scope, &mut out);
    azure::check(inv, &mut out);
    gcp::check(inv, &mut out);
    hygiene::check(inv, &mut out);
    crate::lifecycle::check(inv, &scope.settings.bedrock, &mut out);
    if inv.format == Format::AwsAuthorizationDetails {
        crate::usage::idle_role_findings(inv, subjects, scope.now, &mut out);
    }
    PartAnalysis {
        findings: out,
        nodes,
    }
}
