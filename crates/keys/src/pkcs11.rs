//! The `pkcs11` provider: keys in an HSM, used through its PKCS#11 module.
//!
//! Data keys are wrapped by `CKM_AES_GCM` encryption inside the token under an AES key
//! (`key_label`): `iv || ciphertext || tag`. Audit digests are signed by `CKM_ECDSA` over
//! their SHA-256 with an EC P-256 private key (`signing_key_label`); its public key is
//! read from the token's public-key object of the same label. Key material never leaves
//! the token. Calls block, so they run on tokio's blocking pool; a failed call reopens
//! the session once (an HSM restarted) before it gives up, and when no session opens,
//! the module is initialized afresh (a token removed and inserted again is seen only by
//! a fresh `C_Initialize` with some modules, SoftHSM2 among them).

use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use gatehouse_secret::Secret;
use gatehouse_store::{KeyEncryption, KeyFuture, KeyManagerError};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

use crate::config::Pkcs11Config;
use crate::{DigestSigner, PublicKey};

const PROVIDER: &str = "pkcs11";
const DATA_KEY_AAD: &[u8] = b"gatehouse/data-key/v1";
const IV_LEN: usize = 12;

fn unavailable(what: &str, e: impl std::fmt::Display) -> KeyManagerError {
    KeyManagerError::Unavailable {
        provider: PROVIDER,
        detail: format!("{what}: {e}"),
    }
}

fn refused(detail: String) -> KeyManagerError {
    KeyManagerError::Refused {
        provider: PROVIDER,
        detail,
    }
}

/// An HSM token, logged in.
pub(crate) struct Hsm {
    inner: Arc<Inner>,
}

struct Inner {
    config: Pkcs11Config,
    pin: Secret,
    connection: Mutex<Connection>,
}

/// The initialized module and the logged-in session, replaced together when the token
/// goes away.
#[derive(Default)]
struct Connection {
    context: Option<Pkcs11>,
    session: Option<Session>,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hsm {{ module: {}, token: {} }}",
            self.inner.config.module.display(),
            self.inner.config.token_label
        )
    }
}

impl Hsm {
    /// Loads the module, finds the token, logs in, and finds both keys.
    pub(crate) async fn open(config: &Pkcs11Config) -> Result<Hsm, KeyManagerError> {
        let pin = std::env::var(&config.pin_env).map_err(|_| {
            KeyManagerError::Config(format!(
                "the PKCS#11 user PIN is read from ${}, which is not set",
                config.pin_env
            ))
        })?;
        let config = config.clone();
        let pin = Secret::from_string(pin);
        tokio::task::spawn_blocking(move || {
            let inner = Inner {
                config,
                pin,
                connection: Mutex::new(Connection::default()),
            };
            inner.with_session(|s, inner| {
                inner.find_key(s, ObjectClass::SECRET_KEY, &inner.config.key_label)?;
                inner.find_key(s, ObjectClass::PRIVATE_KEY, &inner.config.signing_key_label)?;
                Ok(())
            })?;
            Ok(Hsm {
                inner: Arc::new(inner),
            })
        })
        .await
        .map_err(|e| unavailable("blocking task", e))?
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Session, &Inner) -> Result<T, KeyManagerError> + Send + 'static,
    ) -> Result<T, KeyManagerError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.with_session(f))
            .await
            .map_err(|e| unavailable("blocking task", e))?
    }

    fn descriptor_for(&self, key_label: &str) -> String {
        format!("pkcs11:{}/{key_label}", self.inner.config.token_label)
    }
}

impl Inner {
    /// Loads and initializes the module.
    fn initialize(&self) -> Result<Pkcs11, KeyManagerError> {
        let context = Pkcs11::new(&self.config.module)
            .map_err(|e| unavailable(&format!("load {}", self.config.module.display()), e))?;
        context
            .initialize(CInitializeArgs::OsThreads)
            .map_err(|e| unavailable("C_Initialize", e))?;
        Ok(context)
    }

    /// A session on the token, opened with `conn`'s module, or with the module initialized
    /// afresh when that fails (or none is loaded yet).
    fn reconnect(&self, conn: &mut Connection) -> Result<(), KeyManagerError> {
        conn.session = None;
        if let Some(context) = &conn.context
            && let Ok(session) = self.open_session(context)
        {
            conn.session = Some(session);
            return Ok(());
        }
        // The old module's sessions are gone; dropping it finalizes it before the new one
        // is initialized.
        conn.context = None;
        let context = self.initialize()?;
        let session = self.open_session(&context);
        conn.context = Some(context);
        conn.session = Some(session?);
        Ok(())
    }

    fn open_session(&self, context: &Pkcs11) -> Result<Session, KeyManagerError> {
        let slots = context
            .get_slots_with_token()
            .map_err(|e| unavailable("C_GetSlotList", e))?;
        let slot = slots
            .into_iter()
            .find(|s| {
                context
                    .get_token_info(*s)
                    .is_ok_and(|t| t.label() == self.config.token_label)
            })
            .ok_or_else(|| {
                unavailable(
                    "token",
                    format!("no token labelled {:?} is present", self.config.token_label),
                )
            })?;
        let session = context
            .open_ro_session(slot)
            .map_err(|e| unavailable("C_OpenSession", e))?;
        let pin = AuthPin::new(self.pin.expose_str().unwrap_or_default().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            // Another session of this process is logged in already: the token is shared.
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => return Err(refused(format!("C_Login: {e}"))),
        }
        Ok(session)
    }

    /// Runs `f` with the session, opening it first if needed; on a failure, reopens the
    /// session once and tries again.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session, &Inner) -> Result<T, KeyManagerError>,
    ) -> Result<T, KeyManagerError> {
        let mut conn = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Probe the session; a missing or dead one (token removed, HSM restarted) is
        // replaced.
        let alive = conn
            .session
            .as_ref()
            .is_some_and(|s| s.get_session_info().is_ok());
        if !alive {
            self.reconnect(&mut conn)?;
        }
        let session = conn
            .session
            .as_ref()
            .ok_or_else(|| unavailable("session", "not open"))?;
        let outcome = f(session, self);
        if outcome.as_ref().is_err_and(KeyManagerError::is_unavailable) {
            conn.session = None;
        }
        outcome
    }

    fn find_key(
        &self,
        s: &Session,
        class: ObjectClass,
        label: &str,
    ) -> Result<ObjectHandle, KeyManagerError> {
        let found = s
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| unavailable("C_FindObjects", e))?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(unavailable(
                "key",
                format!(
                    "token {:?} holds no {class} labelled {label:?}",
                    self.config.token_label
                ),
            )),
            _ => Err(KeyManagerError::Config(format!(
                "token {:?} holds several {class} objects labelled {label:?}",
                self.config.token_label
            ))),
        }
    }
}

fn gcm(iv: &mut [u8]) -> Result<Mechanism<'_>, KeyManagerError> {
    GcmParams::new(iv, DATA_KEY_AAD, 128.into())
        .map(Mechanism::AesGcm)
        .map_err(|e| refused(format!("GCM parameters: {e}")))
}

impl KeyEncryption for Hsm {
    fn wrapping_key(&self) -> String {
        self.descriptor_for(&self.inner.config.key_label)
    }

    fn wrap<'a>(&'a self, data_key: &'a Secret) -> KeyFuture<'a, Vec<u8>> {
        let data_key = data_key.clone();
        Box::pin(self.blocking(move |s, inner| {
            let key = inner.find_key(s, ObjectClass::SECRET_KEY, &inner.config.key_label)?;
            let mut iv = [0u8; IV_LEN];
            rand::fill(&mut iv[..]);
            let mut iv_param = iv;
            let sealed = s
                .encrypt(&gcm(&mut iv_param)?, key, data_key.expose())
                .map_err(|e| unavailable("C_Encrypt", e))?;
            let mut out = iv.to_vec();
            out.extend_from_slice(&sealed);
            Ok(out)
        }))
    }

    fn unwrap<'a>(&'a self, wrapped_by: &'a str, wrapped: &'a [u8]) -> KeyFuture<'a, Secret> {
        let prefix = format!("pkcs11:{}/", self.inner.config.token_label);
        let Some(label) = wrapped_by.strip_prefix(&prefix).map(str::to_owned) else {
            return gatehouse_store::seal::ready(Err(KeyManagerError::NotHeld {
                wrapped_by: wrapped_by.to_owned(),
            }));
        };
        let wrapped = wrapped.to_vec();
        Box::pin(self.blocking(move |s, inner| {
            if wrapped.len() <= IV_LEN {
                return Err(refused("wrapped data key is truncated".into()));
            }
            let key = inner.find_key(s, ObjectClass::SECRET_KEY, &label)?;
            let (iv, sealed) = wrapped.split_at(IV_LEN);
            let mut iv = iv.to_vec();
            s.decrypt(&gcm(&mut iv)?, key, sealed)
                .map(Secret::new)
                .map_err(|e| refused(format!("C_Decrypt of the data key with {label:?}: {e}")))
        }))
    }
}

impl DigestSigner for Hsm {
    fn descriptor(&self) -> String {
        self.descriptor_for(&self.inner.config.signing_key_label)
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> KeyFuture<'a, Vec<u8>> {
        let hash = Sha256::digest(message).to_vec();
        Box::pin(self.blocking(move |s, inner| {
            let key =
                inner.find_key(s, ObjectClass::PRIVATE_KEY, &inner.config.signing_key_label)?;
            s.sign(&Mechanism::Ecdsa, key, &hash)
                .map_err(|e| unavailable("C_Sign", e))
        }))
    }

    fn public_key(&self) -> KeyFuture<'_, PublicKey> {
        Box::pin(self.blocking(move |s, inner| {
            let key =
                inner.find_key(s, ObjectClass::PUBLIC_KEY, &inner.config.signing_key_label)?;
            let attrs = s
                .get_attributes(key, &[cryptoki::object::AttributeType::EcPoint])
                .map_err(|e| unavailable("C_GetAttributeValue", e))?;
            let point = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p),
                    _ => None,
                })
                .ok_or_else(|| refused("the signing key has no CKA_EC_POINT".into()))?;
            ec_point(&point)
                .map(PublicKey::P256)
                .ok_or_else(|| refused("the signing key is not an EC P-256 key".into()))
        }))
    }
}

/// CKA_EC_POINT is the uncompressed point, usually wrapped in a DER OCTET STRING.
fn ec_point(value: &[u8]) -> Option<p256::ecdsa::VerifyingKey> {
    let raw = match value {
        [0x04, 0x41, rest @ ..] if rest.len() == 0x41 => rest,
        _ => value,
    };
    p256::ecdsa::VerifyingKey::from_sec1_bytes(raw).ok()
}
