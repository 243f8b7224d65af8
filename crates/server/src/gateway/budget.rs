//! Budgets: requests per minute, tokens per minute, tokens per UTC day, for principals,
//! roles, groups and single role sessions, global across the nodes that share a store.
//!
//! Every budget that applies to a request is enforced: the caller's own (`principal`
//! patterns), its role's (every session of the role counts against it together), each of
//! its groups' (every member counts against the group's shared budget), and its session's
//! (the `gatehouse:rpm`/`gatehouse:tpm`/`gatehouse:tpd` session tags). A request passes
//! only if every window of every applicable budget has room, and is then counted in all
//! of them, so the narrowest budget wins and a session can never spend more than its role.
//! A refusal's `Retry-After` is the longest wait among the full windows.
//!
//! Windows are fixed (the current minute, the current UTC day), so `Retry-After` is exact.
//! Tokens are counted from the upstream's `usage` after the answer: a window is full once
//! its tokens have reached the limit (a single request can overshoot; the next one waits).
//!
//! Counting happens in this node's memory (a database round trip per request would cost
//! more than the whole gateway adds). [`Budgets::sync`], run every [`SYNC_INTERVAL`] by a
//! background task, writes this node's totals for the current windows to the store and
//! reads every other node's, and a request is admitted against both. Other nodes' traffic
//! is therefore seen at most two intervals late (their write, then our read): a budget can
//! be overshot by at most what the other nodes admit in that time, and by nothing when
//! one node serves it. If the store cannot be reached, each node keeps enforcing with the
//! last totals it read plus its own traffic.

use super::config::BudgetConfig;
use gatehouse_store::{Store, StoreError, UsageCount};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// How often a node publishes its counts and reads the others'.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);

const MINUTE: i64 = 60;
const DAY: i64 = 86_400;

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

    /// Whether any limit counts tokens (then streamed answers must report `usage`).
    pub fn counts_tokens(&self) -> bool {
        self.tokens_per_minute.is_some() || self.tokens_per_day.is_some()
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
    /// Seconds until every full window has rolled over.
    pub retry_after: u64,
}

/// Counts in one fixed window.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start: i64,
    requests: u64,
    tokens: u64,
}

impl Window {
    /// This window's counts if it is the one starting at `start`, else none.
    fn at(&self, start: i64) -> (u64, u64) {
        if self.start == start {
            (self.requests, self.tokens)
        } else {
            (0, 0)
        }
    }

    fn roll(&mut self, start: i64) -> &mut Window {
        if self.start != start {
            *self = Window {
                start,
                ..Window::default()
            };
        }
        self
    }
}

/// One counter set: this node's counts and, as of the last sync, the other nodes'.
#[derive(Debug, Default)]
struct Counters {
    minute: Window,
    day: Window,
    others_minute: Window,
    others_day: Window,
    /// Changed since the last sync.
    dirty: bool,
}

fn window_starts(now: i64) -> (i64, i64) {
    (now - now.rem_euclid(MINUTE), now - now.rem_euclid(DAY))
}

/// The counters of every budget scope this node has seen, and the node's id in the store.
#[derive(Debug)]
pub struct Budgets {
    node_id: String,
    counters: Mutex<HashMap<String, Counters>>,
    syncs: std::sync::atomic::AtomicU64,
}

impl Default for Budgets {
    fn default() -> Self {
        let mut id = [0u8; 12];
        rand::fill(&mut id[..]);
        Budgets {
            node_id: hex::encode(id),
            counters: Mutex::new(HashMap::new()),
            syncs: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

fn unavailable() -> OverBudget {
    // Fail closed.
    OverBudget {
        limit: "budget state unavailable",
        budget: String::new(),
        retry_after: 1,
    }
}

impl Budgets {
    /// Admits a request against every applicable budget — counting it in each — or, if
    /// any window is full, counts nothing and says which limit is reached and how long
    /// until all the full windows have rolled over. `now` is epoch seconds.
    pub fn admit(&self, budgets: &[Applicable], now: i64) -> Result<(), OverBudget> {
        if budgets.is_empty() {
            return Ok(());
        }
        let Ok(mut map) = self.counters.lock() else {
            return Err(unavailable());
        };
        let (minute, day) = window_starts(now);
        let to_minute = (minute + MINUTE - now).max(1) as u64;
        let to_day = (day + DAY - now).max(1) as u64;
        let mut over: Option<OverBudget> = None;
        for b in budgets {
            let Some(c) = map.get(&b.scope) else {
                // Nothing counted yet: only a zero limit is full.
                check_full(b, (0, 0), (0, 0), to_minute, to_day, &mut over);
                continue;
            };
            let (mr, mt) = c.minute.at(minute);
            let (omr, omt) = c.others_minute.at(minute);
            let (_, dt) = c.day.at(day);
            let (_, odt) = c.others_day.at(day);
            check_full(
                b,
                (mr + omr, mt + omt),
                (0, dt + odt),
                to_minute,
                to_day,
                &mut over,
            );
        }
        if let Some(o) = over {
            return Err(o);
        }
        for b in budgets {
            let c = map.entry(b.scope.clone()).or_default();
            c.minute.roll(minute).requests += 1;
            c.day.roll(day).requests += 1;
            c.dirty = true;
        }
        Ok(())
    }

    /// Adds the tokens an answer used to every budget its request was admitted against.
    pub fn charge(&self, scopes: &[String], tokens: u64, now: i64) {
        if tokens == 0 || scopes.is_empty() {
            return;
        }
        let (minute, day) = window_starts(now);
        if let Ok(mut map) = self.counters.lock() {
            for s in scopes {
                let c = map.entry(s.clone()).or_default();
                c.minute.roll(minute).tokens += tokens;
                c.day.roll(day).tokens += tokens;
                c.dirty = true;
            }
        }
    }

    /// One sync round with the store (see the module docs): publishes the totals changed
    /// since the last round, takes in the other nodes' totals for the current windows,
    /// forgets counters whose windows are over, and now and then prunes old windows.
    pub async fn sync(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let (minute, day) = window_starts(now);
        let own = self.take_dirty();
        let others = match store
            .sync_gateway_usage(&self.node_id, &own, &[(MINUTE, minute), (DAY, day)])
            .await
        {
            Ok(o) => o,
            Err(e) => {
                // Counts are absolute: publishing them again next round loses nothing.
                self.mark_dirty(&own);
                return Err(e);
            }
        };
        self.take_others(&others, minute, day);
        // About once a minute.
        let n = self
            .syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(240) {
            store
                .prune_gateway_usage(&[(MINUTE, minute), (DAY, day)])
                .await?;
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
            for (period, w) in [(MINUTE, c.minute), (DAY, c.day)] {
                // No limit counts requests per day: a day without tokens says nothing.
                if period == DAY && w.tokens == 0 {
                    continue;
                }
                out.push(UsageCount {
                    scope: scope.clone(),
                    period,
                    window_start: w.start,
                    requests: i64::try_from(w.requests).unwrap_or(i64::MAX),
                    tokens: i64::try_from(w.tokens).unwrap_or(i64::MAX),
                });
            }
        }
        out
    }

    fn mark_dirty(&self, own: &[UsageCount]) {
        if let Ok(mut map) = self.counters.lock() {
            for u in own {
                if let Some(c) = map.get_mut(&u.scope) {
                    c.dirty = true;
                }
            }
        }
    }

    fn take_others(&self, others: &[UsageCount], minute: i64, day: i64) {
        let Ok(mut map) = self.counters.lock() else {
            return;
        };
        // What the store did not list has no traffic on other nodes in these windows.
        for c in map.values_mut() {
            c.others_minute = Window::default();
            c.others_day = Window::default();
        }
        for u in others {
            let c = map.entry(u.scope.clone()).or_default();
            let w = Window {
                start: u.window_start,
                requests: u64::try_from(u.requests).unwrap_or(0),
                tokens: u64::try_from(u.tokens).unwrap_or(0),
            };
            if u.period == MINUTE {
                c.others_minute = w;
            } else if u.period == DAY {
                c.others_day = w;
            }
        }
        // Held only while a current window has something to enforce: a session seen once
        // this morning is not kept all day unless it used tokens.
        map.retain(|_, c| {
            c.dirty
                || c.minute.start == minute
                || (c.day.start == day && c.day.tokens > 0)
                || c.others_minute.start == minute
                || c.others_day.start == day
        });
    }

    /// Counter sets held (for tests of forgetting).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.counters.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Notes in `over` each full window of `b` (given its minute and day counts), keeping the
/// one with the longest wait.
fn check_full(
    b: &Applicable,
    minute: (u64, u64),
    day: (u64, u64),
    to_minute: u64,
    to_day: u64,
    over: &mut Option<OverBudget>,
) {
    let l = &b.limits;
    let full = [
        (l.tokens_per_day, day.1, "tokens per day", to_day),
        (
            l.tokens_per_minute,
            minute.1,
            "tokens per minute",
            to_minute,
        ),
        (
            l.requests_per_minute,
            minute.0,
            "requests per minute",
            to_minute,
        ),
    ];
    for (limit, used, name, wait) in full {
        if limit.is_some_and(|l| used >= l) && over.as_ref().is_none_or(|o| wait > o.retry_after) {
            *over = Some(OverBudget {
                limit: name,
                budget: format!("{} {}", b.kind.word(), b.scope),
                retry_after: wait,
            });
        }
    }
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

    const T: i64 = 60 * 16_667 + 20; // 20 s into a minute

    #[test]
    fn requests_per_minute_reset_with_the_minute() {
        let b = Budgets::default();
        let a = one("a", limits(Some(2), None, None));
        assert!(b.admit(&a, T).is_ok());
        assert!(b.admit(&a, T).is_ok());
        let e = b.admit(&a, T).err().unwrap();
        assert_eq!((e.limit, e.retry_after), ("requests per minute", 40));
        assert_eq!(e.budget, "principal a");
        // Someone else is not affected; the next minute admits again.
        assert!(b.admit(&one("b", limits(Some(2), None, None)), T).is_ok());
        assert!(b.admit(&a, T + 40).is_ok());
    }

    #[test]
    fn tokens_are_charged_after_the_answer_and_checked_before_the_next() {
        let b = Budgets::default();
        let a = one("a", limits(None, Some(100), Some(150)));
        let scopes = vec!["a".to_owned()];
        let t = 86_400 * 10 + 30;
        assert!(b.admit(&a, t).is_ok());
        b.charge(&scopes, 120, t);
        assert_eq!(
            b.admit(&a, t).err().map(|e| e.limit),
            Some("tokens per minute")
        );
        assert!(b.admit(&a, t + 60).is_ok());
        b.charge(&scopes, 40, t + 60);
        let e = b.admit(&a, t + 120).err().unwrap();
        assert_eq!(e.limit, "tokens per day");
        assert_eq!(e.retry_after, 86_400 - 150);
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
        assert!(b.admit(&bob_budgets, T).is_ok());
        assert!(b.admit(&bob_budgets, T).is_ok());
        assert!(b.admit(&carol_budgets, T).is_ok());
        let e = b.admit(&carol_budgets, T).err().unwrap();
        assert_eq!(e.budget, format!("group {SEARCH}"));
        assert!(b.admit(&bob_budgets, T).is_err());
        // A user outside the group is not affected.
        assert!(
            b.admit(&applicable(&cfg, &user(carol, &[])).unwrap(), T)
                .is_ok()
        );
    }

    #[test]
    fn a_refusal_counts_nothing_and_retry_after_is_the_longest_wait() {
        let b = Budgets::default();
        let t = 86_400 * 10 + 30; // 30 s into the minute and the day
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
        let scopes: Vec<String> = budgets.iter().map(|a| a.scope.clone()).collect();
        assert!(b.admit(&budgets, t).is_ok());
        b.charge(&scopes, 60, t);
        // The user's day is full (the group's minute is not yet): refused until tomorrow.
        let e = b.admit(&budgets, t).err().unwrap();
        assert_eq!((e.limit, e.retry_after), ("tokens per day", 86_400 - 30));
        assert_eq!(e.budget, "principal user");
        // The refused request was not counted against the group: it still has one left
        // for a caller who is only in the group.
        assert!(b.admit(&budgets[..1], t).is_ok());
        let e = b.admit(&budgets[..1], t).err().unwrap();
        assert_eq!((e.limit, e.retry_after), ("requests per minute", 30));
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
        assert!(b.admit(&n, T).is_ok());
        assert!(b.admit(&n, T).is_ok());
        let e = b.admit(&n, T).err().unwrap();
        assert_eq!(e.budget, "session ASIANARROW");
        // ...and another session of the same role still passes, up to the role's 4.
        let wide = session("ASIAWIDE", "100");
        let w = applicable(&cfg, &subject(&wide)).unwrap();
        assert!(b.admit(&w, T).is_ok());
        assert!(b.admit(&w, T).is_ok());
        // Wider than the role: no effect beyond the role's budget.
        let e = b.admit(&w, T).err().unwrap();
        assert_eq!(e.budget, format!("role {ROLE}"));
        // No role budget at all: the session's own still applies.
        let alone = applicable(&[], &subject(&narrow)).unwrap();
        assert_eq!(alone.len(), 1);
        assert!(b.admit(&alone, T).is_err());
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

    #[test]
    fn other_nodes_counts_are_added_and_forgotten_with_their_window() {
        let b = Budgets::default();
        let a = one("g", limits(Some(5), Some(100), None));
        let (minute, day) = window_starts(T);
        // The store says other nodes used 4 requests of this minute.
        let others = |requests, start| UsageCount {
            scope: "g".into(),
            period: MINUTE,
            window_start: start,
            requests,
            tokens: 0,
        };
        b.take_others(&[others(4, minute)], minute, day);
        assert!(b.admit(&a, T).is_ok());
        let e = b.admit(&a, T).err().unwrap();
        assert_eq!(e.limit, "requests per minute");
        // What this node counted is published once, as absolute totals (the day's row
        // only once there are tokens to count).
        let own = b.take_dirty();
        assert_eq!(own.len(), 1);
        assert_eq!((own[0].period, own[0].requests), (MINUTE, 1));
        assert!(b.take_dirty().is_empty());
        b.charge(&["g".to_owned()], 7, T);
        let own = b.take_dirty();
        assert_eq!(own.len(), 2);
        assert_eq!((own[1].period, own[1].tokens), (DAY, 7));
        // Counts of an earlier window do not count in this one.
        let b2 = Budgets::default();
        b2.take_others(&[others(4, minute - 60)], minute, day);
        for _ in 0..5 {
            assert!(b2.admit(&a, T).is_ok());
        }
        // A scope with nothing in the current windows is forgotten at the next sync.
        let b3 = Budgets::default();
        b3.take_others(&[others(1, minute)], minute, day);
        assert_eq!(b3.len(), 1);
        b3.take_others(&[], minute + 60, day);
        assert_eq!(b3.len(), 0);
    }
}
