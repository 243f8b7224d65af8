//! The `kms` provider: the AWS KMS API, at AWS or any endpoint speaking it.
//!
//! Data keys are wrapped with `Encrypt` under the symmetric key `key_id` (with an
//! encryption context naming Gatehouse's purpose, so a blob lifted into another
//! `Decrypt` call does not open) and unwrapped with `Decrypt`; digests are signed with
//! `Sign` (`ECDSA_SHA_256`, RAW message) by `signing_key_id`, whose public key comes from
//! `GetPublicKey`. Credentials are the standard `AWS_*` environment variables. Calls
//! time out (`timeout_secs`, default 5 s) so an unreachable KMS fails a start quickly.

use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use gatehouse_secret::Secret;
use gatehouse_store::{KeyEncryption, KeyFuture, KeyManagerError};

use crate::config::KmsConfig;
use crate::{DigestSigner, PublicKey};

const PROVIDER: &str = "kms";
const CONTEXT_KEY: &str = "gatehouse";
const CONTEXT_VALUE: &str = "data-key";

/// A KMS client with the two keys it uses.
pub(crate) struct Kms {
    client: Client,
    key_id: String,
    signing_key_id: String,
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Kms {{ key_id: {}, signing_key_id: {} }}",
            self.key_id, self.signing_key_id
        )
    }
}

/// Sorts an SDK error into "could not reach" and "answered no", keeping the service's
/// message (which never holds key material or plaintext).
fn classify<E, R>(what: &str, e: aws_sdk_kms::error::SdkError<E, R>) -> KeyManagerError
where
    E: std::error::Error + aws_sdk_kms::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_kms::error::SdkError;
    match &e {
        SdkError::ServiceError(s) => KeyManagerError::Refused {
            provider: PROVIDER,
            detail: format!(
                "{what}: {}: {}",
                s.err().code().unwrap_or("error"),
                s.err().message().unwrap_or("")
            ),
        },
        _ => KeyManagerError::Unavailable {
            provider: PROVIDER,
            detail: format!("{what}: {}", aws_sdk_kms::error::DisplayErrorContext(&e)),
        },
    }
}

impl Kms {
    /// A client for `config`; nothing is called yet.
    pub(crate) fn open(config: &KmsConfig) -> Result<Kms, KeyManagerError> {
        let access_key = std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
            KeyManagerError::Config(
                "the kms provider reads credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            )
        })?;
        let secret_key = std::env::var("AWS_SECRET_ACCESS_KEY")
            .map_err(|_| KeyManagerError::Config("AWS_SECRET_ACCESS_KEY is not set".into()))?;
        let session_token = std::env::var("AWS_SESSION_TOKEN").ok();
        let credentials = aws_credential_types::Credentials::new(
            access_key,
            secret_key,
            session_token,
            None,
            "environment",
        );
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(5).max(1));
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut builder = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(Kms {
            client: Client::from_conf(builder.build()),
            key_id: config.key_id.clone(),
            signing_key_id: config.signing_key_id.clone(),
        })
    }

    async fn encrypt(&self, plaintext: Vec<u8>) -> Result<(String, Vec<u8>), KeyManagerError> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext))
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .send()
            .await
            .map_err(|e| classify("Encrypt", e))?;
        let blob = out
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| KeyManagerError::Refused {
                provider: PROVIDER,
                detail: "Encrypt returned no ciphertext".into(),
            })?;
        // The key's ARN, so that a later key id (or alias) change still unwraps.
        let arn = out.key_id().unwrap_or(&self.key_id).to_owned();
        Ok((arn, blob))
    }
}

impl KeyEncryption for Kms {
    fn wrapping_key(&self) -> String {
        format!("kms:{}", self.key_id)
    }

    fn wrap<'a>(&'a self, data_key: &'a Secret) -> KeyFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let (_, blob) = self.encrypt(data_key.expose().to_vec()).await?;
            Ok(blob)
        })
    }

    fn unwrap<'a>(&'a self, wrapped_by: &'a str, wrapped: &'a [u8]) -> KeyFuture<'a, Secret> {
        Box::pin(async move {
            let Some(key) = wrapped_by.strip_prefix("kms:") else {
                return Err(KeyManagerError::NotHeld {
                    wrapped_by: wrapped_by.to_owned(),
                });
            };
            let out = self
                .client
                .decrypt()
                .key_id(key)
                .ciphertext_blob(Blob::new(wrapped.to_vec()))
                .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
                .send()
                .await
                .map_err(|e| classify("Decrypt", e))?;
            out.plaintext
                .map(|b| Secret::new(b.into_inner()))
                .ok_or_else(|| KeyManagerError::Refused {
                    provider: PROVIDER,
                    detail: "Decrypt returned no plaintext".into(),
                })
        })
    }
}

impl DigestSigner for Kms {
    fn descriptor(&self) -> String {
        format!("kms:{}", self.signing_key_id)
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> KeyFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let out = self
                .client
                .sign()
                .key_id(&self.signing_key_id)
                .message(Blob::new(message.to_vec()))
                .message_type(MessageType::Raw)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .send()
                .await
                .map_err(|e| classify("Sign", e))?;
            out.signature
                .map(Blob::into_inner)
                .ok_or_else(|| KeyManagerError::Refused {
                    provider: PROVIDER,
                    detail: "Sign returned no signature".into(),
                })
        })
    }

    fn public_key(&self) -> KeyFuture<'_, PublicKey> {
        Box::pin(async move {
            use p256::pkcs8::DecodePublicKey as _;
            let out = self
                .client
                .get_public_key()
                .key_id(&self.signing_key_id)
                .send()
                .await
                .map_err(|e| classify("GetPublicKey", e))?;
            let der = out.public_key.ok_or_else(|| KeyManagerError::Refused {
                provider: PROVIDER,
                detail: "GetPublicKey returned no key".into(),
            })?;
            p256::ecdsa::VerifyingKey::from_public_key_der(der.as_ref())
                .map(PublicKey::P256)
                .map_err(|_| KeyManagerError::Refused {
                    provider: PROVIDER,
                    detail: format!(
                        "{} is not an ECC_NIST_P256 signing key",
                        self.signing_key_id
                    ),
                })
        })
    }
}
