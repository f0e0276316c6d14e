//! One-time enrolment links: an operator issues one for a user, the user opens it to
//! register a security key, and it is spent on success.
//!
//! The link carries a random 256-bit token; the state directory keeps only the token's
//! SHA-256 with the user and the expiry, in `enrol-links.json`, so a copy of the file cannot
//! be turned into working links. The file is read and rewritten under `enrol-links.lock` on
//! every use (it holds few entries), so links survive a restart and the command line and the
//! appliance never work from stale copies. A new link for a user replaces any older one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::jose::b64url_encode;
use crate::seal::{self, Sealer};

const FILE: &str = "enrol-links.json";
const LOCK: &str = "enrol-links.lock";
/// Links outstanding at once, across all users.
const MAX_LINKS: usize = 10_000;
/// The shortest and longest lifetimes a link may have.
pub const MIN_TTL_SECS: i64 = 60;
pub const MAX_TTL_SECS: i64 = 72 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error("the link is not one this appliance issued, or it was already used")]
    Unknown,
    #[error("the link expired")]
    Expired,
    #[error("{MAX_LINKS} enrolment links are outstanding; wait for some to expire")]
    Full,
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

/// Whom a link enrols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub tid: String,
    pub oid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    pub expires: i64,
    /// The operator who issued it, for the audit record of the enrolment.
    pub uid: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    /// Links by the hex SHA-256 of their token.
    links: BTreeMap<String, Link>,
}

/// The links of one state directory, and the process key that seals enrolment pages.
pub struct EnrolLinks {
    dir: PathBuf,
    /// Seals each enrolment page's challenge; lives only in this process.
    pub(super) pages: Sealer,
}

/// The hex SHA-256 of a token: how the file names a link.
pub fn token_hash(token: &str) -> String {
    let hash = digest::digest(&digest::SHA256, token.as_bytes());
    hash.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl EnrolLinks {
    pub fn new(dir: &Path) -> EnrolLinks {
        EnrolLinks {
            dir: dir.to_owned(),
            pages: Sealer::ephemeral(),
        }
    }

    /// Issues a link for `link`'s user; returns its token, shown once.
    pub fn issue(&self, link: Link, now: i64) -> Result<String, LinkError> {
        let token = b64url_encode(&seal::random_bytes::<32>());
        let hash = token_hash(&token);
        self.update(now, |file| {
            file.links
                .retain(|_, l| l.tid != link.tid || l.oid != link.oid);
            if file.links.len() >= MAX_LINKS {
                return Err(LinkError::Full);
            }
            file.links.insert(hash, link);
            Ok(())
        })?;
        Ok(token)
    }

    /// The link a token names, if it is outstanding and unexpired; it stays outstanding.
    pub fn find(&self, hash: &str, now: i64) -> Result<Link, LinkError> {
        let file = read(&self.dir.join(FILE))?;
        let link = file.links.get(hash).ok_or(LinkError::Unknown)?;
        if now >= link.expires {
            return Err(LinkError::Expired);
        }
        Ok(link.clone())
    }

    /// Spends a link: it works only for the first caller, and only before it expires.
    pub fn spend(&self, hash: &str, now: i64) -> Result<Link, LinkError> {
        let mut spent = Err(LinkError::Unknown);
        self.update(now, |file| {
            let link = file.links.get(hash).ok_or(LinkError::Unknown)?;
            if now >= link.expires {
                return Err(LinkError::Expired);
            }
            spent = file.links.remove(hash).ok_or(LinkError::Unknown);
            Ok(())
        })?;
        spent
    }

    /// Puts back a link whose enrolment failed after spending it, so that the user can try
    /// again with it. It stays gone if it has expired or the user was given a new link since.
    pub fn restore(&self, hash: &str, link: Link, now: i64) -> Result<(), LinkError> {
        self.update(now, |file| {
            let replaced = file
                .links
                .values()
                .any(|l| l.tid == link.tid && l.oid == link.oid);
            if now < link.expires && !replaced && file.links.len() < MAX_LINKS {
                file.links.insert(hash.to_owned(), link);
            }
            Ok(())
        })
    }

    /// Read-modify-write under the lock, dropping expired links on the way.
    fn update(
        &self,
        now: i64,
        change: impl FnOnce(&mut LinkFile) -> Result<(), LinkError>,
    ) -> Result<(), LinkError> {
        let lock_path = self.dir.join(LOCK);
        let _lock = crate::store::lock_exclusive(&lock_path).map_err(io(&lock_path))?;

        let path = self.dir.join(FILE);
        let mut file = read(&path)?;
        let expired: Vec<String> = file
            .links
            .iter()
            .filter(|(_, l)| now >= l.expires)
            .map(|(h, _)| h.clone())
            .collect();
        change(&mut file)?;
        for hash in expired {
            file.links.remove(&hash);
        }
        write(&path, &file)
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LinkError + '_ {
    move |e| LinkError::Io {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

fn read(path: &Path) -> Result<LinkFile, LinkError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LinkError::Io {
            path: path.to_owned(),
            detail: format!("damaged ({e}); move it aside to drop every outstanding link"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LinkFile::default()),
        Err(e) => Err(io(path)(e)),
    }
}

fn write(path: &Path, file: &LinkFile) -> Result<(), LinkError> {
    let bytes = serde_json::to_vec_pretty(file).unwrap_or_default();
    crate::store::replace_file(path, &bytes).map_err(|(at, e)| io(&at)(e))
}

/// A lifetime such as `15m`, `2h`, `900s` or `900` (seconds), within the allowed range.
pub fn parse_ttl(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3600),
        _ => (text, 1),
    };
    let secs = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|s| (MIN_TTL_SECS..=MAX_TTL_SECS).contains(s));
    secs.ok_or_else(|| {
        format!(
            "{:?} is not a lifetime from 1m to 72h, such as 15m, 2h or 900s",
            text.chars().take(40).collect::<String>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(oid: &str, expires: i64) -> Link {
        Link {
            tid: "t".into(),
            oid: oid.into(),
            upn: None,
            expires,
            uid: 0,
        }
    }

    #[test]
    fn a_link_is_found_until_spent_and_spends_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let links = EnrolLinks::new(dir.path());
        let token = links.issue(link("o", 100), 0).expect("issue");
        let hash = token_hash(&token);
        assert_eq!(links.find(&hash, 10).map(|l| l.oid), Ok("o".into()));
        assert_eq!(links.spend(&hash, 10).map(|l| l.oid), Ok("o".into()));
        assert_eq!(links.spend(&hash, 10), Err(LinkError::Unknown));
        assert_eq!(links.find(&hash, 10), Err(LinkError::Unknown));
    }

    #[test]
    fn a_restored_link_works_again_unless_expired_or_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let links = EnrolLinks::new(dir.path());
        let hash = token_hash(&links.issue(link("o", 100), 0).expect("issue"));
        let spent = links.spend(&hash, 10).expect("spent");
        links.restore(&hash, spent.clone(), 10).expect("restored");
        assert_eq!(links.spend(&hash, 11).map(|l| l.oid), Ok("o".into()));

        links.restore(&hash, spent.clone(), 100).expect("too late");
        assert_eq!(links.find(&hash, 50), Err(LinkError::Unknown));

        let newer = token_hash(&links.issue(link("o", 100), 20).expect("issue"));
        links.restore(&hash, spent, 21).expect("replaced");
        assert_eq!(links.find(&hash, 22), Err(LinkError::Unknown));
        assert!(links.find(&newer, 22).is_ok());
    }

    #[test]
    fn an_expired_link_is_refused_and_dropped_at_the_next_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let links = EnrolLinks::new(dir.path());
        let hash = token_hash(&links.issue(link("o", 100), 0).expect("issue"));
        assert_eq!(links.find(&hash, 100), Err(LinkError::Expired));
        assert_eq!(links.spend(&hash, 100), Err(LinkError::Expired));
        links.issue(link("other", 300), 200).expect("issue");
        assert_eq!(links.find(&hash, 50), Err(LinkError::Unknown));
    }

    #[test]
    fn links_survive_a_restart_and_the_file_holds_no_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = EnrolLinks::new(dir.path())
            .issue(link("o", 100), 0)
            .expect("issue");
        let text = fs::read_to_string(dir.path().join(FILE)).expect("file");
        assert!(!text.contains(&token));
        let reopened = EnrolLinks::new(dir.path());
        assert!(reopened.spend(&token_hash(&token), 1).is_ok());
    }

    #[test]
    fn a_new_link_for_a_user_replaces_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let links = EnrolLinks::new(dir.path());
        let first = token_hash(&links.issue(link("o", 100), 0).expect("issue"));
        let second = token_hash(&links.issue(link("o", 100), 0).expect("issue"));
        assert_eq!(links.find(&first, 1), Err(LinkError::Unknown));
        assert!(links.find(&second, 1).is_ok());
    }

    #[test]
    fn forged_tokens_and_a_damaged_file_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let links = EnrolLinks::new(dir.path());
        let token = links.issue(link("o", 100), 0).expect("issue");
        for forged in [
            "",
            "AAAA",
            &token[1..],
            &format!("{token}A"),
            &token.to_uppercase(),
        ] {
            assert_eq!(links.find(&token_hash(forged), 1), Err(LinkError::Unknown));
        }
        fs::write(dir.path().join(FILE), b"{ not json").expect("write");
        let err = links.find(&token_hash(&token), 1).expect_err("damaged");
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn lifetimes_parse_with_units_and_out_of_range_ones_are_refused() {
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("2h"), Ok(7200));
        assert_eq!(parse_ttl("900s"), Ok(900));
        assert_eq!(parse_ttl("120"), Ok(120));
        for bad in [
            "",
            "m",
            "0m",
            "59s",
            "73h",
            "-5m",
            "1.5h",
            "15 m",
            "15d",
            "99999999999999h",
        ] {
            let err = parse_ttl(bad).expect_err(bad);
            assert!(err.contains("not a lifetime"), "{err}");
        }
    }
}
