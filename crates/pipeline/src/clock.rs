//! The time a request is decided at, read from one [`Clock`] held in the server's state
//! rather than from `Utc::now()` wherever a module needs it: tests move a [`ManualClock`]
//! forward to expire a session, roll a budget window or age a key, instead of sleeping.
//!
//! The system clock costs what `Utc::now()` costs (no lock, no allocation): the request
//! path reads it once or twice per call.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex, PoisonError};

/// Where a server reads the current time from.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(t) => *t.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Whole seconds since the Unix epoch (`aws:EpochTime`, budget windows).
    pub fn timestamp(&self) -> i64 {
        self.now().timestamp()
    }

    /// Whether this clock is a test's [`ManualClock`].
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

/// A clock a test sets and moves; every [`Clock`] made by [`ManualClock::clock`] reads it.
#[derive(Debug, Clone)]
pub struct ManualClock {
    time: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            time: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock standing at the system's current time.
    pub fn starting_now() -> ManualClock {
        ManualClock::new(Utc::now())
    }

    /// The [`Clock`] to give a server: it reads this manual clock.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(Arc::clone(&self.time)),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.time.lock().unwrap_or_else(PoisonError::into_inner);
        *t += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.time.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }

    /// The time the clock stands at.
    pub fn now(&self) -> DateTime<Utc> {
        *self.time.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_every_copy_sees_it() {
        let start = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let hand = ManualClock::new(start);
        let clock = hand.clock();
        let copy = clock.clone();
        assert!(clock.is_manual());
        assert_eq!(clock.now(), start);
        hand.advance(chrono::Duration::hours(13));
        assert_eq!(copy.now(), start + chrono::Duration::hours(13));
        assert_eq!(clock.timestamp(), start.timestamp() + 13 * 3600);
        hand.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn the_system_clock_follows_the_wall_clock() {
        let clock = Clock::system();
        assert!(!clock.is_manual());
        let before = Utc::now();
        let read = clock.now();
        assert!(read >= before && read <= Utc::now());
    }
}
