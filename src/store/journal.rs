//! A synced log of the latest value under each name, for state a sign-in must make durable
//! before it is answered and that moves too often to rewrite a whole file for: spent
//! one-time codes, security keys' signature counters.
//!
//! Each record is appended as a line `VALUE NAME` and synced before [`Journal::record`]
//! returns. One writer thread does the appending: every record that arrives while it syncs
//! goes into the next write, so a busy appliance pays one sync per batch, not per record. At
//! start the log is read back (the largest value under each name wins), the values the
//! owner no longer needs are dropped, and the rest is written out anew; the writer does the
//! same whenever the log grows large.
//!
//! A crash may leave a torn last line; its sign-in was never answered, and what is left of it
//! at worst names something that does not exist, so it is read like any other. Lines that do
//! not parse are skipped. Names hold no spaces or line breaks; the owner keeps them so.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

/// The log is rewritten with only the values still kept once it is larger than this.
const COMPACT_AT: u64 = 16 * 1024 * 1024;

/// Which values a log still needs; asked at start and at every compaction.
pub type Keep = Box<dyn Fn(i64) -> bool + Send>;

struct Record {
    name: String,
    value: i64,
    done: oneshot::Sender<io::Result<()>>,
}

/// The appending side of a log; cheap to share.
pub struct Journal {
    records: mpsc::Sender<Record>,
}

impl Journal {
    /// Opens the log at `path`, returning it with the latest value under each name that
    /// `keep` keeps. `thread` names the writer thread.
    pub fn open(
        path: &Path,
        thread: &str,
        keep: Keep,
    ) -> io::Result<(Journal, HashMap<String, i64>)> {
        let mut live = read(path)?;
        live.retain(|_, value| keep(*value));
        let file = rewrite(path, &live)?;
        let (records, queue) = mpsc::channel();
        let writer = Writer {
            path: path.to_owned(),
            file,
            live: live.clone(),
            keep,
        };
        std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || writer.run(&queue))?;
        Ok((Journal { records }, live))
    }

    /// Records `value` under `name`; resolves once the record is on disk.
    pub async fn record(&self, name: &str, value: i64) -> io::Result<()> {
        let (done, synced) = oneshot::channel();
        let record = Record {
            name: name.to_owned(),
            value,
            done,
        };
        let stopped = || io::Error::other("the journal writer has stopped");
        self.records.send(record).map_err(|_| stopped())?;
        synced.await.map_err(|_| stopped())?
    }
}

/// The latest value under each name in the log at `path`, for readers that must not write
/// it (the writer may be another process); a missing log is empty.
pub fn read(path: &Path) -> io::Result<HashMap<String, i64>> {
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut latest = HashMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some((value, name)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(' '))
            .and_then(|(v, n)| Some((v.parse::<i64>().ok()?, n)))
        else {
            continue;
        };
        if !name.is_empty() {
            let last = latest.entry(name.to_owned()).or_insert(value);
            *last = (*last).max(value);
        }
    }
    Ok(latest)
}

/// Replaces the log with `live`, synced, and opens it for appending.
fn rewrite(path: &Path, live: &HashMap<String, i64>) -> io::Result<File> {
    let fresh = PathBuf::from(format!("{}.new", path.display()));
    let mut text = String::new();
    for (name, value) in live {
        text.push_str(&format!("{value} {name}\n"));
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
    keep: Keep,
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
            text.push_str(&format!("{} {}\n", r.value, r.name));
            let last = self.live.entry(r.name.clone()).or_insert(r.value);
            *last = (*last).max(r.value);
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
        let keep = &self.keep;
        self.live.retain(|_, value| keep(*value));
        match rewrite(&self.path, &self.live) {
            Ok(file) => self.file = file,
            Err(e) => tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "could not compact a journal; appending to it as it is"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_all() -> Keep {
        Box::new(|_| true)
    }

    #[tokio::test]
    async fn the_largest_value_under_each_name_is_read_back_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let (journal, live) = Journal::open(&path, "test-journal", keep_all()).expect("open");
        assert!(live.is_empty());
        journal.record("alice", 7).await.expect("recorded");
        journal.record("bob", 3).await.expect("recorded");
        journal.record("alice", 9).await.expect("recorded");
        drop(journal);

        assert_eq!(read(&path).expect("read").get("alice"), Some(&9));
        let (_, live) = Journal::open(&path, "test-journal", keep_all()).expect("reopen");
        assert_eq!(live.get("alice"), Some(&9));
        assert_eq!(live.get("bob"), Some(&3));
    }

    #[tokio::test]
    async fn records_sent_at_once_from_many_tasks_all_reach_the_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let (journal, _) = Journal::open(&path, "test-journal", keep_all()).expect("open");
        let journal = std::sync::Arc::new(journal);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let journal = journal.clone();
                tokio::spawn(async move { journal.record(&format!("n{i}"), i).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("recorded");
        }
        let latest = read(&path).expect("read");
        assert_eq!(latest.len(), 200);
        assert_eq!(latest.get("n199"), Some(&199));
    }

    #[test]
    fn values_not_kept_and_torn_or_foreign_lines_are_dropped_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let text = "1 old\n50 live\nnot a record\n\u{0}\u{ff}\n50\n50 torn";
        fs::write(&path, text).expect("write");
        let (_, live) = Journal::open(&path, "test-journal", Box::new(|v| v >= 10)).expect("open");
        assert_eq!(live.get("live"), Some(&50));
        assert!(!live.contains_key("old"));
        assert_eq!(live.len(), 2, "{live:?}");

        let rewritten = fs::read_to_string(&path).expect("read");
        assert!(!rewritten.contains("old") && !rewritten.contains("not a record"));
    }

    #[test]
    fn an_unreadable_log_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("log")).expect("a directory where the log should be");
        let opened = Journal::open(&dir.path().join("log"), "test-journal", keep_all());
        assert!(opened.is_err());
    }
}
