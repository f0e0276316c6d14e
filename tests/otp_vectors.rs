//! RFC 4226 HOTP and RFC 6238 TOTP vectors through vouch's OTP code, and vouch's acceptance
//! window, replay and format rules checked from every TOTP row.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{CaseResult, assert_deviations_allowed, testdata};
use serde_json::Value;
use vouch::factor::otp::{
    self, Algorithm, OtpError, STEP_SECS, TotpParams, UsedSteps, matching_step,
};

fn read(name: &str) -> Option<Value> {
    let path = testdata("otp")?.join(name);
    let text = std::fs::read_to_string(path).expect("suite file");
    Some(serde_json::from_str(&text).expect("suite JSON"))
}

fn algorithm(name: &str) -> Algorithm {
    match name {
        "SHA1" => Algorithm::Sha1,
        "SHA256" => Algorithm::Sha256,
        "SHA512" => Algorithm::Sha512,
        other => panic!("unknown algorithm {other}"),
    }
}

#[test]
fn rfc4226_hotp_vectors_give_the_published_truncation_and_code() {
    let Some(doc) = read("rfc4226_hotp.json") else {
        return;
    };
    let secret = doc["secret_ascii"].as_str().expect("secret").as_bytes();
    let digits = doc["digits"].as_u64().expect("digits") as u8;
    let results: Vec<CaseResult> = doc["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            let counter = t["counter"].as_u64().expect("counter");
            let truncated = otp::truncated(secret, counter, Algorithm::Sha1);
            let code = otp::hotp(secret, counter, Algorithm::Sha1, digits);
            let ok = u64::from(truncated) == t["truncated_decimal"].as_u64().expect("decimal")
                && code == t["hotp"].as_str().expect("hotp");
            CaseResult {
                id: format!("hotp-{counter}"),
                as_expected: ok,
                detail: format!("truncated {truncated}, code {code}"),
            }
        })
        .collect();
    assert_eq!(results.len(), 10);
    assert_deviations_allowed("otp", &results);
}

struct TotpRow {
    id: String,
    seed: Vec<u8>,
    params: TotpParams,
    time: i64,
    code: String,
}

fn totp_rows() -> Option<Vec<TotpRow>> {
    let doc = read("rfc6238_totp.json")?;
    assert_eq!(doc["time_step_seconds"], STEP_SECS);
    let digits = doc["digits"].as_u64().expect("digits") as u8;
    let rows = doc["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            let alg = t["algorithm"].as_str().expect("algorithm");
            let seed = doc["seeds"][alg]["ascii"].as_str().expect("seed");
            let time = t["unix_time"].as_i64().expect("time");
            TotpRow {
                id: format!("totp-{alg}-{time}"),
                seed: seed.as_bytes().to_vec(),
                params: TotpParams {
                    algorithm: algorithm(alg),
                    digits,
                },
                time,
                code: t["totp"].as_str().expect("totp").to_owned(),
            }
        })
        .collect();
    Some(rows)
}

#[test]
fn rfc6238_totp_vectors_give_the_published_codes() {
    let Some(rows) = totp_rows() else { return };
    assert_eq!(rows.len(), 18);
    let results: Vec<CaseResult> = rows
        .iter()
        .map(|row| {
            let code = otp::totp(&row.seed, row.params, row.time);
            CaseResult {
                id: row.id.clone(),
                as_expected: code == row.code,
                detail: format!("got {code}, want {}", row.code),
            }
        })
        .collect();
    assert_deviations_allowed("otp", &results);
}

#[test]
fn each_published_code_is_accepted_one_step_either_side_and_no_further() {
    let Some(rows) = totp_rows() else { return };
    for row in &rows {
        let step = otp::step_at(row.time);
        for offset in [-1, 0, 1] {
            let at = row.time + offset * STEP_SECS;
            let got = matching_step(&row.seed, row.params, &row.code, at);
            assert_eq!(got, Ok(step), "{} at offset {offset}", row.id);
        }
        for offset in [-2, 2] {
            let at = row.time + offset * STEP_SECS;
            let got = matching_step(&row.seed, row.params, &row.code, at);
            assert_eq!(
                got,
                Err(OtpError::Mismatch),
                "{} at offset {offset}",
                row.id
            );
        }
    }
}

#[test]
fn each_published_code_is_refused_when_replayed() {
    let Some(rows) = totp_rows() else { return };
    let used = UsedSteps::default();
    for row in &rows {
        let user = row.id.as_str();
        let step = matching_step(&row.seed, row.params, &row.code, row.time).expect("valid");
        assert_eq!(used.claim(user, step, row.time), Ok(()));
        assert_eq!(
            used.claim(user, step, row.time),
            Err(OtpError::Replayed),
            "{user}"
        );
    }
}

#[test]
fn codes_with_the_wrong_digit_count_are_refused_before_any_mac() {
    let Some(rows) = totp_rows() else { return };
    for row in &rows {
        let short = &row.code[1..];
        let long = format!("{}0", row.code);
        let six = TotpParams {
            digits: 6,
            ..row.params
        };
        for (code, params) in [
            (short, row.params),
            (long.as_str(), row.params),
            (row.code.as_str(), six),
        ] {
            let got = matching_step(&row.seed, params, code, row.time);
            assert_eq!(
                got,
                Err(OtpError::Format {
                    digits: params.digits
                }),
                "{}",
                row.id
            );
        }
    }
}
