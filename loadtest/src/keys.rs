//! The security keys of the FIDO2 factor: the stand's key holders, a second set of users of
//! its tenant whose only factor is one P-256 security key, so that their sign-ins go from
//! Entra's form straight to the security-key page.
//!
//! The keys are made and enrolled when the stand is prepared (key generation and enrolment
//! are not the sign-in's cost) and kept in `DIR/keys.json` (mode 0600): each key's credential
//! ID, its PKCS#8 document and the signature counter it last used. Keys count, as most
//! security keys do, so every sign-in moves the appliance's counter record; the counters are
//! saved when a run ends so that the next run goes on from them. A run cut off before its end
//! leaves counters behind the appliance's, and its key holders' next sign-ins are refused as
//! cloned keys (`answer_posted_access_denied`); prepare a new stand then.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_sim::authenticator::{Authenticator, Signed};
use serde::{Deserialize, Serialize};
use vouch::factor::otp::TotpParams;
use vouch::store::{CredentialStore, FidoCredential, NewFido};

use crate::StandError;
use crate::users::{User, Users};

const FILE: &str = "keys.json";

#[derive(Serialize, Deserialize)]
struct SavedKey {
    /// base64url
    credential_id: String,
    /// base64url
    pkcs8: String,
    counter: u32,
}

#[derive(Serialize, Deserialize)]
struct SavedKeys {
    keys: Vec<SavedKey>,
}

/// The path of a stand's keys.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The stand's key holders, as users to sign hints for.
pub fn holders(tenant: &str, count: usize) -> Users {
    Users {
        tenant: tenant.to_owned(),
        params: TotpParams::default(),
        list: (0..count).map(User::key_holder).collect(),
    }
}

/// Makes a key for each of `count` key holders, enrols them all in the store in `state` in
/// one write, and saves them in the stand `dir`.
pub fn make(dir: &Path, state: &Path, tenant: &str, count: usize) -> Result<(), StandError> {
    let rng = SystemRandom::new();
    let failed = |e: &dyn std::fmt::Display| StandError::io(dir, e);
    let users = holders(tenant, count);
    let mut saved = Vec::with_capacity(count);
    let mut credentials = Vec::with_capacity(count);
    for index in 0..count {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|e| failed(&e))?;
        let mut id = vec![0u8; 32];
        rng.fill(&mut id).map_err(|e| failed(&e))?;
        let key = Authenticator::with_key("", "", pkcs8.as_ref(), id.clone());
        credentials.push(FidoCredential {
            id: URL_SAFE_NO_PAD.encode(&id),
            public_key: URL_SAFE_NO_PAD.encode(key.public_key_cose()),
            sign_count: 0,
            backup_eligible: false,
            aaguid: "00000000-0000-0000-0000-000000000000".into(),
            created: entra_sim::unix_now(),
            name: format!("load key {index}"),
        });
        saved.push(SavedKey {
            credential_id: URL_SAFE_NO_PAD.encode(&id),
            pkcs8: URL_SAFE_NO_PAD.encode(pkcs8.as_ref()),
            counter: 0,
        });
    }
    let new: Vec<NewFido<'_>> = users
        .list
        .iter()
        .zip(credentials)
        .map(|(user, credential)| NewFido {
            tenant,
            oid: &user.oid,
            upn: None,
            credential,
        })
        .collect();
    let store = CredentialStore::open(state).map_err(|e| StandError::io(state, e))?;
    store
        .add_fido_many(&new)
        .map_err(|e| StandError::io(state, e))?;
    save(dir, &SavedKeys { keys: saved })
}

fn save(dir: &Path, keys: &SavedKeys) -> Result<(), StandError> {
    let bytes = serde_json::to_vec(keys).map_err(|e| StandError::io(&path(dir), e))?;
    crate::stand::write(&path(dir), &bytes)
}

/// The key holders' keys during a run.
pub struct KeyRing {
    dir: PathBuf,
    keys: Vec<Mutex<Authenticator>>,
    pkcs8: Vec<String>,
    /// The key holders the run signs in.
    pub users: Arc<Users>,
}

impl KeyRing {
    /// The first `count` key holders of the stand `dir` with their keys, for pages on
    /// `origin` under the RP ID `rp_id`.
    pub fn load(
        dir: &Path,
        tenant: &str,
        count: usize,
        rp_id: &str,
        origin: &str,
    ) -> Result<KeyRing, StandError> {
        let path = path(dir);
        if !path.exists() {
            let why =
                "the stand was prepared before the tool played security keys; prepare a new one";
            return Err(StandError::damaged(&path, why));
        }
        let bytes = std::fs::read(&path).map_err(|e| StandError::io(&path, e))?;
        let saved: SavedKeys =
            serde_json::from_slice(&bytes).map_err(|e| StandError::damaged(&path, e))?;
        if saved.keys.len() < count {
            let why = format!("it holds {} keys; the run needs {count}", saved.keys.len());
            return Err(StandError::damaged(&path, why));
        }
        let mut keys = Vec::with_capacity(count);
        let mut pkcs8s = Vec::with_capacity(count);
        for key in saved.keys.into_iter().take(count) {
            let decode = |text: &str| {
                URL_SAFE_NO_PAD
                    .decode(text)
                    .map_err(|e| StandError::damaged(&path, e))
            };
            let (id, pkcs8) = (decode(&key.credential_id)?, decode(&key.pkcs8)?);
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
                .map_err(|e| StandError::damaged(&path, e))?;
            let mut authenticator = Authenticator::with_key(rp_id, origin, &pkcs8, id);
            authenticator.counter = key.counter;
            keys.push(Mutex::new(authenticator));
            pkcs8s.push(key.pkcs8);
        }
        Ok(KeyRing {
            dir: dir.to_owned(),
            keys,
            pkcs8: pkcs8s,
            users: Arc::new(holders(tenant, count)),
        })
    }

    /// Key holder `index`'s key: its credential ID.
    pub fn credential_id(&self, index: usize) -> Vec<u8> {
        lock(&self.keys[index % self.keys.len()])
            .credential_id
            .clone()
    }

    /// What the browser gets from key holder `index`'s key for `challenge`; the counter moves.
    pub fn assert(&self, index: usize, challenge: &[u8]) -> Signed {
        lock(&self.keys[index % self.keys.len()]).assert(challenge)
    }

    /// Saves every key's counter for the next run.
    pub fn save_counters(&self) -> Result<(), StandError> {
        let keys = self
            .keys
            .iter()
            .zip(&self.pkcs8)
            .map(|(key, pkcs8)| {
                let key = lock(key);
                SavedKey {
                    credential_id: URL_SAFE_NO_PAD.encode(&key.credential_id),
                    pkcs8: pkcs8.clone(),
                    counter: key.counter,
                }
            })
            .collect();
        let path = path(&self.dir);
        let bytes = std::fs::read(&path).map_err(|e| StandError::io(&path, e))?;
        let mut all: SavedKeys =
            serde_json::from_slice(&bytes).map_err(|e| StandError::damaged(&path, e))?;
        let kept: Vec<SavedKey> = all.keys.split_off(self.keys.len().min(all.keys.len()));
        all.keys = keys;
        all.keys.extend(kept);
        save(&self.dir, &all)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn made_keys_are_enrolled_for_their_holders_and_their_counters_carry_to_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        make(dir.path(), &state, entra_sim::TENANT, 3).unwrap();

        let store = CredentialStore::open(&state).unwrap();
        let holder = User::key_holder(1);
        let enrolled = store.fido(entra_sim::TENANT, &holder.oid);
        let ring =
            KeyRing::load(dir.path(), entra_sim::TENANT, 2, "localhost", "https://x").unwrap();
        assert_eq!(ring.users.len(), 2);
        assert_eq!(ring.users.get(1).oid, holder.oid);
        assert_eq!(enrolled.len(), 1);
        assert_eq!(
            enrolled[0].id,
            URL_SAFE_NO_PAD.encode(ring.credential_id(1))
        );

        let signed = ring.assert(1, b"challenge");
        assert_eq!(signed.authenticator_data[33..37], 1u32.to_be_bytes());
        ring.assert(1, b"challenge");
        ring.save_counters().unwrap();

        let again =
            KeyRing::load(dir.path(), entra_sim::TENANT, 3, "localhost", "https://x").unwrap();
        let signed = again.assert(1, b"challenge");
        assert_eq!(signed.authenticator_data[33..37], 3u32.to_be_bytes());
        assert_eq!(
            again.credential_id(2).len(),
            32,
            "the third key survived the save"
        );
        let too_many = KeyRing::load(dir.path(), entra_sim::TENANT, 4, "localhost", "https://x");
        assert!(matches!(too_many, Err(StandError::Damaged { .. })));
    }

    #[test]
    fn a_stand_without_keys_or_with_damaged_ones_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let load = || KeyRing::load(dir.path(), entra_sim::TENANT, 1, "localhost", "https://x");
        assert!(matches!(load(), Err(StandError::Damaged { .. })));
        std::fs::write(
            path(dir.path()),
            br#"{"keys":[{"credential_id":"AA","pkcs8":"AAAA","counter":0}]}"#,
        )
        .unwrap();
        assert!(matches!(load(), Err(StandError::Damaged { .. })));
        std::fs::write(path(dir.path()), b"not json").unwrap();
        assert!(matches!(load(), Err(StandError::Damaged { .. })));
    }
}
