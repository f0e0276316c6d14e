//! The durable record of spent one-time codes, so that no code is accepted twice across a
//! crash or a restart.
//!
//! Each accepted step is recorded in `spent-codes.log` in the state directory, a
//! [`Journal`] under the user's `tid/oid`, and synced before the sign-in is answered. Steps
//! too old to match a code any more are dropped when the log is opened or compacted.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use super::otp::{WINDOW_STEPS, step_at};
use crate::store::journal::Journal;

const FILE: &str = "spent-codes.log";

/// The appending side of the log; cheap to share.
pub struct SpentJournal {
    journal: Journal,
}

impl SpentJournal {
    /// Opens the log in `dir`, returning it with the steps still live at `now`, by user.
    pub fn open(dir: &Path, now: i64) -> io::Result<(SpentJournal, HashMap<String, i64>)> {
        // Later compactions judge by the system clock, kept at the distance `now` has from it.
        let skew = now - system_now();
        let keep = move |step: i64| step >= step_at(system_now() + skew) - WINDOW_STEPS;
        let (journal, live) = Journal::open(&dir.join(FILE), "vouch-spent-codes", Box::new(keep))?;
        Ok((SpentJournal { journal }, live))
    }

    /// Records that `user` spent `step`; resolves once the record is on disk.
    pub async fn record(&self, user: &str, step: i64) -> io::Result<()> {
        self.journal.record(user, step).await
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[tokio::test]
    async fn recorded_steps_are_read_back_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, live) = SpentJournal::open(dir.path(), NOW).expect("open");
        assert!(live.is_empty());
        let step = step_at(NOW);
        journal.record("t/alice", step).await.expect("recorded");
        journal.record("t/bob", step - 1).await.expect("recorded");
        journal.record("t/alice", step + 1).await.expect("recorded");
        drop(journal);

        let (_, live) = SpentJournal::open(dir.path(), NOW).expect("reopen");
        assert_eq!(live.get("t/alice"), Some(&(step + 1)));
        assert_eq!(live.get("t/bob"), Some(&(step - 1)));
    }

    #[test]
    fn steps_too_old_to_match_a_code_are_dropped_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let step = step_at(NOW);
        let text = format!("{} t/old\n{step} t/live\n", step - WINDOW_STEPS - 1);
        std::fs::write(dir.path().join(FILE), text).expect("write");
        let (_, live) = SpentJournal::open(dir.path(), NOW).expect("open");
        assert_eq!(live.get("t/live"), Some(&step));
        assert!(!live.contains_key("t/old"));
        let rewritten = std::fs::read_to_string(dir.path().join(FILE)).expect("read");
        assert!(!rewritten.contains("t/old"));
    }
}
