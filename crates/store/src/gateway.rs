//! What the AI gateway keeps: deployments (model id → upstream endpoint, with the
//! provider key sealed so that it never rests in plaintext), each deployment's guardrail
//! settings, sealed prompt/response logs, and fine-tuning jobs created through the gateway.
//!
//! Deployment and guardrail writes bump the generation like every policy write, so the
//! gateway's in-memory routing table is refreshed by the same signal as compiled policies.
//! Invocation logs and job records are bookkeeping and do not.

use crate::db::{Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{Timestamp, now_ms, ts};
use crate::seal::Secret;
use crate::store::Store;

/// A model deployment as stored (the provider key stays sealed until asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The owning account.
    pub account_id: String,
    /// The model id callers use (`model` in the request body).
    pub model_id: String,
    /// Provider name, for `ai:Provider` (e.g. `vllm`, `openai`).
    pub provider: String,
    /// Upstream base URL, e.g. `http://10.0.0.5:8000/v1`.
    pub base_url: String,
    /// The model name to send upstream when it differs from `model_id`.
    pub upstream_model: Option<String>,
    /// Whether a provider key is stored.
    pub has_key: bool,
    /// Whether prompts and responses are logged (sealed).
    pub log_invocations: bool,
    /// Guardrail settings (JSON text), when any.
    pub guardrail: Option<String>,
    /// The date (`YYYY-MM-DD`) the model is deprecated, when set.
    pub deprecated_on: Option<String>,
    /// Created.
    pub created: Timestamp,
    /// Last changed.
    pub updated: Timestamp,
}

/// What to write for a deployment.
#[derive(Debug, Clone, Default)]
pub struct NewDeployment {
    /// Model id.
    pub model_id: String,
    /// Provider name.
    pub provider: String,
    /// Upstream base URL.
    pub base_url: String,
    /// Upstream model name, if different.
    pub upstream_model: Option<String>,
    /// Provider key (sealed before it is stored).
    pub api_key: Option<Secret>,
    /// Log prompts and responses.
    pub log_invocations: bool,
    /// The date (`YYYY-MM-DD`) the model is deprecated.
    pub deprecated_on: Option<String>,
    /// On update: drop the stored provider key (what moving `base_url` to another host
    /// without a new key needs).
    pub clear_api_key: bool,
}

/// One sealed invocation log entry, opened.
#[derive(Debug, Clone)]
pub struct InvocationLog {
    /// Sequence number.
    pub id: i64,
    /// Model id.
    pub model_id: String,
    /// When.
    pub time: Timestamp,
    /// Request id (matches the audit record).
    pub request_id: String,
    /// Caller ARN.
    pub principal: String,
    /// The logged prompt and response (JSON text), unsealed.
    pub content: Secret,
}

/// A fine-tuning job created through the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineTuningJobRecord {
    /// The upstream's job id.
    pub job_id: String,
    /// The deployment it was created on.
    pub model_id: String,
    /// Who created it.
    pub principal: String,
    /// When.
    pub created: Timestamp,
}

const DEPLOYMENT_COLUMNS: &str = "account_id, model_id, provider, base_url, upstream_model, \
     CAST(CASE WHEN key_sealed IS NULL THEN 0 ELSE 1 END AS BIGINT), log_invocations, guardrail, created_ms, updated_ms, deprecated_on";

fn deployment_from(r: &Row) -> Result<Deployment> {
    Ok(Deployment {
        account_id: r.text(0)?,
        model_id: r.text(1)?,
        provider: r.text(2)?,
        base_url: r.text(3)?,
        upstream_model: r.opt_text(4)?,
        has_key: r.i64(5)? != 0,
        log_invocations: r.i64(6)? != 0,
        guardrail: r.opt_text(7)?,
        created: ts(r.i64(8)?),
        updated: ts(r.i64(9)?),
        deprecated_on: r.opt_text(10)?,
    })
}

pub(crate) fn key_aad(account: &str, model: &str) -> String {
    format!("ai-deployment-key:{account}:{model}")
}

pub(crate) fn log_aad(account: &str, model: &str, request_id: &str) -> String {
    format!("ai-invocation-log:{account}:{model}:{request_id}")
}

/// Checks a model id: what fits in an ARN's resource segment without surprises.
pub fn validate_model_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Validation(format!(
            "model id {id:?} must be 1-128 characters of letters, digits and -_.:/@+"
        )))
    }
}

/// Checks a deprecation date: a calendar date written `YYYY-MM-DD`.
pub fn validate_deprecation_date(date: &str) -> Result<()> {
    match chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(d) if d.format("%Y-%m-%d").to_string() == date => Ok(()),
        _ => Err(StoreError::Validation(format!(
            "deprecation date {date:?} must be a date written YYYY-MM-DD"
        ))),
    }
}

/// Checks a base URL: `http` or `https`, a host, no user name or password (a provider
/// key travels only in the `Authorization` header), at most 2048 characters.
pub fn validate_base_url(url: &str) -> Result<()> {
    let bad = |why: &str| StoreError::Validation(format!("base URL {url:?} {why}"));
    if url.len() > 2048 {
        return Err(bad("is longer than 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if parsed.fragment().is_some() || parsed.query().is_some() {
        return Err(bad("must not carry a query or fragment"));
    }
    Ok(())
}

/// Scheme, host and port: where a request, and the provider key with it, goes.
fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin())
}

impl Store {
    /// Creates a deployment (`create`) or replaces an existing one (`!create`); with
    /// `!create` and `d.api_key == None` the stored key is kept.
    pub async fn put_deployment(
        &self,
        account: &str,
        d: &NewDeployment,
        create: bool,
    ) -> Result<Deployment> {
        validate_model_id(&d.model_id)?;
        validate_base_url(&d.base_url)?;
        if let Some(date) = &d.deprecated_on {
            validate_deprecation_date(date)?;
        }
        if d.provider.is_empty() || d.provider.len() > 64 {
            return Err(StoreError::Validation(
                "provider must be 1-64 characters".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        crate::store::require_account(&mut tx.conn, account).await?;
        let sealed = match &d.api_key {
            Some(k) => Some(
                self.seal_in(&mut tx.conn, &key_aad(account, &d.model_id), k)
                    .await?,
            ),
            None => None,
        };
        let exists = tx
            .conn
            .opt(
                "SELECT 1 FROM ai_deployments WHERE account_id = $1 AND model_id = $2",
                args![account, d.model_id.as_str()],
            )
            .await?
            .is_some();
        let now = now_ms();
        match (create, exists) {
            (true, true) => return Err(StoreError::exists(EntityKind::Deployment, &d.model_id)),
            (false, false) => {
                return Err(StoreError::no_such(EntityKind::Deployment, &d.model_id));
            }
            (true, false) | (false, true) => {}
        }
        if !create && d.api_key.is_none() && !d.clear_api_key {
            // The sealed key follows the URL it was given for: moving the deployment to
            // another host must not send the key (and the callers' prompts) there.
            let row = tx
                .conn
                .opt(
                    "SELECT base_url FROM ai_deployments WHERE account_id = $1 AND model_id = $2 \
                     AND key_sealed IS NOT NULL",
                    args![account, d.model_id.as_str()],
                )
                .await?;
            if let Some(r) = row
                && origin(&r.text(0)?) != origin(&d.base_url)
            {
                return Err(StoreError::Validation(format!(
                    "deployment {}: moving the base URL to another host needs the provider key \
                     again (or clearing it); the stored key is not sent to a new host",
                    d.model_id
                )));
            }
        }
        let sql = if create {
            "INSERT INTO ai_deployments (account_id, model_id, provider, base_url, \
             upstream_model, key_sealed, log_invocations, created_ms, updated_ms, deprecated_on) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)"
        } else {
            "UPDATE ai_deployments SET provider = $3, base_url = $4, upstream_model = $5, \
             key_sealed = CASE WHEN $10 = 1 THEN NULL ELSE COALESCE($6, key_sealed) END, \
             log_invocations = $7, updated_ms = $8, deprecated_on = $9 \
             WHERE account_id = $1 AND model_id = $2"
        };
        let mut values = args![
            account,
            d.model_id.as_str(),
            d.provider.as_str(),
            d.base_url.as_str(),
            d.upstream_model.clone(),
            sealed,
            i64::from(d.log_invocations),
            now,
            d.deprecated_on.clone()
        ];
        if !create {
            values.extend(args![i64::from(d.clear_api_key)]);
        }
        // Two creators that both found it missing (nodes started together): the loser
        // hears that it exists, as it would have a moment later.
        tx.conn
            .exec(sql, values)
            .await
            .map_err(|e| crate::db::map_unique(e, EntityKind::Deployment, &d.model_id))?;
        self.commit(tx).await?;
        self.get_deployment(account, &d.model_id).await
    }

    /// One deployment.
    pub async fn get_deployment(&self, account: &str, model_id: &str) -> Result<Deployment> {
        let mut c = self.inner.pool.conn().await?;
        let sql = format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM ai_deployments WHERE account_id = $1 AND model_id = $2"
        );
        match c.opt(&sql, args![account, model_id]).await? {
            Some(r) => deployment_from(&r),
            None => Err(StoreError::no_such(EntityKind::Deployment, model_id)),
        }
    }

    /// Every deployment of every account, ordered by account and model id.
    pub async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        let mut c = self.inner.pool.conn().await?;
        let sql = format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM ai_deployments ORDER BY account_id, model_id"
        );
        c.all(&sql, vec![])
            .await?
            .iter()
            .map(deployment_from)
            .collect()
    }

    /// The provider key of a deployment, opened (for the upstream request only).
    pub async fn deployment_key(&self, account: &str, model_id: &str) -> Result<Option<Secret>> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                "SELECT key_sealed FROM ai_deployments WHERE account_id = $1 AND model_id = $2",
                args![account, model_id],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::Deployment, model_id))?;
        match row.opt_text(0)? {
            Some(sealed) => Ok(Some(
                self.open_sealed(&key_aad(account, model_id), &sealed)
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// Deletes a deployment.
    pub async fn delete_deployment(&self, account: &str, model_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM ai_deployments WHERE account_id = $1 AND model_id = $2",
                args![account, model_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::Deployment, model_id));
        }
        self.commit(tx).await
    }

    /// Sets (`Some`) or removes (`None`) a deployment's guardrail settings (JSON text,
    /// validated by the caller). `create` refuses to overwrite, `!create` needs one to exist.
    pub async fn set_deployment_guardrail(
        &self,
        account: &str,
        model_id: &str,
        guardrail: Option<&str>,
        create: bool,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let row = tx
            .conn
            .opt(
                "SELECT guardrail FROM ai_deployments WHERE account_id = $1 AND model_id = $2",
                args![account, model_id],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::Deployment, model_id))?;
        let has = row.opt_text(0)?.is_some();
        match (guardrail, create, has) {
            (Some(_), true, true) => {
                return Err(StoreError::exists(EntityKind::Guardrail, model_id));
            }
            (Some(_), false, false) | (None, _, false) => {
                return Err(StoreError::no_such(EntityKind::Guardrail, model_id));
            }
            _ => {}
        }
        tx.conn
            .exec(
                "UPDATE ai_deployments SET guardrail = $3, updated_ms = $4 \
                 WHERE account_id = $1 AND model_id = $2",
                args![account, model_id, guardrail, now_ms()],
            )
            .await?;
        self.commit(tx).await
    }

    /// Appends a sealed prompt/response log entry.
    pub async fn append_invocation_log(
        &self,
        account: &str,
        model_id: &str,
        request_id: &str,
        principal: &str,
        content: &Secret,
    ) -> Result<()> {
        // Its own short transaction: the active data key is read (and, on PostgreSQL,
        // share-locked) in the transaction that writes the value sealed under it.
        let mut c = self.inner.pool.write_tx().await?;
        let sealed = self
            .seal_in(&mut c, &log_aad(account, model_id, request_id), content)
            .await?;
        c.exec(
            "INSERT INTO ai_invocation_logs (account_id, model_id, time_ms, request_id, principal, sealed) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            args![account, model_id, now_ms(), request_id, principal, sealed],
        )
        .await?;
        c.commit().await
    }

    /// The newest `limit` log entries of a model, oldest first, opened.
    pub async fn read_invocation_logs(
        &self,
        account: &str,
        model_id: &str,
        limit: i64,
    ) -> Result<Vec<InvocationLog>> {
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                "SELECT id, model_id, time_ms, request_id, principal, sealed FROM ai_invocation_logs \
                 WHERE account_id = $1 AND model_id = $2 ORDER BY id DESC LIMIT $3",
                args![account, model_id, limit],
            )
            .await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let request_id = r.text(3)?;
            out.push(InvocationLog {
                id: r.i64(0)?,
                model_id: r.text(1)?,
                time: ts(r.i64(2)?),
                principal: r.text(4)?,
                content: self
                    .open_sealed(&log_aad(account, model_id, &request_id), &r.text(5)?)
                    .await?,
                request_id,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Records a fine-tuning job created on a deployment.
    pub async fn record_fine_tuning_job(
        &self,
        account: &str,
        job_id: &str,
        model_id: &str,
        principal: &str,
    ) -> Result<()> {
        let mut c = self.inner.pool.conn().await?;
        c.exec(
            "INSERT INTO ai_fine_tuning_jobs (account_id, job_id, model_id, principal, created_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            args![account, job_id, model_id, principal, now_ms()],
        )
        .await?;
        Ok(())
    }

    /// A fine-tuning job created through the gateway.
    pub async fn get_fine_tuning_job(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<FineTuningJobRecord> {
        let mut c = self.inner.pool.conn().await?;
        let r = c
            .opt(
                "SELECT job_id, model_id, principal, created_ms FROM ai_fine_tuning_jobs \
                 WHERE account_id = $1 AND job_id = $2",
                args![account, job_id],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::FineTuningJob, job_id))?;
        job_from(&r)
    }

    /// Fine-tuning jobs of an account, newest first.
    pub async fn list_fine_tuning_jobs(
        &self,
        account: &str,
        limit: i64,
    ) -> Result<Vec<FineTuningJobRecord>> {
        let mut c = self.inner.pool.conn().await?;
        c.all(
            "SELECT job_id, model_id, principal, created_ms FROM ai_fine_tuning_jobs \
             WHERE account_id = $1 ORDER BY created_ms DESC, job_id LIMIT $2",
            args![account, limit],
        )
        .await?
        .iter()
        .map(job_from)
        .collect()
    }
}

fn job_from(r: &Row) -> Result<FineTuningJobRecord> {
    Ok(FineTuningJobRecord {
        job_id: r.text(0)?,
        model_id: r.text(1)?,
        principal: r.text(2)?,
        created: ts(r.i64(3)?),
    })
}
