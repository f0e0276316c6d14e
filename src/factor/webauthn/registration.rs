//! Verifying a registration (§7.1): a user enrolling a security key, with the attestation
//! formats `none` (§8.7) and `packed` (§8.2).
//!
//! A tenant may allow only some authenticator models, named by AAGUID. An AAGUID is only
//! worth checking when an attestation certificate vouches for it, so under an allow-list a
//! `none` or self attestation is refused rather than trusted.

use aws_lc_rs::digest;
use ciborium::Value;

use super::auth_data::AuthenticatorData;
use super::certificate::AttestationCertificate;
use super::client_data::{self, CREATE};
use super::cose::PublicKey;
use super::{RelyingParty, UserVerification, WebAuthnError};

/// What the browser posts back from `navigator.credentials.create`.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub client_data_json: &'a [u8],
    pub attestation_object: &'a [u8],
}

/// How the authenticator vouched for the new credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attestation {
    /// No statement (`none`).
    None,
    /// Signed with the credential's own key (`packed` without `x5c`).
    SelfAttested,
    /// Signed by an attestation key whose certificate chain (leaf first, DER) came along.
    Certified { chain: Vec<Vec<u8>> },
}

/// A verified new credential, ready to be stored for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub id: Vec<u8>,
    pub public_key_cose: Vec<u8>,
    pub alg: i64,
    pub aaguid: [u8; 16],
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub user_verified: bool,
    pub attestation: Attestation,
}

fn object_error(what: impl Into<String>) -> WebAuthnError {
    WebAuthnError::AttestationObject(what.into())
}

/// Verifies a registration answering `challenge`. `allowed_models`, when set, lists the
/// AAGUIDs the tenant accepts.
pub fn verify_registration(
    rp: &RelyingParty,
    policy: UserVerification,
    challenge: &[u8],
    allowed_models: Option<&[[u8; 16]]>,
    registration: &Registration<'_>,
) -> Result<NewCredential, WebAuthnError> {
    // Steps 5-11.
    client_data::check(registration.client_data_json, CREATE, challenge, rp)?;
    let client_hash = digest::digest(&digest::SHA256, registration.client_data_json);

    // Step 12: the attestation object is a CBOR map of fmt, attStmt and authData (§6.5.4).
    let object = AttestationObject::parse(registration.attestation_object)?;
    let data = AuthenticatorData::parse(&object.auth_data)?;

    // Steps 13-18.
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
    let attested = data.attested.as_ref().ok_or(WebAuthnError::AuthData(
        "a registration carries no credential",
    ))?;
    let key = PublicKey::from_cose(attested.public_key_cose)?;

    // Steps 19-21.
    let mut signed = object.auth_data.clone();
    signed.extend_from_slice(client_hash.as_ref());
    let attestation = match object.format.as_str() {
        "none" => none(&object.statement)?,
        "packed" => packed(&object.statement, &signed, &key, &attested.aaguid)?,
        other => return Err(WebAuthnError::UnsupportedAttestation(other.into())),
    };
    if let Some(allowed) = allowed_models {
        let vouched = matches!(attestation, Attestation::Certified { .. });
        if !vouched || !allowed.contains(&attested.aaguid) {
            return Err(WebAuthnError::AaguidNotAllowed(aaguid_text(
                &attested.aaguid,
            )));
        }
    }
    Ok(NewCredential {
        id: attested.credential_id.to_vec(),
        public_key_cose: attested.public_key_cose.to_vec(),
        alg: key.alg(),
        aaguid: attested.aaguid,
        sign_count: data.sign_count,
        backup_eligible: data.flags.backup_eligible(),
        backed_up: data.flags.backed_up(),
        user_verified: data.flags.user_verified(),
        attestation,
    })
}

/// An AAGUID in the usual 8-4-4-4-12 form.
pub fn aaguid_text(aaguid: &[u8; 16]) -> String {
    let hex: String = aaguid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

struct AttestationObject {
    format: String,
    statement: Vec<(Value, Value)>,
    auth_data: Vec<u8>,
}

impl AttestationObject {
    fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let mut reader = bytes;
        let value: Value =
            ciborium::from_reader(&mut reader).map_err(|e| object_error(super::cbor_error(e)))?;
        if !reader.is_empty() {
            return Err(object_error("trailing bytes after the object"));
        }
        let Value::Map(entries) = value else {
            return Err(object_error("not a CBOR map"));
        };
        let (mut format, mut statement, mut auth_data) = (None, None, None);
        for (key, value) in entries {
            let slot = match key.as_text() {
                Some("fmt") => format.replace(value),
                Some("attStmt") => statement.replace(value),
                Some("authData") => auth_data.replace(value),
                _ => None,
            };
            if slot.is_some() {
                return Err(object_error("a member appears twice"));
            }
        }
        let format = match format {
            Some(Value::Text(f)) => f,
            _ => return Err(object_error("fmt is missing or not text")),
        };
        let statement = match statement {
            Some(Value::Map(s)) => s,
            _ => return Err(object_error("attStmt is missing or not a map")),
        };
        let auth_data = match auth_data {
            Some(Value::Bytes(d)) => d,
            _ => return Err(object_error("authData is missing or not bytes")),
        };
        Ok(AttestationObject {
            format,
            statement,
            auth_data,
        })
    }
}

/// §8.7: the `none` format carries an empty statement.
fn none(statement: &[(Value, Value)]) -> Result<Attestation, WebAuthnError> {
    if !statement.is_empty() {
        return Err(WebAuthnError::Attestation(
            "a none statement is not empty".into(),
        ));
    }
    Ok(Attestation::None)
}

/// §8.2: `packed`, either self attestation or signed by an attestation certificate.
fn packed(
    statement: &[(Value, Value)],
    signed: &[u8],
    credential_key: &PublicKey,
    aaguid: &[u8; 16],
) -> Result<Attestation, WebAuthnError> {
    let invalid = |what: &str| WebAuthnError::Attestation(what.into());
    let field = |name: &str| {
        statement
            .iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v)
    };
    let alg = field("alg")
        .and_then(Value::as_integer)
        .and_then(|i| i64::try_from(i).ok())
        .ok_or_else(|| invalid("alg is missing or not an integer"))?;
    let sig = field("sig")
        .and_then(Value::as_bytes)
        .ok_or_else(|| invalid("sig is missing or not bytes"))?;

    let Some(x5c) = field("x5c") else {
        // Self attestation: the credential key signs, with its own algorithm.
        if alg != credential_key.alg() {
            return Err(invalid("alg differs from the credential's algorithm"));
        }
        credential_key
            .verify(signed, sig)
            .map_err(|_| invalid("the self-attestation signature does not verify"))?;
        return Ok(Attestation::SelfAttested);
    };
    let chain: Vec<Vec<u8>> = x5c
        .as_array()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| invalid("x5c is not a non-empty array"))?
        .iter()
        .map(|c| {
            c.as_bytes()
                .cloned()
                .ok_or_else(|| invalid("x5c holds a non-bytes item"))
        })
        .collect::<Result<_, _>>()?;
    let leaf = AttestationCertificate::parse(&chain[0])?;
    leaf.check_packed_requirements(aaguid)?;
    leaf.verify(alg, signed, sig)?;
    Ok(Attestation::Certified { chain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_sim::authenticator::{Authenticator, Format};

    const CHALLENGE: &[u8] = b"a challenge of sixteen+ bytes";

    fn rp() -> RelyingParty {
        RelyingParty {
            id: "mfa.example.test".into(),
            origins: vec!["https://mfa.example.test".into()],
        }
    }

    fn key() -> Authenticator {
        Authenticator::new("mfa.example.test", "https://mfa.example.test")
    }

    fn register(
        made: &entra_sim::authenticator::Attested,
        allowed: Option<&[[u8; 16]]>,
    ) -> Result<NewCredential, WebAuthnError> {
        let registration = Registration {
            client_data_json: &made.client_data_json,
            attestation_object: &made.attestation_object,
        };
        verify_registration(
            &rp(),
            UserVerification::Required,
            CHALLENGE,
            allowed,
            &registration,
        )
    }

    #[test]
    fn none_and_self_attested_registrations_give_the_authenticators_credential() {
        for (format, attestation) in [
            (Format::None, Attestation::None),
            (Format::PackedSelf, Attestation::SelfAttested),
        ] {
            let mut key = key();
            let made = key.register(CHALLENGE, format);
            let new = register(&made, None).expect("verifies");
            assert_eq!(new.id, key.credential_id);
            assert_eq!(new.public_key_cose, key.public_key_cose());
            assert_eq!(new.attestation, attestation);
            assert!(new.user_verified);
        }
    }

    #[test]
    fn an_allow_list_refuses_models_no_certificate_vouches_for() {
        let mut key = key();
        let made = key.register(CHALLENGE, Format::PackedSelf);
        let err = register(&made, Some(&[key.aaguid])).unwrap_err();
        assert!(matches!(err, WebAuthnError::AaguidNotAllowed(_)), "{err}");
    }

    #[test]
    fn a_registration_without_user_verification_is_refused_when_required() {
        let mut key = key();
        key.user_verified = false;
        let made = key.register(CHALLENGE, Format::None);
        assert_eq!(register(&made, None), Err(WebAuthnError::UserNotVerified));
    }

    fn object(entries: Vec<(&str, Value)>) -> Vec<u8> {
        let map = Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect());
        let mut out = Vec::new();
        ciborium::into_writer(&map, &mut out).expect("encodes");
        out
    }

    #[test]
    fn malformed_and_forged_attestation_objects_are_refused_without_panic() {
        let mut key = key();
        let good = key.register(CHALLENGE, Format::PackedSelf);
        let auth_data = {
            let mut reader = good.attestation_object.as_slice();
            let value: Value = ciborium::from_reader(&mut reader).expect("decodes");
            value.as_map().expect("map")[2]
                .1
                .as_bytes()
                .expect("bytes")
                .clone()
        };
        let with = |fmt: &str, statement: Vec<(&str, Value)>| {
            let statement = Value::Map(statement.into_iter().map(|(k, v)| (k.into(), v)).collect());
            object(vec![
                ("fmt", fmt.into()),
                ("attStmt", statement),
                ("authData", Value::Bytes(auth_data.clone())),
            ])
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "ends too soon"),
            (vec![0xA3, 0x63], "ends too soon"),
            (
                [good.attestation_object.clone(), vec![0]].concat(),
                "trailing",
            ),
            (object(vec![("fmt", "none".into())]), "attStmt"),
            (
                object(vec![("fmt", "none".into()), ("fmt", "none".into())]),
                "twice",
            ),
            (with("none", vec![("alg", (-7).into())]), "not empty"),
            (with("tpm", vec![]), "not supported"),
            (with("packed", vec![("alg", (-7).into())]), "sig"),
            (
                with(
                    "packed",
                    vec![("alg", (-257).into()), ("sig", Value::Bytes(vec![1]))],
                ),
                "alg differs",
            ),
            (
                with(
                    "packed",
                    vec![("alg", (-7).into()), ("sig", Value::Bytes(vec![1; 70]))],
                ),
                "does not verify",
            ),
            (
                with(
                    "packed",
                    vec![
                        ("alg", (-7).into()),
                        ("sig", Value::Bytes(vec![1])),
                        ("x5c", Value::Array(vec![Value::Bytes(b"not DER".to_vec())])),
                    ],
                ),
                "attestation certificate",
            ),
        ];
        for (bytes, why) in cases {
            let made = entra_sim::authenticator::Attested {
                client_data_json: good.client_data_json.clone(),
                attestation_object: bytes,
            };
            let err = register(&made, None).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
