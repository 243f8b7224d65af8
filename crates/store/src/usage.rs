//! Gateway budget counters shared between nodes.
//!
//! The gateway counts requests and tokens in memory (a database round trip per request
//! would cost more than the whole gateway adds), in buckets: one-second buckets for the
//! per-minute windows, one-hour buckets for the per-day window. To make a budget global
//! when several nodes share one database, each node periodically writes its own totals
//! of the buckets that changed and reads the sums of every other node's buckets in the
//! current windows. Rows are keyed by node, so a write is an idempotent upsert of
//! absolute counts (a lost or repeated sync never double-counts), and a node that
//! restarts under a new id leaves its earlier traffic counted until the window moves on.
//! The sync also reads the database's clock, so that every node counts in the same
//! buckets whatever its own clock says. These writes are bookkeeping: they do not bump
//! the generation.
//!
//! Columns (migration 0011): `period` holds the bucket length in seconds (1 or 3600) and
//! `window_start` the bucket's first epoch second. Rows of earlier versions, which counted
//! fixed windows (periods 60 and 86400), are never read and are pruned.

use crate::db::{Arg, args};
use crate::error::Result;
use crate::model::now_ms;
use crate::store::Store;

/// One budget scope's counts in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    /// What is counted: a principal, role or group ARN, or a session's access key id.
    pub scope: String,
    /// Bucket length in seconds (1 or 3600).
    pub bucket_secs: i64,
    /// Epoch second the bucket began (a multiple of `bucket_secs`).
    pub bucket_start: i64,
    /// Requests admitted in the bucket.
    pub requests: i64,
    /// Tokens counted in the bucket (reserved, then settled).
    pub tokens: i64,
}

/// What one sync returns: the other nodes' counts, and the database's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSync {
    /// The other nodes' counts summed per scope and bucket.
    pub others: Vec<UsageCount>,
    /// The database's clock (epoch milliseconds) when it was read, after the counts.
    pub store_time_ms: i64,
}

/// Rows per `INSERT` (7 placeholders each, well under SQLite's limit).
const CHUNK: usize = 100;

impl Store {
    /// Writes this node's totals (`own`, absolute counts per bucket) and returns the other
    /// nodes' counts summed per scope and bucket, for every `(bucket_secs, first bucket
    /// start)` in `since` (later buckets included: a node whose clock runs ahead writes
    /// them), and the database's clock.
    pub async fn sync_gateway_usage(
        &self,
        node_id: &str,
        own: &[UsageCount],
        since: &[(i64, i64)],
    ) -> Result<UsageSync> {
        if !own.is_empty() {
            let now = now_ms();
            let mut tx = self.inner.pool.write_tx().await?;
            for chunk in own.chunks(CHUNK) {
                let mut sql = String::from(
                    "INSERT INTO gateway_usage \
                     (node_id, scope, period, window_start, requests, tokens, updated_ms) VALUES ",
                );
                let mut params: Vec<Arg> = Vec::with_capacity(chunk.len() * 7);
                for (i, u) in chunk.iter().enumerate() {
                    let b = i * 7;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7
                    ));
                    params.extend(args![
                        node_id,
                        u.scope.as_str(),
                        u.bucket_secs,
                        u.bucket_start,
                        u.requests,
                        u.tokens,
                        now
                    ]);
                }
                sql.push_str(
                    " ON CONFLICT (node_id, scope, period, window_start) DO UPDATE SET \
                     requests = excluded.requests, tokens = excluded.tokens, \
                     updated_ms = excluded.updated_ms",
                );
                tx.exec(&sql, params).await?;
            }
            tx.commit().await?;
        }
        let mut others = Vec::new();
        let mut c = self.inner.pool.conn().await?;
        for &(bucket_secs, from) in since {
            let rows = c
                .all(
                    "SELECT scope, window_start, CAST(SUM(requests) AS BIGINT), \
                     CAST(SUM(tokens) AS BIGINT) \
                     FROM gateway_usage WHERE period = $1 AND window_start >= $2 AND node_id <> $3 \
                     GROUP BY scope, window_start",
                    args![bucket_secs, from, node_id],
                )
                .await?;
            for r in rows {
                others.push(UsageCount {
                    scope: r.text(0)?,
                    bucket_secs,
                    bucket_start: r.i64(1)?,
                    requests: r.i64(2)?,
                    tokens: r.i64(3)?,
                });
            }
        }
        let clock = if c.is_postgres() {
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
        } else {
            "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
        };
        let store_time_ms = match c.all(clock, Vec::new()).await?.first() {
            Some(r) => r.i64(0)?,
            None => now_ms(),
        };
        Ok(UsageSync {
            others,
            store_time_ms,
        })
    }

    /// Deletes the buckets that began before a given second, per bucket length
    /// (`(bucket_secs, first start kept)`). Returns the number of rows deleted.
    pub async fn prune_gateway_usage(&self, before: &[(i64, i64)]) -> Result<u64> {
        let mut c = self.inner.pool.conn().await?;
        let mut n = 0;
        for &(bucket_secs, start) in before {
            n += c
                .exec(
                    "DELETE FROM gateway_usage WHERE period = $1 AND window_start < $2",
                    args![bucket_secs, start],
                )
                .await?;
        }
        Ok(n)
    }
}
