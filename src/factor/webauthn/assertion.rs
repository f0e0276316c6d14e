//! Verifying an authentication assertion (§7.2), the step a security key takes at sign-in.

use aws_lc_rs::digest;

use super::auth_data::AuthenticatorData;
use super::client_data::{self, GET};
use super::cose::PublicKey;
use super::{RelyingParty, UserVerification, WebAuthnError};

/// A credential as enrolment stored it.
#[derive(Debug, Clone, Copy)]
pub struct StoredCredential<'a> {
    pub id: &'a [u8],
    /// The COSE_Key from the registration's authenticator data.
    pub public_key_cose: &'a [u8],
    pub sign_count: u32,
    pub backup_eligible: bool,
}

/// What the browser posts back from `navigator.credentials.get`.
#[derive(Debug, Clone, Copy)]
pub struct Assertion<'a> {
    pub credential_id: &'a [u8],
    pub client_data_json: &'a [u8],
    pub authenticator_data: &'a [u8],
    pub signature: &'a [u8],
}

/// What a verified assertion tells the caller to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The new signature counter to store for the credential.
    pub sign_count: u32,
    pub user_verified: bool,
    pub backed_up: bool,
}

/// Verifies an assertion for `credential` answering `challenge`, under the tenant's user
/// verification policy.
pub fn verify_assertion(
    rp: &RelyingParty,
    policy: UserVerification,
    challenge: &[u8],
    credential: &StoredCredential<'_>,
    assertion: &Assertion<'_>,
) -> Result<Verified, WebAuthnError> {
    // Step 6: the credential is the one enrolled for this user.
    if assertion.credential_id != credential.id {
        return Err(WebAuthnError::WrongCredential);
    }
    // Steps 11-14.
    client_data::check(assertion.client_data_json, GET, challenge, rp)?;

    // Steps 15-18.
    let data = AuthenticatorData::parse(assertion.authenticator_data)?;
    if data.attested.is_some() {
        return Err(WebAuthnError::AuthData(
            "an assertion carries attested credential data",
        ));
    }
    let rp_id_hash = digest::digest(&digest::SHA256, rp.id.as_bytes());
    if data.rp_id_hash != rp_id_hash.as_ref() {
        return Err(WebAuthnError::WrongRpId);
    }
    if !data.flags.user_present() {
        return Err(WebAuthnError::UserNotPresent);
    }
    if policy.demands() && !data.flags.user_verified() {
        return Err(WebAuthnError::UserNotVerified);
    }
    // Step 19 and §6.1.3: backup eligibility is fixed when the credential is made.
    if data.flags.backup_eligible() != credential.backup_eligible {
        return Err(WebAuthnError::BackupEligibilityChanged);
    }

    // Steps 20-21: the signature covers authenticatorData ‖ SHA-256(clientDataJSON).
    let client_hash = digest::digest(&digest::SHA256, assertion.client_data_json);
    let mut signed = Vec::with_capacity(assertion.authenticator_data.len() + 32);
    signed.extend_from_slice(assertion.authenticator_data);
    signed.extend_from_slice(client_hash.as_ref());
    PublicKey::from_cose(credential.public_key_cose)?.verify(&signed, assertion.signature)?;

    // Step 22: a counter that does not move forward means a cloned authenticator, unless
    // the authenticator does not count at all (both zero).
    let (stored, received) = (credential.sign_count, data.sign_count);
    if (stored != 0 || received != 0) && received <= stored {
        return Err(WebAuthnError::CounterWentBack { stored, received });
    }
    Ok(Verified {
        sign_count: received,
        user_verified: data.flags.user_verified(),
        backed_up: data.flags.backed_up(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_sim::authenticator::{Authenticator, Signed};

    const CHALLENGE: &[u8] = b"the transaction's challenge";

    fn rp() -> RelyingParty {
        RelyingParty {
            id: "mfa.example.test".into(),
            origins: vec!["https://mfa.example.test".into()],
        }
    }

    fn check(key: &Authenticator, count: u32, signed: &Signed) -> Result<Verified, WebAuthnError> {
        let cose = key.public_key_cose();
        let credential = StoredCredential {
            id: &key.credential_id,
            public_key_cose: &cose,
            sign_count: count,
            backup_eligible: false,
        };
        let assertion = Assertion {
            credential_id: &signed.credential_id,
            client_data_json: &signed.client_data_json,
            authenticator_data: &signed.authenticator_data,
            signature: &signed.signature,
        };
        verify_assertion(
            &rp(),
            UserVerification::Required,
            CHALLENGE,
            &credential,
            &assertion,
        )
    }

    fn key() -> Authenticator {
        Authenticator::new("mfa.example.test", "https://mfa.example.test")
    }

    #[test]
    fn an_assertion_verifies_and_gives_the_new_counter() {
        let mut key = key();
        let signed = key.assert(CHALLENGE);
        let verified = check(&key, 0, &signed).expect("verifies");
        assert_eq!(verified.sign_count, 1);
        assert!(verified.user_verified);
    }

    #[test]
    fn a_replayed_assertion_is_refused_once_its_counter_is_stored() {
        let mut key = key();
        let signed = key.assert(CHALLENGE);
        let first = check(&key, 0, &signed).expect("verifies");
        let replay = check(&key, first.sign_count, &signed);
        assert_eq!(
            replay,
            Err(WebAuthnError::CounterWentBack {
                stored: 1,
                received: 1
            })
        );
    }

    #[test]
    fn another_users_credential_and_a_changed_backup_eligibility_are_refused() {
        let mut key = key();
        let signed = key.assert(CHALLENGE);
        let other = Authenticator::new("mfa.example.test", "https://mfa.example.test");
        assert_eq!(
            check(&other, 0, &signed),
            Err(WebAuthnError::WrongCredential)
        );

        key.backup_eligible = true;
        let signed = key.assert(CHALLENGE);
        assert_eq!(
            check(&key, 0, &signed),
            Err(WebAuthnError::BackupEligibilityChanged)
        );
    }

    #[test]
    fn an_assertion_signed_by_another_key_for_the_same_credential_id_is_refused() {
        let mut key = key();
        let mut impostor = Authenticator::new("mfa.example.test", "https://mfa.example.test");
        impostor.credential_id = key.credential_id.clone();
        let forged = impostor.assert(CHALLENGE);
        assert_eq!(check(&key, 0, &forged), Err(WebAuthnError::BadSignature));
        let genuine = key.assert(CHALLENGE);
        assert!(check(&key, 0, &genuine).is_ok());
    }

    #[test]
    fn an_assertion_carrying_a_new_credential_is_refused() {
        let mut key = key();
        let made = key.register(CHALLENGE, entra_sim::authenticator::Format::None);
        let mut reader = made.attestation_object.as_slice();
        let object: ciborium::Value = ciborium::from_reader(&mut reader).expect("decodes");
        let auth_data = object.as_map().expect("map")[2]
            .1
            .as_bytes()
            .expect("bytes")
            .clone();
        let mut signed = key.assert(CHALLENGE);
        signed.client_data_json = key.client_data("webauthn.get", CHALLENGE);
        signed.signature = key.sign(&auth_data, &signed.client_data_json);
        signed.authenticator_data = auth_data;
        let err = check(&key, 0, &signed).unwrap_err();
        assert!(err.to_string().contains("attested"), "{err}");
    }
}
