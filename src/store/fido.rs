//! Users' WebAuthn credentials in the credential store.
//!
//! A credential is public material (its ID and COSE public key), so it is stored in clear,
//! with the signature counter it was enrolled with; sign-ins move the counter in
//! [`FidoCounters`](super::FidoCounters). A credential ID belongs to one user only.

use std::collections::HashMap;

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
    /// The signature counter at enrolment.
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

/// A credential to add for a user.
pub struct NewFido<'a> {
    pub tenant: &'a str,
    pub oid: &'a str,
    /// A UPN to find the user by; `None` keeps any the user has.
    pub upn: Option<&'a str>,
    pub credential: FidoCredential,
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
        let new = NewFido {
            tenant,
            oid,
            upn,
            credential,
        };
        self.add_fido_many(std::slice::from_ref(&new))
    }

    /// Adds many users' credentials in one rewrite of the file: either every one is added or,
    /// on any refusal, none is.
    pub fn add_fido_many(&self, new: &[NewFido<'_>]) -> Result<(), StoreError> {
        self.update(|file| {
            let mut owners: HashMap<String, String> = file
                .users
                .iter()
                .flat_map(|(user, u)| u.fido.iter().map(|c| (c.id.clone(), user.clone())))
                .collect();
            for new in new {
                if let Some(owner) = owners.get(&new.credential.id) {
                    let (tenant, oid) = owner.split_once('/').unwrap_or((owner, ""));
                    return Err(StoreError::KeyEnrolled {
                        tenant: tenant.into(),
                        oid: oid.into(),
                    });
                }
                let key = user_key(new.tenant, new.oid);
                let user = file.users.entry(key.clone()).or_default();
                if user.fido.len() >= MAX_FIDO_PER_USER {
                    return Err(StoreError::TooManyKeys {
                        tenant: new.tenant.into(),
                        oid: new.oid.into(),
                    });
                }
                user.fido.push(new.credential.clone());
                if let Some(upn) = new.upn {
                    user.upn = Some(upn.to_owned());
                }
                owners.insert(new.credential.id.clone(), key);
            }
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
    fn many_keys_are_added_at_once_or_none_when_one_is_refused() {
        let (_dir, store) = store();
        let new = |oid, id| NewFido {
            tenant: T,
            oid,
            upn: None,
            credential: credential(id, 0),
        };
        store
            .add_fido_many(&[new(U, "a"), new(V, "b")])
            .expect("added");
        assert_eq!(store.fido(T, V), vec![credential("b", 0)]);

        let clash = store.add_fido_many(&[new(U, "c"), new(V, "c")]);
        assert!(
            matches!(clash, Err(StoreError::KeyEnrolled { .. })),
            "{clash:?}"
        );
        assert_eq!(store.fido(T, U), vec![credential("a", 0)]);
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
