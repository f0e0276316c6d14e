//! Memory mode: what a pending sign-in costs the appliance in resident memory.
//!
//! The tool opens many sign-ins (Entra's request posted, the code page received) and never
//! completes them; a user's hint is reused across many of them, since the transaction, not
//! the hint, is single use. The appliance's `VmRSS` is read before and after, and the
//! difference is divided by the count. A sample spread over the run is then completed, each
//! with its user's code and a token Entra accepts, to show the transactions were still open.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::MemoryPlan;
use crate::flow::Pending;
use crate::procstat::ProcError;
use crate::report::{Latencies, Percentiles};
use crate::session::{Session, SessionError};

/// Pending sign-ins opened per connection before the first reading, to settle buffers.
const WARMUP_PER_CONNECTION: usize = 20;
/// Time given to the appliance to settle before each reading.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryReport {
    pub pid: u32,
    pub pending: usize,
    pub warmup: usize,
    pub users: usize,
    pub secs_to_open: f64,
    pub authorize_latency: Percentiles,
    pub authorize_errors: BTreeMap<String, u64>,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub bytes_per_pending: f64,
    pub sample: usize,
    pub sample_completed: usize,
    pub sample_errors: BTreeMap<String, u64>,
    pub notes: Vec<String>,
}

impl MemoryReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "memory mode, appliance pid {}\n\
             pending     {} sign-ins held open ({} more as warm-up), {} users, opened in {:.1} s\n\
             authorize   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors\n\
             rss         {:.1} MiB before, {:.1} MiB after\n\
             per pending {:.1} bytes (goal 1024 or less)\n\
             sample      {} of {} completed with a valid token\n",
            self.pid,
            self.pending,
            self.warmup,
            self.users,
            self.secs_to_open,
            self.authorize_latency.p50_ms,
            self.authorize_latency.p99_ms,
            self.authorize_latency.max_ms,
            self.authorize_errors.values().sum::<u64>(),
            self.rss_before_bytes as f64 / 1048576.0,
            self.rss_after_bytes as f64 / 1048576.0,
            self.bytes_per_pending,
            self.sample_completed,
            self.sample,
        );
        let errors = self.authorize_errors.iter().chain(&self.sample_errors);
        for (kind, count) in errors {
            out.push_str(&format!("  error     {kind}: {count}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("note        {note}\n"));
        }
        out
    }
}

/// What the workers opening sign-ins share.
struct Opening {
    session: Arc<Session>,
    next: AtomicUsize,
    count: usize,
    /// Which sign-in numbers are kept for the sample, and under which sample slot.
    keep: HashMap<usize, usize>,
    kept: Mutex<Vec<Option<(Pending, Instant)>>>,
    latencies: Mutex<Latencies>,
    errors: Mutex<BTreeMap<String, u64>>,
}

pub async fn measure(
    plan: &MemoryPlan,
    session: Arc<Session>,
) -> Result<MemoryReport, SessionError> {
    let process = session.process.ok_or(ProcError::Format {
        path: "no appliance pid".into(),
    })?;
    session.first_signin().await?;
    let warmup = plan.concurrency * WARMUP_PER_CONNECTION;
    open(&session, plan, warmup, 0).await;
    tokio::time::sleep(SETTLE).await;
    let rss_before = process.rss()?;

    let started = Instant::now();
    let opening = open(&session, plan, plan.pending, plan.sample).await;
    let secs_to_open = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let rss_after = process.rss()?;

    let kept: Vec<(Pending, Instant)> = lock(&opening.kept).drain(..).flatten().collect();
    let oldest = kept
        .iter()
        .map(|(_, at)| at.elapsed())
        .max()
        .unwrap_or_default();
    let (completed, sample_errors) = complete(&session, &kept, plan.concurrency).await;
    let mut notes = Vec::new();
    if oldest.as_secs() as i64 >= session.transaction_ttl {
        notes.push(format!(
            "the oldest sampled sign-in was {} s old, past the {} s transaction lifetime; \
             lower --pending or raise --concurrency",
            oldest.as_secs(),
            session.transaction_ttl
        ));
    }
    Ok(MemoryReport {
        pid: process.pid,
        pending: plan.pending,
        warmup,
        users: session.pool.len(),
        secs_to_open,
        authorize_latency: lock(&opening.latencies).summary(),
        authorize_errors: lock(&opening.errors).clone(),
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        bytes_per_pending: (rss_after as f64 - rss_before as f64) / plan.pending as f64,
        sample: plan.sample,
        sample_completed: completed,
        sample_errors,
        notes,
    })
}

/// Opens `count` sign-ins over `plan.concurrency` connections, keeping `sample` of them
/// spread over the run, one per user, taken from the last users so none has used a code.
async fn open(
    session: &Arc<Session>,
    plan: &MemoryPlan,
    count: usize,
    sample: usize,
) -> Arc<Opening> {
    let users = session.pool.len();
    let rounds = count.div_ceil(users);
    let keep = (0..sample)
        .map(|j| {
            let user = users - 1 - j;
            let at = (j * rounds / sample.max(1)) * users + user;
            (if at < count { at } else { user % count.max(1) }, j)
        })
        .collect();
    let opening = Arc::new(Opening {
        session: session.clone(),
        next: AtomicUsize::new(0),
        count,
        keep,
        kept: Mutex::new(vec![None; sample]),
        latencies: Mutex::new(Latencies::default()),
        errors: Mutex::new(BTreeMap::new()),
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency {
        workers.spawn(open_some(opening.clone()));
    }
    let progress = tokio::spawn(show_progress(opening.clone()));
    while workers.join_next().await.is_some() {}
    progress.abort();
    opening
}

async fn open_some(opening: Arc<Opening>) {
    let browser = opening.session.agent.browser();
    let users = opening.session.pool.len();
    loop {
        let k = opening.next.fetch_add(1, Ordering::Relaxed);
        if k >= opening.count {
            return;
        }
        let started = Instant::now();
        match opening.session.flow.authorize(&browser, k % users).await {
            Ok(pending) => {
                lock(&opening.latencies).record(started.elapsed());
                if let Some(&slot) = opening.keep.get(&k) {
                    lock(&opening.kept)[slot] = Some((pending, Instant::now()));
                }
            }
            Err(failure) => *lock(&opening.errors).entry(failure.kind()).or_default() += 1,
        }
    }
}

async fn show_progress(opening: Arc<Opening>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let opened = opening.next.load(Ordering::Relaxed).min(opening.count);
        eprintln!("opened {opened} of {} sign-ins", opening.count);
    }
}

/// Completes the kept sign-ins; returns how many ended with a valid token, and the failures.
async fn complete(
    session: &Arc<Session>,
    kept: &[(Pending, Instant)],
    concurrency: usize,
) -> (usize, BTreeMap<String, u64>) {
    let mut errors = BTreeMap::new();
    let mut completed = 0;
    for batch in kept.chunks(concurrency.max(1)) {
        let mut tasks = tokio::task::JoinSet::new();
        for (pending, _) in batch {
            let (session, pending) = (session.clone(), pending.clone());
            tasks.spawn(async move { complete_one(&session, &pending).await });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => completed += 1,
                Ok(Err(kind)) => *errors.entry(kind).or_default() += 1,
                Err(_) => *errors.entry("tool_task_failed".into()).or_default() += 1,
            }
        }
    }
    (completed, errors)
}

async fn complete_one(session: &Session, pending: &Pending) -> Result<(), String> {
    let lease = session
        .pool
        .lease_user(pending.user, entra_sim::unix_now())
        .ok_or_else(|| "sample_user_busy".to_owned())?;
    let browser = session.agent.browser();
    let (code_time, outcome) = session.flow.complete(&browser, pending).await;
    session.pool.release(lease, Some(code_time));
    outcome.map_err(|f| f.kind())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
