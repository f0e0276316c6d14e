//! The chain itself: how a record line is made and hashed, how the files are named, and how
//! the head is found again at start.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Event;

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";
/// The `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The newest record: its sequence number and the SHA-256 of its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// `None` before the first record.
    pub seq: Option<u64>,
    pub hash: String,
}

impl Head {
    pub fn genesis() -> Head {
        Head {
            seq: None,
            hash: GENESIS.to_owned(),
        }
    }

    /// The head once `line` is written after this one.
    pub fn after(&self, line: &[u8]) -> Head {
        Head {
            seq: Some(self.next_seq()),
            hash: sha256_hex(line),
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.map_or(0, |s| s + 1)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    time: i64,
    prev: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

/// The fields of a record line that the chain depends on.
#[derive(Debug, Deserialize)]
pub struct Linked {
    pub seq: u64,
    pub prev: String,
}

/// The line (without newline) that records `event` after `head`.
pub fn line(head: &Head, event: &Event) -> serde_json::Result<Vec<u8>> {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    serde_json::to_vec(&Line {
        seq: head.next_seq(),
        time,
        prev: &head.hash,
        event,
    })
}

/// The trail's files, oldest first.
pub fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(n) = file_number(&path) {
            found.push((n, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn file_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

fn numbered(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{n:06}{SUFFIX}"))
}

/// The file after `current`.
pub fn next_file(dir: &Path, current: &Path) -> PathBuf {
    numbered(dir, file_number(current).map_or(1, |n| n + 1))
}

/// Where writing resumes at start.
pub struct Recovered {
    pub path: PathBuf,
    pub head: Head,
    pub torn_bytes: u64,
}

/// Finds the newest file and the chain head, cutting off a torn last line.
pub fn recover(dir: &Path) -> io::Result<Recovered> {
    let files = files(dir)?;
    let Some(newest) = files.last() else {
        return Ok(Recovered {
            path: numbered(dir, 1),
            head: Head::genesis(),
            torn_bytes: 0,
        });
    };
    let text = fs::read(newest)?;
    let kept = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let torn_bytes = (text.len() - kept) as u64;
    if torn_bytes > 0 {
        let file = OpenOptions::new().write(true).open(newest)?;
        file.set_len(kept as u64)?;
        file.sync_all()?;
    }
    let mut head = Head::genesis();
    for path in files.iter().rev() {
        let text = if path == newest {
            text[..kept].to_vec()
        } else {
            fs::read(path)?
        };
        if let Some(last) = text.split(|b| *b == b'\n').rfind(|l| !l.is_empty()) {
            let linked: Linked = serde_json::from_slice(last).map_err(|e| {
                io::Error::other(format!(
                    "the last record of {} is not a record ({e}); run `vouch audit verify`",
                    path.display()
                ))
            })?;
            head = Head {
                seq: Some(linked.seq),
                hash: sha256_hex(last),
            };
            break;
        }
    }
    Ok(Recovered {
        path: newest.clone(),
        head,
        torn_bytes,
    })
}
