//! Budgets per principal: requests per minute, tokens per minute, tokens per UTC day.
//!
//! Windows are fixed (the current minute, the current UTC day), so `Retry-After` is exact:
//! the seconds until the window that is full rolls over. Tokens are counted from the
//! upstream's `usage` after the answer, so a request is refused once the window's tokens
//! have reached the limit (a single request can overshoot; the next one waits). Counters
//! are kept in this node's memory: with several nodes, each enforces the limit on its own
//! traffic.

use super::config::BudgetConfig;
use std::collections::HashMap;
use std::sync::Mutex;

/// A principal's counters.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    minute: i64,
    requests_this_minute: u64,
    tokens_this_minute: u64,
    day: i64,
    tokens_today: u64,
}

impl Counters {
    fn roll(&mut self, now: i64) {
        let minute = now.div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.requests_this_minute = 0;
            self.tokens_this_minute = 0;
        }
        let day = now.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.tokens_today = 0;
        }
    }
}

/// Why a request is over budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    /// Which limit.
    pub limit: &'static str,
    /// Seconds until it resets.
    pub retry_after: u64,
}

/// The budget table and its counters.
#[derive(Debug, Default)]
pub struct Budgets {
    counters: Mutex<HashMap<String, Counters>>,
}

/// The first budget whose pattern matches the principal.
pub fn budget_for<'a>(budgets: &'a [BudgetConfig], principal: &str) -> Option<&'a BudgetConfig> {
    budgets
        .iter()
        .find(|b| gatehouse_policy::wildcard_match(&b.principal, principal))
}

impl Budgets {
    /// Admits a request (counting it) or says which limit is reached. `now` is epoch seconds.
    pub fn admit(&self, principal: &str, b: &BudgetConfig, now: i64) -> Result<(), OverBudget> {
        let Ok(mut map) = self.counters.lock() else {
            // Fail closed.
            return Err(OverBudget {
                limit: "budget state unavailable",
                retry_after: 1,
            });
        };
        let c = map.entry(principal.to_owned()).or_default();
        c.roll(now);
        let to_minute = (60 - now.rem_euclid(60)).max(1) as u64;
        let to_day = (86_400 - now.rem_euclid(86_400)).max(1) as u64;
        if let Some(l) = b.tokens_per_day
            && c.tokens_today >= l
        {
            return Err(OverBudget {
                limit: "tokens per day",
                retry_after: to_day,
            });
        }
        if let Some(l) = b.tokens_per_minute
            && c.tokens_this_minute >= l
        {
            return Err(OverBudget {
                limit: "tokens per minute",
                retry_after: to_minute,
            });
        }
        if let Some(l) = b.requests_per_minute
            && c.requests_this_minute >= l
        {
            return Err(OverBudget {
                limit: "requests per minute",
                retry_after: to_minute,
            });
        }
        c.requests_this_minute += 1;
        Ok(())
    }

    /// Adds the tokens an answer used.
    pub fn charge(&self, principal: &str, tokens: u64, now: i64) {
        if tokens == 0 {
            return;
        }
        if let Ok(mut map) = self.counters.lock() {
            let c = map.entry(principal.to_owned()).or_default();
            c.roll(now);
            c.tokens_this_minute += tokens;
            c.tokens_today += tokens;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn budget(rpm: Option<u64>, tpm: Option<u64>, tpd: Option<u64>) -> BudgetConfig {
        BudgetConfig {
            principal: "arn:gatehouse:iam::*:user/*".into(),
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            tokens_per_day: tpd,
        }
    }

    #[test]
    fn requests_per_minute_reset_with_the_minute() {
        let b = Budgets::default();
        let cfg = budget(Some(2), None, None);
        let t = 60 * 16_667 + 20; // 20 s into a minute
        assert!(b.admit("a", &cfg, t).is_ok());
        assert!(b.admit("a", &cfg, t).is_ok());
        let e = b.admit("a", &cfg, t).err();
        assert_eq!(e.as_ref().map(|e| e.limit), Some("requests per minute"));
        assert_eq!(e.map(|e| e.retry_after), Some(40));
        // Someone else is not affected; the next minute admits again.
        assert!(b.admit("b", &cfg, t).is_ok());
        assert!(b.admit("a", &cfg, t + 40).is_ok());
    }

    #[test]
    fn tokens_are_charged_after_the_answer_and_checked_before_the_next() {
        let b = Budgets::default();
        let cfg = budget(None, Some(100), Some(150));
        let t = 86_400 * 10 + 30;
        assert!(b.admit("a", &cfg, t).is_ok());
        b.charge("a", 120, t);
        assert_eq!(
            b.admit("a", &cfg, t).err().map(|e| e.limit),
            Some("tokens per minute")
        );
        assert!(b.admit("a", &cfg, t + 60).is_ok());
        b.charge("a", 40, t + 60);
        let e = b.admit("a", &cfg, t + 120).err();
        assert_eq!(e.as_ref().map(|e| e.limit), Some("tokens per day"));
        assert_eq!(e.map(|e| e.retry_after), Some(86_400 - 150));
    }

    #[test]
    fn first_matching_pattern_wins() {
        let list = vec![
            BudgetConfig {
                principal: "arn:gatehouse:iam::*:user/bob".into(),
                requests_per_minute: Some(1),
                tokens_per_minute: None,
                tokens_per_day: None,
            },
            budget(Some(5), None, None),
        ];
        let f = |p: &str| budget_for(&list, p).and_then(|b| b.requests_per_minute);
        assert_eq!(f("arn:gatehouse:iam::111122223333:user/bob"), Some(1));
        assert_eq!(f("arn:gatehouse:iam::111122223333:user/alice"), Some(5));
        assert_eq!(f("arn:gatehouse:iam::111122223333:role/x"), None);
    }
}
