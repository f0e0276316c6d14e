//! Security keys' signature counters as sign-ins move them.
//!
//! A key that counts moves its counter on every sign-in, so the counter is not kept in
//! `credentials.json`, which is rewritten whole: each move is recorded in
//! `fido-counters.log` in the state directory, a [`Journal`] under the credential ID, and
//! synced before the sign-in is answered. The enrolment's counter in the credential record
//! stands until the first move. A move is a compare-and-set in memory, so two sign-ins racing
//! with one key cannot both win; a key that never counts (both counters zero) costs nothing.
//!
//! Only the appliance writes the log. The CLI reads it ([`read`]) to show counters.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::StoreError;
use super::journal::{self, Journal};

const FILE: &str = "fido-counters.log";

/// The counters of every key that moved since the log began.
pub struct FidoCounters {
    journal: Journal,
    path: PathBuf,
    latest: Mutex<HashMap<String, u32>>,
}

impl FidoCounters {
    /// Opens the log in the state directory `dir`. Counters of revoked keys stay in it: they
    /// are a few bytes each and a credential ID is never issued twice.
    pub fn open(dir: &Path) -> io::Result<FidoCounters> {
        let path = dir.join(FILE);
        let (journal, latest) = Journal::open(&path, "vouch-fido-counters", Box::new(|_| true))?;
        Ok(FidoCounters {
            journal,
            path,
            latest: Mutex::new(counters(latest)),
        })
    }

    /// The counter a sign-in with credential `id` must beat; `enrolled` is the one its record
    /// holds.
    pub fn current(&self, id: &str, enrolled: u32) -> u32 {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.get(id).copied().unwrap_or(enrolled)
    }

    /// Moves credential `id`'s counter from `seen` (what [`FidoCounters::current`] gave) to
    /// `count`, and returns once the move is on disk. Refuses if another sign-in moved it
    /// first.
    pub async fn advance(&self, id: &str, seen: u32, count: u32) -> Result<(), StoreError> {
        if seen == 0 && count == 0 {
            return Ok(());
        }
        {
            let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
            let current = latest.entry(id.to_owned()).or_insert(seen);
            if *current != seen {
                return Err(StoreError::CounterMoved);
            }
            *current = count;
        }
        self.journal
            .record(id, i64::from(count))
            .await
            .map_err(|e| StoreError::Io {
                path: self.path.clone(),
                detail: e.to_string(),
            })
    }
}

/// The counters recorded in the state directory `dir`, by credential ID, for readers
/// outside the appliance.
pub fn read(dir: &Path) -> io::Result<HashMap<String, u32>> {
    journal::read(&dir.join(FILE)).map(counters)
}

/// The values that are counters; anything else in the log is damage and is skipped.
fn counters(values: HashMap<String, i64>) -> HashMap<String, u32> {
    values
        .into_iter()
        .filter_map(|(id, value)| Some((id, u32::try_from(value).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_counter_moves_only_from_the_value_the_sign_in_saw() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = FidoCounters::open(dir.path()).expect("open");
        assert_eq!(counters.current("a", 5), 5);
        counters.advance("a", 5, 6).await.expect("moved");
        assert_eq!(counters.current("a", 5), 6);
        let stale = counters.advance("a", 5, 7).await;
        assert_eq!(stale, Err(StoreError::CounterMoved));
        assert_eq!(counters.current("a", 5), 6);
    }

    #[tokio::test]
    async fn moved_counters_survive_a_restart_and_are_readable_beside_the_appliance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = FidoCounters::open(dir.path()).expect("open");
        counters.advance("a", 0, 1).await.expect("moved");
        counters.advance("a", 1, 2).await.expect("moved");
        counters.advance("b", 40, 41).await.expect("moved");
        assert_eq!(read(dir.path()).expect("read").get("a"), Some(&2));
        drop(counters);

        let counters = FidoCounters::open(dir.path()).expect("reopen");
        assert_eq!(counters.current("a", 0), 2);
        assert_eq!(counters.current("b", 40), 41);
        assert_eq!(counters.current("c", 9), 9);
    }

    #[tokio::test]
    async fn a_key_that_never_counts_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = FidoCounters::open(dir.path()).expect("open");
        counters.advance("a", 0, 0).await.expect("accepted");
        counters.advance("a", 0, 0).await.expect("accepted again");
        assert!(read(dir.path()).expect("read").is_empty());
    }

    #[test]
    fn values_that_are_not_counters_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), "-1 a\n4294967296 b\n7 c\n").expect("write");
        let read = read(dir.path()).expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!(read.get("c"), Some(&7));
    }
}
