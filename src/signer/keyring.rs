//! The key ring: which token-signing keys exist, and when each is published, signs, retires
//! and is gone. Entra survives a rotation only if it never sees a token signed by a key its
//! cached JWKS lacks, and it caches the JWKS for up to two days; so a key lives through
//!
//! ```text
//!   next ──overlap──▶ active ──(next key activates)──▶ retiring ──overlap──▶ gone
//!   published,        published,                        published,
//!   does not sign     signs                             does not sign
//! ```
//!
//! Every transition is a time written down when the rotation starts, so the state of a key is
//! a function of the clock: nothing has to run at the moment of a transition, a restart
//! resumes where the schedule stands, and the appliance only ever reads the ring. Only the
//! `vouch keys` commands (and a first start) write it, to `STATE_DIR/signing/ring.json`,
//! through a temporary file that is synced and renamed into place, so a crash leaves the old
//! ring or the new one, never half of either.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Two days: Entra may hold the JWKS this long, so a key is published this long before it
/// signs and after it stops.
pub const DEFAULT_OVERLAP_SECS: i64 = 48 * 3600;

const RING_FILE: &str = "ring.json";

/// Where a key lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyLocation {
    /// `key.pk8` and `cert.pem` in this folder under `STATE_DIR/signing` ("" for the folder
    /// itself).
    Software { dir: String },
    /// A key on every configured device, by label or by hex id (for a PIV card, the id is
    /// the slot, e.g. "9c"), with a PEM certificate file when the device holds none.
    Device {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate: Option<PathBuf>,
    },
}

impl std::fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyLocation::Software { dir } if dir.is_empty() => f.write_str("signing/"),
            KeyLocation::Software { dir } => write!(f, "signing/{dir}/"),
            KeyLocation::Device { label: Some(l), .. } => write!(f, "device key label {l:?}"),
            KeyLocation::Device { id: Some(id), .. } => write!(f, "device key id {id}"),
            KeyLocation::Device { .. } => f.write_str("device key (unnamed)"),
        }
    }
}

/// The state of a key at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyState {
    Next,
    Active,
    Retiring,
    Gone,
}

impl KeyState {
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Gone => "gone",
        }
    }

    /// Whether the JWKS carries the key in this state.
    pub fn is_published(self) -> bool {
        self != KeyState::Gone
    }
}

/// One key and its schedule, in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingEntry {
    /// The `kid` the key was published under; checked against the key when it is loaded.
    pub kid: String,
    pub key: KeyLocation,
    pub published_at: i64,
    pub signs_from: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_at: Option<i64>,
}

impl RingEntry {
    pub fn state(&self, now: i64) -> KeyState {
        if now < self.signs_from {
            return KeyState::Next;
        }
        match (self.retires_at, self.gone_at) {
            (Some(r), _) if now < r => KeyState::Active,
            (None, _) => KeyState::Active,
            (Some(_), Some(g)) if now < g => KeyState::Retiring,
            (Some(_), None) => KeyState::Retiring,
            _ => KeyState::Gone,
        }
    }

    /// When the key next changes state, if it will.
    pub fn next_transition(&self, now: i64) -> Option<(KeyState, i64)> {
        match self.state(now) {
            KeyState::Next => Some((KeyState::Active, self.signs_from)),
            KeyState::Active => self.retires_at.map(|t| (KeyState::Retiring, t)),
            KeyState::Retiring => self.gone_at.map(|t| (KeyState::Gone, t)),
            KeyState::Gone => None,
        }
    }
}

/// Why the ring could not be read, written or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("{path}: not a key ring vouch can use: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("a key is already staged ({kid}, signing from {signs_from}); promote it first")]
    AlreadyStaged { kid: String, signs_from: String },
    #[error("no key is staged; stage one with `vouch keys stage` first")]
    NothingStaged,
    #[error("the key {kid} is already in the ring ({state}); stage a different key")]
    Duplicate { kid: String, state: &'static str },
}

/// The keys and their schedules, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRing {
    pub keys: Vec<RingEntry>,
}

impl KeyRing {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("signing").join(RING_FILE)
    }

    /// The stored ring, or `None` when there is none yet.
    pub fn load(state_dir: &Path) -> Result<Option<KeyRing>, RingError> {
        let path = KeyRing::path(state_dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(RingError::Io {
                    path,
                    detail: e.to_string(),
                });
            }
        };
        let invalid = |detail: String| RingError::Invalid {
            path: path.clone(),
            detail,
        };
        let ring: KeyRing = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        ring.check().map_err(invalid)?;
        Ok(Some(ring))
    }

    /// Rules a ring read from disk must keep; a ring that breaks them is refused whole.
    fn check(&self) -> Result<(), String> {
        if self.keys.is_empty() {
            return Err("it lists no key".into());
        }
        for k in &self.keys {
            if let KeyLocation::Software { dir } = &k.key
                && !is_plain_relative(dir)
            {
                return Err(format!(
                    "key {}: dir {dir:?} leaves the signing folder",
                    k.kid
                ));
            }
            if let KeyLocation::Device {
                label: None,
                id: None,
                ..
            } = &k.key
            {
                return Err(format!("key {}: give a label or an id", k.kid));
            }
            let ordered = k.published_at <= k.signs_from
                && k.retires_at.is_none_or(|r| r >= k.signs_from)
                && match (k.retires_at, k.gone_at) {
                    (Some(r), Some(g)) => g >= r,
                    (None, None) => true,
                    _ => false,
                };
            if !ordered {
                return Err(format!("key {}: its times are out of order", k.kid));
            }
        }
        let mut kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        kids.sort_unstable();
        if kids.windows(2).any(|w| w[0] == w[1]) {
            return Err("a kid is listed twice".into());
        }
        Ok(())
    }

    /// The ring of a first start: one key, signing now.
    pub fn first(kid: String, key: KeyLocation, now: i64) -> KeyRing {
        KeyRing {
            keys: vec![RingEntry {
                kid,
                key,
                published_at: now,
                signs_from: now,
                retires_at: None,
                gone_at: None,
            }],
        }
    }

    /// The keys the JWKS carries now: the signing key first, then the next, then retiring.
    pub fn published(&self, now: i64) -> Vec<&RingEntry> {
        let mut live: Vec<&RingEntry> = self
            .keys
            .iter()
            .filter(|k| k.state(now).is_published())
            .collect();
        live.sort_by_key(|k| match k.state(now) {
            KeyState::Active => 0,
            KeyState::Next => 1,
            KeyState::Retiring | KeyState::Gone => 2,
        });
        live
    }

    /// The key that signs now.
    pub fn active(&self, now: i64) -> Option<&RingEntry> {
        self.keys.iter().find(|k| k.state(now) == KeyState::Active)
    }

    /// Adds a key that is published now and signs after the overlap, when the active key
    /// retires; the retiring key stays published for the overlap after that.
    pub fn stage(
        &mut self,
        kid: String,
        key: KeyLocation,
        now: i64,
        overlap_secs: i64,
    ) -> Result<&RingEntry, RingError> {
        if let Some(k) = self.keys.iter().find(|k| k.kid == kid) {
            return Err(RingError::Duplicate {
                kid,
                state: k.state(now).name(),
            });
        }
        self.can_stage(now)?;
        let signs_from = now + overlap_secs;
        self.retire_active(now, signs_from, overlap_secs);
        self.keys.retain(|k| k.state(now) != KeyState::Gone);
        self.keys.push(RingEntry {
            kid,
            key,
            published_at: now,
            signs_from,
            retires_at: None,
            gone_at: None,
        });
        Ok(self
            .keys
            .last()
            .unwrap_or_else(|| unreachable!("just pushed")))
    }

    /// Whether a key may be staged now: not while another is next.
    pub fn can_stage(&self, now: i64) -> Result<(), RingError> {
        match self.keys.iter().find(|k| k.state(now) == KeyState::Next) {
            Some(next) => Err(RingError::AlreadyStaged {
                kid: next.kid.clone(),
                signs_from: unix_time(next.signs_from),
            }),
            None => Ok(()),
        }
    }

    /// Makes the staged key sign now instead of when its overlap ends. Entra may not have it
    /// yet: the caller warns.
    pub fn promote(&mut self, now: i64, overlap_secs: i64) -> Result<&RingEntry, RingError> {
        let Some(i) = self
            .keys
            .iter()
            .position(|k| k.state(now) == KeyState::Next)
        else {
            return Err(RingError::NothingStaged);
        };
        self.retire_active(now, now, overlap_secs);
        self.keys[i].signs_from = now;
        self.keys[i].published_at = self.keys[i].published_at.min(now);
        Ok(&self.keys[i])
    }

    fn retire_active(&mut self, now: i64, at: i64, overlap_secs: i64) {
        for k in &mut self.keys {
            if k.state(now) == KeyState::Active {
                k.retires_at = Some(at);
                k.gone_at = Some(at + overlap_secs);
            }
        }
    }

    /// Writes the ring crash-safely: a synced temporary file renamed over the old one.
    pub fn store(&self, state_dir: &Path) -> Result<(), RingError> {
        let path = KeyRing::path(state_dir);
        let io = |detail: std::io::Error| RingError::Io {
            path: path.clone(),
            detail: detail.to_string(),
        };
        let dir = path.parent().unwrap_or(state_dir);
        let tmp = dir.join(format!(".{RING_FILE}.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(|e| RingError::Invalid {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&text).and_then(|()| f.sync_all()).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

fn is_plain_relative(dir: &str) -> bool {
    Path::new(dir)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
}

/// `2026-12-04 09:30:00 UTC`, for operators.
pub fn unix_time(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn soft(dir: &str) -> KeyLocation {
        KeyLocation::Software { dir: dir.into() }
    }

    fn states(ring: &KeyRing, now: i64) -> Vec<(&str, KeyState)> {
        ring.keys
            .iter()
            .map(|k| (k.kid.as_str(), k.state(now)))
            .collect()
    }

    #[test]
    fn a_staged_key_signs_only_after_the_overlap_and_the_old_one_stays_published_as_long() {
        let mut ring = KeyRing::first("a".into(), soft(""), 0);
        ring.stage("b".into(), soft("b"), 10 * H, 48 * H)
            .expect("staged");
        use KeyState::*;
        assert_eq!(states(&ring, 10 * H), [("a", Active), ("b", Next)]);
        assert_eq!(ring.active(58 * H - 1).map(|k| k.kid.as_str()), Some("a"));
        assert_eq!(states(&ring, 58 * H), [("a", Retiring), ("b", Active)]);
        assert_eq!(ring.active(58 * H).map(|k| k.kid.as_str()), Some("b"));
        assert_eq!(states(&ring, 106 * H - 1), [("a", Retiring), ("b", Active)]);
        assert_eq!(states(&ring, 106 * H), [("a", Gone), ("b", Active)]);
        let published: Vec<&str> = ring
            .published(106 * H)
            .iter()
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(published, ["b"]);
        assert_eq!(
            ring.keys[0].next_transition(60 * H),
            Some((KeyState::Gone, 106 * H))
        );
    }

    #[test]
    fn exactly_one_key_signs_at_every_moment_of_a_rotation() {
        let mut ring = KeyRing::first("a".into(), soft(""), 0);
        ring.stage("b".into(), soft("b"), H, 2 * H).expect("staged");
        for now in (0..8 * H).step_by(600) {
            let active = ring
                .keys
                .iter()
                .filter(|k| k.state(now) == KeyState::Active);
            assert_eq!(active.count(), 1, "at {now}");
        }
    }

    #[test]
    fn a_second_stage_is_refused_while_a_key_is_next_and_a_kid_cannot_return() {
        let mut ring = KeyRing::first("a".into(), soft(""), 0);
        ring.stage("b".into(), soft("b"), 0, 48 * H)
            .expect("staged");
        let err = ring.stage("c".into(), soft("c"), H, 48 * H).unwrap_err();
        assert!(matches!(err, RingError::AlreadyStaged { .. }), "{err}");
        let err = ring
            .stage("a".into(), soft(""), 49 * H, 48 * H)
            .unwrap_err();
        assert!(matches!(err, RingError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn promote_makes_the_staged_key_sign_now_and_retires_the_old_for_the_overlap() {
        let mut ring = KeyRing::first("a".into(), soft(""), 0);
        assert_eq!(
            ring.promote(H, 48 * H).unwrap_err(),
            RingError::NothingStaged
        );
        ring.stage("b".into(), soft("b"), H, 48 * H)
            .expect("staged");
        ring.promote(2 * H, 48 * H).expect("promoted");
        use KeyState::*;
        assert_eq!(states(&ring, 2 * H), [("a", Retiring), ("b", Active)]);
        assert_eq!(states(&ring, 50 * H), [("a", Gone), ("b", Active)]);
    }

    #[test]
    fn the_ring_survives_a_store_and_load_and_gone_keys_are_dropped_at_the_next_stage() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("signing")).expect("dir");
        assert_eq!(KeyRing::load(dir.path()).expect("load"), None);
        let mut ring = KeyRing::first("a".into(), soft(""), 0);
        ring.stage("b".into(), soft("b"), 0, H).expect("staged");
        ring.store(dir.path()).expect("store");
        assert_eq!(KeyRing::load(dir.path()).expect("load"), Some(ring.clone()));
        ring.stage("c".into(), soft("c"), 3 * H, H).expect("staged");
        let kids: Vec<&str> = ring.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["b", "c"]);
    }

    #[test]
    fn hostile_rings_are_refused_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("signing")).expect("dir");
        let entry =
            |key: &str, times: &str| format!(r#"{{"keys":[{{"kid":"a","key":{key},{times}}}]}}"#);
        let ok_times = r#""published_at":0,"signs_from":0"#;
        let cases = [
            "".to_owned(),
            "{".to_owned(),
            r#"{"keys":[]}"#.to_owned(),
            entry(r#"{"in":"software","dir":"../../etc"}"#, ok_times),
            entry(r#"{"in":"software","dir":"/etc"}"#, ok_times),
            entry(r#"{"in":"device"}"#, ok_times),
            entry(r#"{"in":"floppy"}"#, ok_times),
            entry(
                r#"{"in":"software","dir":""}"#,
                r#""published_at":9,"signs_from":0"#,
            ),
            entry(
                r#"{"in":"software","dir":""}"#,
                r#""published_at":0,"signs_from":0,"retires_at":5"#,
            ),
            format!(
                r#"{{"keys":[{{"kid":"a","key":{{"in":"software","dir":""}},{ok_times}}}],"x":1}}"#
            ),
        ];
        for text in cases {
            fs::write(KeyRing::path(dir.path()), &text).expect("write");
            let err = KeyRing::load(dir.path()).expect_err(&text);
            assert!(matches!(err, RingError::Invalid { .. }), "{text}: {err}");
        }
    }
}
