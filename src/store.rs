//! The embedded credential store: which factors each user has enrolled, with their secrets
//! encrypted at rest.
//!
//! The store is one JSON file in the state directory, `credentials.json`, rewritten whole
//! under an exclusive lock (`credentials.lock`) by writing a temporary file, syncing it and
//! renaming it over the old one, so a crash leaves either the old or the new file. Secrets are
//! sealed with AES-256-GCM under `store.key`, bound to the user they belong to. The appliance
//! and the enrolment CLI share the file; the appliance rereads it when it changes.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::factor::Method;
use crate::factor::otp::TotpParams;
use crate::jose::{b64url_decode, b64url_encode};
use crate::seal::{self, Sealer};

pub mod counters;
mod fido;
pub mod journal;
pub use counters::FidoCounters;
pub use fido::{FidoCredential, MAX_FIDO_PER_USER, NewFido};

const FILE: &str = "credentials.json";
const LOCK: &str = "credentials.lock";
const KEY: &str = "store.key";
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("{path} is damaged ({detail}); restore it from a backup or move it aside")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path} must hold exactly 32 bytes; it is not the key this store was sealed with")]
    BadKey { path: PathBuf },
    #[error("user {tenant}/{oid} already has {method} enrolled; revoke it first or use --replace")]
    AlreadyEnrolled {
        tenant: String,
        oid: String,
        method: &'static str,
    },
    #[error("the {method} secret of {tenant}/{oid} does not decrypt with {key}")]
    Undecryptable {
        tenant: String,
        oid: String,
        method: &'static str,
        key: PathBuf,
    },
    #[error("user {tenant}/{oid} already has {MAX_FIDO_PER_USER} security keys; revoke one first")]
    TooManyKeys { tenant: String, oid: String },
    #[error("this security key is already enrolled (for {tenant}/{oid})")]
    KeyEnrolled { tenant: String, oid: String },
    #[error("the security key's counter changed while it was being used; try again")]
    CounterMoved,
    #[error("user {tenant}/{oid} has no security key {id}")]
    NoSuchKey {
        tenant: String,
        oid: String,
        id: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    users: BTreeMap<String, UserRecord>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The user's UPN as the operator gave it at enrolment, so that operators can find the
    /// user by it. Sign-ins never read it: users are (`tid`, `oid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<TotpRecord>,
    /// WebAuthn credentials; absent in files written before security keys existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fido: Vec<FidoCredential>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpRecord {
    #[serde(flatten)]
    params: TotpParams,
    /// The sealed seed, base64url.
    seed: String,
    enrolled_at: i64,
}

impl UserRecord {
    pub fn methods(&self) -> Vec<Method> {
        let totp = self.totp.iter().map(|_| Method::Totp);
        let fido = self.fido.first().map(|_| Method::Fido);
        totp.chain(fido).collect()
    }
}

/// One user to give a TOTP seed in a bulk enrolment.
#[derive(Debug, Clone, Copy)]
pub struct NewTotp<'a> {
    pub tenant: &'a str,
    pub oid: &'a str,
    pub params: TotpParams,
    /// A UPN to find the user by; `None` keeps any the user has.
    pub upn: Option<&'a str>,
}

/// Checks a UPN an operator gives: `name@domain`, at most 256 characters, no spaces or
/// control characters.
pub fn check_upn(upn: &str) -> Result<(), String> {
    let well_formed = upn.len() <= 256
        && upn
            .split_once('@')
            .is_some_and(|(n, d)| !n.is_empty() && !d.is_empty())
        && !upn.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "UPN {:?} is not a user principal name such as ada@contoso.com",
            upn.chars().take(80).collect::<String>()
        ))
    }
}

/// One user's entry in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub tenant: String,
    pub oid: String,
    pub upn: Option<String>,
    pub methods: Vec<Method>,
}

struct Cache {
    file: StoreFile,
    modified: Option<SystemTime>,
    checked: Instant,
}

pub struct CredentialStore {
    dir: PathBuf,
    sealer: Sealer,
    cache: RwLock<Cache>,
}

fn user_key(tenant: &str, oid: &str) -> String {
    format!("{tenant}/{oid}")
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Io {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

impl CredentialStore {
    /// Opens the store in `dir`, creating the directory, key and file on first use.
    pub fn open(dir: &Path) -> Result<CredentialStore, StoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let sealer = match credential_key() {
            Some(path) => load_key(&path)?,
            None => load_or_create_key(&dir.join(KEY))?,
        };
        let store = CredentialStore {
            dir: dir.to_owned(),
            sealer,
            cache: RwLock::new(Cache {
                file: StoreFile {
                    version: 1,
                    users: BTreeMap::new(),
                },
                modified: None,
                checked: Instant::now(),
            }),
        };
        store.reload()?;
        Ok(store)
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn reload(&self) -> Result<(), StoreError> {
        let path = self.path();
        let modified = fs::metadata(&path).and_then(|m| m.modified()).ok();
        let file = read_file(&path)?;
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        *cache = Cache {
            file,
            modified,
            checked: Instant::now(),
        };
        Ok(())
    }

    /// Rereads the file if another process changed it; checked at most once a second.
    fn refresh(&self) {
        let stale = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            cache.checked.elapsed() >= RECHECK
        };
        if !stale {
            return;
        }
        let modified = fs::metadata(self.path()).and_then(|m| m.modified()).ok();
        let changed = {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            cache.checked = Instant::now();
            cache.modified != modified
        };
        if changed && let Err(e) = self.reload() {
            tracing::warn!(
                error = %e,
                "credential store changed but could not be reread; keeping the last good copy"
            );
        }
    }

    pub fn methods(&self, tenant: &str, oid: &str) -> Vec<Method> {
        self.refresh();
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache
            .file
            .users
            .get(&user_key(tenant, oid))
            .map(|u| u.methods())
            .unwrap_or_default()
    }

    /// The user's TOTP parameters and seed, if enrolled.
    pub fn totp(
        &self,
        tenant: &str,
        oid: &str,
    ) -> Result<Option<(TotpParams, Vec<u8>)>, StoreError> {
        self.refresh();
        let key = user_key(tenant, oid);
        let record = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            cache.file.users.get(&key).and_then(|u| u.totp.clone())
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let undecryptable = || StoreError::Undecryptable {
            tenant: tenant.into(),
            oid: oid.into(),
            method: "totp",
            key: credential_key().unwrap_or_else(|| self.dir.join(KEY)),
        };
        let sealed = b64url_decode(&record.seed, "seed").map_err(|_| undecryptable())?;
        let seed = self
            .sealer
            .open(aad(&key, "totp").as_bytes(), &sealed)
            .ok_or_else(undecryptable)?;
        Ok(Some((record.params, seed)))
    }

    /// Enrols a new TOTP seed for the user and returns it for the authenticator app.
    pub fn enroll_totp(
        &self,
        tenant: &str,
        oid: &str,
        params: TotpParams,
        replace: bool,
        now: i64,
    ) -> Result<Vec<u8>, StoreError> {
        let user = NewTotp {
            tenant,
            oid,
            params,
            upn: None,
        };
        let mut seeds = self.enroll_totp_many(&[user], replace, now)?;
        Ok(seeds.pop().unwrap_or_default())
    }

    /// Enrols new TOTP seeds for many users, sealing every seed first and rewriting the file
    /// once; either every user is enrolled or, on any refusal, none is. The seeds come back
    /// in the order of `users`.
    pub fn enroll_totp_many(
        &self,
        users: &[NewTotp<'_>],
        replace: bool,
        now: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let sealed: Vec<(String, Vec<u8>, TotpRecord)> = users
            .iter()
            .map(|u| {
                let key = user_key(u.tenant, u.oid);
                let (seed, record) = self.new_totp(&key, u.params, now);
                (key, seed, record)
            })
            .collect();

        self.update(|file| {
            for (user, (key, _, record)) in users.iter().zip(&sealed) {
                let entry = file.users.entry(key.clone()).or_default();
                if entry.totp.is_some() && !replace {
                    return Err(StoreError::AlreadyEnrolled {
                        tenant: user.tenant.into(),
                        oid: user.oid.into(),
                        method: "totp",
                    });
                }
                entry.totp = Some(record.clone());
                if let Some(upn) = user.upn {
                    entry.upn = Some(upn.to_owned());
                }
            }
            Ok(())
        })?;
        Ok(sealed.into_iter().map(|(_, seed, _)| seed).collect())
    }

    /// A fresh random seed and its record, sealed to the user it is for.
    fn new_totp(&self, user: &str, params: TotpParams, now: i64) -> (Vec<u8>, TotpRecord) {
        let mut seed = vec![0u8; params.algorithm.seed_len()];
        aws_lc_rs::rand::fill(&mut seed).unwrap_or_else(|_| unreachable!());
        let sealed = self.sealer.seal(aad(user, "totp").as_bytes(), &seed);
        let record = TotpRecord {
            params,
            seed: b64url_encode(&sealed),
            enrolled_at: now,
        };
        (seed, record)
    }

    /// Removes a method; returns whether the user had it.
    pub fn revoke(&self, tenant: &str, oid: &str, method: Method) -> Result<bool, StoreError> {
        let key = user_key(tenant, oid);
        let mut had = false;
        self.update(|file| {
            if let Some(user) = file.users.get_mut(&key) {
                match method {
                    Method::Totp => had = user.totp.take().is_some(),
                    Method::Fido => had = !std::mem::take(&mut user.fido).is_empty(),
                    Method::SmartCard | Method::MobilePki => {}
                }
                if user.methods().is_empty() {
                    file.users.remove(&key);
                }
            }
            Ok(())
        })?;
        Ok(had)
    }

    pub fn list(&self) -> Vec<Enrolment> {
        self.refresh();
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache
            .file
            .users
            .iter()
            .filter_map(|(k, u)| {
                let (tenant, oid) = k.split_once('/')?;
                Some(Enrolment {
                    tenant: tenant.into(),
                    oid: oid.into(),
                    upn: u.upn.clone(),
                    methods: u.methods(),
                })
            })
            .collect()
    }

    /// Read-modify-write under the store lock, then refresh the cache.
    fn update(
        &self,
        change: impl FnOnce(&mut StoreFile) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let lock_path = self.dir.join(LOCK);
        let lock = lock_exclusive(&lock_path).map_err(io_err(&lock_path))?;

        let path = self.path();
        let mut file = read_file(&path)?;
        change(&mut file)?;
        write_atomically(&path, &file)?;
        drop(lock);
        self.reload()
    }
}

fn aad(user: &str, method: &str) -> String {
    format!("vouch-store-v1/{method}/{user}")
}

fn read_file(path: &Path) -> Result<StoreFile, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(StoreFile {
                version: 1,
                users: BTreeMap::new(),
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let file: StoreFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    if file.version != 1 {
        let detail = format!("version {} is not one this vouch reads", file.version);
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail,
        });
    }
    Ok(file)
}

fn write_atomically(path: &Path, file: &StoreFile) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(file).unwrap_or_default();
    replace_file(path, &bytes).map_err(|(at, e)| io_err(&at)(e))
}

/// Opens (creating, mode 0600) the lock file at `path` and waits for its exclusive lock,
/// which lasts until the returned file is dropped: writers in every process take turns.
pub(crate) fn lock_exclusive(path: &Path) -> std::io::Result<File> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    lock.lock()?;
    Ok(lock)
}

/// Replaces `path` with `bytes`, readable by its owner only, so that a crash leaves the old
/// file or the new one: a synced temporary file renamed over it, then the directory synced.
/// An error names the file it happened on.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let tmp = path.with_extension("json.tmp");
    let mut out = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| at(&tmp, e))?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .map_err(|e| at(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| at(path, e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| at(dir, e))?;
    }
    Ok(())
}

fn at(path: &Path, error: std::io::Error) -> (PathBuf, std::io::Error) {
    (path.to_owned(), error)
}

/// The key systemd passes as the credential `store.key` (`LoadCredential=`), if it does.
fn credential_key() -> Option<PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let path = Path::new(&dir).join(KEY);
    path.is_file().then_some(path)
}

fn load_key(path: &Path) -> Result<Sealer, StoreError> {
    let key = fs::read(path).map_err(io_err(path))?;
    Sealer::new(&key).ok_or_else(|| StoreError::BadKey {
        path: path.to_owned(),
    })
}

fn load_or_create_key(path: &Path) -> Result<Sealer, StoreError> {
    match fs::read(path) {
        Ok(key) => Sealer::new(&key).ok_or_else(|| StoreError::BadKey {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = seal::random_bytes::<{ seal::KEY_LEN }>();
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(path)
                .map_err(io_err(path))?;
            f.write_all(&key)
                .and_then(|()| f.sync_all())
                .map_err(io_err(path))?;
            Sealer::new(&key).ok_or_else(|| StoreError::BadKey {
                path: path.to_owned(),
            })
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::otp::Algorithm;

    const T: &str = "14c2f153-90a7-4689-9db7-9543bf084dad";
    const U: &str = "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee";

    #[test]
    fn a_upn_given_at_enrolment_is_listed_after_a_reopen_and_goes_with_the_last_factor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        let user = NewTotp {
            tenant: T,
            oid: U,
            params: TotpParams::default(),
            upn: Some("Ada@Contoso.com"),
        };
        store.enroll_totp_many(&[user], false, 0).expect("enrol");
        store
            .enroll_totp(T, U, TotpParams::default(), true, 0)
            .expect("replace");

        let listed = CredentialStore::open(dir.path()).expect("reopen").list();
        assert_eq!(
            listed[0].upn.as_deref(),
            Some("Ada@Contoso.com"),
            "kept on replace"
        );
        assert!(store.revoke(T, U, Method::Totp).expect("revoke"));
        assert!(
            store.list().is_empty(),
            "no record is left behind with the UPN"
        );
    }

    #[test]
    fn malformed_and_hostile_upns_are_refused_with_the_reason() {
        assert!(check_upn("ada@contoso.com").is_ok());
        for bad in [
            "",
            "ada",
            "@contoso.com",
            "ada@",
            "ada @contoso.com",
            "ada@contoso.com\n",
            "ada\u{0}@contoso.com",
            &format!("{}@contoso.com", "a".repeat(300)),
        ] {
            let err = check_upn(bad).expect_err(bad);
            assert!(err.contains("not a user principal name"), "{err}");
            assert!(err.len() < 200, "the message stays short: {err}");
        }
    }

    #[test]
    fn an_enrolled_seed_round_trips_and_is_not_stored_in_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        let params = TotpParams {
            algorithm: Algorithm::Sha256,
            digits: 8,
        };
        let seed = store.enroll_totp(T, U, params, false, 0).expect("enrol");
        assert_eq!(seed.len(), 32);
        assert_eq!(
            store.totp(T, U).expect("read"),
            Some((params, seed.clone()))
        );
        assert_eq!(store.methods(T, U), vec![Method::Totp]);

        let on_disk = fs::read_to_string(dir.path().join(FILE)).expect("file");
        assert!(!on_disk.contains(&b64url_encode(&seed)));
        let reopened = CredentialStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.totp(T, U).expect("read").map(|t| t.1), Some(seed));
    }

    #[test]
    fn a_second_enrolment_needs_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        store
            .enroll_totp(T, U, TotpParams::default(), false, 0)
            .expect("enrol");
        let err = store
            .enroll_totp(T, U, TotpParams::default(), false, 0)
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyEnrolled { .. }));
        assert!(
            store
                .enroll_totp(T, U, TotpParams::default(), true, 0)
                .is_ok()
        );
    }

    #[test]
    fn a_bulk_enrolment_writes_every_seed_and_refuses_an_enrolled_user_unless_replacing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        let oids: Vec<String> = (0..50)
            .map(|i| format!("00000000-0000-4000-8000-{i:012x}"))
            .collect();
        let users: Vec<NewTotp<'_>> = oids
            .iter()
            .map(|oid| NewTotp {
                tenant: T,
                oid,
                params: TotpParams::default(),
                upn: None,
            })
            .collect();
        let seeds = store.enroll_totp_many(&users, false, 0).expect("enrol");
        assert_eq!(seeds.len(), 50);

        let reopened = CredentialStore::open(dir.path()).expect("reopen");
        for (oid, seed) in oids.iter().zip(&seeds) {
            let opened = reopened.totp(T, oid).expect("read").map(|t| t.1);
            assert_eq!(opened.as_ref(), Some(seed));
        }

        let again = [users[0], NewTotp { oid: U, ..users[1] }];
        let err = store.enroll_totp_many(&again, false, 0).unwrap_err();
        assert!(matches!(err, StoreError::AlreadyEnrolled { .. }), "{err}");
        assert!(
            store.methods(T, U).is_empty(),
            "a refused bulk enrolment enrols no one"
        );
        let replaced = store.enroll_totp_many(&again, true, 0).expect("replace");
        assert_eq!(
            store.totp(T, &oids[0]).expect("read").map(|t| t.1),
            Some(replaced[0].clone())
        );
        assert_ne!(replaced[0], seeds[0]);
    }

    #[test]
    fn revoking_removes_the_method() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        store
            .enroll_totp(T, U, TotpParams::default(), false, 0)
            .expect("enrol");
        assert_eq!(store.revoke(T, U, Method::Totp), Ok(true));
        assert_eq!(store.revoke(T, U, Method::Totp), Ok(false));
        assert!(store.methods(T, U).is_empty());
        assert!(store.list().is_empty());
    }

    #[test]
    fn a_damaged_file_is_reported_and_left_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(FILE), b"{ not json").expect("write");
        let err = CredentialStore::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(
            fs::read(dir.path().join(FILE)).expect("kept"),
            b"{ not json"
        );
    }

    #[test]
    fn a_seed_moved_to_another_user_does_not_decrypt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        store
            .enroll_totp(T, U, TotpParams::default(), false, 0)
            .expect("enrol");
        let text = fs::read_to_string(dir.path().join(FILE)).expect("file");
        let other = "00000000-0000-0000-0000-000000000000";
        fs::write(dir.path().join(FILE), text.replace(U, other)).expect("write");
        let store = CredentialStore::open(dir.path()).expect("open");
        assert!(matches!(
            store.totp(T, other),
            Err(StoreError::Undecryptable { .. })
        ));
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(KEY), b"short").expect("write");
        let err = CredentialStore::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::BadKey { .. }));
    }
}
