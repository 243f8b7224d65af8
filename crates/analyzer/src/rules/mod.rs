//! The rules: each reads the normalized [`Inventory`] and returns findings. Statement rules
//! look at what a policy says; principal and trust rules ask the policy engine what an
//! identity's policies (with their `Deny` statements, boundaries and conditions) decide.

mod azure;
mod gcp;
pub(crate) mod hygiene;
mod paths;
mod principal;
mod statements;
mod trust;

use crate::finding::Finding;
use crate::model::Inventory;

/// Runs every rule over one inventory.
pub fn analyze(inv: &Inventory) -> Vec<Finding> {
    let mut out = Vec::new();
    let compiled = statements::check(inv, &mut out);
    principal::check(inv, &compiled, &mut out);
    trust::check(inv, &compiled, &mut out);
    azure::check(inv, &mut out);
    gcp::check(inv, &mut out);
    hygiene::check(inv, &mut out);
    crate::lifecycle::check(inv, &mut out);
    if inv.format == crate::model::Format::AwsAuthorizationDetails {
        crate::usage::idle_role_findings(inv, &mut out);
    }
    out
}
