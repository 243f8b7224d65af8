//! What the retrieval gateway keeps: the knowledge bases an operator registered — where
//! the documents live (a Chroma collection on a Chroma server, or a vector store behind an
//! OpenAI-compatible API), the Gatehouse deployment that turns a query into a vector, and
//! the backend's credential.
//!
//! The credential (a Chroma token, a vector store API key) is sealed like provider keys and
//! never comes out but to the upstream request. Writes bump the generation, so every node's
//! table of knowledge bases is refreshed by the same signal as compiled policies.

use crate::db::{Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{Timestamp, now_ms, ts};
use crate::seal::Secret;
use crate::store::Store;

/// Where a knowledge base's documents live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnowledgeBackend {
    /// A collection on a Chroma server (its HTTP API, v2).
    Chroma,
    /// A vector store behind an OpenAI-compatible API (`/v1/vector_stores/{id}/search`).
    OpenAi,
}

impl KnowledgeBackend {
    /// The stored (and command-line) name: `chroma`, `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            KnowledgeBackend::Chroma => "chroma",
            KnowledgeBackend::OpenAi => "openai",
        }
    }

    /// The backend of a stored or given name.
    pub fn parse(name: &str) -> Result<KnowledgeBackend> {
        match name {
            "chroma" => Ok(KnowledgeBackend::Chroma),
            "openai" => Ok(KnowledgeBackend::OpenAi),
            other => Err(StoreError::Validation(format!(
                "knowledge base backend {other:?} must be chroma or openai"
            ))),
        }
    }
}

/// A knowledge base as stored (its credential stays sealed until asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeBase {
    /// The owning account.
    pub account_id: String,
    /// The name callers use (`/v1/vector_stores/NAME/search`, `knowledge-base/NAME`).
    pub name: String,
    /// Where the documents live.
    pub backend: KnowledgeBackend,
    /// The backend's base URL (Chroma: `http://host:8000`; OpenAI-compatible:
    /// `https://host/v1`).
    pub url: String,
    /// The Chroma collection's name, or the upstream vector store's id.
    pub collection: String,
    /// Chroma's tenant (`default_tenant` when unset).
    pub tenant: Option<String>,
    /// Chroma's database (`default_database` when unset).
    pub database: Option<String>,
    /// The deployment (model id) that embeds queries; required for Chroma, which stores
    /// vectors only; an OpenAI-compatible store embeds the query itself.
    pub embedding_model: Option<String>,
    /// Whether a credential is stored.
    pub has_credential: bool,
    /// Created.
    pub created: Timestamp,
    /// Last changed.
    pub updated: Timestamp,
}

/// What to write for a knowledge base.
#[derive(Debug, Clone)]
pub struct NewKnowledgeBase {
    /// Name.
    pub name: String,
    /// Where the documents live.
    pub backend: KnowledgeBackend,
    /// The backend's base URL.
    pub url: String,
    /// Chroma collection name or vector store id.
    pub collection: String,
    /// Chroma tenant.
    pub tenant: Option<String>,
    /// Chroma database.
    pub database: Option<String>,
    /// The deployment that embeds queries.
    pub embedding_model: Option<String>,
    /// The backend's credential (sealed before it is stored).
    pub credential: Option<Secret>,
}

pub(crate) fn credential_aad(account: &str, name: &str) -> String {
    format!("knowledge-base-credential:{account}:{name}")
}

/// Checks a knowledge base name: 1-64 letters, digits, `-`, `_` and `.`, not first (one URL path segment
/// and one ARN segment, nothing to decode).
pub fn validate_knowledge_base_name(name: &str) -> Result<()> {
    if is_plain_name(name, 64) {
        Ok(())
    } else {
        Err(StoreError::Validation(format!(
            "knowledge base name {name:?} must be 1-64 letters, digits, -, _ and . (not first)"
        )))
    }
}

fn is_plain_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

fn validate(kb: &NewKnowledgeBase) -> Result<()> {
    validate_knowledge_base_name(&kb.name)?;
    let bad = |why: String| Err(StoreError::Validation(why));
    if kb.url.len() > 2048 {
        return bad("knowledge base URL is longer than 2048 characters".into());
    }
    let parsed = url::Url::parse(&kb.url)
        .map_err(|e| StoreError::Validation(format!("knowledge base URL {:?}: {e}", kb.url)))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return bad(format!(
            "knowledge base URL {:?} must be http:// or https:// with a host",
            kb.url
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
        return bad(format!(
            "knowledge base URL {:?} must carry no user, password or query (the credential is sealed apart)",
            kb.url
        ));
    }
    // The collection (or store id), tenant and database become URL path segments upstream.
    for (what, v) in [
        ("collection", Some(&kb.collection)),
        ("tenant", kb.tenant.as_ref()),
        ("database", kb.database.as_ref()),
    ] {
        if let Some(v) = v
            && !is_plain_name(v, 128)
        {
            return bad(format!(
                "knowledge base {what} {v:?} must be 1-128 letters, digits, -, _ and ."
            ));
        }
    }
    if kb.backend == KnowledgeBackend::OpenAi && (kb.tenant.is_some() || kb.database.is_some()) {
        return bad("tenant and database are Chroma's (--backend chroma)".into());
    }
    match (&kb.embedding_model, kb.backend) {
        (Some(m), _) => crate::gateway::validate_model_id(m),
        (None, KnowledgeBackend::Chroma) => {
            bad("a Chroma knowledge base needs an embedding model (a deployment's model id)".into())
        }
        (None, KnowledgeBackend::OpenAi) => Ok(()),
    }
}

const COLUMNS: &str = "account_id, name, backend, url, collection, tenant, database_name, \
     embedding_model, CAST(CASE WHEN credential_sealed IS NULL THEN 0 ELSE 1 END AS BIGINT), \
     created_ms, updated_ms";

fn knowledge_base_from(r: &Row) -> Result<KnowledgeBase> {
    Ok(KnowledgeBase {
        account_id: r.text(0)?,
        name: r.text(1)?,
        backend: KnowledgeBackend::parse(&r.text(2)?)
            .map_err(|e| StoreError::Database(format!("knowledge_bases.backend: {e}")))?,
        url: r.text(3)?,
        collection: r.text(4)?,
        tenant: r.opt_text(5)?,
        database: r.opt_text(6)?,
        embedding_model: r.opt_text(7)?,
        has_credential: r.i64(8)? != 0,
        created: ts(r.i64(9)?),
        updated: ts(r.i64(10)?),
    })
}

impl Store {
    /// Registers a knowledge base (`create`) or replaces one (`!create`; a replacement
    /// without a credential drops the stored one, so that a new URL never receives the
    /// old URL's credential).
    pub async fn put_knowledge_base(
        &self,
        account: &str,
        kb: &NewKnowledgeBase,
        create: bool,
    ) -> Result<KnowledgeBase> {
        validate(kb)?;
        let mut tx = self.begin_write().await?;
        crate::store::require_account(&mut tx.conn, account).await?;
        let existing = tx
            .conn
            .opt(
                "SELECT name FROM knowledge_bases WHERE account_id = $1 AND LOWER(name) = LOWER($2)",
                args![account, kb.name.as_str()],
            )
            .await?;
        match (&existing, create) {
            (Some(_), true) => return Err(StoreError::exists(EntityKind::KnowledgeBase, &kb.name)),
            (None, false) => return Err(StoreError::no_such(EntityKind::KnowledgeBase, &kb.name)),
            (Some(r), false) if r.text(0)? != kb.name => {
                return Err(StoreError::no_such(EntityKind::KnowledgeBase, &kb.name));
            }
            _ => {}
        }
        let sealed = match &kb.credential {
            Some(c) => Some(
                self.seal_in(&mut tx.conn, &credential_aad(account, &kb.name), c)
                    .await?,
            ),
            None => None,
        };
        let now = now_ms();
        let values = args![
            account,
            kb.name.as_str(),
            kb.backend.as_str(),
            kb.url.as_str(),
            kb.collection.as_str(),
            kb.tenant.clone(),
            kb.database.clone(),
            kb.embedding_model.clone(),
            sealed,
            now
        ];
        if create {
            tx.conn
                .exec(
                    "INSERT INTO knowledge_bases (account_id, name, backend, url, collection, \
                     tenant, database_name, embedding_model, credential_sealed, created_ms, \
                     updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                    values,
                )
                .await
                .map_err(|e| crate::db::map_unique(e, EntityKind::KnowledgeBase, &kb.name))?;
        } else {
            tx.conn
                .exec(
                    "UPDATE knowledge_bases SET backend = $3, url = $4, collection = $5, \
                     tenant = $6, database_name = $7, embedding_model = $8, \
                     credential_sealed = $9, updated_ms = $10 \
                     WHERE account_id = $1 AND name = $2",
                    values,
                )
                .await?;
        }
        self.commit(tx).await?;
        self.get_knowledge_base(account, &kb.name).await
    }

    /// One knowledge base.
    pub async fn get_knowledge_base(&self, account: &str, name: &str) -> Result<KnowledgeBase> {
        let mut c = self.inner.pool.conn().await?;
        let sql =
            format!("SELECT {COLUMNS} FROM knowledge_bases WHERE account_id = $1 AND name = $2");
        match c.opt(&sql, args![account, name]).await? {
            Some(r) => knowledge_base_from(&r),
            None => Err(StoreError::no_such(EntityKind::KnowledgeBase, name)),
        }
    }

    /// Every knowledge base of every account, by account and name.
    pub async fn list_knowledge_bases(&self) -> Result<Vec<KnowledgeBase>> {
        let mut c = self.inner.pool.conn().await?;
        let sql = format!("SELECT {COLUMNS} FROM knowledge_bases ORDER BY account_id, name");
        c.all(&sql, vec![])
            .await?
            .iter()
            .map(knowledge_base_from)
            .collect()
    }

    /// A knowledge base's backend credential, opened, for the upstream request only.
    pub async fn knowledge_base_credential(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<Secret>> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                "SELECT credential_sealed FROM knowledge_bases WHERE account_id = $1 AND name = $2",
                args![account, name],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::KnowledgeBase, name))?;
        drop(c);
        match row.opt_text(0)? {
            Some(sealed) => Ok(Some(
                self.open_sealed(&credential_aad(account, name), &sealed)
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// Removes a knowledge base (its documents stay where they live).
    pub async fn delete_knowledge_base(&self, account: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM knowledge_bases WHERE account_id = $1 AND name = $2",
                args![account, name],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::KnowledgeBase, name));
        }
        self.commit(tx).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_path_segment() {
        for ok in ["hr", "hr-docs_2", "a.b"] {
            assert!(validate_knowledge_base_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a b", "../x", "x?y", "é", &"x".repeat(65)] {
            assert!(validate_knowledge_base_name(bad).is_err(), "{bad}");
        }
    }
}
