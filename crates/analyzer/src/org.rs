//! AWS Organizations: the tree of accounts and organizational units, and the service control
//! policies attached along it. In an organization every decision about a member account's
//! principals is bounded by the SCPs on the path from the root to the account (each level
//! must allow), and an account of the organization is not "external" to another.

use gatehouse_policy::PolicySet;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::sync::Arc;

/// An organization: its accounts and, per account, the SCP levels that bound it.
#[derive(Debug, Clone, Default)]
pub struct Organization {
    /// The organization's id (`o-...`).
    pub id: String,
    /// The management account (not bound by SCPs).
    pub management_account: String,
    /// Every account of the organization.
    pub accounts: BTreeSet<String>,
    /// Per member account, the SCP levels from the root down (each must allow).
    levels: FxHashMap<String, Arc<[PolicySet]>>,
}

impl Organization {
    /// The SCP levels over an account (none for the management account and for accounts
    /// outside the organization).
    pub fn guardrails(&self, account: &str) -> Arc<[PolicySet]> {
        self.levels
            .get(account)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Whether the account belongs to the organization.
    pub fn contains(&self, account: &str) -> bool {
        self.accounts.contains(account)
    }
}
