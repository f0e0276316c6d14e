//! Compact JWS splitting, header rules and base64url decoding (`jose::Compact::split`,
//! `jose::Jws::parse`, `jose::b64url_decode`) on arbitrary text.
//!
//! Checks that nothing panics; that splitting accepts exactly the tokens of three parts within
//! the size limit, and that the parts rebuild the token and its signing input; that a header
//! `Jws::parse` accepts is, read again by `serde_json` alone, an object with `alg` RS256, no
//! `crit` and the same `kid`, whichever buffer it was decoded in; and that base64url decoding
//! is canonical: whatever decodes encodes back to the same text.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vouch::jose::{
    Compact, CompactError, Jws, JwsError, MAX_COMPACT_LEN, b64url_decode, b64url_encode,
};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let split = Compact::split(token);
    check_split(token, &split);
    if token.len() <= MAX_COMPACT_LEN {
        token.split('.').for_each(check_base64);
    }

    match Jws::parse(token) {
        Ok(jws) => check_header(&jws),
        Err(JwsError::Compact(
            e @ (CompactError::TooLong { .. } | CompactError::WrongPartCount { .. }),
        )) => {
            assert_eq!(split.unwrap_err(), e);
        }
        Err(_) => assert!(split.is_ok()),
    }
});

fn check_split(token: &str, split: &Result<Compact<'_>, CompactError>) {
    match split {
        Ok(c) => {
            assert!(token.len() <= MAX_COMPACT_LEN);
            assert_eq!(format!("{}.{}.{}", c.header, c.payload, c.signature), token);
            assert_eq!(c.signing_input, format!("{}.{}", c.header, c.payload));
        }
        Err(CompactError::TooLong { len, max }) => {
            assert_eq!((*len, *max), (token.len(), MAX_COMPACT_LEN));
            assert!(*len > *max);
        }
        Err(CompactError::WrongPartCount { parts }) => {
            assert_eq!(*parts, token.split('.').count());
            assert_ne!(*parts, 3);
        }
        Err(other) => panic!("splitting decodes nothing, yet failed with {other}"),
    }
}

fn check_base64(text: &str) {
    if let Ok(bytes) = b64url_decode(text, "part") {
        assert_eq!(b64url_encode(&bytes), text);
    }
}

fn check_header(jws: &Jws<'_>) {
    let bytes = b64url_decode(jws.compact.header, "header").expect("an accepted header decodes");
    let header: Value = serde_json::from_slice(&bytes).expect("an accepted header is JSON");
    assert_eq!(header["alg"], "RS256");
    assert!(header.get("crit").is_none_or(Value::is_null));

    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .filter(|kid| !kid.is_empty());
    assert_eq!(jws.kid.as_deref(), kid);
    assert_eq!(
        jws.payload().is_ok(),
        b64url_decode(jws.compact.payload, "payload").is_ok()
    );
}
