//! Live counters and the recent sign-ins, kept in memory for the admin socket.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::Step;
use crate::audit::SignIn;

/// Recent sign-ins kept for the feed.
const RECENT: usize = 256;
/// Seconds of per-second counts kept for the rate chart.
const SECONDS: usize = 120;
/// Latency samples kept per step for percentiles.
const SAMPLES: usize = 1024;

/// One recent sign-in, redacted: the `oid` shortened, no codes or tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recent {
    pub time: i64,
    pub tid: String,
    /// The first 8 characters of the user's object ID.
    pub oid: String,
    pub amr: Option<String>,
    pub outcome: String,
    pub reason: String,
}

impl Recent {
    pub fn of(s: &SignIn) -> Recent {
        Recent {
            time: unix_now(),
            tid: s.tid.clone(),
            oid: s.oid.chars().take(8).collect(),
            amr: s.amr.clone(),
            outcome: s.outcome.clone(),
            reason: s.reason.clone(),
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Sign-ins by what was posted to Entra (`token`, `access_denied`,
    /// `temporarily_unavailable`) and requests refused with a 400 (`bad_request`).
    pub by_outcome: BTreeMap<String, u64>,
    /// Tokens issued by `amr`.
    pub by_amr: BTreeMap<String, u64>,
    /// Sign-ins that did not end with a token, by reason.
    pub errors_by_reason: BTreeMap<String, u64>,
    /// Sign-ins answered in each of the last seconds, oldest first, the current second last.
    pub per_second: Vec<u64>,
    /// Latency percentiles per step, in microseconds: `p50`, `p90`, `p99`, `max`.
    pub latency_us: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Default)]
struct State {
    recent: VecDeque<Recent>,
    counters: Counters,
    /// (second, count) for the last seconds.
    seconds: VecDeque<(i64, u64)>,
    samples: BTreeMap<&'static str, VecDeque<u64>>,
}

/// Counters, rates, latencies and recent sign-ins.
#[derive(Default)]
pub struct Feed {
    state: Mutex<State>,
}

impl Feed {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, recent: Recent) {
        let mut s = self.state();
        let c = &mut s.counters;
        *c.by_outcome.entry(recent.outcome.clone()).or_default() += 1;
        match (&recent.amr, recent.outcome.as_str()) {
            (Some(amr), "token") => *c.by_amr.entry(amr.clone()).or_default() += 1,
            _ => *c.errors_by_reason.entry(recent.reason.clone()).or_default() += 1,
        }
        tick(&mut s.seconds, recent.time);
        if s.recent.len() == RECENT {
            s.recent.pop_front();
        }
        s.recent.push_back(recent);
    }

    pub fn count_refusal(&self) {
        let mut s = self.state();
        *s.counters
            .by_outcome
            .entry("bad_request".into())
            .or_default() += 1;
        tick(&mut s.seconds, unix_now());
    }

    pub fn step(&self, step: Step, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut s = self.state();
        let samples = s.samples.entry(step.name()).or_default();
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(micros);
    }

    /// The newest `limit` sign-ins, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Recent> {
        self.state()
            .recent
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn counters(&self) -> Counters {
        let s = self.state();
        let mut counters = s.counters.clone();
        let now = unix_now();
        counters.per_second = (0..SECONDS as i64)
            .rev()
            .map(|ago| {
                let second = now - ago;
                s.seconds
                    .iter()
                    .find(|(t, _)| *t == second)
                    .map_or(0, |(_, n)| *n)
            })
            .collect();
        for (step, samples) in &s.samples {
            counters
                .latency_us
                .insert((*step).to_owned(), percentiles(samples));
        }
        counters
    }
}

fn tick(seconds: &mut VecDeque<(i64, u64)>, now: i64) {
    match seconds.back_mut() {
        Some((t, n)) if *t == now => *n += 1,
        _ => seconds.push_back((now, 1)),
    }
    while seconds
        .front()
        .is_some_and(|(t, _)| *t <= now - SECONDS as i64)
    {
        seconds.pop_front();
    }
}

fn percentiles(samples: &VecDeque<u64>) -> BTreeMap<String, u64> {
    let mut sorted: Vec<u64> = samples.iter().copied().collect();
    sorted.sort_unstable();
    let at = |q: f64| {
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(i).copied().unwrap_or(0)
    };
    [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)]
        .into_iter()
        .map(|(name, q)| (name.to_owned(), at(q)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signin(outcome: &str, reason: &str) -> SignIn {
        SignIn {
            tid: "t".into(),
            oid: "0123456789abcdef".into(),
            method: Some("totp".into()),
            amr: (outcome == "token").then(|| "otp".into()),
            outcome: outcome.into(),
            reason: reason.into(),
            source: "127.0.0.1".into(),
            client_request_id: None,
        }
    }

    #[test]
    fn sign_ins_are_counted_by_outcome_amr_and_reason_and_listed_redacted() {
        let feed = Feed::default();
        feed.push(Recent::of(&signin("token", "code accepted")));
        feed.push(Recent::of(&signin("access_denied", "too many wrong codes")));
        feed.count_refusal();
        let c = feed.counters();
        assert_eq!(c.by_outcome["token"], 1);
        assert_eq!(c.by_outcome["access_denied"], 1);
        assert_eq!(c.by_outcome["bad_request"], 1);
        assert_eq!(c.by_amr["otp"], 1);
        assert_eq!(c.errors_by_reason["too many wrong codes"], 1);
        assert_eq!(c.per_second.len(), SECONDS);
        assert_eq!(c.per_second.iter().sum::<u64>(), 3);
        let recent = feed.recent(10);
        assert_eq!(recent[0].outcome, "access_denied");
        assert_eq!(recent[0].oid, "01234567");
    }

    #[test]
    fn latency_percentiles_come_from_the_samples() {
        let feed = Feed::default();
        for ms in 1..=100 {
            feed.step(Step::Signing, Duration::from_millis(ms));
        }
        let p = &feed.counters().latency_us["signing"];
        assert_eq!(p["p50"], 51_000);
        assert_eq!(p["p99"], 99_000);
        assert_eq!(p["max"], 100_000);
    }

    #[test]
    fn the_feed_keeps_only_the_newest_sign_ins() {
        let feed = Feed::default();
        for _ in 0..RECENT + 10 {
            feed.push(Recent::of(&signin("token", "code accepted")));
        }
        assert_eq!(feed.recent(usize::MAX).len(), RECENT);
        assert_eq!(feed.counters().by_outcome["token"], RECENT as u64 + 10);
    }
}
