//! Wycheproof's JSON Web Signature vectors through vouch's JWK handling and JWS verifier.
//!
//! Each group's public key goes through the same JWKS parsing as Entra's keys, each token
//! through the same parser and RS256 verifier as a hint. vouch accepts RS256 only, so the
//! valid tokens of other algorithms are expected deviations, listed by group in
//! `tests/allowlists/wycheproof-jws.txt`; every invalid token must be refused.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{CaseResult, assert_deviations_allowed, testdata};
use serde_json::{Value, json};
use vouch::entra::keys::KeySet;
use vouch::jose::Jws;

const DEFAULT_KID: &str = "wycheproof";

/// The group's public key(s) as a JWKS, each with a `kid` so the key set keeps it.
fn jwks(public: &Value) -> Value {
    let mut keys = match public.get("keys") {
        Some(Value::Array(keys)) => keys.clone(),
        _ => vec![public.clone()],
    };
    for key in &mut keys {
        if let Some(obj) = key.as_object_mut() {
            obj.entry("kid").or_insert_with(|| json!(DEFAULT_KID));
        }
    }
    json!({ "keys": keys })
}

fn accepts(public: Option<&Value>, token: &str) -> Result<(), String> {
    let public = public.ok_or("no public key in the group")?;
    let set = KeySet::from_jwks(jwks(public).to_string().as_bytes()).map_err(|e| e.to_string())?;
    let jws = Jws::parse(token).map_err(|e| e.to_string())?;
    let kid = jws.kid.clone().unwrap_or_else(|| DEFAULT_KID.into());
    let key = set
        .get(&kid)
        .or_else(|| set.get(DEFAULT_KID))
        .ok_or("no key with that kid")?;
    jws.verify(key).map_err(|e| e.to_string())
}

#[test]
fn wycheproof_jws_vectors_are_accepted_exactly_when_valid_rs256() {
    let Some(dir) = testdata("wycheproof") else {
        return;
    };
    let path = dir.join("testvectors_v1/json_web_signature_test.json");
    let text = std::fs::read_to_string(path).expect("suite file");
    let doc: Value = serde_json::from_str(&text).expect("suite JSON");

    let mut results = Vec::new();
    for group in doc["testGroups"].as_array().expect("groups") {
        let name = group["comment"].as_str().unwrap_or("group");
        for test in group["tests"].as_array().expect("tests") {
            let token = test["jws"].as_str().unwrap_or_default();
            let verdict = accepts(group.get("public"), token);
            let valid = test["result"] == "valid";
            results.push(CaseResult {
                id: format!("{name}-{}", test["tcId"]),
                as_expected: verdict.is_ok() == valid,
                detail: format!("{} ({}): {verdict:?}", test["comment"], test["result"]),
            });
        }
    }
    assert!(results.len() > 300, "read {} vectors", results.len());
    let invalid_accepted = results
        .iter()
        .filter(|r| !r.as_expected && r.detail.contains("(\"invalid\"): Ok"))
        .count();
    assert_eq!(invalid_accepted, 0, "an invalid token was accepted");
    assert_deviations_allowed("wycheproof-jws", &results);
}
