//! Gatehouse's identity and policy store.
//!
//! Users, groups, roles, managed and inline policies, attachments, access keys, tags,
//! accounts and guardrails, modelled after AWS IAM, behind one [`Store`] handle that
//! runs on SQLite (the embedded default: one file in the data directory) or
//! PostgreSQL (for several stateless nodes). The server turns [`Store`] calls into the
//! IAM Query API and feeds [`Store::load_principal_policies`] to the policy engine.
//!
//! Guarantees: each mutating call is one transaction (an error changes nothing); a
//! committed write is durable (SQLite runs in WAL mode with `synchronous=FULL`);
//! secrets are sealed with AES-256-GCM under a data key before they are stored, the data
//! key itself stored only wrapped by a key manager's key ([`KeyEncryption`]: the
//! [`MasterKey`] file here, PKCS#11 and AWS KMS in `gatehouse-keys`), and secrets never
//! appear in `Debug` output or error messages; every committed write bumps
//! [`Store::policy_generation`] and is announced to [`Store::subscribe`]rs
//! (`NOTIFY gatehouse_changes` on PostgreSQL).
//!
//! ```no_run
//! # async fn demo() -> Result<(), gatehouse_store::StoreError> {
//! use gatehouse_store::{MasterKey, NewUser, Store};
//! let dir = std::path::Path::new("./gatehouse-data");
//! let store = Store::open_sqlite(dir, MasterKey::load_or_create(dir)?).await?;
//! let account = store.ensure_default_account("111122223333", "default").await?;
//! let alice = store
//!     .create_user(&account.account_id, &NewUser { name: "alice".into(), ..Default::default() })
//!     .await?;
//! println!("{}", alice.arn());
//! # Ok(()) }
//! ```

mod access;
mod audit;
mod credentials;
mod db;
mod digest;
mod error;
mod federation;
mod gateway;
mod identity;
mod key_health;
mod keys;
mod knowledge;
mod mcp;
mod model;
mod paging;
mod policies;
mod principal;
pub mod seal;
mod signin;
mod store;
mod usage;

pub use access::{
    AccessGuard, AccessRequestRecord, AccessStateChange, ActiveElevation, ApproverRef, Eligibility,
    NewAccessRequest, NewEligibility,
};
pub use audit::{Appended, AuditEntry, AuditVerification, PendingAudit};
pub use digest::{AuditDigest, DigestBody, DigestFinding, DigestVerification};
pub use error::{EntityKind, Result, StoreError};
pub use federation::{MfaDevice, OidcProvider, oidc_provider_arn};
pub use gateway::{
    Deployment, FineTuningJobRecord, InvocationLog, NewDeployment, validate_deprecation_date,
    validate_model_id,
};
pub use key_health::{KeyManagerHealth, KeyManagerOperation};
pub use keys::{DataKeyInfo, KeyChain, KeyEncryption, KeyFuture, KeyManagerError, ResealProgress};
pub use knowledge::{
    KnowledgeBackend, KnowledgeBase, NewKnowledgeBase, validate_knowledge_base_name,
};
pub use mcp::{
    McpServer, McpToolPin, McpTransport, NewMcpServer, validate_mcp_server_name,
    validate_mcp_tool_name,
};
pub use model::{
    AccessKey, AccessKeyStatus, Account, AttachedPolicy, Group, Guardrail, InlinePolicy, LastUsed,
    ListParams, NewPolicy, NewRole, NewUser, PARTITION, Page, Policy, PolicySource, PolicyVersion,
    PrincipalKind, PrincipalPolicies, PrincipalRef, Role, RoleUpdate, SourcedPolicy, Tag,
    TaggedKind, Timestamp, User, iam_arn, limits,
};
pub use seal::{MasterKey, SealingKey, Secret};
pub use signin::{
    NewAuthorizationCode, NewSigninAssignment, NewSigninSource, SigninAssignment, SigninClaimNames,
    SigninSource,
};
pub use store::{
    BackendKind, CHANGES_CHANNEL, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_SQLITE_PAGE_CACHE_KIB,
    DatabaseTls, SQLITE_FILE, Store, StoreOptions, Subscription,
};
pub use usage::{UsageCount, UsageSync};
