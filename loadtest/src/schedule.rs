//! When sign-ins start and which user each one signs in as.
//!
//! vouch accepts one TOTP code per user per 30-s step (RFC 6238 §5.2), so a user may sign in
//! again only once the step of its last code has passed. [`UserPool`] hands users out round
//! robin, one sign-in at a time each, and only when that holds; with about 35 users per
//! sign-in per second a user is always free. [`Ramp`] gives the open loop its intended start
//! times, from which latencies are measured so that a stalled appliance cannot hide.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use vouch::factor::otp::step_at;

/// How many users one lease looks at before it reports that none is free.
const LEASE_SCAN: usize = 64;
/// Marks a user whose sign-in is in flight.
const BUSY: i64 = i64::MAX;
/// Marks a user who has not signed in yet.
const NEVER: i64 = i64::MIN;

/// The users of a run and the TOTP step each last used.
#[derive(Debug)]
pub struct UserPool {
    last_step: Vec<AtomicI64>,
    cursor: Mutex<usize>,
}

/// A user handed out for one sign-in; give it back with [`UserPool::release`].
#[derive(Debug, PartialEq, Eq)]
pub struct Lease {
    pub user: usize,
    previous: i64,
}

impl UserPool {
    pub fn new(users: usize) -> UserPool {
        UserPool {
            last_step: (0..users).map(|_| AtomicI64::new(NEVER)).collect(),
            cursor: Mutex::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.last_step.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_step.is_empty()
    }

    /// The next user, round robin, who is not signing in and whose last code's step is
    /// before the step of `now`; `None` when the users are too few for the pace.
    pub fn lease(&self, now: i64) -> Option<Lease> {
        let step = step_at(now);
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..LEASE_SCAN.min(self.len()) {
            let user = *cursor;
            *cursor = (user + 1) % self.len();
            let slot = &self.last_step[user];
            let previous = slot.load(Ordering::Acquire);
            if previous < step
                && slot
                    .compare_exchange(previous, BUSY, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return Some(Lease { user, previous });
            }
        }
        None
    }

    /// User `user` in particular, on the same terms as [`UserPool::lease`].
    pub fn lease_user(&self, user: usize, now: i64) -> Option<Lease> {
        let slot = self.last_step.get(user)?;
        let previous = slot.load(Ordering::Acquire);
        let free = previous < step_at(now)
            && slot
                .compare_exchange(previous, BUSY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        free.then_some(Lease { user, previous })
    }

    /// Gives a user back: `code_time` is when its code was computed, or `None` if the
    /// sign-in ended before a code was sent.
    pub fn release(&self, lease: Lease, code_time: Option<i64>) {
        let step = code_time.map_or(lease.previous, step_at);
        self.last_step[lease.user].store(step, Ordering::Release);
    }
}

/// Sign-ins per second over time: from `from` rising linearly to `to` over `secs`, then level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    from: f64,
    to: f64,
    secs: f64,
}

impl Ramp {
    pub fn steady(rate: f64) -> Ramp {
        Ramp {
            from: rate,
            to: rate,
            secs: 0.0,
        }
    }

    pub fn new(from: f64, to: f64, over: Duration) -> Ramp {
        Ramp {
            from,
            to,
            secs: over.as_secs_f64(),
        }
    }

    pub fn peak(&self) -> f64 {
        self.from.max(self.to)
    }

    /// The rate `at` into the run.
    pub fn rate_at(&self, at: f64) -> f64 {
        if self.secs <= 0.0 || at >= self.secs {
            return self.to;
        }
        self.from + (self.to - self.from) * (at / self.secs)
    }

    /// The intended start of the sign-in after one intended at `at`.
    pub fn next_after(&self, at: Duration) -> Duration {
        let rate = self.rate_at(at.as_secs_f64()).max(1e-3);
        at + Duration::from_secs_f64(1.0 / rate)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_scheduler_never_gives_a_user_two_codes_in_one_step() {
        let pool = UserPool::new(40);
        let mut codes: HashSet<(usize, i64)> = HashSet::new();
        let mut refused = 0;
        let start = 1_700_000_000;
        for tick in 0..3_000 {
            let now = start + tick / 10;
            let Some(lease) = pool.lease(now) else {
                refused += 1;
                continue;
            };
            let code_time = now + (tick % 3);
            assert!(
                codes.insert((lease.user, step_at(code_time))),
                "user {} got a second code in its step",
                lease.user
            );
            pool.release(lease, Some(code_time));
        }
        assert!(
            refused > 0,
            "40 users cannot keep up with 10 sign-ins a second"
        );
        assert!(codes.len() > 100);
    }

    #[test]
    fn a_user_in_flight_is_not_leased_twice() {
        let pool = UserPool::new(2);
        let a = pool.lease(0).unwrap();
        let b = pool.lease(0).unwrap();
        assert_ne!(a.user, b.user);
        assert_eq!(pool.lease(0), None);
        pool.release(a, None);
        assert_eq!(pool.lease(0).map(|l| l.user), Some(0));
        assert_eq!(pool.lease_user(1, 0), None, "leased above");
        pool.release(b, None);
        assert!(pool.lease_user(1, 0).is_some());
        assert_eq!(pool.lease_user(2, 0), None, "no such user");
    }

    #[test]
    fn a_user_whose_sign_in_failed_before_its_code_is_free_again_at_once() {
        let pool = UserPool::new(1);
        let lease = pool.lease(100).unwrap();
        pool.release(lease, Some(100));
        assert_eq!(pool.lease(119), None);
        let lease = pool.lease(120).unwrap();
        pool.release(lease, None);
        assert!(pool.lease(121).is_some());
    }

    #[test]
    fn enough_users_for_the_rate_are_never_short() {
        let rate = 20;
        let pool = UserPool::new(rate * 35);
        for tick in 0..(rate * 120) {
            let now = 1_700_000_000 + (tick / rate) as i64;
            let lease = pool.lease(now).expect("a free user");
            pool.release(lease, Some(now + 1));
        }
    }

    #[test]
    fn a_ramp_rises_linearly_then_holds() {
        let ramp = Ramp::new(10.0, 110.0, Duration::from_secs(10));
        assert_eq!(ramp.rate_at(0.0), 10.0);
        assert_eq!(ramp.rate_at(5.0), 60.0);
        assert_eq!(ramp.rate_at(30.0), 110.0);
        assert_eq!(ramp.peak(), 110.0);
        let steady = Ramp::steady(4.0);
        assert_eq!(
            steady.next_after(Duration::ZERO),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn a_steady_rate_starts_that_many_sign_ins_a_second() {
        let ramp = Ramp::steady(250.0);
        let mut at = Duration::ZERO;
        let mut started = 0;
        while at < Duration::from_secs(4) {
            started += 1;
            at = ramp.next_after(at);
        }
        assert!((999..=1001).contains(&started), "{started}");
    }
}
