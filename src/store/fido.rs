//! Users' WebAuthn credentials in the credential store.
//!
//! A credential is public material (its ID and COSE public key), so it is stored in clear,
//! beside what a sign-in must update: the signature counter. The counter moves by
//! compare-and-set under the store lock, so two sign-ins racing with one key cannot both
//! win. A credential ID belongs to one user only.

use serde::{Deserialize, Serialize};

use super::{CredentialStore, StoreError, user_key};
use crate::jose::b64url_encode;

/// The most security keys one user may hold.
pub const MAX_FIDO_PER_USER: usize = 10;

/// One enrolled WebAuthn credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidoCredential {
    /// The credential ID, base64url.
    pub id: String,
    /// The COSE_Key, base64url.
    pub public_key: String,
    pub sign_count: u32,
    pub backup_eligible: bool,
    /// The authenticator model, 8-4-4-4-12 hex.
    pub aaguid: String,
    pub created: i64,
    /// What the user or operator calls the key.
    pub name: String,
}

impl FidoCredential {
    /// A record for a credential verified at enrolment.
    pub fn from_new(new: &crate::factor::webauthn::NewCredential, name: &str, now: i64) -> Self {
        FidoCredential {
            id: b64url_encode(&new.id),
            public_key: b64url_encode(&new.public_key_cose),
            sign_count: new.sign_count,
            backup_eligible: new.backup_eligible,
            aaguid: crate::factor::webauthn::registration::aaguid_text(&new.aaguid),
            created: now,
            name: name.to_owned(),
        }
    }
}

impl CredentialStore {
    /// The user's WebAuthn credentials, oldest first.
    pub fn fido(&self, tenant: &str, oid: &str) -> Vec<FidoCredential> {
        self.refresh();
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache
            .file
            .users
            .get(&user_key(tenant, oid))
            .map(|u| u.fido.clone())
            .unwrap_or_default()
    }

    /// Adds a credential for the user, recording `upn` when given.
    pub fn add_fido(
        &self,
        tenant: &str,
        oid: &str,
        upn: Option<&str>,
        credential: FidoCredential,
    ) -> Result<(), StoreError> {
        let key = user_key(tenant, oid);
        self.update(|file| {
            let owner = file
                .users
                .iter()
                .find(|(_, u)| u.fido.iter().any(|c| c.id == credential.id));
            if let Some((owner, _)) = owner {
                let (tenant, oid) = owner.split_once('/').unwrap_or((owner, ""));
                return Err(StoreError::KeyEnrolled {
                    tenant: tenant.into(),
                    oid: oid.into(),
                });
            }
            let user = file.users.entry(key.clone()).or_default();
            if user.fido.len() >= MAX_FIDO_PER_USER {
                return Err(StoreError::TooManyKeys {
                    tenant: tenant.into(),
                    oid: oid.into(),
                });
            }
            user.fido.push(credential);
            if let Some(upn) = upn {
                user.upn = Some(upn.to_owned());
            }
            Ok(())
        })
    }

    /// Moves a credential's counter from `seen` to `count`; refuses if another sign-in moved
    /// it first or the credential is gone. A key that never counts (both zero) costs no write.
    pub fn record_fido_use(
        &self,
        tenant: &str,
        oid: &str,
        id: &str,
        seen: u32,
        count: u32,
    ) -> Result<(), StoreError> {
        if seen == 0 && count == 0 {
            return Ok(());
        }
        let key = user_key(tenant, oid);
        self.update(|file| {
            let credential = file
                .users
                .get_mut(&key)
                .and_then(|u| u.fido.iter_mut().find(|c| c.id == id))
                .ok_or_else(|| StoreError::NoSuchKey {
                    tenant: tenant.into(),
                    oid: oid.into(),
                    id: id.into(),
                })?;
            if credential.sign_count != seen {
                return Err(StoreError::CounterMoved);
            }
            credential.sign_count = count;
            Ok(())
        })
    }

    /// Removes one credential by ID; the user's record goes with their last factor.
    pub fn revoke_fido(&self, tenant: &str, oid: &str, id: &str) -> Result<(), StoreError> {
        let key = user_key(tenant, oid);
        self.update(|file| {
            let user = file.users.get_mut(&key);
            let Some(user) = user.filter(|u| u.fido.iter().any(|c| c.id == id)) else {
                return Err(StoreError::NoSuchKey {
                    tenant: tenant.into(),
                    oid: oid.into(),
                    id: id.into(),
                });
            };
            user.fido.retain(|c| c.id != id);
            if user.methods().is_empty() {
                file.users.remove(&key);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::Method;

    const T: &str = "14c2f153-90a7-4689-9db7-9543bf084dad";
    const U: &str = "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee";
    const V: &str = "00000000-0000-4000-8000-000000000001";

    fn credential(id: &str, count: u32) -> FidoCredential {
        FidoCredential {
            id: id.into(),
            public_key: "pQECAyYgASFYIA".into(),
            sign_count: count,
            backup_eligible: false,
            aaguid: "00000000-0000-0000-0000-000000000000".into(),
            created: 1,
            name: "Key".into(),
        }
    }

    fn store() -> (tempfile::TempDir, CredentialStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        (dir, store)
    }

    #[test]
    fn an_enrolled_key_survives_a_reopen_and_offers_the_fido_method() {
        let (dir, store) = store();
        store
            .add_fido(T, U, Some("ada@contoso.com"), credential("a", 0))
            .expect("add");
        let reopened = CredentialStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.fido(T, U), vec![credential("a", 0)]);
        assert_eq!(reopened.methods(T, U), vec![Method::Fido]);
        assert_eq!(reopened.list()[0].upn.as_deref(), Some("ada@contoso.com"));
    }

    #[test]
    fn a_store_file_written_before_security_keys_still_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = r#"{"version":1,"users":{"t/o":{"upn":"ada@contoso.com"}}}"#;
        std::fs::write(dir.path().join(super::super::FILE), old).expect("write");
        let store = CredentialStore::open(dir.path()).expect("open");
        assert!(store.fido("t", "o").is_empty());
        store
            .add_fido("t", "o", None, credential("a", 0))
            .expect("add");
        let text = std::fs::read_to_string(dir.path().join(super::super::FILE)).expect("file");
        assert!(text.contains("\"fido\""), "{text}");
    }

    #[test]
    fn one_key_cannot_be_enrolled_twice_or_for_two_users() {
        let (_dir, store) = store();
        store.add_fido(T, U, None, credential("a", 0)).expect("add");
        let again = store.add_fido(T, U, None, credential("a", 0));
        assert!(
            matches!(again, Err(StoreError::KeyEnrolled { .. })),
            "{again:?}"
        );
        let other = store.add_fido(T, V, None, credential("a", 0));
        assert!(
            matches!(other, Err(StoreError::KeyEnrolled { .. })),
            "{other:?}"
        );
        assert!(store.fido(T, V).is_empty());
    }

    #[test]
    fn a_user_holds_at_most_the_key_limit() {
        let (_dir, store) = store();
        for i in 0..MAX_FIDO_PER_USER {
            store
                .add_fido(T, U, None, credential(&format!("k{i}"), 0))
                .expect("add");
        }
        let over = store.add_fido(T, U, None, credential("over", 0));
        assert!(
            matches!(over, Err(StoreError::TooManyKeys { .. })),
            "{over:?}"
        );
    }

    #[test]
    fn the_counter_moves_only_from_the_value_the_sign_in_saw() {
        let (_dir, store) = store();
        store.add_fido(T, U, None, credential("a", 5)).expect("add");
        store.record_fido_use(T, U, "a", 5, 6).expect("moved");
        assert_eq!(store.fido(T, U)[0].sign_count, 6);
        let stale = store.record_fido_use(T, U, "a", 5, 7);
        assert_eq!(stale, Err(StoreError::CounterMoved));
        let gone = store.record_fido_use(T, U, "b", 6, 7);
        assert!(
            matches!(gone, Err(StoreError::NoSuchKey { .. })),
            "{gone:?}"
        );
    }

    #[test]
    fn revoking_one_key_keeps_the_others_and_the_last_takes_the_user() {
        let (_dir, store) = store();
        store.add_fido(T, U, None, credential("a", 0)).expect("add");
        store.add_fido(T, U, None, credential("b", 0)).expect("add");
        store.revoke_fido(T, U, "a").expect("revoke");
        assert_eq!(store.fido(T, U), vec![credential("b", 0)]);
        let missing = store.revoke_fido(T, U, "a");
        assert!(
            matches!(missing, Err(StoreError::NoSuchKey { .. })),
            "{missing:?}"
        );
        assert_eq!(store.revoke(T, U, Method::Fido), Ok(true));
        assert!(store.list().is_empty());
    }
}
