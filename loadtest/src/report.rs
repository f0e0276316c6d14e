//! What a run measured: latency histograms per step, failures counted by kind, and the
//! report made of them, as text for people and JSON for scripts.
//!
//! Latencies are kept in microseconds in HDR histograms (3 significant digits, up to an
//! hour), so percentiles are exact to 0.1 % whatever the count.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::flow::{Failure, Timings};

const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .unwrap_or_else(|_| unreachable!("the bounds are valid"));
        Latencies(histogram)
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn summary(&self) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| ms(self.0.value_at_quantile(q));
        Percentiles {
            count: self.0.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: ms(self.0.max()),
        }
    }
}

/// The percentiles a report gives for each step, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Default)]
struct Tally {
    authorize: Latencies,
    choose: Latencies,
    otp: Latencies,
    phone: Latencies,
    key: Latencies,
    card: Latencies,
    answer: Latencies,
    signin: Latencies,
    failures: BTreeMap<String, u64>,
}

/// Where every sign-in's outcome goes; shared by all the tasks of a run.
#[derive(Default)]
pub struct Recorder {
    tally: Mutex<Tally>,
    ok: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

impl Recorder {
    /// A good sign-in whose token validated; `whole` runs from its intended start.
    pub fn success(&self, timings: Timings, whole: Duration) {
        let mut guard = self.lock();
        let tally = &mut *guard;
        tally.authorize.record(timings.authorize);
        for (latencies, step) in [
            (&mut tally.choose, timings.choose),
            (&mut tally.otp, timings.otp),
            (&mut tally.phone, timings.phone),
            (&mut tally.key, timings.key),
            (&mut tally.card, timings.card),
            (&mut tally.answer, timings.answer),
        ] {
            if let Some(latency) = step {
                latencies.record(latency);
            }
        }
        tally.signin.record(whole);
        drop(guard);
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failure(&self, failure: &Failure) {
        *self.lock().failures.entry(failure.kind()).or_default() += 1;
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A sign-in not started because every user had signed in within the current step.
    pub fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn skipped_count(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Good and failed sign-ins so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// The steps' percentiles and the failures by kind.
    pub fn summary(&self) -> (Steps, BTreeMap<String, u64>) {
        let tally = self.lock();
        let steps = Steps {
            authorize: tally.authorize.summary(),
            choose: tally.choose.summary(),
            otp: tally.otp.summary(),
            phone: tally.phone.summary(),
            key: tally.key.summary(),
            card: tally.card.summary(),
            answer: tally.answer.summary(),
            signin: tally.signin.summary(),
        };
        (steps, tally.failures.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Each step's latencies; a step the run's factor does not have has a count of 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Steps {
    /// Entra's form posted to `/eam/authorize`, until its page arrived.
    pub authorize: Percentiles,
    /// The choice page's form posted with the factor's method (mobile PKI, when the user is
    /// offered several methods).
    pub choose: Percentiles,
    /// The TOTP code posted, until the answer to Entra arrived.
    pub otp: Percentiles,
    /// The phone's signed answer posted to `/eam/mobile/respond`, until it was approved.
    pub phone: Percentiles,
    /// The security key's assertion posted to `/eam/fido`, until the answer to Entra arrived.
    pub key: Percentiles,
    /// The card page's form posted to the smart-card listener on a new connection that
    /// presents the card, until the answer to Entra arrived.
    pub card: Percentiles,
    /// The waiting page's Continue posted, until the answer to Entra arrived (mobile PKI).
    pub answer: Percentiles,
    /// The whole sign-in, from its intended start (open loop) or its start (closed loop).
    pub signin: Percentiles,
}

/// The appliance's CPU use over the measured interval, and what it makes of the bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Efficiency {
    pub pid: u32,
    pub cpu_cores_used: f64,
    pub signins_per_sec_per_core: f64,
    pub bound_signins_per_sec: f64,
    /// Per-core throughput over the single-core crypto bound; the goal is 0.7 or more.
    pub fraction_of_bound: f64,
    /// The crypto bound per core with every core busy, as during the run.
    pub busy_bound_signins_per_sec: f64,
    /// Per-core throughput over that bound.
    pub fraction_of_busy_bound: f64,
}

/// The report of a load run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub mode: String,
    /// The factor the users proved: `otp`, `mobile-pki`, `smart-card` or `fido`.
    pub factor: String,
    pub target: String,
    pub users: usize,
    pub new_connection_per_signin: bool,
    pub duration_secs: f64,
    pub signins_ok: u64,
    pub tokens_validated: u64,
    pub errors_total: u64,
    pub errors: BTreeMap<String, u64>,
    /// Sign-ins not started because no user was free within its TOTP step.
    pub skipped_no_free_user: u64,
    pub throughput_per_sec: f64,
    pub latency: Steps,
    pub efficiency: Option<Efficiency>,
    pub notes: Vec<String>,
}

impl RunReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "mode        {}\nfactor      {}\ntarget      {}\nusers       {}\nconnections {}\n\
             duration    {:.1} s\nsign-ins    {} ok, {} tokens validated, {} errors\n\
             throughput  {:.1} sign-ins/s\n",
            self.mode,
            self.factor,
            self.target,
            self.users,
            if self.new_connection_per_signin {
                "new per sign-in"
            } else {
                "reused"
            },
            self.duration_secs,
            self.signins_ok,
            self.tokens_validated,
            self.errors_total,
            self.throughput_per_sec,
        );
        for (kind, count) in &self.errors {
            out.push_str(&format!("  error     {kind}: {count}\n"));
        }
        if self.skipped_no_free_user > 0 {
            out.push_str(&format!(
                "skipped     {} sign-ins: no user free in its 30-s step\n",
                self.skipped_no_free_user
            ));
        }
        out.push_str(&latency_table(&self.latency));
        if let Some(e) = &self.efficiency {
            out.push_str(&format!(
                "appliance   pid {}, {:.2} cores busy, {:.1} sign-ins/s per core\n\
                 bound       {:.1} sign-ins/s on one core, the others idle (crypto only)\n\
                 \x20           {:.1} sign-ins/s per core with every core busy\n\
                 per core    {:.2} of the one-core bound, {:.2} of the busy-core bound \
                 (goal 0.70)\n",
                e.pid,
                e.cpu_cores_used,
                e.signins_per_sec_per_core,
                e.bound_signins_per_sec,
                e.busy_bound_signins_per_sec,
                e.fraction_of_bound,
                e.fraction_of_busy_bound,
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("note        {note}\n"));
        }
        out
    }
}

fn latency_table(steps: &Steps) -> String {
    let mut out = format!(
        "latency ms  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "count", "p50", "p90", "p99", "p99.9", "max"
    );
    let rows = [
        ("authorize", steps.authorize),
        ("choose", steps.choose),
        ("otp", steps.otp),
        ("phone", steps.phone),
        ("key", steps.key),
        ("card", steps.card),
        ("answer", steps.answer),
        ("sign-in", steps.signin),
    ];
    let shown =
        |(name, p): &(&str, Percentiles)| p.count > 0 || *name == "authorize" || *name == "sign-in";
    for (name, p) in rows.into_iter().filter(shown) {
        out.push_str(&format!(
            "  {name:<9} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
            p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
        ));
    }
    out
}

/// Writes any report as pretty JSON.
pub fn write_json(path: &std::path::Path, report: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn percentiles_of_one_to_a_thousand_milliseconds_are_where_they_belong() {
        let mut latencies = Latencies::default();
        for ms in 1..=1000 {
            latencies.record(Duration::from_millis(ms));
        }
        let p = latencies.summary();
        assert_eq!(p.count, 1000);
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(near(p.p50_ms, 500.0), "{p:?}");
        assert!(near(p.p90_ms, 900.0), "{p:?}");
        assert!(near(p.p99_ms, 990.0), "{p:?}");
        assert!(near(p.p999_ms, 999.0), "{p:?}");
        assert!(near(p.max_ms, 1000.0), "{p:?}");
    }

    #[test]
    fn an_empty_histogram_reports_zeros_and_huge_latencies_are_clamped() {
        let p = Latencies::default().summary();
        assert_eq!((p.count, p.p50_ms, p.max_ms), (0, 0.0, 0.0));
        let mut latencies = Latencies::default();
        latencies.record(Duration::from_secs(10 * 3600));
        assert!(latencies.summary().max_ms >= 3_600_000.0 * 0.999);
    }

    #[test]
    fn the_recorder_counts_failures_by_kind_and_times_only_good_sign_ins() {
        let recorder = Recorder::default();
        let timings = Timings {
            authorize: Duration::from_millis(2),
            otp: Some(Duration::from_millis(3)),
            ..Timings::default()
        };
        recorder.success(timings, Duration::from_millis(6));
        recorder.failure(&Failure::CodeRefused);
        recorder.failure(&Failure::CodeRefused);
        recorder.failure(&Failure::NoToken);
        assert_eq!(recorder.counts(), (1, 3));
        let (steps, failures) = recorder.summary();
        assert_eq!(steps.signin.count, 1);
        assert_eq!((steps.otp.count, steps.phone.count), (1, 0));
        assert!((steps.signin.p50_ms - 6.0).abs() < 0.01);
        assert_eq!(failures["otp_code_refused"], 2);
        assert_eq!(failures["answer_without_token"], 1);
    }

    #[test]
    fn the_json_report_has_the_fields_scripts_read() {
        let recorder = Recorder::default();
        recorder.failure(&Failure::NoToken);
        let (latency, errors) = recorder.summary();
        let report = RunReport {
            mode: "open 10/s".into(),
            factor: "otp".into(),
            target: "https://127.0.0.1:8443".into(),
            users: 350,
            new_connection_per_signin: false,
            duration_secs: 2.0,
            signins_ok: 0,
            tokens_validated: 0,
            errors_total: 1,
            errors,
            skipped_no_free_user: 3,
            throughput_per_sec: 0.0,
            latency,
            efficiency: None,
            notes: vec![],
        };
        let json = serde_json::to_value(&report).unwrap();
        for field in [
            "throughput_per_sec",
            "errors_total",
            "tokens_validated",
            "efficiency",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        assert_eq!(json["errors"]["answer_without_token"], 1);
        assert_eq!(json["skipped_no_free_user"], 3);
        for step in ["authorize", "choose", "otp", "phone", "answer", "signin"] {
            for p in ["count", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"] {
                assert!(json["latency"][step][p].is_number(), "{step}.{p}");
            }
        }
        assert!(report.text().contains("answer_without_token: 1"));
        assert!(!report.text().contains("  phone "));
    }
}
