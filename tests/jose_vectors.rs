//! The JWS examples of RFC 7515 Appendix A and the RFC 7520 cookbook through vouch's JWS
//! verifier, plus negative cases the harness derives from every valid RS256 example.
//!
//! vouch accepts RS256 only, so the examples in other algorithms are expected deviations
//! (listed with reasons in `tests/allowlists/jose.txt`); `alg: none` must be refused.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{CaseResult, assert_deviations_allowed, testdata};
use serde_json::Value;
use vouch::jose::hint::EntraKey;
use vouch::jose::{Jws, b64url_decode, b64url_encode};

struct Example {
    id: String,
    compact: String,
    payload: Vec<u8>,
    /// RSA `n` and `e` of the verification key, for RSA examples.
    rsa: Option<(String, String)>,
    suite_accepts: bool,
}

fn rsa_of(jwk: &Value) -> Option<(String, String)> {
    (jwk["kty"] == "RSA").then(|| {
        let text = |f: &str| jwk[f].as_str().unwrap_or_default().to_owned();
        (text("n"), text("e"))
    })
}

fn load() -> Option<Vec<Example>> {
    let dir = testdata("jose")?;
    let mut out = Vec::new();
    let a: Value = read_json(&dir.join("rfc7515/appendix_a.json"));
    for t in a["tests"].as_array().expect("tests") {
        out.push(Example {
            id: t["id"].as_str().expect("id").to_owned(),
            compact: t["compact"].as_str().expect("compact").to_owned(),
            payload: t["payload"].as_str().expect("payload").as_bytes().to_vec(),
            rsa: rsa_of(&t["jwk_public"]),
            suite_accepts: t["expected"] == "valid",
        });
    }
    let mut files: Vec<_> = std::fs::read_dir(dir.join("rfc7520/jws"))
        .expect("cookbook")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for path in files {
        let doc: Value = read_json(&path);
        let Some(compact) = doc["output"]["compact"].as_str() else {
            continue;
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let number = name.split('.').next().unwrap_or_default().replace('_', ".");
        out.push(Example {
            id: format!("rfc7520-{number}"),
            compact: compact.to_owned(),
            payload: doc["input"]["payload"]
                .as_str()
                .expect("payload")
                .as_bytes()
                .to_vec(),
            rsa: rsa_of(&doc["input"]["key"]),
            suite_accepts: true,
        });
    }
    Some(out)
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("suite file");
    serde_json::from_str(&text).expect("suite JSON")
}

fn key(rsa: &(String, String)) -> EntraKey {
    let n = b64url_decode(&rsa.0, "n").expect("n");
    let e = b64url_decode(&rsa.1, "e").expect("e");
    EntraKey::from_components("k".into(), &n, &e).expect("RSA key")
}

/// vouch's verdict on a token: the verified payload, or why it was refused.
fn verify(token: &str, rsa: Option<&(String, String)>) -> Result<Vec<u8>, String> {
    let jws = Jws::parse(token).map_err(|e| e.to_string())?;
    let rsa = rsa.ok_or("no RSA key for an RS256 token")?;
    jws.verify(&key(rsa)).map_err(|e| e.to_string())?;
    jws.payload().map_err(|e| e.to_string())
}

#[test]
fn jose_examples_verify_exactly_when_they_are_rs256() {
    let Some(examples) = load() else { return };
    assert!(examples.len() >= 10, "found {} examples", examples.len());
    let results: Vec<CaseResult> = examples
        .iter()
        .map(|ex| {
            let verdict = verify(&ex.compact, ex.rsa.as_ref());
            let accepted = verdict.as_ref().is_ok_and(|p| *p == ex.payload);
            CaseResult {
                id: ex.id.clone(),
                as_expected: accepted == ex.suite_accepts,
                detail: format!("{verdict:?}").chars().take(120).collect(),
            }
        })
        .collect();
    assert_deviations_allowed("jose", &results);
}

fn flip(part: &str, byte: usize) -> String {
    let mut bytes = b64url_decode(part, "part").expect("b64");
    let at = byte % bytes.len();
    bytes[at] ^= 0x01;
    b64url_encode(&bytes)
}

/// Tokens made from a valid RS256 example that must each be refused.
fn derived_attacks(ex: &Example, other: &Example) -> Vec<(&'static str, String, (String, String))> {
    let rsa = ex.rsa.clone().expect("RSA example");
    let parts: Vec<&str> = ex.compact.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let none_header = b64url_encode(br#"{"alg":"none"}"#);
    let hs_header = b64url_encode(br#"{"alg":"HS256"}"#);
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, rsa.0.as_bytes());
    let hs_input = format!("{hs_header}.{p}");
    let hs_sig = aws_lc_rs::hmac::sign(&hmac_key, hs_input.as_bytes());
    vec![
        (
            "signature bit flipped",
            format!("{h}.{p}.{}", flip(s, 7)),
            rsa.clone(),
        ),
        (
            "header bit flipped",
            format!("{}.{p}.{s}", flip(h, 3)),
            rsa.clone(),
        ),
        (
            "payload bit flipped",
            format!("{h}.{}.{s}", flip(p, 5)),
            rsa.clone(),
        ),
        ("alg none", format!("{none_header}.{p}."), rsa.clone()),
        (
            "HS256 keyed with the RSA modulus",
            format!("{hs_input}.{}", b64url_encode(hs_sig.as_ref())),
            rsa.clone(),
        ),
        (
            "verified with another key",
            ex.compact.clone(),
            other.rsa.clone().expect("RSA"),
        ),
        ("signature removed", format!("{h}.{p}."), rsa.clone()),
        ("signature appended twice", format!("{h}.{p}.{s}{s}"), rsa),
    ]
}

#[test]
fn tampered_forms_of_every_rs256_example_are_refused() {
    let Some(examples) = load() else { return };
    let rs256: Vec<&Example> = examples
        .iter()
        .filter(|ex| ex.rsa.is_some() && Jws::parse(&ex.compact).is_ok())
        .collect();
    assert_eq!(rs256.len(), 2, "RFC 7515 A.2 and RFC 7520 4.1");
    let mut checked = 0;
    for (i, ex) in rs256.iter().enumerate() {
        let other = rs256[(i + 1) % rs256.len()];
        for (attack, token, rsa) in derived_attacks(ex, other) {
            let verdict = verify(&token, Some(&rsa));
            assert!(verdict.is_err(), "{}: {attack} was accepted", ex.id);
            checked += 1;
        }
    }
    println!("jose derived attacks: {checked} refused, 0 accepted");
}
