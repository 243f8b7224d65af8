//! The one error type of the store. Its variants line up with the AWS IAM error codes
//! the server returns (`NoSuchEntity`, `EntityAlreadyExists`, `LimitExceeded`,
//! `DeleteConflict`, `ValidationError`), so the server maps them without guessing.
//! Messages never contain secret material: database errors are reduced to their text,
//! and sealing errors carry no data at all.

use std::fmt;

/// The kind of entity an error is about; its `Display` is the word AWS uses in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// An account.
    Account,
    /// An IAM user.
    User,
    /// An IAM group.
    Group,
    /// An IAM role.
    Role,
    /// A customer-managed policy.
    Policy,
    /// A version of a managed policy.
    PolicyVersion,
    /// An inline policy of a user, group or role.
    InlinePolicy,
    /// A managed-policy attachment.
    Attachment,
    /// An access key.
    AccessKey,
    /// A guardrail policy attached to an account.
    Guardrail,
    /// A key of the `meta` key/value table.
    Meta,
    /// A virtual MFA device.
    MfaDevice,
    /// An OpenID Connect identity provider.
    OidcProvider,
    /// An AI model deployment of the gateway.
    Deployment,
    /// A fine-tuning job created through the gateway.
    FineTuningJob,
    /// An upstream MCP server of the gateway.
    McpServer,
    /// A tool of an upstream MCP server.
    McpTool,
    /// An identity source of sign-in (an OpenID Connect IdP people sign in with).
    SigninSource,
    /// A sign-in assignment (an IdP group or user → a role).
    SigninAssignment,
    /// A knowledge base of the retrieval gateway.
    KnowledgeBase,
    /// A just-in-time access eligibility.
    Eligibility,
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntityKind::Account => "account",
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Role => "role",
            EntityKind::Policy => "policy",
            EntityKind::PolicyVersion => "policy version",
            EntityKind::InlinePolicy => "policy",
            EntityKind::Attachment => "policy attachment",
            EntityKind::AccessKey => "access key",
            EntityKind::Guardrail => "guardrail",
            EntityKind::Meta => "meta key",
            EntityKind::MfaDevice => "MFA device",
            EntityKind::OidcProvider => "OpenID Connect provider",
            EntityKind::Deployment => "deployment",
            EntityKind::FineTuningJob => "fine-tuning job",
            EntityKind::McpServer => "MCP server",
            EntityKind::McpTool => "MCP tool",
            EntityKind::SigninSource => "identity source",
            EntityKind::SigninAssignment => "sign-in assignment",
            EntityKind::KnowledgeBase => "knowledge base",
            EntityKind::Eligibility => "eligibility",
        })
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// AWS `NoSuchEntity`.
    #[error("The {kind} with name {name} cannot be found.")]
    NoSuchEntity {
        /// What was looked for.
        kind: EntityKind,
        /// Its name (or id).
        name: String,
    },
    /// AWS `EntityAlreadyExists`.
    #[error("The {kind} with name {name} already exists.")]
    EntityAlreadyExists {
        /// What was being created.
        kind: EntityKind,
        /// Its name (or id).
        name: String,
    },
    /// AWS `LimitExceeded`.
    #[error("{0}")]
    LimitExceeded(String),
    /// AWS `DeleteConflict`.
    #[error("{0}")]
    DeleteConflict(String),
    /// AWS `ValidationError`.
    #[error("{0}")]
    Validation(String),
    /// The database failed (connection, I/O, constraint we did not expect).
    #[error("database error: {0}")]
    Database(String),
    /// Sealing or unsealing a secret failed (wrong master key, tampered value). Carries
    /// no detail on purpose.
    #[error("cannot open sealed value: wrong master key or corrupted data")]
    Crypto,
    /// The master key could not be loaded or created.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The key manager holding the key-encryption key failed.
    #[error("key manager: {0}")]
    KeyManager(#[from] crate::keys::KeyManagerError),
    /// A migration this database already applied has different text in this build: the
    /// schema it describes may not be the one the database has, so the store refuses to
    /// open rather than run on a schema nobody wrote down.
    #[error(
        "store migration {version} ({description}) was edited after this database applied it \
         (recorded checksum {recorded}, this build's {current}); restore its text and add a new migration instead"
    )]
    MigrationChanged {
        /// The migration's version.
        version: i64,
        /// Its description.
        description: String,
        /// SHA-256 of the text the database applied.
        recorded: String,
        /// SHA-256 of this build's text.
        current: String,
    },
}

impl StoreError {
    pub(crate) fn no_such(kind: EntityKind, name: impl Into<String>) -> Self {
        StoreError::NoSuchEntity {
            kind,
            name: name.into(),
        }
    }

    pub(crate) fn exists(kind: EntityKind, name: impl Into<String>) -> Self {
        StoreError::EntityAlreadyExists {
            kind,
            name: name.into(),
        }
    }

    /// The AWS error code this error is reported as.
    pub fn aws_code(&self) -> &'static str {
        match self {
            StoreError::NoSuchEntity { .. } => "NoSuchEntity",
            StoreError::EntityAlreadyExists { .. } => "EntityAlreadyExists",
            StoreError::LimitExceeded(_) => "LimitExceeded",
            StoreError::DeleteConflict(_) => "DeleteConflict",
            StoreError::Validation(_) => "ValidationError",
            StoreError::Database(_)
            | StoreError::Crypto
            | StoreError::MasterKey(_)
            | StoreError::KeyManager(_)
            | StoreError::MigrationChanged { .. } => "ServiceFailure",
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx errors carry SQL text and server messages, never bound values, so their
        // Display is safe to keep.
        StoreError::Database(e.to_string())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
