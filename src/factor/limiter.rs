//! Attempt limits: after a run of failures a key is locked out for a while, and each further
//! run after a lockout doubles it, up to a day. A success clears the record.
//!
//! [`FactorLimits`] applies them three ways for a factor. A user is locked out from one
//! source after that source's wrong attempts; every source of a user is locked out only when
//! wrong attempts came from several sources, so that nobody can lock a user out everywhere
//! from one address; and a source that fails for many users is locked out for all of them.

use std::collections::HashMap;
use std::sync::Mutex;

const MAX_LOCKOUT_SECS: u64 = 24 * 3600;
const MAX_TRACKED: usize = 200_000;

#[derive(Debug, Clone, Copy, Default)]
struct Record {
    failures: u32,
    locked_until: i64,
    last_failure: i64,
}

#[derive(Debug)]
pub struct AttemptLimiter {
    max_failures: u32,
    lockout_secs: u64,
    records: Mutex<HashMap<String, Record>>,
}

/// The answer to "may this user try now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Allowed { remaining: u32 },
    Locked { retry_after: i64 },
}

impl AttemptLimiter {
    pub fn new(max_failures: u32, lockout_secs: u64) -> Self {
        Self {
            max_failures: max_failures.max(1),
            lockout_secs,
            records: Mutex::default(),
        }
    }

    pub fn check(&self, user: &str, now: i64) -> Allowance {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let rec = records.get(user).copied().unwrap_or_default();
        if rec.locked_until > now {
            return Allowance::Locked {
                retry_after: rec.locked_until - now,
            };
        }
        let used = rec.failures % self.max_failures;
        Allowance::Allowed {
            remaining: self.max_failures - used,
        }
    }

    /// Counts a failure and returns the allowance that follows from it.
    pub fn fail(&self, user: &str, now: i64) -> Allowance {
        {
            let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
            if records.len() >= MAX_TRACKED {
                let horizon = now - MAX_LOCKOUT_SECS as i64;
                records.retain(|_, r| r.locked_until > now || r.last_failure > horizon);
            }
            let rec = records.entry(user.to_owned()).or_default();
            rec.failures += 1;
            rec.last_failure = now;
            if rec.failures.is_multiple_of(self.max_failures) {
                let rounds = rec.failures / self.max_failures;
                let factor = 1u64 << (rounds - 1).min(16);
                let secs = self
                    .lockout_secs
                    .saturating_mul(factor)
                    .min(MAX_LOCKOUT_SECS);
                rec.locked_until = now + secs as i64;
            }
        }
        self.check(user, now)
    }

    pub fn succeed(&self, user: &str) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.remove(user);
    }

    fn has_failed(&self, key: &str) -> bool {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.get(key).is_some_and(|r| r.failures > 0)
    }
}

/// A factor's attempt limits per user and source, per user, and per source.
#[derive(Debug)]
pub struct FactorLimits {
    from_source: AttemptLimiter,
    user: AttemptLimiter,
    source: AttemptLimiter,
}

impl PartialEq for FactorLimits {
    /// Limits are equal when they allow the same, whatever they have counted.
    fn eq(&self, other: &Self) -> bool {
        let allows = |l: &AttemptLimiter| (l.max_failures, l.lockout_secs);
        allows(&self.from_source) == allows(&other.from_source)
            && allows(&self.source) == allows(&other.source)
    }
}

impl FactorLimits {
    /// `max_failures` wrong attempts lock a user out from one source, and the same number of
    /// sources with wrong attempts lock the user out from all; `max_per_source` wrong attempts
    /// from one source, for any users, lock that source out.
    pub fn new(max_failures: u32, lockout_secs: u64, max_per_source: u32) -> Self {
        FactorLimits {
            from_source: AttemptLimiter::new(max_failures, lockout_secs),
            user: AttemptLimiter::new(max_failures, lockout_secs),
            source: AttemptLimiter::new(max_per_source, lockout_secs),
        }
    }

    pub fn check(&self, user: &str, source: &str, now: i64) -> Allowance {
        let locked = [self.user.check(user, now), self.source.check(source, now)]
            .into_iter()
            .find(|a| matches!(a, Allowance::Locked { .. }));
        locked.unwrap_or_else(|| self.from_source.check(&pair(user, source), now))
    }

    /// Counts a wrong attempt and returns the allowance that follows from it.
    pub fn fail(&self, user: &str, source: &str, now: i64) -> Allowance {
        let pair = pair(user, source);
        if !self.from_source.has_failed(&pair) {
            self.user.fail(user, now);
        }
        self.from_source.fail(&pair, now);
        self.source.fail(source, now);
        self.check(user, source, now)
    }

    pub fn succeed(&self, user: &str, source: &str) {
        self.from_source.succeed(&pair(user, source));
        self.user.succeed(user);
    }
}

fn pair(user: &str, source: &str) -> String {
    format!("{user} from {source}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_allowed_failures_and_doubles_each_round() {
        let l = AttemptLimiter::new(3, 60);
        assert_eq!(l.fail("u", 0), Allowance::Allowed { remaining: 2 });
        assert_eq!(l.fail("u", 0), Allowance::Allowed { remaining: 1 });
        assert_eq!(l.fail("u", 0), Allowance::Locked { retry_after: 60 });
        assert_eq!(l.check("u", 59), Allowance::Locked { retry_after: 1 });
        assert_eq!(l.check("u", 60), Allowance::Allowed { remaining: 3 });
        l.fail("u", 60);
        l.fail("u", 60);
        assert_eq!(l.fail("u", 60), Allowance::Locked { retry_after: 120 });
    }

    #[test]
    fn a_success_clears_the_record_and_users_are_separate() {
        let l = AttemptLimiter::new(2, 60);
        l.fail("u", 0);
        assert_eq!(l.check("v", 0), Allowance::Allowed { remaining: 2 });
        l.succeed("u");
        assert_eq!(l.check("u", 0), Allowance::Allowed { remaining: 2 });
    }

    #[test]
    fn one_source_locks_a_user_out_only_from_itself() {
        let l = FactorLimits::new(3, 60, 100);
        for _ in 0..30 {
            l.fail("u", "203.0.113.9", 0);
        }
        assert!(matches!(
            l.check("u", "203.0.113.9", 0),
            Allowance::Locked { .. }
        ));
        assert_eq!(
            l.check("u", "198.51.100.7", 0),
            Allowance::Allowed { remaining: 3 }
        );
    }

    #[test]
    fn wrong_attempts_from_several_sources_lock_the_user_out_everywhere() {
        let l = FactorLimits::new(3, 60, 100);
        for source in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            l.fail("u", source, 0);
        }
        assert_eq!(
            l.check("u", "10.0.0.4", 0),
            Allowance::Locked { retry_after: 60 }
        );
        assert_eq!(
            l.check("v", "10.0.0.4", 0),
            Allowance::Allowed { remaining: 3 }
        );
    }

    #[test]
    fn a_source_failing_for_many_users_is_locked_out_for_all() {
        let l = FactorLimits::new(3, 60, 5);
        for user in ["a", "b", "c", "d", "e"] {
            l.fail(user, "192.0.2.1", 0);
        }
        assert!(matches!(
            l.check("f", "192.0.2.1", 0),
            Allowance::Locked { .. }
        ));
        assert_eq!(
            l.check("f", "192.0.2.2", 0),
            Allowance::Allowed { remaining: 3 }
        );
    }

    #[test]
    fn a_success_clears_the_user_but_not_the_source() {
        let l = FactorLimits::new(3, 60, 4);
        l.fail("u", "192.0.2.1", 0);
        l.fail("u", "192.0.2.1", 0);
        l.succeed("u", "192.0.2.1");
        assert_eq!(
            l.check("u", "192.0.2.1", 0),
            Allowance::Allowed { remaining: 3 }
        );
        l.fail("v", "192.0.2.1", 0);
        l.fail("w", "192.0.2.1", 0);
        assert!(matches!(
            l.check("u", "192.0.2.1", 0),
            Allowance::Locked { .. }
        ));
    }

    #[test]
    fn lockout_never_exceeds_a_day() {
        let l = AttemptLimiter::new(1, 3600);
        let mut last = Allowance::Allowed { remaining: 1 };
        for _ in 0..40 {
            last = l.fail("u", 0);
        }
        assert_eq!(
            last,
            Allowance::Locked {
                retry_after: 24 * 3600
            }
        );
    }
}
