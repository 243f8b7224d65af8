//! Gateway budget counters shared between nodes.
//!
//! The gateway counts requests and tokens in memory (a database round trip per request
//! would cost more than the whole gateway adds). To make a budget global when several
//! nodes share one database, each node periodically writes its own totals for the current
//! windows and reads the sums of every other node. Rows are keyed by node, so a write is
//! an idempotent upsert of absolute counts (a lost or repeated sync never double-counts),
//! and a node that restarts under a new id leaves its earlier traffic counted until the
//! window ends. These writes are bookkeeping: they do not bump the generation.

use crate::db::{Arg, args};
use crate::error::Result;
use crate::model::now_ms;
use crate::store::Store;

/// One budget scope's counts in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    /// What is counted: a principal, role or group ARN, or a session's access key id.
    pub scope: String,
    /// Window length in seconds (60 or 86400).
    pub period: i64,
    /// Epoch second the window began (a multiple of `period`).
    pub window_start: i64,
    /// Requests admitted in the window.
    pub requests: i64,
    /// Tokens charged in the window.
    pub tokens: i64,
}

/// Rows per `INSERT` (7 placeholders each, well under SQLite's limit).
const CHUNK: usize = 100;

impl Store {
    /// Writes this node's totals (`own`, absolute counts) and returns the other nodes'
    /// counts summed per scope for the given windows (`(period, window_start)` pairs).
    pub async fn sync_gateway_usage(
        &self,
        node_id: &str,
        own: &[UsageCount],
        windows: &[(i64, i64)],
    ) -> Result<Vec<UsageCount>> {
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
                        u.period,
                        u.window_start,
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
        let mut out = Vec::new();
        let mut c = self.inner.pool.conn().await?;
        for &(period, start) in windows {
            let rows = c
                .all(
                    "SELECT scope, CAST(SUM(requests) AS BIGINT), CAST(SUM(tokens) AS BIGINT) \
                     FROM gateway_usage WHERE period = $1 AND window_start = $2 AND node_id <> $3 \
                     GROUP BY scope",
                    args![period, start, node_id],
                )
                .await?;
            for r in rows {
                out.push(UsageCount {
                    scope: r.text(0)?,
                    period,
                    window_start: start,
                    requests: r.i64(1)?,
                    tokens: r.i64(2)?,
                });
            }
        }
        Ok(out)
    }

    /// Deletes the counts of windows that ended more than one window before the given
    /// current ones (`(period, window_start)`); the one just ended is kept for nodes whose
    /// clocks lag a little. Returns the number of rows deleted.
    pub async fn prune_gateway_usage(&self, current: &[(i64, i64)]) -> Result<u64> {
        let mut c = self.inner.pool.conn().await?;
        let mut n = 0;
        for &(period, start) in current {
            n += c
                .exec(
                    "DELETE FROM gateway_usage WHERE period = $1 AND window_start < $2",
                    args![period, start - period],
                )
                .await?;
        }
        Ok(n)
    }
}
