//! The durable record of spent one-time codes, so that no code is accepted twice across a
//! crash or a restart.
//!
//! Each accepted step is appended to `spent-codes.log` in the state directory and synced
//! before the sign-in is answered. One writer thread does the appending: every record that
//! arrives while it syncs goes into the next write, so a busy appliance pays one sync per
//! batch, not per code. At start the log is read back, steps too old to matter are dropped,
//! and the rest is written out anew; the writer does the same whenever the log grows large.
//!
//! A line is `STEP USER`, the user being `tid/oid`. A crash may leave a torn last line; its
//! sign-in was never answered, and what is left of it at worst names a user who does not
//! exist, so it is read like any other.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::otp::{WINDOW_STEPS, step_at};

const FILE: &str = "spent-codes.log";
/// The log is rewritten with only the live steps once it is larger than this.
const COMPACT_AT: u64 = 16 * 1024 * 1024;

struct Record {
    user: String,
    step: i64,
    done: oneshot::Sender<io::Result<()>>,
}

/// The appending side of the log; cheap to share.
pub struct SpentJournal {
    records: mpsc::Sender<Record>,
}

impl SpentJournal {
    /// Opens the log in `dir`, returning it with the steps still live at `now`, by user.
    pub fn open(dir: &Path, now: i64) -> io::Result<(SpentJournal, HashMap<String, i64>)> {
        let path = dir.join(FILE);
        let live = read_live(&path, now)?;
        let file = rewrite(&path, &live)?;
        let (records, queue) = mpsc::channel();
        let writer = Writer {
            path,
            file,
            live: live.clone(),
        };
        std::thread::Builder::new()
            .name("vouch-spent-codes".into())
            .spawn(move || writer.run(&queue))?;
        Ok((SpentJournal { records }, live))
    }

    /// Records that `user` spent `step`; resolves once the record is on disk.
    pub async fn record(&self, user: &str, step: i64) -> io::Result<()> {
        let (done, synced) = oneshot::channel();
        let record = Record {
            user: user.to_owned(),
            step,
            done,
        };
        let stopped = || io::Error::other("the spent-code writer has stopped");
        self.records.send(record).map_err(|_| stopped())?;
        synced.await.map_err(|_| stopped())?
    }
}

/// The steps in the log that can still match a code at `now`; a missing log is empty.
fn read_live(path: &Path, now: i64) -> io::Result<HashMap<String, i64>> {
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let oldest = step_at(now) - WINDOW_STEPS;
    let mut live = HashMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some((step, user)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(' '))
            .and_then(|(s, u)| Some((s.parse::<i64>().ok()?, u)))
        else {
            continue;
        };
        if step >= oldest && !user.is_empty() {
            let last = live.entry(user.to_owned()).or_insert(step);
            *last = (*last).max(step);
        }
    }
    Ok(live)
}

/// Replaces the log with `live`, synced, and opens it for appending.
fn rewrite(path: &Path, live: &HashMap<String, i64>) -> io::Result<File> {
    let fresh = PathBuf::from(format!("{}.new", path.display()));
    let mut text = String::new();
    for (user, step) in live {
        text.push_str(&format!("{step} {user}\n"));
    }
    let mut file = File::create(&fresh)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&fresh, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}

struct Writer {
    path: PathBuf,
    file: File,
    live: HashMap<String, i64>,
}

impl Writer {
    fn run(mut self, queue: &mpsc::Receiver<Record>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            batch.extend(queue.try_iter());
            let written = self.append(&batch);
            for record in batch {
                let answer = written.clone().map_err(io::Error::other);
                let _ = record.done.send(answer);
            }
        }
    }

    fn append(&mut self, batch: &[Record]) -> Result<(), String> {
        let mut text = String::new();
        for r in batch {
            text.push_str(&format!("{} {}\n", r.step, r.user));
            self.live.insert(r.user.clone(), r.step);
        }
        let failed = |e: io::Error| format!("{}: {e}", self.path.display());
        self.file.write_all(text.as_bytes()).map_err(failed)?;
        self.file.sync_data().map_err(failed)?;
        if self.file.metadata().map_err(failed)?.len() > COMPACT_AT {
            self.compact();
        }
        Ok(())
    }

    fn compact(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let oldest = step_at(now) - WINDOW_STEPS;
        self.live.retain(|_, step| *step >= oldest);
        match rewrite(&self.path, &self.live) {
            Ok(file) => self.file = file,
            Err(e) => tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "could not compact the spent-code log; appending to it as it is"
            ),
        }
    }
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

    #[tokio::test]
    async fn old_steps_and_torn_or_foreign_lines_are_dropped_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let step = step_at(NOW);
        let text = format!(
            "{} t/old\n{step} t/live\nnot a record\n\u{0}\u{ff}\n{step}\n{step} t/torn",
            step - 5
        );
        fs::write(dir.path().join(FILE), text).expect("write");
        let (_, live) = SpentJournal::open(dir.path(), NOW).expect("open");
        assert_eq!(live.get("t/live"), Some(&step));
        assert!(!live.contains_key("t/old"));
        assert_eq!(live.len(), 2, "{live:?}");

        let rewritten = fs::read_to_string(dir.path().join(FILE)).expect("read");
        assert!(!rewritten.contains("t/old") && !rewritten.contains("not a record"));
    }

    #[test]
    fn an_unreadable_log_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join(FILE)).expect("a directory where the log should be");
        assert!(SpentJournal::open(dir.path(), NOW).is_err());
    }
}
