//! Whether the key manager still answers, after the start.
//!
//! Why it lives beside the store: a key manager that goes away while Gatehouse runs does
//! not stop requests (every data key is unwrapped in memory), so its failure must be
//! *seen* instead — in the log, in `/metrics` and in `/readyz` — and the store is what
//! every part holds. The key managers (`gatehouse-keys`) record their periodic checks and
//! digest signatures here; the store records its own unwrapping of a data key another node
//! made; the server reads the figures at scrape and probe time.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::keys::KeyManagerError;

/// What Gatehouse asked of the key manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyManagerOperation {
    /// The periodic check that it answers (a public-key read: no key use).
    Check,
    /// Signing an audit digest.
    Sign,
    /// Unwrapping a data key this node did not hold yet (made by another node).
    Unwrap,
}

impl KeyManagerOperation {
    /// Every operation, in the order metrics list them.
    pub const ALL: [KeyManagerOperation; 3] = [
        KeyManagerOperation::Check,
        KeyManagerOperation::Sign,
        KeyManagerOperation::Unwrap,
    ];

    /// The name metrics and logs give it.
    pub fn label(self) -> &'static str {
        match self {
            KeyManagerOperation::Check => "check",
            KeyManagerOperation::Sign => "sign",
            KeyManagerOperation::Unwrap => "unwrap",
        }
    }

    fn index(self) -> usize {
        match self {
            KeyManagerOperation::Check => 0,
            KeyManagerOperation::Sign => 1,
            KeyManagerOperation::Unwrap => 2,
        }
    }
}

impl fmt::Display for KeyManagerOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The key manager's state as this node last saw it. Reachable at creation: the store
/// opens only after the key manager unwrapped its data keys.
#[derive(Debug)]
pub struct KeyManagerHealth {
    provider: String,
    reachable: AtomicBool,
    failures: [AtomicU64; 3],
    required_for_ready: AtomicBool,
}

impl KeyManagerHealth {
    /// The health of the key manager `provider` (`file`, `pkcs11`, `kms`), reachable.
    pub fn new(provider: impl Into<String>) -> Self {
        KeyManagerHealth {
            provider: provider.into(),
            reachable: AtomicBool::new(true),
            failures: Default::default(),
            required_for_ready: AtomicBool::new(false),
        }
    }

    /// The provider's name, as the `provider` label of the metrics.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Whether the last operation asked of the key manager succeeded.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// How many `operation`s failed since start.
    pub fn failures(&self, operation: KeyManagerOperation) -> u64 {
        self.failures[operation.index()].load(Ordering::Relaxed)
    }

    /// Whether `/readyz` answers "not ready" while the key manager is unreachable (the
    /// config's `[keys] ready_requires_key_manager`; off by default, see README).
    pub fn required_for_ready(&self) -> bool {
        self.required_for_ready.load(Ordering::Relaxed)
    }

    /// Sets [`KeyManagerHealth::required_for_ready`].
    pub fn require_for_ready(&self, required: bool) {
        self.required_for_ready.store(required, Ordering::Relaxed);
    }

    /// Records an operation's outcome; logs when reachability changes (not every
    /// failure, so an outage does not flood the log).
    pub fn record(&self, operation: KeyManagerOperation, outcome: Result<(), &KeyManagerError>) {
        match outcome {
            Ok(()) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!(provider = %self.provider, %operation, "key manager reachable again");
                }
            }
            Err(e) => {
                self.failures[operation.index()].fetch_add(1, Ordering::Relaxed);
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::error!(
                        provider = %self.provider,
                        %operation,
                        error = %e,
                        "key manager unreachable: requests keep being served with the data keys in memory; audit digests, re-wrapping and data keys made by other nodes wait for it"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn unavailable() -> KeyManagerError {
        KeyManagerError::Unavailable {
            provider: "kms",
            detail: "connection refused".into(),
        }
    }

    #[test]
    fn failures_are_counted_per_operation_and_reachability_follows_the_last_outcome() {
        let h = KeyManagerHealth::new("kms");
        assert!(h.reachable());
        h.record(KeyManagerOperation::Check, Err(&unavailable()));
        h.record(KeyManagerOperation::Check, Err(&unavailable()));
        h.record(KeyManagerOperation::Sign, Err(&unavailable()));
        assert!(!h.reachable());
        assert_eq!(h.failures(KeyManagerOperation::Check), 2);
        assert_eq!(h.failures(KeyManagerOperation::Sign), 1);
        assert_eq!(h.failures(KeyManagerOperation::Unwrap), 0);
        h.record(KeyManagerOperation::Check, Ok(()));
        assert!(h.reachable());
        // Counters never go back: they are Prometheus counters.
        assert_eq!(h.failures(KeyManagerOperation::Check), 2);
    }
}
