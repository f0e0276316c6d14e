//! The WebAuthn verifier against independent vectors: the W3C Level 3 spec's registration and
//! assertion pairs, the sample registrations and assertion of fido2-net-lib, and the assertion
//! of webauthn-rs. Every mutation of a valid assertion must be refused. Deviations from the
//! suites' expectations are listed with their reasons in `tests/allowlists/webauthn.txt`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{CaseResult, assert_deviations_allowed, testdata};
use serde_json::Value;
use vouch::factor::webauthn::{
    Assertion, NewCredential, Registration, RelyingParty, StoredCredential, UserVerification,
    WebAuthnError, verify_assertion, verify_registration,
};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("base64url")
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn case(id: String, outcome: Result<(), WebAuthnError>, expect_valid: bool) -> CaseResult {
    let detail = match &outcome {
        Ok(()) => "accepted".to_owned(),
        Err(e) => format!("refused: {e}"),
    };
    CaseResult {
        id,
        as_expected: outcome.is_ok() == expect_valid,
        detail,
    }
}

fn stored<'a>(new: &'a NewCredential) -> StoredCredential<'a> {
    StoredCredential {
        id: &new.id,
        public_key_cose: &new.public_key_cose,
        sign_count: new.sign_count,
        backup_eligible: new.backup_eligible,
    }
}

/// One W3C vector's assertion with each part as bytes, so that mutations can change them.
struct W3cAssertion {
    challenge: Vec<u8>,
    client_data: Vec<u8>,
    authenticator_data: Vec<u8>,
    signature: Vec<u8>,
}

impl W3cAssertion {
    fn from(vector: &Value) -> Self {
        let a = &vector["authentication"];
        W3cAssertion {
            challenge: hex(a["challenge"].as_str().unwrap()),
            client_data: hex(a["clientDataJSON"].as_str().unwrap()),
            authenticator_data: hex(a["authenticatorData"].as_str().unwrap()),
            signature: hex(a["signature"].as_str().unwrap()),
        }
    }

    fn verify(
        &self,
        rp: &RelyingParty,
        policy: UserVerification,
        credential: &StoredCredential<'_>,
    ) -> Result<(), WebAuthnError> {
        let assertion = Assertion {
            credential_id: credential.id,
            client_data_json: &self.client_data,
            authenticator_data: &self.authenticator_data,
            signature: &self.signature,
        };
        verify_assertion(rp, policy, &self.challenge, credential, &assertion).map(|_| ())
    }
}

fn w3c_rp() -> RelyingParty {
    RelyingParty {
        id: "example.org".into(),
        origins: vec!["https://example.org".into()],
    }
}

/// The credential a vector registers: from vouch's own registration when it accepts it,
/// else from the vector's decoded key, so that the assertion is still exercised.
fn w3c_credential(vector: &Value, registered: Option<NewCredential>) -> NewCredential {
    registered.unwrap_or_else(|| {
        let d = &vector["derived"];
        NewCredential {
            id: hex(vector["registration"]["credential_id"].as_str().unwrap()),
            public_key_cose: hex(d["credential_public_key_cose_hex"].as_str().unwrap()),
            alg: vector["cose_alg"].as_i64().unwrap(),
            aaguid: [0; 16],
            sign_count: 0,
            backup_eligible: d["registration_flags"].as_u64().unwrap() & 0x08 != 0,
            backed_up: false,
            user_verified: false,
            attestation: vouch::factor::webauthn::Attestation::None,
        }
    })
}

/// Each mutation of a valid assertion that must be refused, by name.
fn mutations(valid: &W3cAssertion) -> Vec<(&'static str, W3cAssertion, RelyingParty)> {
    let copy = || W3cAssertion {
        challenge: valid.challenge.clone(),
        client_data: valid.client_data.clone(),
        authenticator_data: valid.authenticator_data.clone(),
        signature: valid.signature.clone(),
    };
    let text = String::from_utf8(valid.client_data.clone()).unwrap();
    let mut out = Vec::new();

    let other_origin = RelyingParty {
        origins: vec!["https://example.com".into()],
        ..w3c_rp()
    };
    out.push(("other-origin", copy(), other_origin));
    let other_rp_id = RelyingParty {
        id: "example.com".into(),
        ..w3c_rp()
    };
    out.push(("other-rp-id", copy(), other_rp_id));
    let mut create = copy();
    create.client_data = text.replace("webauthn.get", "webauthn.create").into_bytes();
    out.push(("type-create", create, w3c_rp()));
    let mut challenge = copy();
    challenge.challenge[0] ^= 1;
    out.push(("wrong-challenge", challenge, w3c_rp()));
    let mut auth_bit = copy();
    auth_bit.authenticator_data[33] ^= 0x01; // the sign count's high byte
    out.push(("auth-data-bit", auth_bit, w3c_rp()));
    let mut client_bit = copy();
    let last = client_bit.client_data.len() - 2;
    client_bit.client_data[last] ^= 0x01;
    out.push(("client-data-bit", client_bit, w3c_rp()));
    let mut sig_bit = copy();
    let last = sig_bit.signature.len() - 1;
    sig_bit.signature[last] ^= 0x01;
    out.push(("signature-bit", sig_bit, w3c_rp()));
    let mut no_up = copy();
    no_up.authenticator_data[32] &= !0x01;
    out.push(("up-cleared", no_up, w3c_rp()));
    out
}

#[test]
fn w3c_vectors_register_and_assert_and_every_mutation_is_refused() {
    let Some(dir) = testdata("webauthn/w3c-spec") else {
        return;
    };
    let suite = json(&dir.join("webauthn-l3-test-vectors.json"));
    let rp = w3c_rp();
    let mut results = Vec::new();

    for vector in suite["vectors"].as_array().unwrap() {
        let id = vector["id"].as_str().unwrap();
        let r = &vector["registration"];
        let (client_data, object) = (
            hex(r["clientDataJSON"].as_str().unwrap()),
            hex(r["attestationObject"].as_str().unwrap()),
        );
        let registration = Registration {
            client_data_json: &client_data,
            attestation_object: &object,
        };
        let challenge = hex(r["challenge"].as_str().unwrap());
        let registered = verify_registration(
            &rp,
            UserVerification::Discouraged,
            &challenge,
            None,
            &registration,
        );
        let outcome = registered.as_ref().map(|_| ()).map_err(Clone::clone);
        results.push(case(format!("w3c-reg-{id}"), outcome, true));

        let credential = w3c_credential(vector, registered.ok());
        let assertion = W3cAssertion::from(vector);
        let outcome = assertion.verify(&rp, UserVerification::Discouraged, &stored(&credential));
        let valid = outcome.is_ok();
        results.push(case(format!("w3c-auth-{id}"), outcome, true));
        if !valid {
            continue;
        }
        for (name, mutated, rp) in mutations(&assertion) {
            let outcome = mutated.verify(&rp, UserVerification::Discouraged, &stored(&credential));
            results.push(case(format!("w3c-mutation-{id}-{name}"), outcome, false));
        }
    }
    assert_deviations_allowed("webauthn", &results);
}

#[test]
fn w3c_assertions_without_the_uv_flag_are_refused_when_the_policy_requires_it() {
    let Some(dir) = testdata("webauthn/w3c-spec") else {
        return;
    };
    let suite = json(&dir.join("webauthn-l3-test-vectors.json"));
    let mut checked = 0;
    for vector in suite["vectors"].as_array().unwrap() {
        let credential = w3c_credential(vector, None);
        let assertion = W3cAssertion::from(vector);
        if assertion
            .verify(
                &w3c_rp(),
                UserVerification::Discouraged,
                &stored(&credential),
            )
            .is_err()
        {
            continue;
        }
        let uv = vector["derived"]["authentication_flags"].as_u64().unwrap() & 0x04 != 0;
        let outcome = assertion.verify(&w3c_rp(), UserVerification::Required, &stored(&credential));
        match outcome {
            Ok(()) => assert!(uv, "{}: accepted without UV", vector["id"]),
            Err(e) => assert!(
                !uv && e == WebAuthnError::UserNotVerified,
                "{}: {e}",
                vector["id"]
            ),
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} vectors verified");
}

#[test]
fn a_counter_that_does_not_move_forward_is_refused_after_the_signature_verifies() {
    let Some(dir) = testdata("webauthn/w3c-spec") else {
        return;
    };
    let suite = json(&dir.join("webauthn-l3-test-vectors.json"));
    let vector = &suite["vectors"][0];
    let mut credential = w3c_credential(vector, None);
    credential.sign_count = 5;
    let err = W3cAssertion::from(vector)
        .verify(
            &w3c_rp(),
            UserVerification::Discouraged,
            &stored(&credential),
        )
        .unwrap_err();
    assert_eq!(
        err,
        WebAuthnError::CounterWentBack {
            stored: 5,
            received: 0
        }
    );
}

/// fido2-net-lib's registrations, paired with their options by challenge, and its one
/// assertion against the credential of its `none` registration.
#[test]
fn fido2_net_lib_samples_register_and_assert() {
    let Some(dir) = testdata("webauthn/fido2-net-lib/TestFiles") else {
        return;
    };
    let rp = RelyingParty {
        id: "localhost".into(),
        origins: vec!["https://localhost:44329".into()],
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let documents: Vec<(String, Value)> = files
        .iter()
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                json(p),
            )
        })
        .collect();
    let options_for = |challenge: &str| {
        documents
            .iter()
            .find(|(_, d)| d["challenge"].as_str() == Some(challenge))
    };

    let mut results = Vec::new();
    let mut none_credential = None;
    for (name, doc) in &documents {
        let Some(object) = doc["response"]["attestationObject"].as_str() else {
            continue;
        };
        let client_data = b64(doc["response"]["clientDataJSON"].as_str().unwrap());
        let challenge = serde_json::from_slice::<Value>(&client_data).unwrap()["challenge"]
            .as_str()
            .unwrap()
            .to_owned();
        if options_for(&challenge).is_none() {
            println!("{name}: no options file answers its challenge; skipped");
            continue;
        }
        let object = b64(object);
        let registration = Registration {
            client_data_json: &client_data,
            attestation_object: &object,
        };
        let policy = UserVerification::Discouraged;
        let outcome = verify_registration(&rp, policy, &b64(&challenge), None, &registration);
        if name == "attestationNoneResponse" {
            none_credential = outcome.clone().ok();
        }
        results.push(case(
            format!("fido2-net-lib-{name}"),
            outcome.map(|_| ()),
            true,
        ));
    }

    let credential = none_credential.expect("the none registration verifies");
    let options = json(&dir.join("assertionNoneOptions.json"));
    let response = json(&dir.join("assertionNoneResponse.json"));
    let r = &response["response"];
    let (client_data, authenticator_data) = (
        b64(r["clientDataJSON"].as_str().unwrap()),
        b64(r["authenticatorData"].as_str().unwrap()),
    );
    // This file's signature is hex, not base64url.
    let signature = hex(r["signature"].as_str().unwrap());
    let assertion = Assertion {
        credential_id: &b64(response["rawId"].as_str().unwrap()),
        client_data_json: &client_data,
        authenticator_data: &authenticator_data,
        signature: &signature,
    };
    let challenge = b64(options["challenge"].as_str().unwrap());
    let outcome = verify_assertion(
        &rp,
        UserVerification::Discouraged,
        &challenge,
        &stored(&credential),
        &assertion,
    );
    results.push(case(
        "fido2-net-lib-assertion".into(),
        outcome.map(|_| ()),
        true,
    ));
    assert_deviations_allowed("webauthn-fido2-net-lib", &results);
}

/// webauthn-rs's assertion, with the credential rebuilt from its stored EC key.
#[test]
fn webauthn_rs_assertion_verifies() {
    let Some(dir) = testdata("webauthn/webauthn-rs/webauthn-rp-proxy/tests/data") else {
        return;
    };
    let doc = json(&dir.join("authenticate-finish.json"));
    let state = &doc["passkey_authentication"]["ast"];
    let stored_key = &state["credentials"][0]["cred"]["key"]["EC_EC2"];
    let (x, y) = (
        b64(stored_key["x"].as_str().unwrap()),
        b64(stored_key["y"].as_str().unwrap()),
    );
    let mut cose = vec![0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
    cose.extend_from_slice(&x);
    cose.extend_from_slice(&[0x22, 0x58, 0x20]);
    cose.extend_from_slice(&y);
    let credential_id = b64(state["credentials"][0]["cred_id"].as_str().unwrap());
    let credential = StoredCredential {
        id: &credential_id,
        public_key_cose: &cose,
        sign_count: 0,
        backup_eligible: false,
    };
    let r = &doc["public_key_credential"]["response"];
    let (client_data, authenticator_data, signature) = (
        b64(r["clientDataJSON"].as_str().unwrap()),
        b64(r["authenticatorData"].as_str().unwrap()),
        b64(r["signature"].as_str().unwrap()),
    );
    let assertion = Assertion {
        credential_id: &credential_id,
        client_data_json: &client_data,
        authenticator_data: &authenticator_data,
        signature: &signature,
    };
    let rp = RelyingParty {
        id: "localhost".into(),
        origins: vec!["http://localhost:8443".into()],
    };
    let challenge = b64(state["challenge"].as_str().unwrap());
    let verified = verify_assertion(
        &rp,
        UserVerification::Required,
        &challenge,
        &credential,
        &assertion,
    )
    .expect("verifies");
    assert!(verified.user_verified);
}
