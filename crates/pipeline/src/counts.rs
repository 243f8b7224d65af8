//! Counters the pipeline's parts keep about themselves (cache hits, audit batches), as
//! plain atomics: the server reads them into its metrics at scrape time, so this crate
//! needs no metrics library and its hot paths pay one relaxed increment.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hits and misses of one cache, kept by the cache itself and read at scrape time.
#[derive(Debug, Default)]
pub struct LookupCounts {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl LookupCounts {
    /// Counts one lookup.
    pub fn record(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The totals so far.
    pub fn read(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Batches an audit writer committed and failed, kept by the writer, read at scrape time.
#[derive(Debug, Default)]
pub struct BatchCounts {
    committed: AtomicU64,
    failed: AtomicU64,
}

impl BatchCounts {
    /// Counts one batch.
    pub fn record(&self, committed: bool) {
        let c = if committed {
            &self.committed
        } else {
            &self.failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The totals so far.
    pub fn read(&self) -> (u64, u64) {
        (
            self.committed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
