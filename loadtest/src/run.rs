//! A measured load: closed loop (N virtual users, each starting a sign-in when its last one
//! ends) or open loop (sign-ins started on a schedule, whatever the appliance does).
//!
//! In the open loop a sign-in's latency runs from its intended start, so time spent waiting
//! for a stalled appliance, or for a free slot, is counted rather than hidden. Both loops stop
//! starting sign-ins at the deadline and give the ones in flight a bounded time to finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::bound::BoundReport;
use crate::cli::{Load, RunPlan, users_for_rate};
use crate::client::{Browser, REQUEST_TIMEOUT};
use crate::flow::Factor;
use crate::procstat::CpuSample;
use crate::report::{Efficiency, Recorder, RunReport};
use crate::schedule::Ramp;
use crate::session::{Session, SessionError};

/// Time the sign-ins still in flight at the deadline have to finish.
const DRAIN: Duration = Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs() + 5);
/// How long a virtual user waits when no user is free.
const NO_USER_PAUSE: Duration = Duration::from_millis(50);

/// What the loops share while they run.
struct Shared {
    session: Arc<Session>,
    recorder: Recorder,
    in_flight: AtomicUsize,
    new_connection: bool,
    idle: Mutex<Vec<Browser>>,
}

impl Shared {
    fn browser(&self) -> Browser {
        let reused = if self.new_connection {
            None
        } else {
            lock(&self.idle).pop()
        };
        reused.unwrap_or_else(|| self.session.agent.browser())
    }

    fn put_back(&self, browser: Browser) {
        if !self.new_connection {
            lock(&self.idle).push(browser);
        }
    }

    /// One sign-in with `browser`, recorded with its latency from `intended`.
    async fn sign_in(&self, browser: &Browser, intended: Instant) {
        let Some(lease) = self.session.pool.lease(entra_sim::unix_now()) else {
            self.recorder.skipped();
            return;
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let (code_time, outcome) = self.session.flow.sign_in(browser, lease.user).await;
        self.session.pool.release(lease, code_time);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        match outcome {
            Ok(timings) => self.recorder.success(timings, intended.elapsed()),
            Err(failure) => {
                tracing::debug!(kind = %failure.kind(), "sign-in failed");
                self.recorder.failure(&failure);
            }
        }
    }
}

/// Runs the plan's load against an open session and reports it.
pub async fn run(
    plan: &RunPlan,
    session: Arc<Session>,
    bound: &BoundReport,
) -> Result<RunReport, SessionError> {
    session.first_signin().await?;
    let shared = Arc::new(Shared {
        session: session.clone(),
        recorder: Recorder::default(),
        in_flight: AtomicUsize::new(0),
        new_connection: plan.new_connection,
        idle: Mutex::new(Vec::new()),
    });
    let cpu_before = session.process.map(|p| p.cpu()).transpose()?;
    let started = Instant::now();
    let progress = tokio::spawn(show_progress(shared.clone(), started));
    let mut tasks = match plan.load {
        Load::Closed { concurrent } => closed_loop(&shared, concurrent, started + plan.duration),
        Load::Open {
            ramp,
            max_in_flight,
        } => open_loop(&shared, ramp, max_in_flight, started, plan.duration).await,
    };
    drain(&mut tasks, started + plan.duration + DRAIN).await;
    let elapsed = started.elapsed();
    let cpu_after = session.process.map(|p| p.cpu()).transpose()?;
    progress.abort();
    Ok(report(
        plan,
        &shared,
        elapsed,
        cpu_before.zip(cpu_after),
        bound,
    ))
}

fn closed_loop(shared: &Arc<Shared>, concurrent: usize, deadline: Instant) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for _ in 0..concurrent {
        let shared = shared.clone();
        tasks.spawn(async move {
            let mut browser = shared.session.agent.browser();
            while Instant::now() < deadline {
                if shared.new_connection {
                    browser = shared.session.agent.browser();
                }
                let before = shared.recorder.skipped_count();
                shared.sign_in(&browser, Instant::now()).await;
                if shared.recorder.skipped_count() != before {
                    tokio::time::sleep(NO_USER_PAUSE).await;
                }
            }
        });
    }
    tasks
}

async fn open_loop(
    shared: &Arc<Shared>,
    ramp: Ramp,
    max_in_flight: usize,
    started: Instant,
    duration: Duration,
) -> JoinSet<()> {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks = JoinSet::new();
    let mut at = Duration::ZERO;
    while at < duration {
        let intended = started + at;
        tokio::time::sleep_until(intended.into()).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        tasks.spawn(async move {
            let browser = shared.browser();
            shared.sign_in(&browser, intended).await;
            shared.put_back(browser);
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
        at = ramp.next_after(at);
    }
    tasks
}

/// Waits for the tasks until `deadline`, then abandons what is left.
async fn drain(tasks: &mut JoinSet<()>, deadline: Instant) {
    let finished = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline.into(), finished)
        .await
        .is_err()
    {
        tracing::warn!(
            left = tasks.len(),
            "sign-ins still in flight after the drain; abandoned"
        );
        tasks.abort_all();
    }
}

/// A line on stderr once a second: totals, the last second's rate, sign-ins in flight.
async fn show_progress(shared: Arc<Shared>, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last_ok = 0;
    loop {
        tick.tick().await;
        let (ok, failed) = shared.recorder.counts();
        eprintln!(
            "{:>5.0} s  {ok:>8} ok  {failed:>6} errors  {:>7.0}/s  {:>5} in flight",
            started.elapsed().as_secs_f64(),
            ok - last_ok,
            shared.in_flight.load(Ordering::Relaxed),
        );
        last_ok = ok;
    }
}

fn report(
    plan: &RunPlan,
    shared: &Shared,
    elapsed: Duration,
    cpu: Option<(CpuSample, CpuSample)>,
    bound: &BoundReport,
) -> RunReport {
    let (latency, errors) = shared.recorder.summary();
    let (ok, failed) = shared.recorder.counts();
    let secs = elapsed.as_secs_f64();
    let throughput = ok as f64 / secs;
    let efficiency = shared
        .session
        .process
        .zip(cpu)
        .map(|(process, (before, after))| {
            let cores = before.cores_until(&after);
            let per_core = if cores > 0.0 { throughput / cores } else { 0.0 };
            Efficiency {
                pid: process.pid,
                cpu_cores_used: cores,
                signins_per_sec_per_core: per_core,
                bound_signins_per_sec: bound.signins_per_sec,
                fraction_of_bound: per_core / bound.signins_per_sec,
                busy_bound_signins_per_sec: bound.busy_signins_per_sec,
                fraction_of_busy_bound: per_core / bound.busy_signins_per_sec,
            }
        });
    let skipped = shared.recorder.skipped_count();
    RunReport {
        mode: mode_name(plan),
        factor: plan.factor.name().into(),
        target: shared.session.origin.clone(),
        users: shared.session.pool.len(),
        new_connection_per_signin: plan.new_connection,
        duration_secs: secs,
        signins_ok: ok,
        tokens_validated: ok,
        errors_total: failed,
        errors,
        skipped_no_free_user: skipped,
        throughput_per_sec: throughput,
        latency,
        efficiency,
        notes: notes(plan, shared, throughput, skipped),
    }
}

fn mode_name(plan: &RunPlan) -> String {
    match plan.load {
        Load::Closed { concurrent } => format!("closed loop, {concurrent} virtual users"),
        Load::Open { ramp, .. } if ramp.rate_at(0.0) != ramp.peak() => format!(
            "open loop, {:.0} rising to {:.0} sign-ins/s",
            ramp.rate_at(0.0),
            ramp.peak()
        ),
        Load::Open { ramp, .. } => format!("open loop, {:.0} sign-ins/s", ramp.peak()),
    }
}

fn notes(plan: &RunPlan, shared: &Shared, throughput: f64, skipped: u64) -> Vec<String> {
    let users = shared.session.pool.len();
    let mut notes = Vec::new();
    let short = match plan.load {
        _ if plan.factor != Factor::Otp => None,
        Load::Open { ramp, .. } => (users < users_for_rate(ramp.peak())).then_some(ramp.peak()),
        Load::Closed { .. } => (skipped > 0).then_some(throughput),
    };
    if plan.factor != Factor::Otp && skipped > 0 {
        notes.push(format!(
            "{skipped} sign-ins found all {users} users signing in already; give more --users"
        ));
    }
    if let Some(pace) = short {
        notes.push(format!(
            "{users} users are too few for {pace:.0} sign-ins/s: each user signs in at most once \
             per 30-s step; give --users {} or more",
            users_for_rate(pace)
        ));
    }
    if plan.factor == Factor::SmartCard {
        notes.push(
            "every card step opens a new TLS connection that presents the card; reuse applies \
             to the main listener only"
                .into(),
        );
    }
    if shared.session.process.is_none() {
        notes.push("no appliance pid (--pid), so no CPU use or fraction of the bound".into());
    }
    notes
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
