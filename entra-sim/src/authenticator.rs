//! A software FIDO2 security key: it makes an ES256 credential and signs registrations and
//! assertions the way a real authenticator does (WebAuthn Level 3 §6), so that tests and
//! benchmarks can drive vouch's WebAuthn verifier without a browser.

#![allow(
    clippy::expect_used,
    reason = "a test instrument: a failed key generation or signature ends the test using it"
)]

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;

/// How a registration is attested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    None,
    /// `packed`, signed with the credential's own key.
    PackedSelf,
}

/// A vendor's attestation key: an ECDSA P-256 PKCS#8 key and its certificate chain (DER,
/// leaf first).
pub struct AttestationKey {
    pub pkcs8: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

fn attested(client_data_json: Vec<u8>, fmt: &str, statement: Value, auth: Vec<u8>) -> Attested {
    let object = Value::Map(vec![
        ("fmt".into(), fmt.into()),
        ("attStmt".into(), statement),
        ("authData".into(), Value::Bytes(auth)),
    ]);
    Attested {
        client_data_json,
        attestation_object: cbor(&object),
    }
}

/// What `navigator.credentials.create` gives the page.
pub struct Attested {
    pub client_data_json: Vec<u8>,
    pub attestation_object: Vec<u8>,
}

/// What `navigator.credentials.get` gives the page.
pub struct Signed {
    pub credential_id: Vec<u8>,
    pub client_data_json: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    pub signature: Vec<u8>,
}

pub struct Authenticator {
    rp_id: String,
    origin: String,
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    pub aaguid: [u8; 16],
    /// The signature counter; it moves only when `counting` is on.
    pub counter: u32,
    pub counting: bool,
    pub user_verified: bool,
    pub backup_eligible: bool,
}

impl Authenticator {
    /// A new key for `rp_id`, used from pages on `origin`, verifying its user.
    pub fn new(rp_id: &str, origin: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("P-256 key generation");
        let mut credential_id = vec![0; 32];
        rng.fill(&mut credential_id).expect("random credential ID");
        Self::with_key(rp_id, origin, pkcs8.as_ref(), credential_id)
    }

    /// The key whose P-256 PKCS#8 document is `pkcs8`, known to the relying party by
    /// `credential_id`, counting from zero.
    pub fn with_key(rp_id: &str, origin: &str, pkcs8: &[u8], credential_id: Vec<u8>) -> Self {
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).expect("P-256 key");
        Authenticator {
            rp_id: rp_id.into(),
            origin: origin.into(),
            key,
            credential_id,
            aaguid: [0x5A; 16],
            counter: 0,
            counting: true,
            user_verified: true,
            backup_eligible: false,
        }
    }

    /// The credential public key as a COSE_Key (RFC 9053 §7.1.1).
    pub fn public_key_cose(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let map = Value::Map(vec![
            (1.into(), 2.into()),
            (3.into(), (-7).into()),
            ((-1).into(), 1.into()),
            ((-2).into(), Value::Bytes(point[1..33].to_vec())),
            ((-3).into(), Value::Bytes(point[33..].to_vec())),
        ]);
        cbor(&map)
    }

    pub fn client_data(&self, kind: &str, challenge: &[u8]) -> Vec<u8> {
        let challenge = URL_SAFE_NO_PAD.encode(challenge);
        let origin = &self.origin;
        let fields = format!(r#""type":"{kind}","challenge":"{challenge}","origin":"{origin}""#);
        format!(r#"{{{fields},"crossOrigin":false}}"#).into_bytes()
    }

    fn authenticator_data(&self, attested: bool) -> Vec<u8> {
        let mut flags = 0x01;
        if self.user_verified {
            flags |= 0x04;
        }
        if self.backup_eligible {
            flags |= 0x08;
        }
        if attested {
            flags |= 0x40;
        }
        let mut data = digest::digest(&digest::SHA256, self.rp_id.as_bytes())
            .as_ref()
            .to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        if attested {
            data.extend_from_slice(&self.aaguid);
            let len = u16::try_from(self.credential_id.len()).expect("short credential ID");
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(&self.credential_id);
            data.extend_from_slice(&self.public_key_cose());
        }
        data
    }

    /// Signs `authenticator_data ‖ SHA-256(client_data)` (WebAuthn §6.3.3).
    pub fn sign(&self, authenticator_data: &[u8], client_data: &[u8]) -> Vec<u8> {
        let mut signed = authenticator_data.to_vec();
        signed.extend_from_slice(digest::digest(&digest::SHA256, client_data).as_ref());
        self.key
            .sign(&SystemRandom::new(), &signed)
            .expect("ECDSA signature")
            .as_ref()
            .to_vec()
    }

    /// A `packed` registration signed by a vendor's attestation key (§8.2), whose
    /// certificate chain, leaf first, goes along as `x5c`.
    pub fn register_certified(
        &mut self,
        challenge: &[u8],
        attestation: &AttestationKey,
    ) -> Attested {
        let client_data_json = self.client_data("webauthn.create", challenge);
        let auth_data = self.authenticator_data(true);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest::digest(&digest::SHA256, &client_data_json).as_ref());
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &attestation.pkcs8)
            .expect("P-256 attestation key");
        let sig = key
            .sign(&SystemRandom::new(), &signed)
            .expect("ECDSA signature");
        let x5c = attestation
            .chain
            .iter()
            .cloned()
            .map(Value::Bytes)
            .collect();
        let statement = vec![
            ("alg".into(), (-7).into()),
            ("sig".into(), Value::Bytes(sig.as_ref().to_vec())),
            ("x5c".into(), Value::Array(x5c)),
        ];
        attested(client_data_json, "packed", Value::Map(statement), auth_data)
    }

    pub fn register(&mut self, challenge: &[u8], format: Format) -> Attested {
        let client_data_json = self.client_data("webauthn.create", challenge);
        let auth_data = self.authenticator_data(true);
        let (fmt, statement) = match format {
            Format::None => ("none", Value::Map(vec![])),
            Format::PackedSelf => {
                let sig = self.sign(&auth_data, &client_data_json);
                let statement = vec![
                    ("alg".into(), (-7).into()),
                    ("sig".into(), Value::Bytes(sig)),
                ];
                ("packed", Value::Map(statement))
            }
        };
        attested(client_data_json, fmt, statement, auth_data)
    }

    pub fn assert(&mut self, challenge: &[u8]) -> Signed {
        if self.counting {
            self.counter += 1;
        }
        let client_data_json = self.client_data("webauthn.get", challenge);
        let authenticator_data = self.authenticator_data(false);
        let signature = self.sign(&authenticator_data, &client_data_json);
        Signed {
            credential_id: self.credential_id.clone(),
            client_data_json,
            authenticator_data,
            signature,
        }
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR encoding into memory");
    out
}
