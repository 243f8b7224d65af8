//! The state every face shares: the store, the account's configuration, the clock, the
//! caches of compiled principals, session policies and verified access keys, the
//! session-token signing ring, and the audit writers. A face holds a [`Core`] (the server
//! holds one in its state) and calls the pipeline's steps on it.

use crate::Clock;
use crate::audit::AuditWriters;
use crate::authenticate::KeyCache;
use crate::authz::{CompiledPrincipal, PolicyCache};
use crate::error::PipelineError;
use crate::session::{self, SessionPolicyCache};
use gatehouse_auth::Secret;
use gatehouse_auth::session::SigningKeyRing;
use gatehouse_store::{PrincipalRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The account a Gatehouse serves and its bootstrap credentials.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Region written into ARNs (`local` by default).
    pub region: String,
    /// The bootstrap root access key id.
    pub root_access_key_id: String,
    /// The bootstrap root secret.
    pub root_secret: Secret,
    /// The default account.
    pub account_id: String,
}

/// What every face shares (see the module docs).
#[derive(Debug)]
pub struct Core {
    /// The store.
    pub store: Store,
    /// The account and its bootstrap credentials.
    pub config: CoreConfig,
    /// Compiled policies per principal, for one store generation.
    pub cache: PolicyCache,
    /// Session policies compiled once per session.
    pub session_policies: SessionPolicyCache,
    /// Verified access keys (Bearer `ACCESS_KEY_ID:SECRET`), for one store generation.
    pub keys: KeyCache,
    /// The audit writers: the group commit (the caller waits for durability) and the
    /// queue (the caller does not).
    pub audit: AuditWriters,
    /// Where request paths read the time (decisions, tokens, audit records, budgets): the
    /// system clock, or a test's [`crate::ManualClock`].
    pub clock: Clock,
    /// When this node last recorded each access key's use (see [`Core::note_key_use`]).
    key_use: Mutex<HashMap<String, KeyUse>>,
    /// The session-token signing keys (shared by every node through the store), replaced
    /// when a rotation is seen: read it with [`Core::ring`].
    ring: RwLock<Arc<SigningKeyRing>>,
}

/// The last recorded use of an access key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyUse {
    at: Instant,
    service: String,
    region: String,
}

/// AWS reports an access key's last use with coarse precision; recording it at most this
/// often per key keeps a database write off almost every request.
const KEY_USE_INTERVAL: Duration = Duration::from_secs(60);

impl Core {
    /// The core over an opened store, with the signing ring to use and the clock to read.
    pub fn new(store: Store, config: CoreConfig, ring: SigningKeyRing, clock: Clock) -> Core {
        Core {
            store,
            config,
            cache: PolicyCache::default(),
            session_policies: SessionPolicyCache::default(),
            keys: KeyCache::default(),
            audit: AuditWriters::default(),
            clock,
            key_use: Mutex::new(HashMap::new()),
            ring: RwLock::new(Arc::new(ring)),
        }
    }

    /// Records that an access key was used (for `GetAccessKeyLastUsed`), unless this node
    /// recorded the same service and region for it within [`KEY_USE_INTERVAL`]. A failure
    /// is logged, not fatal: bookkeeping must not turn a valid request away.
    pub async fn note_key_use(&self, access_key_id: &str, service: &str, region: &str) {
        let now = Instant::now();
        let due = match self.key_use.lock() {
            Ok(mut seen) => {
                let due = seen.get(access_key_id).is_none_or(|u| {
                    now.duration_since(u.at) >= KEY_USE_INTERVAL
                        || u.service != service
                        || u.region != region
                });
                if due {
                    let fresh = KeyUse {
                        at: now,
                        service: service.to_owned(),
                        region: region.to_owned(),
                    };
                    seen.insert(access_key_id.to_owned(), fresh);
                }
                due
            }
            Err(_) => true,
        };
        if due
            && let Err(e) = self
                .store
                .record_access_key_use(access_key_id, service, region)
                .await
        {
            tracing::warn!(error = %e, access_key_id, "could not record access key use");
        }
    }

    /// The compiled policies of a user (cached per store generation).
    pub async fn user_policies(
        &self,
        account_id: &str,
        user_name: &str,
    ) -> Result<Arc<CompiledPrincipal>, PipelineError> {
        self.principal_policies(account_id, PrincipalRef::User(user_name))
            .await
    }

    /// The compiled policies of a role, for its sessions (cached per store generation).
    pub async fn role_policies(
        &self,
        account_id: &str,
        role_name: &str,
    ) -> Result<Arc<CompiledPrincipal>, PipelineError> {
        self.principal_policies(account_id, PrincipalRef::Role(role_name))
            .await
    }

    async fn principal_policies(
        &self,
        account_id: &str,
        who: PrincipalRef<'_>,
    ) -> Result<Arc<CompiledPrincipal>, PipelineError> {
        let arn_key = match who {
            PrincipalRef::User(n) => format!("{account_id}/user/{n}"),
            PrincipalRef::Role(n) => format!("{account_id}/role/{n}"),
        };
        if let Some(p) = self.cache.get(&arn_key) {
            return Ok(p);
        }
        let info = self.store.load_principal_policies(account_id, who).await?;
        let compiled = CompiledPrincipal::compile(info).map_err(|e| {
            tracing::error!(principal = arn_key, error = %e, "stored policy does not compile; denying");
            PipelineError::PoliciesUnreadable
        })?;
        let compiled = Arc::new(compiled);
        self.cache.put(arn_key, compiled.clone());
        Ok(compiled)
    }

    /// The session-token signing keys in force on this node.
    pub fn ring(&self) -> Arc<SigningKeyRing> {
        match self.ring.read() {
            Ok(r) => Arc::clone(&r),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the signing keys again from the store (after a rotation on any node). Older
    /// keys stay in the ring, so sessions they signed keep verifying.
    pub async fn reload_ring(&self) {
        match session::load_or_create_ring(&self.store).await {
            Ok(r) => {
                let r = Arc::new(r);
                if r.active_kid() != self.ring().active_kid() {
                    tracing::info!(kid = r.active_kid(), "session signing key rotated");
                }
                match self.ring.write() {
                    Ok(mut g) => *g = r,
                    Err(poisoned) => *poisoned.into_inner() = r,
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not reload the session signing keys"),
        }
    }
}
