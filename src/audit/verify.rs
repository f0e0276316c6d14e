//! `vouch audit verify`: walks every file of the trail in order and names the first record
//! where the chain breaks.

use std::fmt;
use std::path::{Path, PathBuf};

use super::chain::{self, GENESIS, Linked, sha256_hex};

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The record's text changed after it was written: the next record's `prev` does not
    /// match it, or it is no longer a record.
    Altered(String),
    /// Records are missing before this one, or it is out of order.
    Removed { expected_seq: u64, found_seq: u64 },
    /// The last line has no end: the file was cut short.
    Truncated,
    /// The oldest file does not start the chain: earlier files are missing.
    MissingStart { found_seq: u64 },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Altered(why) => write!(f, "altered: {why}"),
            Fault::Removed {
                expected_seq,
                found_seq,
            } => write!(
                f,
                "removed or out of order: record {expected_seq} expected here, found {found_seq}"
            ),
            Fault::Truncated => write!(f, "truncated: the last record has no line end"),
            Fault::MissingStart { found_seq } => write!(
                f,
                "removed: the trail starts at record {found_seq}; earlier files are missing"
            ),
        }
    }
}

/// The first bad record: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub file: PathBuf,
    /// 1-based line number in `file`.
    pub line: usize,
    pub fault: Fault,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.fault)
    }
}

/// What a whole walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub files: usize,
    pub records: u64,
    pub head: chain::Head,
}

/// Why the trail could not be walked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("cannot read the audit trail in {dir}: {detail}")]
    Unreadable { dir: PathBuf, detail: String },
    #[error("{0}")]
    Bad(BadRecord),
}

/// The record before the one being checked, kept to name it when its successor disagrees.
struct Previous {
    file: PathBuf,
    line: usize,
    seq: u64,
    hash: String,
}

/// Walks the trail in `dir`.
pub fn verify(dir: &Path) -> Result<Verified, VerifyError> {
    let unreadable = |e: std::io::Error| VerifyError::Unreadable {
        dir: dir.to_owned(),
        detail: e.to_string(),
    };
    let files = chain::files(dir).map_err(unreadable)?;
    let mut previous: Option<Previous> = None;
    let mut records = 0;
    for path in &files {
        let text = std::fs::read(path).map_err(unreadable)?;
        let bad = |line, fault| {
            VerifyError::Bad(BadRecord {
                file: path.clone(),
                line,
                fault,
            })
        };
        let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        } else if !text.is_empty() {
            return Err(bad(lines.len(), Fault::Truncated));
        }
        for (i, raw) in lines.iter().enumerate() {
            let number = i + 1;
            let linked: Linked = serde_json::from_slice(raw).map_err(|e| {
                bad(
                    number,
                    Fault::Altered(format!("the line is not a record ({e})")),
                )
            })?;
            check_link(previous.as_ref(), &linked).map_err(|fault| match fault {
                Blame::This(fault) => bad(number, fault),
                Blame::Previous(fault, p) => VerifyError::Bad(BadRecord {
                    file: p.file.clone(),
                    line: p.line,
                    fault,
                }),
            })?;
            previous = Some(Previous {
                file: path.clone(),
                line: number,
                seq: linked.seq,
                hash: sha256_hex(raw),
            });
            records += 1;
        }
    }
    Ok(Verified {
        files: files.len(),
        records,
        head: previous.map_or_else(chain::Head::genesis, |p| chain::Head {
            seq: Some(p.seq),
            hash: p.hash,
        }),
    })
}

enum Blame<'a> {
    This(Fault),
    Previous(Fault, &'a Previous),
}

/// Whether `record` follows `previous`. A gap in `seq` blames this record (records are
/// missing before it); a continuous `seq` with a `prev` that does not match blames the
/// previous record, whose text must have changed.
fn check_link<'a>(previous: Option<&'a Previous>, record: &Linked) -> Result<(), Blame<'a>> {
    let Some(p) = previous else {
        if record.seq != 0 || record.prev != GENESIS {
            return Err(Blame::This(Fault::MissingStart {
                found_seq: record.seq,
            }));
        }
        return Ok(());
    };
    if record.seq != p.seq + 1 {
        return Err(Blame::This(Fault::Removed {
            expected_seq: p.seq + 1,
            found_seq: record.seq,
        }));
    }
    if record.prev != p.hash {
        return Err(Blame::Previous(
            Fault::Altered(format!(
                "its hash is not the one record {} holds",
                record.seq
            )),
            p,
        ));
    }
    Ok(())
}
