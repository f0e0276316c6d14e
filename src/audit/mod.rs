//! The audit trail: an append-only, hash-chained record of security events.
//!
//! Each event is one JSON line in `audit/audit-NNNNNN.jsonl` under the state directory:
//!
//! ```json
//! {"seq":41,"time":1764838800,"prev":"9f2c…","event":"sign_in","tid":"…","oid":"…",
//!  "method":"totp","amr":"otp","outcome":"token","reason":"code accepted","source":"192.0.2.7"}
//! ```
//!
//! `seq` counts records from the first ever written, `prev` is the SHA-256 (hex) of the whole
//! previous line without its newline, all zeros for the very first record. Removing,
//! reordering or altering any record breaks the chain at the record that follows it, and
//! `vouch audit verify` names the first record where it breaks. The newest record is
//! protected only once another follows it; the `status` admin command reports the chain head
//! (`seq` and hash) so that monitoring can keep it elsewhere.
//!
//! Rules:
//! - A sign-in's record is on disk (fdatasync) before its answer is sent. One writer thread
//!   appends: records that arrive while it syncs go into the next write, so concurrent
//!   sign-ins share one sync, as the spent-code log does.
//! - If a record cannot be written, the sign-in is not answered with a token: it ends with
//!   `temporarily_unavailable`. Refusals are still sent, with the failure logged at error.
//! - A file larger than `[audit] max_file_bytes` is closed and the next record starts a new
//!   file; its `prev` links to the last record of the previous file, so the chain runs on.
//! - At start the chain head is read back from the newest file. A torn last line (a crash
//!   during a write) was never synced, so no answer depended on it: it is cut off and a
//!   `recovered` record says how many bytes were dropped.
//! - No token, code, seed, hint or key ever goes into a record; users are `tid` and `oid`.

mod chain;
pub mod cli;
mod event;
pub mod verify;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use serde::Deserialize;
use tokio::sync::oneshot;

pub use chain::Head;
pub use event::{Event, SignIn};

/// Default size at which a file is closed and the next one started.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `[audit]` in the configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    max_file_bytes: Option<u64>,
    dir: Option<PathBuf>,
}

/// Where the audit trail lives and when its files rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The folder of the trail; `audit` under the state directory unless set.
    pub dir: Option<PathBuf>,
    pub max_file_bytes: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            dir: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

impl AuditConfig {
    /// Checks `[audit]`; relative paths are taken from `resolve`.
    pub fn from_raw(
        raw: RawAudit,
        resolve: impl Fn(PathBuf) -> PathBuf,
    ) -> Result<AuditConfig, (&'static str, String)> {
        let max_file_bytes = raw.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES);
        if !(4096..=(1 << 40)).contains(&max_file_bytes) {
            return Err(("audit.max_file_bytes", "must be 4096 bytes to 1 TiB".into()));
        }
        Ok(AuditConfig {
            dir: raw.dir.map(resolve),
            max_file_bytes,
        })
    }

    /// The trail's folder for an appliance whose state is in `state_dir`.
    pub fn dir_in(&self, state_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| state_dir.join("audit"))
    }
}

/// Why the trail could not be opened at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("audit trail in {dir}: {detail}")]
    Open { dir: PathBuf, detail: String },
    /// Another process (a running appliance) writes this trail.
    #[error("audit trail in {dir} is in use by another process, most likely the running appliance")]
    InUse { dir: PathBuf },
}

struct Pending {
    event: Event,
    done: oneshot::Sender<Result<(), String>>,
}

/// The appending side of the trail; cheap to share.
pub struct AuditLog {
    records: mpsc::Sender<Pending>,
    head: Arc<Mutex<Head>>,
    dir: PathBuf,
    /// `LOCK` in the trail's folder, locked for as long as this log is open, so that only
    /// one process appends.
    _lock: File,
}

/// The file whose lock says which process writes the trail.
const LOCK: &str = "writer.lock";

impl AuditLog {
    /// Opens the trail in `dir`, recovering the chain head, and starts its writer thread.
    pub fn open(dir: &Path, max_file_bytes: u64) -> Result<AuditLog, AuditError> {
        let failed = |e: io::Error| AuditError::Open {
            dir: dir.to_owned(),
            detail: e.to_string(),
        };
        fs::create_dir_all(dir).map_err(failed)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .map_err(failed)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(AuditError::InUse {
                    dir: dir.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        let recovered = chain::recover(dir).map_err(failed)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&recovered.path)
            .map_err(failed)?;
        let size = file.metadata().map_err(failed)?.len();
        let head = Arc::new(Mutex::new(recovered.head));
        let mut writer = Writer {
            dir: dir.to_owned(),
            path: recovered.path,
            file,
            size,
            max_file_bytes,
            head: head.clone(),
        };
        if recovered.torn_bytes > 0 {
            let event = Event::Recovered {
                torn_bytes: recovered.torn_bytes,
            };
            writer.append(&[&event]).map_err(|e| AuditError::Open {
                dir: dir.to_owned(),
                detail: e,
            })?;
        }
        let (records, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("vouch-audit".into())
            .spawn(move || writer.run(&queue))
            .map_err(failed)?;
        Ok(AuditLog {
            records,
            head,
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    /// Appends `event`; resolves once it is on disk.
    pub async fn record(&self, event: Event) -> Result<(), String> {
        let (done, synced) = oneshot::channel();
        let stopped = || "the audit writer has stopped".to_owned();
        self.records
            .send(Pending { event, done })
            .map_err(|_| stopped())?;
        synced.await.map_err(|_| stopped())?
    }

    /// Appends `event` and waits until it is on disk, for callers outside an async runtime
    /// (the command line).
    pub fn record_blocking(&self, event: Event) -> Result<(), String> {
        let (done, synced) = oneshot::channel();
        let stopped = || "the audit writer has stopped".to_owned();
        self.records
            .send(Pending { event, done })
            .map_err(|_| stopped())?;
        synced.blocking_recv().map_err(|_| stopped())?
    }

    /// Appends `event` without waiting; a failure is logged. For events whose caller has
    /// nothing to hold back when the trail fails.
    pub fn note(self: &Arc<Self>, event: Event) {
        let log = self.clone();
        let kind = event.kind();
        tokio::spawn(async move {
            if let Err(e) = log.record(event).await {
                tracing::error!(error = %e, event = kind, "audit record could not be written");
            }
        });
    }

    /// The last record written: its sequence number and the hash the next one will carry.
    pub fn head(&self) -> Head {
        self.head.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

struct Writer {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    size: u64,
    max_file_bytes: u64,
    head: Arc<Mutex<Head>>,
}

impl Writer {
    fn run(mut self, queue: &mpsc::Receiver<Pending>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            batch.extend(queue.try_iter());
            let events: Vec<&Event> = batch.iter().map(|p| &p.event).collect();
            let written = self.append(&events);
            if let Err(e) = &written {
                tracing::error!(path = %self.path.display(), error = %e, "audit write failed");
            }
            for pending in batch {
                let _ = pending.done.send(written.clone());
            }
        }
    }

    /// Writes and syncs `events` as one batch; the head moves only once they are on disk.
    fn append(&mut self, events: &[&Event]) -> Result<(), String> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut text = Vec::new();
        for event in events {
            let line = chain::line(&head, event).map_err(|e| e.to_string())?;
            head = head.after(&line);
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        if self.size > 0 && self.size + text.len() as u64 > self.max_file_bytes {
            self.rotate()
                .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        }
        let failed = |e: io::Error| format!("{}: {e}", self.path.display());
        let written = self
            .file
            .write_all(&text)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // A part-written batch would break the chain for every later record.
            let _ = self.file.set_len(self.size);
            return Err(failed(e));
        }
        self.size += text.len() as u64;
        *self.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let next = chain::next_file(&self.dir, &self.path);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&next)?;
        File::open(&self.dir)?.sync_all()?;
        tracing::debug!(path = %next.display(), "audit trail continues in a new file");
        self.file = file;
        self.path = next;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
