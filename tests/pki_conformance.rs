//! External suites through vouch's certificate path: x509-limbo and NIST PKITS through a trust
//! store built from each case (webpki path validation plus vouch's CRL handling, exactly as a
//! sign-in runs them), and Wycheproof signature vectors through the signed-challenge verifier.
//!
//! Each suite prints `N passed, N failed` and compares its deviations with
//! `tests/allowlists/<suite>.txt`; no invalid case may be accepted unless an entry there gives
//! the deliberate gap behind it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{CaseResult, assert_deviations_allowed, testdata};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName};
use serde_json::Value;
use vouch::pki::challenge::{ChallengeAlgorithm, verify_challenge};
use vouch::pki::config::{
    Amr, BindingRule, EKU_CLIENT_AUTH, EKU_SERVER_AUTH, OcspPolicy, TenantScope, TrustStoreConfig,
};
use vouch::pki::{Timestamp, TrustStore, verify_chain_offline};

fn store_config(name: &str, eku: &[u8]) -> TrustStoreConfig {
    TrustStoreConfig {
        name: name.into(),
        scope: TenantScope::Shared,
        roots: Vec::new(),
        intermediates: Vec::new(),
        ekus: vec![eku.to_vec()],
        binding: BindingRule::Upn,
        amr: Amr::Sc,
        crl_files: Vec::new(),
        crl_urls: Vec::new(),
        crl_refresh_secs: 3600,
        crl_grace_secs: 0,
        ocsp: OcspPolicy::Off,
        ocsp_timeout_ms: 1000,
        enrolled: Vec::new(),
        methods: vec![vouch::factor::Method::SmartCard],
    }
}

/// Builds a store from the case's inputs and verifies `leaf` with the intermediates the client
/// would send; any failure to build the store counts as a refusal.
fn verify_case(
    config: &TrustStoreConfig,
    roots: Vec<CertificateDer<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    crls: Vec<(String, Vec<u8>)>,
    leaf: CertificateDer<'static>,
    at: Timestamp,
) -> Result<(), String> {
    let store = TrustStore::build(config, roots, Vec::new(), crls).map_err(|e| e.to_string())?;
    let mut chain = vec![leaf];
    chain.extend(intermediates);
    verify_chain_offline(&store, &chain, at)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn pem_certs(list: &Value) -> Vec<CertificateDer<'static>> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| CertificateDer::from_pem_slice(p.as_str()?.as_bytes()).ok())
        .collect()
}

/// x509-limbo: time for cases without one; every generated certificate covers it.
const LIMBO_DEFAULT_TIME: Timestamp = Timestamp(1_780_272_000);

fn limbo_case(case: &Value) -> Result<(), String> {
    let client = case["validation_kind"] == "CLIENT";
    let eku = if client {
        EKU_CLIENT_AUTH
    } else {
        EKU_SERVER_AUTH
    };
    let config = store_config("limbo", eku);
    let at = match case["validation_time"].as_str() {
        // Whole seconds are enough for every case; a fraction is dropped.
        Some(t) => {
            let t = t.replace("+00:00", "Z");
            let whole = match t.split_once('.') {
                Some((seconds, _)) => format!("{seconds}Z"),
                None => t,
            };
            Timestamp::parse(&whole).ok_or("bad validation_time")?
        }
        None => LIMBO_DEFAULT_TIME,
    };
    let roots = pem_certs(&case["trusted_certs"])
        .into_iter()
        .filter(|c| webpki::anchor_from_trusted_cert(c).is_ok())
        .collect();
    let leaf_pem = case["peer_certificate"].as_str().unwrap_or_default();
    let leaf =
        CertificateDer::from_pem_slice(leaf_pem.as_bytes()).map_err(|e| format!("leaf: {e}"))?;
    let crls = case["crls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            let der = CertificateRevocationListDer::from_pem_slice(
                p.as_str().unwrap_or_default().as_bytes(),
            );
            (
                format!("crl{i}"),
                der.map(|d| d.to_vec()).unwrap_or_default(),
            )
        })
        .collect();
    let intermediates = pem_certs(&case["untrusted_intermediates"]);
    verify_case(&config, roots, intermediates, crls, leaf.clone(), at)?;

    if client {
        return Ok(());
    }
    let name = &case["expected_peer_name"];
    let Some(value) = name["value"].as_str() else {
        return Ok(());
    };
    let server_name =
        ServerName::try_from(value.to_owned()).map_err(|e| format!("peer name: {e}"))?;
    let cert = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("{e:?}"))?;
    cert.verify_is_valid_for_subject_name(&server_name)
        .map_err(|e| format!("name: {e:?}"))
}

#[test]
fn x509_limbo_accepts_no_invalid_chain() {
    let Some(dir) = testdata("x509-limbo") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("limbo.json")).expect("limbo.json");
    let doc: Value = serde_json::from_str(&text).expect("limbo JSON");
    let mut results = Vec::new();
    let mut skipped = 0;
    for case in doc["testcases"].as_array().expect("testcases") {
        let id = case["id"].as_str().unwrap_or_default().to_owned();
        let constrained = case["signature_algorithms"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            || case["key_usage"].as_array().is_some_and(|a| !a.is_empty());
        // Of a pair that reads the same input two ways, the webpki reading applies.
        let rfc5280_twin = id.starts_with("rfc5280::")
            && case["conflicts_with"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
        if constrained || rfc5280_twin {
            skipped += 1;
            continue;
        }
        let verdict = limbo_case(case);
        let valid = case["expected_result"] == "SUCCESS";
        results.push(CaseResult {
            as_expected: verdict.is_ok() == valid,
            detail: format!("expected {}, got {verdict:?}", case["expected_result"]),
            id,
        });
    }
    println!(
        "x509-limbo: {skipped} skipped (signature-algorithm or key-usage constraints, \
         rfc5280 twins)"
    );
    assert!(results.len() > 190, "ran {} cases", results.len());
    assert_deviations_allowed("x509-limbo", &results);
}

/// PKITS's inputs other than the defaults need RFC 5280 policy processing, which webpki does
/// not do; those runs are not made.
fn pkits_default_inputs(test: &Value, defaults: &Value) -> bool {
    [
        "initial_policy_set",
        "initial_explicit_policy",
        "initial_policy_mapping_inhibit",
        "initial_inhibit_any_policy",
    ]
    .iter()
    .all(|k| test[k] == defaults[k])
}

#[test]
fn nist_pkits_accepts_no_invalid_path_outside_documented_gaps() {
    let Some(dir) = testdata("pkits") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("pkits.json")).expect("pkits.json");
    let doc: Value = serde_json::from_str(&text).expect("pkits JSON");
    let at = Timestamp::parse("2011-04-15T00:00:00Z").unwrap();
    let read = |sub: &str, name: &str, ext: &str| {
        std::fs::read(dir.join(sub).join(format!("{name}.{ext}"))).expect(name)
    };

    let mut results = Vec::new();
    for test in doc["tests"].as_array().expect("tests") {
        if !pkits_default_inputs(test, &doc["defaults"]) {
            continue;
        }
        let names: Vec<&str> = test["certs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let certs: Vec<CertificateDer<'static>> = names
            .iter()
            .map(|n| CertificateDer::from(read("certs", n, "crt")))
            .collect();
        let crls = test["crls"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .map(|n| (n.to_owned(), read("crls", n, "crl")))
            .collect();
        let (leaf, intermediates) = (
            certs[certs.len() - 1].clone(),
            certs[1..certs.len() - 1].to_vec(),
        );
        let config = store_config("pkits", EKU_CLIENT_AUTH);
        let verdict = verify_case(
            &config,
            vec![certs[0].clone()],
            intermediates,
            crls,
            leaf,
            at,
        );
        let valid = test["expected_valid"] == true;
        let id = match test["subpart"].as_str() {
            Some(part) => format!("{}{part}", test["id"].as_str().unwrap_or_default()),
            None => test["id"].as_str().unwrap_or_default().to_owned(),
        };
        results.push(CaseResult {
            as_expected: verdict.is_ok() == valid,
            detail: format!("{} (expected valid: {valid}): {verdict:?}", test["title"]),
            id,
        });
    }
    assert!(results.len() > 200, "ran {} tests", results.len());
    assert_deviations_allowed("pkits", &results);
}

/// The Wycheproof files for the challenge verifier's algorithms; the PSS salt and MGF of each
/// group must be those the verifier uses (salt length = hash length, MGF1 with the same hash).
fn challenge_algorithm(group: &Value, file: &str) -> Option<ChallengeAlgorithm> {
    use ChallengeAlgorithm as A;
    let sha = group["sha"].as_str().unwrap_or_default();
    let p1363 = file.contains("p1363");
    Some(match (group["type"].as_str()?, sha) {
        ("RsassaPkcs1Verify", "SHA-256") => A::RsaPkcs1Sha256,
        ("RsassaPkcs1Verify", "SHA-384") => A::RsaPkcs1Sha384,
        ("RsassaPkcs1Verify", "SHA-512") => A::RsaPkcs1Sha512,
        ("RsassaPssVerify", _) => {
            let hash_len = match sha {
                "SHA-256" => 32,
                "SHA-384" => 48,
                "SHA-512" => 64,
                _ => return None,
            };
            if group["mgfSha"] != sha || group["sLen"] != hash_len || group["mgf"] != "MGF1" {
                return None;
            }
            match sha {
                "SHA-256" => A::RsaPssSha256,
                "SHA-384" => A::RsaPssSha384,
                _ => A::RsaPssSha512,
            }
        }
        ("EcdsaVerify" | "EcdsaP1363Verify", _) => {
            let curve = group["publicKey"]["curve"].as_str()?;
            match (curve, sha, p1363) {
                ("secp256r1", "SHA-256", false) => A::EcdsaP256Sha256Der,
                ("secp256r1", "SHA-256", true) => A::EcdsaP256Sha256P1363,
                ("secp384r1", "SHA-384", false) => A::EcdsaP384Sha384Der,
                ("secp384r1", "SHA-384", true) => A::EcdsaP384Sha384P1363,
                _ => return None,
            }
        }
        ("EddsaVerify", _) => A::Ed25519,
        _ => return None,
    })
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or_default())
        .collect()
}

#[test]
fn wycheproof_signatures_verify_in_the_challenge_verifier_exactly_when_valid() {
    let Some(dir) = testdata("wycheproof") else {
        return;
    };
    let files = [
        "rsa_signature_2048_sha256_test.json",
        "rsa_signature_2048_sha384_test.json",
        "rsa_signature_2048_sha512_test.json",
        "rsa_signature_3072_sha256_test.json",
        "rsa_signature_3072_sha384_test.json",
        "rsa_signature_3072_sha512_test.json",
        "rsa_signature_4096_sha256_test.json",
        "rsa_signature_4096_sha384_test.json",
        "rsa_signature_4096_sha512_test.json",
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        "rsa_pss_2048_sha384_mgf1_48_test.json",
        "rsa_pss_3072_sha256_mgf1_32_test.json",
        "rsa_pss_4096_sha256_mgf1_32_test.json",
        "rsa_pss_4096_sha384_mgf1_48_test.json",
        "rsa_pss_4096_sha512_mgf1_64_test.json",
        "rsa_pss_misc_test.json",
        "ecdsa_secp256r1_sha256_test.json",
        "ecdsa_secp256r1_sha256_p1363_test.json",
        "ecdsa_secp384r1_sha384_test.json",
        "ecdsa_secp384r1_sha384_p1363_test.json",
        "ed25519_test.json",
    ];
    let mut results = Vec::new();
    let mut groups_not_run = 0;
    for file in files {
        let text = std::fs::read_to_string(dir.join("testvectors_v1").join(file)).expect(file);
        let doc: Value = serde_json::from_str(&text).expect(file);
        for (g, group) in doc["testGroups"]
            .as_array()
            .expect("groups")
            .iter()
            .enumerate()
        {
            let Some(algorithm) = challenge_algorithm(group, file) else {
                groups_not_run += 1;
                continue;
            };
            let spki = hex(group["publicKeyDer"].as_str().unwrap_or_default());
            for test in group["tests"].as_array().expect("tests") {
                let msg = hex(test["msg"].as_str().unwrap_or_default());
                let sig = hex(test["sig"].as_str().unwrap_or_default());
                let verdict = verify_challenge(&spki, algorithm, &msg, &sig);
                // "acceptable" vectors are legal either way; vouch's outcome is recorded as is.
                let expected = match test["result"].as_str() {
                    Some("valid") => Some(true),
                    Some("invalid") => Some(false),
                    _ => None,
                };
                results.push(CaseResult {
                    id: format!(
                        "{}/{g}/{}",
                        file.trim_end_matches("_test.json"),
                        test["tcId"]
                    ),
                    as_expected: expected.is_none_or(|e| verdict.is_ok() == e),
                    detail: format!("{} ({}): {verdict:?}", test["comment"], test["result"]),
                });
            }
        }
    }
    println!(
        "wycheproof-challenge: {groups_not_run} groups not run (PSS parameters other than \
         salt = hash, MGF1 same hash)"
    );
    let invalid_accepted = results
        .iter()
        .filter(|r| !r.as_expected && r.detail.contains("(\"invalid\"): Ok"))
        .count();
    assert_eq!(invalid_accepted, 0, "an invalid signature was accepted");
    assert!(results.len() > 4000, "ran {} vectors", results.len());
    assert_deviations_allowed("wycheproof-challenge", &results);
}
