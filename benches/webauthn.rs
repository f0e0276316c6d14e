//! Criterion benchmarks of WebAuthn verification, each beside the raw primitive that bounds
//! it in the same group, so that one run gives their ratio:
//!
//! - `assertion`: a security key's sign-in assertion (client data, authenticator data, COSE
//!   key and ES256 signature), against one raw P-256 verify of the same signed bytes;
//! - `registration`: a `packed` self-attested registration, against the same raw verify.
//!
//! The assertions come from the software authenticator in `entra-sim`, made once outside
//! the measured code. Its counter stays at zero, so one assertion verifies every time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use criterion::{Criterion, criterion_group, criterion_main};
use entra_sim::authenticator::{Authenticator, Format};
use vouch::factor::webauthn::{
    Assertion, Registration, RelyingParty, StoredCredential, UserVerification, verify_assertion,
    verify_registration,
};

const CHALLENGE: &[u8] = b"a transaction's 32-byte challenge";

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn rp() -> RelyingParty {
    RelyingParty {
        id: "mfa.example.test".into(),
        origins: vec!["https://mfa.example.test".into()],
    }
}

/// The raw check every ceremony ends in: one ES256 verify of authData ‖ SHA-256(clientData).
fn raw_verify(key: &Authenticator, auth_data: &[u8], client_data: &[u8], sig: &[u8]) -> bool {
    let cose = key.public_key_cose();
    // x and y sit at fixed places in the authenticator's five-entry COSE map.
    let mut point = vec![0x04];
    point.extend_from_slice(&cose[10..42]);
    point.extend_from_slice(&cose[45..77]);
    let mut signed = auth_data.to_vec();
    signed.extend_from_slice(digest::digest(&digest::SHA256, client_data).as_ref());
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point)
        .verify(&signed, sig)
        .is_ok()
}

fn assertion(c: &mut Criterion) {
    let mut key = Authenticator::new("mfa.example.test", "https://mfa.example.test");
    key.counting = false;
    let signed = key.assert(CHALLENGE);
    let cose = key.public_key_cose();
    let credential = StoredCredential {
        id: &key.credential_id,
        public_key_cose: &cose,
        sign_count: 0,
        backup_eligible: false,
    };
    let assertion = Assertion {
        credential_id: &signed.credential_id,
        client_data_json: &signed.client_data_json,
        authenticator_data: &signed.authenticator_data,
        signature: &signed.signature,
    };
    let rp = rp();
    let policy = UserVerification::Required;
    assert!(verify_assertion(&rp, policy, CHALLENGE, &credential, &assertion).is_ok());
    assert!(raw_verify(
        &key,
        &signed.authenticator_data,
        &signed.client_data_json,
        &signed.signature
    ));

    let mut group = c.benchmark_group("webauthn/assertion");
    group.bench_function("vouch", |b| {
        b.iter(|| verify_assertion(&rp, policy, CHALLENGE, &credential, black_box(&assertion)))
    });
    group.bench_function("raw_p256_verify", |b| {
        b.iter(|| {
            raw_verify(
                &key,
                black_box(&signed.authenticator_data),
                &signed.client_data_json,
                &signed.signature,
            )
        })
    });
    group.finish();
}

fn registration(c: &mut Criterion) {
    let mut key = Authenticator::new("mfa.example.test", "https://mfa.example.test");
    let made = key.register(CHALLENGE, Format::PackedSelf);
    let registration = Registration {
        client_data_json: &made.client_data_json,
        attestation_object: &made.attestation_object,
    };
    let rp = rp();
    let policy = UserVerification::Required;
    assert!(verify_registration(&rp, policy, CHALLENGE, None, &registration).is_ok());
    let verify = |r: &Registration<'_>| verify_registration(&rp, policy, CHALLENGE, None, r);

    let mut group = c.benchmark_group("webauthn/registration");
    group.bench_function("vouch", |b| b.iter(|| verify(black_box(&registration))));
    let signed = key.assert(CHALLENGE);
    group.bench_function("raw_p256_verify", |b| {
        b.iter(|| {
            raw_verify(
                &key,
                black_box(&signed.authenticator_data),
                &signed.client_data_json,
                &signed.signature,
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = webauthn;
    config = config();
    targets = assertion, registration
}
criterion_main!(webauthn);
