//! The `[keys]` and `[audit]` tables of the config file.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Which key manager holds the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Key files in the data directory (the default).
    #[default]
    File,
    /// A PKCS#11 HSM.
    Pkcs11,
    /// The AWS KMS API.
    Kms,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::File => "file",
            Provider::Pkcs11 => "pkcs11",
            Provider::Kms => "kms",
        })
    }
}

/// `[keys]`: the provider, and the settings of each provider the store may meet (a
/// store migrating between two needs both described).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The key manager that wraps data keys and signs digests.
    #[serde(default)]
    pub provider: Provider,
    /// `[keys.pkcs11]`.
    pub pkcs11: Option<Pkcs11Config>,
    /// `[keys.kms]`.
    pub kms: Option<KmsConfig>,
    /// Seconds between checks that the key manager still answers (default 30); a
    /// change is logged.
    pub health_check_secs: Option<u64>,
    /// Whether `/readyz` answers "not ready" while the key manager is unreachable
    /// (default false: the node keeps serving from the data keys in memory, and only a
    /// data key it cannot unwrap makes it not ready; see README "Key managers").
    #[serde(default)]
    pub ready_requires_key_manager: bool,
}

/// `[keys.pkcs11]`: an HSM through its PKCS#11 module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The module (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's library).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The environment variable holding the user PIN (never the PIN itself in the file).
    #[serde(default = "default_pin_env")]
    pub pin_env: String,
    /// Label of the AES-256 key that wraps data keys (`CKM_AES_GCM`).
    #[serde(default = "default_wrap_label")]
    pub key_label: String,
    /// Label of the EC P-256 key pair that signs audit digests (`CKM_ECDSA`).
    #[serde(default = "default_sign_label")]
    pub signing_key_label: String,
}

fn default_pin_env() -> String {
    "GATEHOUSE_PKCS11_PIN".to_owned()
}
fn default_wrap_label() -> String {
    "gatehouse-kek".to_owned()
}
fn default_sign_label() -> String {
    "gatehouse-audit".to_owned()
}

/// `[keys.kms]`: the AWS KMS API. Credentials come from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsConfig {
    /// The symmetric key that wraps data keys (key id, ARN, or `alias/NAME`).
    pub key_id: String,
    /// The `ECC_NIST_P256` `SIGN_VERIFY` key that signs audit digests.
    pub signing_key_id: String,
    /// The region (default `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Another endpoint speaking the KMS API (default: AWS's for the region).
    pub endpoint_url: Option<String>,
    /// Seconds before a KMS call is given up (default 5).
    pub timeout_secs: Option<u64>,
}

/// `[audit]`: signed digests of the audit chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditDigestConfig {
    /// Seconds between digests (default 300); one is also signed at shutdown.
    #[serde(default = "default_interval")]
    pub digest_interval_secs: u64,
    /// A file each digest is also appended to (JSON lines), out of the database admin's
    /// reach: what `gatehouse audit verify --digests FILE` reads.
    pub digest_file: Option<PathBuf>,
    /// A command each digest is also piped to (one JSON line on its standard input),
    /// e.g. `["logger", "-t", "gatehouse-digest"]` or an uploader to object storage.
    pub digest_command: Option<Vec<String>>,
}

fn default_interval() -> u64 {
    300
}

impl Default for AuditDigestConfig {
    fn default() -> Self {
        AuditDigestConfig {
            digest_interval_secs: default_interval(),
            digest_file: None,
            digest_command: None,
        }
    }
}
