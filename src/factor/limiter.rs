//! Attempt limits per user: after a run of failures the user is locked out for a while, and
//! each further failure after a lockout doubles it, up to a day. A success clears the record.

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
