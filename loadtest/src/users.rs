//! The stand's users: their ids, the `sub` and UPN Entra would give them, and their TOTP seeds.
//!
//! Users are numbered; each number maps to a GUID-shaped `oid`, a 43-character `sub` shaped
//! like Entra's pairwise subjects, and the UPN `user{number}@loadtest.example` that their
//! phone certificates name. The seeds are kept in the stand (mode 0600) because
//! the tool plays each user's authenticator app.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use vouch::factor::otp::{self, TotpParams};

use crate::StandError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub oid: String,
    pub sub: String,
    /// The user principal name, as Entra's `preferred_username` and the phone's certificate
    /// give it; empty in stands written before users had one, and filled in when read.
    #[serde(default)]
    pub upn: String,
    /// The TOTP seed, base64url.
    seed: String,
    #[serde(skip)]
    seed_bytes: Vec<u8>,
}

impl User {
    /// User number `index` with the seed the store enrolled for it.
    pub fn new(index: usize, seed: &[u8]) -> User {
        User {
            oid: format!("00000000-0000-4000-8000-{index:012x}"),
            sub: subject(&format!("vouch-loadtest/sub/{index}")),
            upn: upn(index),
            seed: URL_SAFE_NO_PAD.encode(seed),
            seed_bytes: seed.to_vec(),
        }
    }

    /// Key holder number `index`: a user of the same tenant whose only factor is a security
    /// key, with ids of their own (the oid's fourth group is `9000`, not `8000`).
    pub fn key_holder(index: usize) -> User {
        User {
            oid: format!("00000000-0000-4000-9000-{index:012x}"),
            sub: subject(&format!("vouch-loadtest/key-holder/{index}")),
            upn: format!("key{index}@loadtest.example"),
            seed: String::new(),
            seed_bytes: Vec::new(),
        }
    }

    /// The code the user's authenticator shows at `unix_time`.
    pub fn code(&self, params: TotpParams, unix_time: i64) -> String {
        otp::totp(&self.seed_bytes, params, unix_time)
    }
}

fn upn(index: usize) -> String {
    format!("user{index}@loadtest.example")
}

/// A `sub` shaped like Entra's: 32 bytes of base64url, different for every `input`.
fn subject(input: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Every user of a stand, in their tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Users {
    pub tenant: String,
    pub params: TotpParams,
    pub list: Vec<User>,
}

impl Users {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, index: usize) -> &User {
        &self.list[index % self.list.len().max(1)]
    }

    pub fn save(&self, path: &Path) -> Result<(), StandError> {
        let bytes = serde_json::to_vec(self).map_err(|e| StandError::io(path, e))?;
        crate::stand::write(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Users, StandError> {
        let bytes = std::fs::read(path).map_err(|e| StandError::io(path, e))?;
        let mut users: Users =
            serde_json::from_slice(&bytes).map_err(|e| StandError::damaged(path, e))?;
        for (index, user) in users.list.iter_mut().enumerate() {
            if user.upn.is_empty() {
                user.upn = upn(index);
            }
            user.seed_bytes = URL_SAFE_NO_PAD
                .decode(&user.seed)
                .map_err(|e| StandError::damaged(path, e))?;
        }
        if users.list.is_empty() {
            return Err(StandError::damaged(path, "it lists no users"));
        }
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use vouch::jose::hint::is_guid;

    #[test]
    fn users_get_distinct_entra_shaped_ids_and_survive_a_save() {
        let a = User::new(0, b"12345678901234567890");
        let b = User::new(70_000, b"12345678901234567890");
        assert!(is_guid(&a.oid) && is_guid(&b.oid));
        assert_ne!(a.oid, b.oid);
        assert_ne!(a.sub, b.sub);
        assert_eq!(b.upn, "user70000@loadtest.example");
        assert_eq!(a.sub.len(), 43);
        let holder = User::key_holder(0);
        assert!(is_guid(&holder.oid));
        assert_ne!((&holder.oid, &holder.sub), (&a.oid, &a.sub));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let users = Users {
            tenant: entra_sim::TENANT.into(),
            params: TotpParams::default(),
            list: vec![a.clone(), b],
        };
        users.save(&path).unwrap();
        let loaded = Users::load(&path).unwrap();
        assert_eq!(loaded.list, users.list);
        let now = 1_111_111_109;
        assert_eq!(
            loaded.get(0).code(users.params, now),
            a.code(users.params, now)
        );
    }
}
