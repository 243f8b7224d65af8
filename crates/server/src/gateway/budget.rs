//! Budgets: requests per minute, tokens per minute, tokens per day, for principals, roles,
//! groups and single role sessions, global across the nodes that share a store.
//!
//! Every budget that applies to a request is enforced: the caller's own (`principal`
//! patterns), its role's (every session of the role counts against it together), each of
//! its groups' (every member counts against the group's shared budget), and its session's
//! (the `gatehouse:rpm`/`gatehouse:tpm`/`gatehouse:tpd` session tags). A request passes
//! only if every window of every applicable budget has room, and is then counted in all
//! of them, so the narrowest budget wins and a session can never spend more than its role.
//! A refusal's `Retry-After` is the longest wait among the full windows.
//!
//! Windows slide. Each is counted in buckets — seconds for the minute, hours for the
//! day — and a request is checked against the last 61 seconds' (25 hours') buckets, which
//! cover every 60-second (24-hour) span ending now. So no 60-second span ever holds more
//! admitted requests than the limit, where fixed windows let twice the limit through
//! around a boundary; the price is that a request counts for 60 to 61 seconds (24 to 25
//! hours) rather than exactly 60 (24).
//!
//! Tokens are reserved at admission: the request's maximum (its prompt's estimate,
//! [`prompt_estimate`], and the most it may generate, its `ai:MaxTokens`) counts at once
//! in every window of every applicable budget, so requests in flight together cannot pass
//! a limit; a request whose maximum does not fit waits (or, if it could never fit, is
//! refused outright). When the answer is known the reservation is settled
//! ([`Budgets::settle`]) to the tokens charged: the unused part is refunded in the bucket it
//! was reserved in, an excess (a prompt larger than its estimate) is added now. A
//! request's tokens therefore count in the windows of its admission.
//!
//! Counting happens in this node's memory (a database round trip per request would cost
//! more than the whole gateway adds). [`Budgets::sync`], run every [`SYNC_INTERVAL`] by a
//! background task, writes this node's changed buckets to the store and reads every other
//! node's buckets of the current windows, and a request is admitted against both. Other
//! nodes' traffic is therefore seen at most two intervals late (their write, then our
//! read): a budget can be overshot by at most what the other nodes admit in that time, and
//! by nothing when one node serves it. Every node counts in the store's clock (the offset
//! of its own is measured at each sync), so nodes whose clocks disagree still count in the
//! same buckets. If the store cannot be reached, each node keeps enforcing with the last
//! buckets it read plus its own traffic.

use super::config::BudgetConfig;
use gatehouse_store::{Store, StoreError, UsageCount};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a node publishes its counts and reads the others'.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);

/// The session tags that narrow a role session's budget.
pub const SESSION_TAG_RPM: &str = "gatehouse:rpm";
/// Tokens per minute for one session.
pub const SESSION_TAG_TPM: &str = "gatehouse:tpm";
/// Tokens per UTC day for one session.
pub const SESSION_TAG_TPD: &str = "gatehouse:tpd";

/// The limits of one budget (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// Tokens per UTC day.
    pub tokens_per_day: Option<u64>,
}

impl Limits {
    fn of(b: &BudgetConfig) -> Limits {
        Limits {
            requests_per_minute: b.requests_per_minute,
            tokens_per_minute: b.tokens_per_minute,
            tokens_per_day: b.tokens_per_day,
        }
    }

    fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The tighter of two limits, each window separately.
    fn narrowest(self, other: Limits) -> Limits {
        fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Limits {
            requests_per_minute: min(self.requests_per_minute, other.requests_per_minute),
            tokens_per_minute: min(self.tokens_per_minute, other.tokens_per_minute),
            tokens_per_day: min(self.tokens_per_day, other.tokens_per_day),
        }
    }
}

/// A session tag that asks for a budget but is not a whole number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session tag {key} must be a whole number of {what}, not {value:?}")]
pub struct InvalidBudgetTag {
    /// The tag key.
    pub key: String,
    /// The tag value.
    pub value: String,
    /// What the number counts.
    pub what: &'static str,
}

/// Reads a session's own budget from its session tags (keys compared without regard to
/// case, as AWS compares tag keys). `Ok(None)` when it carries none.
pub fn session_limits(tags: &BTreeMap<String, String>) -> Result<Option<Limits>, InvalidBudgetTag> {
    let mut l = Limits::default();
    for (k, v) in tags {
        let (slot, what) = if k.eq_ignore_ascii_case(SESSION_TAG_RPM) {
            (&mut l.requests_per_minute, "requests per minute")
        } else if k.eq_ignore_ascii_case(SESSION_TAG_TPM) {
            (&mut l.tokens_per_minute, "tokens per minute")
        } else if k.eq_ignore_ascii_case(SESSION_TAG_TPD) {
            (&mut l.tokens_per_day, "tokens per day")
        } else {
            continue;
        };
        // Digits only: no sign, no spaces, no fractions; a value that does not fit is
        // not a number either (fail closed rather than saturate to "unlimited").
        let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| InvalidBudgetTag {
                key: k.clone(),
                value: v.clone(),
                what,
            })?;
        *slot = Some(n);
    }
    Ok((!l.is_empty()).then_some(l))
}

/// A role session's own budget, read from its tags when it was authenticated.
#[derive(Debug, Clone)]
pub struct SessionBudget {
    /// The counter: the session's temporary access key id (unique per session).
    pub key: String,
    /// Its limits, or why its tags are unusable.
    pub limits: Result<Option<Limits>, InvalidBudgetTag>,
}

/// What a caller's traffic can count against.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The caller's ARN (a session's is `assumed-role/ROLE/SESSION`).
    pub principal: &'a str,
    /// The role, for role sessions.
    pub role: Option<&'a str>,
    /// The caller's groups' ARNs (users, and their `GetSessionToken` sessions).
    pub groups: &'a [String],
    /// The session's own budget, for role sessions.
    pub session: Option<&'a SessionBudget>,
}

/// Which kind of budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// A `principal` pattern: each matching caller has its own counters.
    Principal,
    /// A `role`: all its sessions share the counters.
    Role,
    /// A `group`: all its members share the counters.
    Group,
    /// One role session, from its tags.
    Session,
}

impl ScopeKind {
    fn word(self) -> &'static str {
        match self {
            ScopeKind::Principal => "principal",
            ScopeKind::Role => "role",
            ScopeKind::Group => "group",
            ScopeKind::Session => "session",
        }
    }
}

/// One budget that applies to a request: the counters it charges and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicable {
    /// The counters' key: an ARN, or a session's access key id.
    pub scope: String,
    /// Which kind of budget.
    pub kind: ScopeKind,
    /// The limits (the narrowest, when several entries name the same counters).
    pub limits: Limits,
}

/// Every budget that applies to `subject`: each config entry whose pattern matches (the
/// caller for `principal`, its role for `role`, any of its groups for `group`), and the
/// session's own. Fails when the session's budget tags are not numbers.
pub fn applicable(
    budgets: &[BudgetConfig],
    subject: &Subject<'_>,
) -> Result<Vec<Applicable>, InvalidBudgetTag> {
    let mut out: Vec<Applicable> = Vec::new();
    let mut add = |scope: &str, kind: ScopeKind, limits: Limits| {
        if let Some(a) = out.iter_mut().find(|a| a.scope == scope) {
            a.limits = a.limits.narrowest(limits);
        } else {
            out.push(Applicable {
                scope: scope.to_owned(),
                kind,
                limits,
            });
        }
    };
    for b in budgets {
        let limits = Limits::of(b);
        if let Some(p) = &b.principal
            && matches(p, subject.principal)
        {
            add(subject.principal, ScopeKind::Principal, limits);
        }
        if let (Some(p), Some(role)) = (&b.role, subject.role)
            && matches(p, role)
        {
            add(role, ScopeKind::Role, limits);
        }
        if let Some(p) = &b.group {
            for g in subject.groups {
                if matches(p, g) {
                    add(g, ScopeKind::Group, limits);
                }
            }
        }
    }
    if let Some(s) = subject.session
        && let Some(limits) = s.limits.clone()?
    {
        add(&s.key, ScopeKind::Session, limits);
    }
    Ok(out)
}

/// The engine's wildcard match, after a check of the literal text before the first and
/// after the last wildcard: that rejects most ARNs that do not match at once, and the
/// whole budget table is scanned for every request (a table of many group budgets costs
/// a few nanoseconds per entry, not a backtracking match).
fn matches(pattern: &str, value: &str) -> bool {
    let wild = |b: &u8| *b == b'*' || *b == b'?';
    let bytes = pattern.as_bytes();
    match (bytes.iter().position(wild), bytes.iter().rposition(wild)) {
        (Some(first), Some(last)) => {
            value.starts_with(&pattern[..first])
                && value.ends_with(&pattern[last + 1..])
                && gatehouse_policy::wildcard_match(pattern, value)
        }
        _ => pattern == value,
    }
}

/// Why a request is over budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    /// Which limit (of the window with the longest wait).
    pub limit: &'static str,
    /// Whose budget, e.g. `group arn:gatehouse:iam::111122223333:group/search`.
    pub budget: String,
    /// Seconds until every full window has room for the request; `None` when the request
    /// alone needs more than the limit (waiting cannot help).
    pub retry_after: Option<u64>,
    /// The limit's value.
    pub allowed: u64,
    /// What the request needs of it (1 request, or its reserved tokens).
    pub needed: u64,
}

/// A sliding window counted in buckets: the current bucket and the `slots - 1` before it
/// cover every span of `slots - 1` buckets that ends now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    bucket_ms: i64,
    slots: usize,
}

/// Requests and tokens per minute: 61 one-second buckets.
const MINUTE: Span = Span {
    bucket_ms: 1_000,
    slots: 61,
};
/// Tokens per day: 25 one-hour buckets.
const DAY: Span = Span {
    bucket_ms: 3_600_000,
    slots: 25,
};

/// One bucket's counts (`bucket` is the start time divided by the bucket length).
#[derive(Debug, Clone, Copy)]
struct Slot {
    bucket: i64,
    requests: u64,
    tokens: u64,
    /// Changed since the last sync.
    dirty: bool,
}

const UNUSED: Slot = Slot {
    bucket: i64::MIN,
    requests: 0,
    tokens: 0,
    dirty: false,
};

/// The buckets of one window, in a ring: bucket `b` lives in slot `b mod slots`.
#[derive(Debug)]
struct Ring {
    span: Span,
    slots: Box<[Slot]>,
}

impl Ring {
    fn new(span: Span) -> Ring {
        Ring {
            span,
            slots: vec![UNUSED; span.slots].into_boxed_slice(),
        }
    }

    fn bucket_of(&self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.span.bucket_ms)
    }

    fn index(&self, bucket: i64) -> usize {
        // `slots` is small and positive: the remainder is a valid index.
        bucket.rem_euclid(self.slots.len() as i64) as usize
    }

    /// Whether `bucket` counts in the window whose current bucket is `now`. Later buckets
    /// count too (this clock stepped back, or a node ahead wrote them): conservative.
    fn counts(&self, bucket: i64, now: i64) -> bool {
        bucket != i64::MIN && bucket > now - self.slots.len() as i64
    }

    /// The slot of `bucket`, emptied first if it held an older one (by then outside
    /// every window).
    fn at(&mut self, bucket: i64) -> &mut Slot {
        let i = self.index(bucket);
        let s = &mut self.slots[i];
        if s.bucket != bucket {
            *s = Slot { bucket, ..UNUSED };
        }
        s
    }

    /// The slot of `bucket`, if the ring still holds it.
    fn existing(&mut self, bucket: i64) -> Option<&mut Slot> {
        let i = self.index(bucket);
        let s = &mut self.slots[i];
        (s.bucket == bucket).then_some(s)
    }

    /// Adds counts read from the store. Two buckets meeting in one slot are added in the
    /// later one, which then counts a little longer than it should: never less.
    fn merge(&mut self, bucket: i64, requests: u64, tokens: u64) {
        let i = self.index(bucket);
        let s = &mut self.slots[i];
        s.bucket = s.bucket.max(bucket);
        s.requests = s.requests.saturating_add(requests);
        s.tokens = s.tokens.saturating_add(tokens);
    }

    /// Requests and tokens in the window of `now_ms`.
    fn totals(&self, now_ms: i64) -> (u64, u64) {
        let now = self.bucket_of(now_ms);
        self.slots
            .iter()
            .filter(|s| self.counts(s.bucket, now))
            .fold((0u64, 0u64), |(r, t), s| {
                (r.saturating_add(s.requests), t.saturating_add(s.tokens))
            })
    }

    /// Whether nothing in the window of `now_ms` is counted (and nothing is unpublished).
    fn is_idle(&self, now_ms: i64) -> bool {
        let now = self.bucket_of(now_ms);
        !self
            .slots
            .iter()
            .any(|s| s.dirty || (self.counts(s.bucket, now) && (s.requests > 0 || s.tokens > 0)))
    }

    fn clear(&mut self) {
        self.slots.fill(UNUSED);
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy)]
enum Measure {
    Requests,
    Tokens,
}

impl Measure {
    fn of(self, s: &Slot) -> u64 {
        match self {
            Measure::Requests => s.requests,
            Measure::Tokens => s.tokens,
        }
    }
}

/// One scope's counters: this node's buckets and, as of the last sync, the other nodes'.
#[derive(Debug)]
struct Counters {
    minute: Ring,
    /// Only for scopes with a tokens-per-day limit.
    day: Option<Ring>,
    others_minute: Option<Ring>,
    others_day: Option<Ring>,
    /// Some bucket changed since the last sync.
    dirty: bool,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            minute: Ring::new(MINUTE),
            day: None,
            others_minute: None,
            others_day: None,
            dirty: false,
        }
    }

    /// This node's and the others' rings of one window.
    fn rings(&self, span: Span) -> [Option<&Ring>; 2] {
        if span == MINUTE {
            [Some(&self.minute), self.others_minute.as_ref()]
        } else {
            [self.day.as_ref(), self.others_day.as_ref()]
        }
    }

    fn is_idle(&self, now_ms: i64) -> bool {
        !self.dirty
            && [
                Some(&self.minute),
                self.day.as_ref(),
                self.others_minute.as_ref(),
                self.others_day.as_ref(),
            ]
            .into_iter()
            .flatten()
            .all(|r| r.is_idle(now_ms))
    }
}

/// What a request was admitted with: settled ([`Budgets::settle`]) once its tokens are
/// known. Never settled, it keeps its whole reservation (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    scopes: Vec<String>,
    tokens: u64,
    at_ms: i64,
}

impl Reservation {
    /// The tokens reserved.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// The budget counters it was admitted against.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

/// The counters of every budget scope this node has seen, and the node's id in the store.
#[derive(Debug)]
pub struct Budgets {
    node_id: String,
    counters: Mutex<HashMap<String, Counters>>,
    syncs: AtomicU64,
    /// Milliseconds from this node's clock to the store's, measured at each sync.
    clock_offset_ms: AtomicI64,
}

impl Default for Budgets {
    fn default() -> Self {
        let mut id = [0u8; 12];
        rand::fill(&mut id[..]);
        Budgets {
            node_id: hex::encode(id),
            counters: Mutex::new(HashMap::new()),
            syncs: AtomicU64::new(0),
            clock_offset_ms: AtomicI64::new(0),
        }
    }
}

fn unavailable() -> OverBudget {
    // Fail closed.
    OverBudget {
        limit: "budget state unavailable",
        budget: String::new(),
        retry_after: Some(1),
        allowed: 0,
        needed: 0,
    }
}

impl Budgets {
    /// This node's clock (`now_ms`, epoch milliseconds) in the store's.
    fn shared_time(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// Admits a request that may use up to `tokens` tokens against every applicable
    /// budget — counting it, and reserving the tokens, in each — or, if any window lacks
    /// room, counts nothing and says which limit and how long until every full window
    /// has room. `now_ms` is epoch milliseconds.
    pub fn admit(
        &self,
        budgets: &[Applicable],
        tokens: u64,
        now_ms: i64,
    ) -> Result<Reservation, OverBudget> {
        if budgets.is_empty() {
            return Ok(Reservation::default());
        }
        let now = self.shared_time(now_ms);
        let Ok(mut map) = self.counters.lock() else {
            return Err(unavailable());
        };
        let mut over: Option<OverBudget> = None;
        for b in budgets {
            check_room(b, map.get(&b.scope), tokens, now, &mut over);
        }
        if let Some(o) = over {
            return Err(o);
        }
        for b in budgets {
            let c = map.entry(b.scope.clone()).or_insert_with(Counters::new);
            let bucket = c.minute.bucket_of(now);
            let s = c.minute.at(bucket);
            s.requests = s.requests.saturating_add(1);
            s.tokens = s.tokens.saturating_add(tokens);
            s.dirty = true;
            if b.limits.tokens_per_day.is_some() && tokens > 0 {
                let day = c.day.get_or_insert_with(|| Ring::new(DAY));
                let s = day.at(day.bucket_of(now));
                s.tokens = s.tokens.saturating_add(tokens);
                s.dirty = true;
            }
            c.dirty = true;
        }
        Ok(Reservation {
            scopes: budgets.iter().map(|b| b.scope.clone()).collect(),
            tokens,
            at_ms: now,
        })
    }

    /// Settles a reservation to the tokens the request is charged: the unused part is
    /// refunded in the buckets it was reserved in, an excess is counted now.
    pub fn settle(&self, reservation: &Reservation, tokens: u64, now_ms: i64) {
        let r = reservation;
        if r.scopes.is_empty() || tokens == r.tokens {
            return;
        }
        let now = self.shared_time(now_ms);
        let Ok(mut map) = self.counters.lock() else {
            return;
        };
        for scope in &r.scopes {
            if tokens < r.tokens {
                let refund = r.tokens - tokens;
                let Some(c) = map.get_mut(scope) else {
                    continue;
                };
                for ring in [Some(&mut c.minute), c.day.as_mut()].into_iter().flatten() {
                    let bucket = ring.bucket_of(r.at_ms);
                    if let Some(s) = ring.existing(bucket) {
                        s.tokens = s.tokens.saturating_sub(refund);
                        s.dirty = true;
                        c.dirty = true;
                    }
                }
            } else {
                let extra = tokens - r.tokens;
                let c = map.entry(scope.clone()).or_insert_with(Counters::new);
                for ring in [Some(&mut c.minute), c.day.as_mut()].into_iter().flatten() {
                    let s = ring.at(ring.bucket_of(now));
                    s.tokens = s.tokens.saturating_add(extra);
                    s.dirty = true;
                }
                c.dirty = true;
            }
        }
    }

    /// One sync round with the store (see the module docs): publishes the buckets changed
    /// since the last round, takes in the other nodes' buckets of the current windows,
    /// measures this node's clock against the store's, forgets idle counters, and now and
    /// then prunes old buckets. `now_ms` is this node's clock.
    pub async fn sync(&self, store: &Store, now_ms: i64) -> Result<(), StoreError> {
        let now = self.shared_time(now_ms);
        let own = self.take_dirty();
        let since = [
            (
                MINUTE.bucket_ms / 1000,
                window_start(MINUTE, now) * MINUTE.bucket_ms / 1000,
            ),
            (
                DAY.bucket_ms / 1000,
                window_start(DAY, now) * DAY.bucket_ms / 1000,
            ),
        ];
        let started = Instant::now();
        let synced = match store.sync_gateway_usage(&self.node_id, &own, &since).await {
            Ok(s) => s,
            Err(e) => {
                // Counts are absolute: publishing them again next round loses nothing.
                self.mark_dirty(&own);
                return Err(e);
            }
        };
        let local_then =
            now_ms.saturating_add(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
        self.clock_offset_ms
            .store(synced.store_time_ms - local_then, Ordering::Relaxed);
        self.take_others(&synced.others, now);
        // About once a minute.
        if self
            .syncs
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(240)
        {
            store.prune_gateway_usage(&prune_before(now)).await?;
        }
        Ok(())
    }

    fn take_dirty(&self) -> Vec<UsageCount> {
        let Ok(mut map) = self.counters.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (scope, c) in map.iter_mut().filter(|(_, c)| c.dirty) {
            c.dirty = false;
            for ring in [Some(&mut c.minute), c.day.as_mut()].into_iter().flatten() {
                let secs = ring.span.bucket_ms / 1000;
                for s in ring.slots.iter_mut().filter(|s| s.dirty) {
                    s.dirty = false;
                    out.push(UsageCount {
                        scope: scope.clone(),
                        bucket_secs: secs,
                        bucket_start: s.bucket.saturating_mul(secs),
                        requests: i64::try_from(s.requests).unwrap_or(i64::MAX),
                        tokens: i64::try_from(s.tokens).unwrap_or(i64::MAX),
                    });
                }
            }
        }
        out
    }

    fn mark_dirty(&self, own: &[UsageCount]) {
        let Ok(mut map) = self.counters.lock() else {
            return;
        };
        for u in own {
            let Some(c) = map.get_mut(&u.scope) else {
                continue;
            };
            let ring = if u.bucket_secs * 1000 == MINUTE.bucket_ms {
                Some(&mut c.minute)
            } else {
                c.day.as_mut()
            };
            if let Some(ring) = ring
                && let Some(s) = ring.existing(u.bucket_start / (ring.span.bucket_ms / 1000))
            {
                s.dirty = true;
                c.dirty = true;
            }
        }
    }

    /// Replaces the other nodes' buckets with what the store holds now, and forgets
    /// counters with nothing left to enforce.
    fn take_others(&self, others: &[UsageCount], now: i64) {
        let Ok(mut map) = self.counters.lock() else {
            return;
        };
        for c in map.values_mut() {
            for r in [c.others_minute.as_mut(), c.others_day.as_mut()]
                .into_iter()
                .flatten()
            {
                r.clear();
            }
        }
        for u in others {
            let span = if u.bucket_secs * 1000 == MINUTE.bucket_ms {
                MINUTE
            } else if u.bucket_secs * 1000 == DAY.bucket_ms {
                DAY
            } else {
                continue;
            };
            let c = map.entry(u.scope.clone()).or_insert_with(Counters::new);
            let ring = if span == MINUTE {
                &mut c.others_minute
            } else {
                &mut c.others_day
            };
            ring.get_or_insert_with(|| Ring::new(span)).merge(
                u.bucket_start.div_euclid(u.bucket_secs),
                u64::try_from(u.requests).unwrap_or(0),
                u64::try_from(u.tokens).unwrap_or(0),
            );
        }
        map.retain(|_, c| {
            for r in [&mut c.others_minute, &mut c.others_day] {
                if r.as_ref().is_some_and(|r| r.is_idle(now)) {
                    *r = None;
                }
            }
            !c.is_idle(now)
        });
    }

    /// Counter sets held (for tests of forgetting).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.counters.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// The first bucket of the window that `now` (store time, ms) ends.
fn window_start(span: Span, now: i64) -> i64 {
    now.div_euclid(span.bucket_ms) - (span.slots as i64 - 1)
}

/// What the store may forget (`(bucket_secs, first bucket start kept)`): buckets a window
/// before the current ones' windows (kept for nodes that lag), and rows in the fixed
/// windows of earlier versions (periods of 60 and 86,400 seconds).
fn prune_before(now: i64) -> [(i64, i64); 4] {
    let secs = now.div_euclid(1000);
    let keep = |span: Span| {
        let b = span.bucket_ms / 1000;
        (b, (window_start(span, now) - span.slots as i64) * b)
    };
    [
        keep(MINUTE),
        keep(DAY),
        (60, secs - 120),
        (86_400, secs - 2 * 86_400),
    ]
}

/// Notes in `over` each window of `b` without room for one more request of `tokens`
/// (given the scope's counters), keeping the one with the longest wait; a request that
/// could never fit beats any wait.
fn check_room(
    b: &Applicable,
    c: Option<&Counters>,
    tokens: u64,
    now: i64,
    over: &mut Option<OverBudget>,
) {
    let l = &b.limits;
    let windows = [
        (
            l.tokens_per_day,
            DAY,
            Measure::Tokens,
            tokens,
            "tokens per day",
        ),
        (
            l.tokens_per_minute,
            MINUTE,
            Measure::Tokens,
            tokens,
            "tokens per minute",
        ),
        (
            l.requests_per_minute,
            MINUTE,
            Measure::Requests,
            1,
            "requests per minute",
        ),
    ];
    for (limit, span, measure, needed, name) in windows {
        let Some(allowed) = limit else { continue };
        let rings = c.map_or([None, None], |c| c.rings(span));
        let used = rings
            .iter()
            .flatten()
            .map(|r| {
                let (requests, tokens) = r.totals(now);
                match measure {
                    Measure::Requests => requests,
                    Measure::Tokens => tokens,
                }
            })
            .fold(0u64, u64::saturating_add);
        if used.saturating_add(needed) <= allowed {
            continue;
        }
        let retry_after = if allowed == 0 {
            // A budget of nothing: ask again after a window.
            Some(span.bucket_ms as u64 / 1000 * (span.slots as u64 - 1))
        } else if needed <= allowed {
            let wait = room_after(&rings, span, measure, used, needed, allowed, now);
            Some(u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1))
        } else {
            None
        };
        let longer = match (&over, retry_after) {
            (None, _) => true,
            (Some(o), None) => o.retry_after.is_some(),
            (Some(o), Some(w)) => o.retry_after.is_some_and(|ow| w > ow),
        };
        if longer {
            *over = Some(OverBudget {
                limit: name,
                budget: format!("{} {}", b.kind.word(), b.scope),
                retry_after,
                allowed,
                needed,
            });
        }
    }
}

/// Milliseconds until enough of the window's buckets have expired for `needed` more.
fn room_after(
    rings: &[Option<&Ring>; 2],
    span: Span,
    measure: Measure,
    used: u64,
    needed: u64,
    allowed: u64,
    now: i64,
) -> i64 {
    let current = now.div_euclid(span.bucket_ms);
    let mut buckets: Vec<(i64, u64)> = rings
        .iter()
        .flatten()
        .flat_map(|r| {
            r.slots
                .iter()
                .filter(|s| r.counts(s.bucket, current))
                .map(|s| (s.bucket, measure.of(s)))
        })
        .collect();
    buckets.sort_unstable();
    let mut left = used;
    for (bucket, n) in buckets {
        left = left.saturating_sub(n);
        if left.saturating_add(needed) <= allowed {
            // Bucket b leaves the window when the current bucket reaches b + slots.
            return (bucket + span.slots as i64) * span.bucket_ms - now;
        }
    }
    span.bucket_ms
}

// ---------------------------------------------------------------------------------------
// what a request may cost

/// Tokens estimated from text: 4 bytes a token, rounded up (OpenAI's rule of thumb for
/// English text; code and other languages take more tokens a byte, which settlement
/// corrects when the upstream reports its usage).
pub fn tokens_of_text(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

/// The prompt's tokens, estimated: its text (message contents and text parts, `prompt`,
/// `suffix`, `input`, and the `tools`, `functions` and earlier `tool_calls` the model reads
/// as JSON) at 4 bytes a token ([`tokens_of_text`]), and token-id arrays (`prompt`/`input`
/// as numbers) at one token an id. Images, audio and files are not estimated: what they
/// cost is settled after the answer.
pub fn prompt_estimate(body: &serde_json::Map<String, serde_json::Value>) -> u64 {
    use serde_json::Value;
    fn text(v: &Value) -> u64 {
        match v {
            Value::String(s) => s.len() as u64,
            Value::Array(a) => a.iter().map(text).sum(),
            Value::Object(o) => o.get("text").map_or(0, text),
            _ => 0,
        }
    }
    fn ids(v: &Value) -> u64 {
        match v {
            Value::Number(_) => 1,
            Value::Array(a) => a.iter().map(ids).sum(),
            _ => 0,
        }
    }
    let json_len = |v: &Value| serde_json::to_string(v).map_or(0, |s| s.len() as u64);
    let mut bytes = 0u64;
    let mut token_ids = 0u64;
    if let Some(Value::Array(msgs)) = body.get("messages") {
        for m in msgs {
            bytes += m.get("content").map_or(0, text);
            if let Some(calls) = m.get("tool_calls").or_else(|| m.get("function_call")) {
                bytes += json_len(calls);
            }
        }
    }
    for k in ["prompt", "suffix", "input"] {
        if let Some(v) = body.get(k) {
            bytes += text(v);
            token_ids += ids(v);
        }
    }
    for k in ["tools", "functions"] {
        if let Some(v) = body.get(k) {
            bytes += json_len(v);
        }
    }
    tokens_of_text(bytes).saturating_add(token_ids)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ALICE: &str = "arn:gatehouse:iam::111122223333:user/alice";
    const BOB: &str = "arn:gatehouse:iam::111122223333:user/bob";
    const SEARCH: &str = "arn:gatehouse:iam::111122223333:group/search";
    const ADS: &str = "arn:gatehouse:iam::111122223333:group/ads";
    const ROLE: &str = "arn:gatehouse:iam::111122223333:role/analyst";
    const SESSION: &str = "arn:gatehouse:sts::111122223333:assumed-role/analyst/s1";

    /// 20 s into a minute and into an hour (an hour began at 1.8e12 ms): the tests' clock.
    const T: i64 = 1_800_000_000_000 + 20_000;
    const SECOND: i64 = 1_000;
    const HOUR: i64 = 3_600_000;

    fn limits(rpm: Option<u64>, tpm: Option<u64>, tpd: Option<u64>) -> Limits {
        Limits {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            tokens_per_day: tpd,
        }
    }

    fn entry(kind: &str, pattern: &str, l: Limits) -> BudgetConfig {
        let p = Some(pattern.to_owned());
        BudgetConfig {
            principal: (kind == "principal").then(|| p.clone()).flatten(),
            role: (kind == "role").then(|| p.clone()).flatten(),
            group: (kind == "group").then(|| p.clone()).flatten(),
            requests_per_minute: l.requests_per_minute,
            tokens_per_minute: l.tokens_per_minute,
            tokens_per_day: l.tokens_per_day,
        }
    }

    fn user<'a>(arn: &'a str, groups: &'a [String]) -> Subject<'a> {
        Subject {
            principal: arn,
            role: None,
            groups,
            session: None,
        }
    }

    fn one(scope: &str, l: Limits) -> Vec<Applicable> {
        vec![Applicable {
            scope: scope.into(),
            kind: ScopeKind::Principal,
            limits: l,
        }]
    }

    /// The most of `times` (ms) in any span of `span` ms.
    fn most_in_span(times: &[i64], span: i64) -> usize {
        times
            .iter()
            .map(|&t| times.iter().filter(|&&u| u >= t && u < t + span).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn requests_per_minute_slide_with_time() {
        let b = Budgets::default();
        let a = one("a", limits(Some(2), None, None));
        assert!(b.admit(&a, 0, T).is_ok());
        assert!(b.admit(&a, 0, T + 30 * SECOND).is_ok());
        let e = b.admit(&a, 0, T + 40 * SECOND).err().unwrap();
        // The first request leaves the window 61 s after its second began.
        assert_eq!((e.limit, e.retry_after), ("requests per minute", Some(21)));
        assert_eq!(e.budget, "principal a");
        // Someone else is not affected.
        assert!(
            b.admit(&one("b", limits(Some(2), None, None)), 0, T)
                .is_ok()
        );
        // A new minute has begun (fixed windows would admit here) but the window has not
        // moved past the first request yet.
        assert!(b.admit(&a, 0, T + 60 * SECOND).is_err());
        assert!(b.admit(&a, 0, T + 61 * SECOND - 1).is_err());
        assert!(b.admit(&a, 0, T + 61 * SECOND).is_ok());
        assert!(b.admit(&a, 0, T + 61 * SECOND).is_err());
    }

    #[test]
    fn no_60_second_span_admits_more_than_the_limit_around_a_boundary() {
        // A caller who tries every 100 ms for three minutes, starting 30 s before a
        // minute's end: fixed windows admitted 200 in some 60 s span (100 before the
        // boundary, 100 after); the sliding window admits 100, and keeps admitting.
        let b = Budgets::default();
        let a = one("a", limits(Some(100), None, None));
        let start = T + 10 * SECOND; // 30 s before the minute ends
        let admitted: Vec<i64> = (0..1800)
            .map(|i| start + i * 100)
            .filter(|&t| b.admit(&a, 0, t).is_ok())
            .collect();
        assert_eq!(most_in_span(&admitted, 60 * SECOND), 100);
        assert!(admitted.len() >= 280, "{}", admitted.len());
        // The same for tokens per day, with an hour's attempts a minute apart over three days.
        let b = Budgets::default();
        let a = one("a", limits(None, None, Some(10_000)));
        let admitted: Vec<i64> = (0..3 * 24 * 60)
            .map(|i| T + 12 * HOUR + i * 60 * SECOND)
            .filter(|&t| b.admit(&a, 100, t).is_ok())
            .collect();
        assert_eq!(most_in_span(&admitted, 24 * HOUR) * 100, 10_000);
    }

    #[test]
    fn parallel_requests_reserve_their_maximum() {
        // 50 requests of up to 100 tokens each at once, against 300 tokens per minute.
        let b = Budgets::default();
        let a = one("a", limits(None, Some(300), None));
        let admitted: Vec<Reservation> = (0..50).filter_map(|_| b.admit(&a, 100, T).ok()).collect();
        assert_eq!(admitted.len(), 3);
        // Settled to what they used: the unused part is refunded at once.
        b.settle(&admitted[0], 10, T + SECOND);
        b.settle(&admitted[1], 100, T + SECOND);
        let fourth = b.admit(&a, 90, T + 2 * SECOND).unwrap();
        assert!(b.admit(&a, 1, T + 2 * SECOND).is_err());
        // More than reserved (a prompt larger than its estimate): the excess counts now,
        // in a later bucket, and so for longer.
        b.settle(&fourth, 120, T + 30 * SECOND);
        let e = b.admit(&a, 1, T + 30 * SECOND).err().unwrap();
        assert_eq!(e.limit, "tokens per minute");
        // 330 counted: 210 reserved at T (after the refund), which leave the window at
        // T + 61 s; then 90 + 30 + 1 fit.
        assert_eq!(e.retry_after, Some(31));
        assert!(b.admit(&a, 270, T + 63 * SECOND).is_ok());
    }

    #[test]
    fn a_request_that_could_never_fit_is_told_so() {
        let b = Budgets::default();
        let a = one("a", limits(Some(10), Some(300), Some(1_000)));
        let e = b.admit(&a, 301, T).err().unwrap();
        assert_eq!((e.limit, e.retry_after), ("tokens per minute", None));
        assert_eq!((e.allowed, e.needed), (300, 301));
        // ...even when another window also lacks room for now.
        b.admit(&a, 300, T).unwrap();
        let e = b.admit(&a, 1_001, T).err().unwrap();
        assert_eq!((e.limit, e.retry_after), ("tokens per day", None));
    }

    #[test]
    fn a_refusal_counts_nothing_and_retry_after_is_the_longest_wait() {
        let b = Budgets::default();
        let budgets = vec![
            Applicable {
                scope: "group".into(),
                kind: ScopeKind::Group,
                limits: limits(Some(2), None, None),
            },
            Applicable {
                scope: "user".into(),
                kind: ScopeKind::Principal,
                limits: limits(Some(10), None, Some(50)),
            },
        ];
        let r = b.admit(&budgets, 10, T).unwrap();
        b.settle(&r, 60, T);
        // The user's day is full (the group's minute is not yet): refused until the hour
        // of those tokens has left the last 24.
        let e = b.admit(&budgets, 10, T).err().unwrap();
        assert_eq!(e.limit, "tokens per day");
        assert_eq!(e.retry_after, Some(25 * 3_600 - 20));
        assert_eq!(e.budget, "principal user");
        // The refused request was not counted against the group: it still has one left
        // for a caller who is only in the group.
        assert!(b.admit(&budgets[..1], 0, T).is_ok());
        let e = b.admit(&budgets[..1], 0, T).err().unwrap();
        assert_eq!((e.limit, e.retry_after), ("requests per minute", Some(61)));
    }

    #[test]
    fn a_refund_after_the_window_moved_on_changes_nothing() {
        let b = Budgets::default();
        let a = one("a", limits(None, Some(200), Some(150)));
        let r = b.admit(&a, 100, T).unwrap();
        // The minute's reservation has expired; the day's is still counted, and refunded.
        assert!(b.admit(&a, 50, T + 61 * SECOND).is_ok());
        b.settle(&r, 40, T + 90 * SECOND);
        assert!(b.admit(&a, 50, T + 91 * SECOND).is_ok());
        assert!(b.admit(&a, 10, T + 91 * SECOND).is_ok());
        assert!(b.admit(&a, 1, T + 91 * SECOND).is_err()); // 40 + 50 + 50 + 10 = 150
    }

    #[test]
    fn every_matching_budget_applies_and_one_group_budget_is_shared() {
        let cfg = vec![
            entry(
                "principal",
                "arn:gatehouse:iam::*:user/*",
                limits(Some(5), None, None),
            ),
            entry("principal", ALICE, limits(Some(1), None, None)),
            entry("group", SEARCH, limits(Some(3), None, Some(1000))),
            entry(
                "group",
                "arn:gatehouse:iam::*:group/nobody",
                limits(Some(0), None, None),
            ),
            entry("role", ROLE, limits(Some(9), None, None)),
        ];
        let groups = vec![ADS.to_owned(), SEARCH.to_owned()];
        let got = applicable(&cfg, &user(ALICE, &groups)).unwrap();
        // Both principal entries name alice's own counters: one counter set, the
        // narrowest of each limit; the group's own; no role (alice is a user).
        assert_eq!(
            got,
            vec![
                Applicable {
                    scope: ALICE.into(),
                    kind: ScopeKind::Principal,
                    limits: limits(Some(1), None, None),
                },
                Applicable {
                    scope: SEARCH.into(),
                    kind: ScopeKind::Group,
                    limits: limits(Some(3), None, Some(1000)),
                },
            ]
        );
        // Bob's requests count against the search group's shared counters: after three
        // requests between the two, the group is full for both although bob's own
        // budget (5) has room.
        let b = Budgets::default();
        let bob_budgets = applicable(&cfg, &user(BOB, &groups)).unwrap();
        let carol = "arn:gatehouse:iam::111122223333:user/carol";
        let carol_budgets = applicable(&cfg, &user(carol, &groups)).unwrap();
        assert!(b.admit(&bob_budgets, 1, T).is_ok());
        assert!(b.admit(&bob_budgets, 1, T).is_ok());
        assert!(b.admit(&carol_budgets, 1, T).is_ok());
        let e = b.admit(&carol_budgets, 1, T).err().unwrap();
        assert_eq!(e.budget, format!("group {SEARCH}"));
        assert!(b.admit(&bob_budgets, 1, T).is_err());
        // A user outside the group is not affected.
        assert!(
            b.admit(&applicable(&cfg, &user(carol, &[])).unwrap(), 1, T)
                .is_ok()
        );
    }

    #[test]
    fn a_session_tag_budget_narrows_but_never_widens_the_roles() {
        let cfg = vec![entry(
            "role",
            "arn:gatehouse:iam::*:role/analyst",
            limits(Some(4), None, None),
        )];
        let tags = |rpm: &str| BTreeMap::from([("gatehouse:rpm".to_owned(), rpm.to_owned())]);
        let session = |key: &str, rpm: &str| SessionBudget {
            key: key.into(),
            limits: session_limits(&tags(rpm)),
        };
        let subject = |s| Subject {
            principal: SESSION,
            role: Some(ROLE),
            groups: &[],
            session: Some(s),
        };
        let b = Budgets::default();
        // Narrower: the session is refused after 2 while the role has room...
        let narrow = session("ASIANARROW", "2");
        let n = applicable(&cfg, &subject(&narrow)).unwrap();
        assert_eq!(n.len(), 2);
        assert!(b.admit(&n, 0, T).is_ok());
        assert!(b.admit(&n, 0, T).is_ok());
        let e = b.admit(&n, 0, T).err().unwrap();
        assert_eq!(e.budget, "session ASIANARROW");
        // ...and another session of the same role still passes, up to the role's 4.
        let wide = session("ASIAWIDE", "100");
        let w = applicable(&cfg, &subject(&wide)).unwrap();
        assert!(b.admit(&w, 0, T).is_ok());
        assert!(b.admit(&w, 0, T).is_ok());
        // Wider than the role: no effect beyond the role's budget.
        let e = b.admit(&w, 0, T).err().unwrap();
        assert_eq!(e.budget, format!("role {ROLE}"));
        // No role budget at all: the session's own still applies.
        let alone = applicable(&[], &subject(&narrow)).unwrap();
        assert_eq!(alone.len(), 1);
        assert!(b.admit(&alone, 0, T).is_err());
    }

    #[test]
    fn the_prefiltered_match_agrees_with_the_engines() {
        let texts = [ALICE, BOB, SEARCH, ROLE, SESSION, "", "a", "aa", "arn:x"];
        let patterns = [
            "arn:gatehouse:iam::*:user/*",
            "arn:gatehouse:iam::*:group/search",
            "arn:gatehouse:iam::111122223333:user/alice",
            "*",
            "?",
            "a*a",
            "a?",
            "*:role/analyst",
            "arn:*",
            "",
        ];
        for p in patterns {
            for t in texts {
                assert_eq!(
                    matches(p, t),
                    gatehouse_policy::wildcard_match(p, t),
                    "{p} ~ {t}"
                );
            }
        }
    }

    #[test]
    fn budget_tags_must_be_whole_numbers() {
        let l = |k: &str, v: &str| session_limits(&BTreeMap::from([(k.to_owned(), v.to_owned())]));
        assert_eq!(l("team", "search"), Ok(None));
        assert_eq!(
            l("Gatehouse:TPD", "5000"),
            Ok(Some(limits(None, None, Some(5000))))
        );
        assert_eq!(
            l("gatehouse:tpm", "0"),
            Ok(Some(limits(None, Some(0), None)))
        );
        for bad in [
            "",
            "ten",
            "-1",
            "1.5",
            " 5",
            "+5",
            "99999999999999999999999",
        ] {
            let e = l("gatehouse:rpm", bad).unwrap_err();
            assert_eq!(e.key, "gatehouse:rpm");
            assert!(e.to_string().contains("whole number"), "{e}");
        }
        // Fail closed: an unreadable tag fails the whole set of budgets.
        let s = SessionBudget {
            key: "ASIAX".into(),
            limits: l("gatehouse:rpm", "lots"),
        };
        let subject = Subject {
            principal: SESSION,
            role: Some(ROLE),
            groups: &[],
            session: Some(&s),
        };
        assert!(applicable(&[], &subject).is_err());
    }

    fn others(
        scope: &str,
        bucket_secs: i64,
        bucket_start: i64,
        requests: i64,
        tokens: i64,
    ) -> UsageCount {
        UsageCount {
            scope: scope.into(),
            bucket_secs,
            bucket_start,
            requests,
            tokens,
        }
    }

    #[test]
    fn other_nodes_buckets_are_added_and_forgotten_as_the_window_moves() {
        let b = Budgets::default();
        let a = one("g", limits(Some(5), Some(100), None));
        let sec = T / 1000;
        // The store says other nodes used 4 requests (and 60 tokens) 30 s ago.
        b.take_others(&[others("g", 1, sec - 30, 4, 60)], T);
        assert!(b.admit(&a, 40, T).is_ok());
        let e = b.admit(&a, 0, T).err().unwrap();
        assert_eq!(e.limit, "requests per minute");
        // 30 s ago leaves the window in 31 s.
        assert_eq!(e.retry_after, Some(31));
        // What this node counted is published once, as absolute totals per bucket.
        let own = b.take_dirty();
        assert_eq!(own, vec![others("g", 1, sec, 1, 40)]);
        assert!(b.take_dirty().is_empty());
        // A refund republishes the bucket.
        let r = Reservation {
            scopes: vec!["g".into()],
            tokens: 40,
            at_ms: T,
        };
        b.settle(&r, 15, T);
        assert_eq!(b.take_dirty(), vec![others("g", 1, sec, 1, 15)]);
        // Scopes with a tokens-per-day limit publish their hour too.
        let d = Budgets::default();
        d.admit(&one("d", limits(None, None, Some(1_000))), 7, T)
            .unwrap();
        let mut own = d.take_dirty();
        own.sort_by_key(|u| u.bucket_secs);
        let hour = T / HOUR * 3_600;
        assert_eq!(
            own,
            vec![others("d", 1, sec, 1, 7), others("d", 3_600, hour, 0, 7)]
        );
        // Buckets older than the window do not count.
        let b2 = Budgets::default();
        b2.take_others(&[others("g", 1, sec - 61, 5, 0)], T);
        for _ in 0..5 {
            assert!(b2.admit(&a, 0, T).is_ok());
        }
        // A scope with nothing in the current windows is forgotten at the next sync.
        let b3 = Budgets::default();
        b3.take_others(&[others("g", 1, sec, 1, 0)], T);
        assert_eq!(b3.len(), 1);
        b3.take_others(&[], T + 61 * SECOND);
        assert_eq!(b3.len(), 0);
    }

    #[tokio::test]
    async fn nodes_whose_clocks_disagree_count_in_the_store_clock() {
        // Node A's clock runs 90 s behind node B's; both share one store. Counting in
        // their own clocks, B would find A's requests in buckets older than its window
        // (and a clock 30 s behind would have them expire 30 s early). Each measures its
        // offset to the store's clock at the sync, so they count in the same buckets.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path(), gatehouse_store::MasterKey::generate())
            .await
            .unwrap();
        let (a, b) = (Budgets::default(), Budgets::default());
        let clock_b = || chrono::Utc::now().timestamp_millis();
        let clock_a = || clock_b() - 90_000;
        a.sync(&store, clock_a()).await.unwrap();
        b.sync(&store, clock_b()).await.unwrap();
        let budget = one("shared", limits(Some(3), None, None));
        for _ in 0..3 {
            a.admit(&budget, 0, clock_a()).unwrap();
        }
        a.sync(&store, clock_a()).await.unwrap();
        b.sync(&store, clock_b()).await.unwrap();
        let e = b.admit(&budget, 0, clock_b()).err().unwrap();
        // Seen as just now: about a minute to wait, not a quarter of one.
        assert!(e.retry_after.unwrap() >= 59, "{e:?}");
    }

    #[test]
    fn what_a_prompt_is_estimated_at() {
        let body = |v: serde_json::Value| v.as_object().cloned().unwrap();
        let chat = body(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "12345678"},
                {"role": "user", "content": [{"type": "text", "text": "abcd"},
                                              {"type": "image_url", "image_url": {"url": "data:..."}}]},
                {"role": "assistant", "content": null,
                 "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}]
        }));
        let calls = r#"[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]"#;
        let tools = r#"[{"type":"function","function":{"name":"f"}}]"#;
        let bytes = 8 + 4 + calls.len() + tools.len();
        assert_eq!(prompt_estimate(&chat), bytes.div_ceil(4) as u64);
        // Token ids count one each.
        let legacy = body(serde_json::json!({"prompt": [[1, 2, 3], [4]], "n": 2, "best_of": 5}));
        assert_eq!(prompt_estimate(&legacy), 4);
    }
}
