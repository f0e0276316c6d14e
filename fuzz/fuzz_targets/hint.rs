//! Entra's `id_token_hint` check, `jose::hint`, on arbitrary tokens, verified against a fixed
//! RSA-2048 key whose private half was never kept (`keys/verify-only.jwks`).
//!
//! Checks that parsing and verifying never panic, that a parsed hint has a non-empty `kid`,
//! and that verifying never accepts and never fails past the signature: no input can carry a
//! valid RS256 signature by that key, and the claims are read only once the signature holds.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vouch::entra::keys::KeySet;
use vouch::jose::hint::{Expectations, HintError, UnverifiedHint};
use vouch::jose::{CompactError, JwsError};

const ISSUER: &str = "https://login.microsoftonline.com/14c2f153-90a7-4689-9db7-9543bf084dad/v2.0";
const APP_ID: &str = "600b719b-3766-4dc5-95a6-3c4a8dc31885";
const NOW: i64 = 1_767_225_600;

static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    KeySet::from_jwks(include_bytes!("../keys/verify-only.jwks")).expect("the fuzz key parses")
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(hint) = UnverifiedHint::parse(token) else {
        return;
    };
    assert!(!hint.kid().is_empty());

    let expect = Expectations {
        issuer: ISSUER,
        audiences: &[APP_ID],
        now: NOW,
        max_age: 600,
        skew: 300,
    };
    let key = KEYS.get("verify-only").expect("the fuzz key is in its set");
    match hint.verify(key, &expect) {
        Ok(verified) => panic!("a hint no one could sign was accepted: {verified:?}"),
        Err(HintError::Jws(JwsError::BadSignature)) => {}
        Err(HintError::Jws(JwsError::Compact(CompactError::BadBase64 { part: "signature" }))) => {}
        Err(other) => panic!("refused past the signature: {other}"),
    }
});
