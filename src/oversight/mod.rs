//! What the appliance tells its operators about itself: the audit trail, the live counters
//! and recent sign-ins the admin socket serves, and the Prometheus metrics.
//!
//! Every sign-in answered to Entra passes through [`Oversight::answered`] before its page is
//! sent: the audit record is synced first (see [`crate::audit`]), then the counters, the
//! recent-sign-in feed and the metrics move. The feed keeps no code, token or hint, and
//! shows `oid` shortened.

pub mod config;
mod feed;
pub mod metrics;
mod operate;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::Operations;
pub use feed::{Counters, Feed, Recent};
pub use operate::{Operated, operate};

use crate::audit::{AuditError, AuditLog, Event, SignIn};

/// A step of a sign-in whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Verifying Entra's hint, key lookup included.
    Hint,
    /// Checking the user's factor (an OTP code).
    Factor,
    /// Signing the `id_token`.
    Signing,
}

impl Step {
    pub const ALL: [Step; 3] = [Step::Hint, Step::Factor, Step::Signing];

    pub fn name(self) -> &'static str {
        match self {
            Step::Hint => "hint",
            Step::Factor => "factor",
            Step::Signing => "signing",
        }
    }
}

/// The operator-facing state that outlives configurations.
pub struct Oversight {
    pub audit: Arc<AuditLog>,
    pub feed: Feed,
    pub started: Instant,
}

impl Oversight {
    /// Opens the audit trail configured in `ops` for an appliance whose state is in
    /// `state_dir`.
    pub fn open(ops: &Operations, state_dir: &std::path::Path) -> Result<Oversight, AuditError> {
        let dir = ops.audit.dir_in(state_dir);
        Ok(Oversight {
            audit: Arc::new(AuditLog::open(&dir, ops.audit.max_file_bytes)?),
            feed: Feed::default(),
            started: Instant::now(),
        })
    }

    /// Records how a sign-in was answered, durably; an error means the answer must not carry
    /// a token.
    pub async fn answered(&self, signin: SignIn) -> Result<(), String> {
        let mut recent = Recent::of(&signin);
        let written = self.audit.record(Event::SignIn(signin)).await;
        if let Err(e) = &written {
            metrics::audit_failed();
            tracing::error!(error = %e, "sign-in could not be audited");
            if recent.outcome == "token" {
                recent.outcome = "temporarily_unavailable".into();
                recent.amr = None;
                recent.reason = "audit trail unwritable".into();
            }
        }
        metrics::signin(&recent.outcome, recent.amr.as_deref());
        self.feed.push(recent);
        written
    }

    /// Records that a sign-in request was refused before its hint was trusted: counted, not
    /// audited, since nothing about it can be believed.
    pub fn refused(&self) {
        metrics::signin("bad_request", None);
        self.feed.count_refusal();
    }

    /// Records how long `step` took.
    pub fn step(&self, step: Step, took: Duration) {
        metrics::step(step, took);
        self.feed.step(step, took);
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}
