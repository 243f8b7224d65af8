//! What the token service keeps: virtual MFA devices and OpenID Connect providers.
//!
//! An MFA device's TOTP seed is sealed under the master key like every other secret. Its
//! `last_counter` is the replay guard: accepting a code advances it with one conditional
//! `UPDATE`, so two nodes racing with the same code cannot both win. Advancing it is
//! bookkeeping, not a policy change, and does not bump the store generation.

use crate::db::{Conn, Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::User;
use crate::model::{PARTITION, Timestamp, now_ms, ts, validate_path};
use crate::principal::get_in;
use crate::seal::Secret;
use crate::store::{Store, require_account};
use serde::{Deserialize, Serialize};

/// A virtual MFA device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaDevice {
    /// `arn:gatehouse:iam::ACCOUNT:mfa/PATH/NAME`.
    pub serial_number: String,
    /// Owning account.
    pub account_id: String,
    /// The user it is enabled for, if any.
    pub user_name: Option<String>,
    /// When it was enabled.
    pub enabled: Option<Timestamp>,
    /// Creation time.
    pub created: Timestamp,
}

/// An OpenID Connect identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcProvider {
    /// `arn:gatehouse:iam::ACCOUNT:oidc-provider/HOST/PATH`.
    pub arn: String,
    /// Owning account.
    pub account_id: String,
    /// The issuer URL (`https://...`, or `http://` on loopback).
    pub url: String,
    /// Audiences accepted (`aud`).
    pub client_ids: Vec<String>,
    /// Certificate thumbprints, as given.
    pub thumbprints: Vec<String>,
    /// Its tags (`gatehouse:claims` names the claims exposed as condition keys).
    pub tags: Vec<crate::model::Tag>,
    /// An inline JWKS document (JSON) used instead of fetching the provider's.
    pub jwks: Option<String>,
    /// Creation time.
    pub created: Timestamp,
}

pub(crate) fn mfa_aad(serial: &str) -> String {
    format!("mfa-seed:{serial}")
}

const MFA_COLS: &str = "d.serial_number, d.account_id, u.name, d.enabled_ms, d.created_ms";

fn mfa_from(r: &Row) -> Result<MfaDevice> {
    Ok(MfaDevice {
        serial_number: r.text(0)?,
        account_id: r.text(1)?,
        user_name: r.opt_text(2)?,
        enabled: r.opt_i64(3)?.map(ts),
        created: ts(r.i64(4)?),
    })
}

async fn get_mfa_in(c: &mut Conn, account: &str, serial: &str) -> Result<MfaDevice> {
    let row = c
        .opt(
            &format!(
                "SELECT {MFA_COLS} FROM mfa_devices d LEFT JOIN users u ON u.user_id = d.user_id \
                 WHERE d.serial_number = $1 AND d.account_id = $2"
            ),
            args![serial, account],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::MfaDevice, serial))?;
    mfa_from(&row)
}

const OIDC_COLS: &str = "arn, account_id, url, client_ids, thumbprints, jwks, created_ms";

fn oidc_from(r: &Row) -> Result<OidcProvider> {
    let list = |s: String| -> Result<Vec<String>> {
        serde_json::from_str(&s).map_err(|e| StoreError::Validation(e.to_string()))
    };
    Ok(OidcProvider {
        arn: r.text(0)?,
        account_id: r.text(1)?,
        url: r.text(2)?,
        client_ids: list(r.text(3)?)?,
        thumbprints: list(r.text(4)?)?,
        jwks: r.opt_text(5)?,
        created: ts(r.i64(6)?),
        tags: Vec::new(),
    })
}

/// A provider row with its tags.
async fn oidc_with_tags(c: &mut Conn, r: &Row) -> Result<OidcProvider> {
    let mut p = oidc_from(r)?;
    p.tags = crate::credentials::tags_in(c, crate::model::TaggedKind::OidcProvider, &p.arn).await?;
    Ok(p)
}

/// The ARN of the provider for issuer `url` (scheme dropped, as AWS does).
pub fn oidc_provider_arn(account: &str, url: &str) -> String {
    let host_path = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url)
        .trim_end_matches('/');
    format!("arn:{PARTITION}:iam::{account}:oidc-provider/{host_path}")
}

impl Store {
    // -----------------------------------------------------------------------------
    // MFA devices

    /// Creates a virtual MFA device holding `seed` (sealed); `CreateVirtualMFADevice`.
    pub async fn create_virtual_mfa_device(
        &self,
        account: &str,
        path: Option<&str>,
        name: &str,
        seed: &Secret,
    ) -> Result<MfaDevice> {
        let path = path.unwrap_or("/");
        validate_path(path)?;
        if name.is_empty()
            || name.len() > 226
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
        {
            return Err(StoreError::Validation(
                "VirtualMFADeviceName must be 1 to 226 characters of [\\w+=,.@-]".into(),
            ));
        }
        let serial = format!("arn:{PARTITION}:iam::{account}:mfa{path}{name}");
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        let sealed = self.seal_in(&mut tx.conn, &mfa_aad(&serial), seed).await?;
        if tx
            .conn
            .opt(
                "SELECT 1 FROM mfa_devices WHERE serial_number = $1",
                args![serial.as_str()],
            )
            .await?
            .is_some()
        {
            return Err(StoreError::exists(EntityKind::MfaDevice, serial));
        }
        tx.conn
            .exec(
                "INSERT INTO mfa_devices (serial_number, account_id, name, path, seed_sealed, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                args![serial.as_str(), account, name, path, sealed, now_ms()],
            )
            .await?;
        let d = get_mfa_in(&mut tx.conn, account, &serial).await?;
        self.commit(tx).await?;
        Ok(d)
    }

    /// Assigns a device to a user (`EnableMFADevice`, after the caller checked two
    /// consecutive codes); `last_counter` is the counter of the second code.
    pub async fn enable_mfa_device(
        &self,
        account: &str,
        user: &str,
        serial: &str,
        last_counter: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let u = get_in::<User>(&mut tx.conn, account, user).await?;
        let d = get_mfa_in(&mut tx.conn, account, serial).await?;
        if d.user_name.is_some() {
            return Err(StoreError::exists(EntityKind::MfaDevice, serial));
        }
        let enabled = tx
            .conn
            .scalar_i64(
                "SELECT count(*) FROM mfa_devices WHERE user_id = $1",
                args![u.user_id.as_str()],
            )
            .await?;
        if enabled >= crate::model::limits::MFA_DEVICES_PER_USER as i64 {
            return Err(StoreError::LimitExceeded(format!(
                "Cannot exceed quota for MFADevicesInUse: {}",
                crate::model::limits::MFA_DEVICES_PER_USER
            )));
        }
        tx.conn
            .exec(
                "UPDATE mfa_devices SET user_id = $1, enabled_ms = $2, last_counter = $3 \
                 WHERE serial_number = $4",
                args![u.user_id, now_ms(), last_counter, serial],
            )
            .await?;
        self.commit(tx).await
    }

    /// Unassigns a device from its user (`DeactivateMFADevice`).
    pub async fn deactivate_mfa_device(
        &self,
        account: &str,
        user: &str,
        serial: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let u = get_in::<User>(&mut tx.conn, account, user).await?;
        let n = tx
            .conn
            .exec(
                "UPDATE mfa_devices SET user_id = NULL, enabled_ms = NULL \
                 WHERE serial_number = $1 AND account_id = $2 AND user_id = $3",
                args![serial, account, u.user_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::MfaDevice, serial));
        }
        self.commit(tx).await
    }

    /// Deletes a device that is not enabled for anyone (`DeleteVirtualMFADevice`).
    pub async fn delete_virtual_mfa_device(&self, account: &str, serial: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let d = get_mfa_in(&mut tx.conn, account, serial).await?;
        if d.user_name.is_some() {
            return Err(StoreError::DeleteConflict(
                "MFA device is in use; deactivate it first.".into(),
            ));
        }
        tx.conn
            .exec(
                "DELETE FROM mfa_devices WHERE serial_number = $1",
                args![serial],
            )
            .await?;
        self.commit(tx).await
    }

    /// The devices enabled for `user`, or every device of the account when `user` is
    /// `None` (`ListMFADevices`, `ListVirtualMFADevices`).
    pub async fn list_mfa_devices(
        &self,
        account: &str,
        user: Option<&str>,
    ) -> Result<Vec<MfaDevice>> {
        let mut c = self.inner.pool.conn().await?;
        let rows = match user {
            Some(name) => {
                let u = get_in::<User>(&mut c, account, name).await?;
                c.all(
                    &format!(
                        "SELECT {MFA_COLS} FROM mfa_devices d JOIN users u ON u.user_id = d.user_id \
                         WHERE d.user_id = $1 ORDER BY d.serial_number"
                    ),
                    args![u.user_id],
                )
                .await?
            }
            None => {
                c.all(
                    &format!(
                        "SELECT {MFA_COLS} FROM mfa_devices d LEFT JOIN users u ON u.user_id = d.user_id \
                         WHERE d.account_id = $1 ORDER BY d.serial_number"
                    ),
                    args![account],
                )
                .await?
            }
        };
        rows.iter().map(mfa_from).collect()
    }

    /// A device's seed (opened) and last accepted counter, to verify a code. `user` must
    /// be the user it is enabled for.
    pub async fn mfa_seed_for_user(
        &self,
        account: &str,
        user: &str,
        serial: &str,
    ) -> Result<(Secret, Option<i64>)> {
        let mut c = self.inner.pool.conn().await?;
        let u = get_in::<User>(&mut c, account, user).await?;
        let row = c
            .opt(
                "SELECT seed_sealed, last_counter FROM mfa_devices \
                 WHERE serial_number = $1 AND account_id = $2 AND user_id = $3",
                args![serial, account, u.user_id],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::MfaDevice, serial))?;
        let seed = self.open_sealed(&mfa_aad(serial), &row.text(0)?).await?;
        Ok((seed, row.opt_i64(1)?))
    }

    /// The seed of a device not yet enabled (for `EnableMFADevice`'s check).
    pub async fn mfa_seed_unassigned(&self, account: &str, serial: &str) -> Result<Secret> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                "SELECT seed_sealed FROM mfa_devices WHERE serial_number = $1 AND account_id = $2",
                args![serial, account],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::MfaDevice, serial))?;
        self.open_sealed(&mfa_aad(serial), &row.text(0)?).await
    }

    /// Records that the code of `counter` was used; false when that counter (or a later
    /// one) was already used, i.e. the code is a replay. Atomic across nodes.
    pub async fn advance_mfa_counter(&self, serial: &str, counter: i64) -> Result<bool> {
        let mut c = self.inner.pool.conn().await?;
        let n = c
            .exec(
                "UPDATE mfa_devices SET last_counter = $1 WHERE serial_number = $2 \
                 AND (last_counter IS NULL OR last_counter < $1)",
                args![counter, serial],
            )
            .await?;
        Ok(n == 1)
    }

    // -----------------------------------------------------------------------------
    // OpenID Connect providers

    /// Registers an issuer (`CreateOpenIDConnectProvider`).
    pub async fn create_oidc_provider(
        &self,
        account: &str,
        url: &str,
        client_ids: &[String],
        thumbprints: &[String],
        jwks: Option<&str>,
        tags: &[crate::model::Tag],
    ) -> Result<OidcProvider> {
        crate::credentials::validate_tags(tags)?;
        let arn = oidc_provider_arn(account, url);
        let to_json = |v: &[String]| {
            serde_json::to_string(v).map_err(|e| StoreError::Validation(e.to_string()))
        };
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        if tx
            .conn
            .opt(
                "SELECT 1 FROM oidc_providers WHERE arn = $1",
                args![arn.as_str()],
            )
            .await?
            .is_some()
        {
            return Err(StoreError::exists(EntityKind::OidcProvider, arn));
        }
        tx.conn
            .exec(
                "INSERT INTO oidc_providers (arn, account_id, url, client_ids, thumbprints, jwks, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![
                    arn.as_str(),
                    account,
                    url,
                    to_json(client_ids)?,
                    to_json(thumbprints)?,
                    jwks.map(str::to_owned),
                    now_ms()
                ],
            )
            .await?;
        crate::credentials::put_tags(
            &mut tx.conn,
            crate::model::TaggedKind::OidcProvider,
            &arn,
            tags,
        )
        .await?;
        let p = get_oidc_in(&mut tx.conn, account, &arn).await?;
        self.commit(tx).await?;
        Ok(p)
    }

    /// A provider by ARN (`GetOpenIDConnectProvider`).
    pub async fn get_oidc_provider(&self, account: &str, arn: &str) -> Result<OidcProvider> {
        let mut c = self.inner.pool.conn().await?;
        get_oidc_in(&mut c, account, arn).await
    }

    /// Every provider of the account (`ListOpenIDConnectProviders`).
    pub async fn list_oidc_providers(&self, account: &str) -> Result<Vec<OidcProvider>> {
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                &format!(
                    "SELECT {OIDC_COLS} FROM oidc_providers WHERE account_id = $1 ORDER BY arn"
                ),
                args![account],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(oidc_with_tags(&mut c, r).await?);
        }
        Ok(out)
    }

    /// Removes a provider (`DeleteOpenIDConnectProvider`).
    pub async fn delete_oidc_provider(&self, account: &str, arn: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM oidc_providers WHERE arn = $1 AND account_id = $2",
                args![arn, account],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::OidcProvider, arn));
        }
        tx.conn
            .exec(
                "DELETE FROM tags WHERE resource_kind = 'oidc-provider' AND resource_id = $1",
                args![arn],
            )
            .await?;
        self.commit(tx).await
    }

    /// Adds (`add = true`) or removes an audience
    /// (`Add/RemoveClientIDToOpenIDConnectProvider`); adding one already there is a no-op.
    pub async fn update_oidc_client_id(
        &self,
        account: &str,
        arn: &str,
        client_id: &str,
        add: bool,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let p = get_oidc_in(&mut tx.conn, account, arn).await?;
        let mut ids = p.client_ids;
        if add {
            if !ids.iter().any(|c| c == client_id) {
                ids.push(client_id.to_owned());
            }
        } else {
            ids.retain(|c| c != client_id);
        }
        let json =
            serde_json::to_string(&ids).map_err(|e| StoreError::Validation(e.to_string()))?;
        tx.conn
            .exec(
                "UPDATE oidc_providers SET client_ids = $1 WHERE arn = $2",
                args![json, arn],
            )
            .await?;
        self.commit(tx).await
    }
}

async fn get_oidc_in(c: &mut Conn, account: &str, arn: &str) -> Result<OidcProvider> {
    let row = c
        .opt(
            &format!("SELECT {OIDC_COLS} FROM oidc_providers WHERE arn = $1 AND account_id = $2"),
            args![arn, account],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::OidcProvider, arn))?;
    oidc_with_tags(c, &row).await
}
