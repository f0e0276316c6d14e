//! The claim checks of `jose::hint` that only a genuinely signed hint reaches: each input is a
//! hint payload, signed here with a fixed test key (`keys/hint-signing.pk8`) under Entra's
//! header, then parsed and verified as the authorize endpoint does, with the issuer of the
//! tenant the payload claims.
//!
//! Checks that nothing panics, that a genuine signature is never refused, and that an accepted
//! hint comes from the onboarded tenant, names a user by lowercase GUID, has a `sub` of 1 to
//! 256 bytes, was issued within the accepted window, and reports `exp - iat` as its lifetime.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use libfuzzer_sys::fuzz_target;
use vouch::jose::hint::{EntraKey, Expectations, HintError, UnverifiedHint, is_guid};
use vouch::jose::{JwsError, b64url_encode};

const TENANT: &str = "14c2f153-90a7-4689-9db7-9543bf084dad";
const APP_ID: &str = "600b719b-3766-4dc5-95a6-3c4a8dc31885";
const CLIENT_ID: &str = "6b3c0f7e-6a1e-4c2b-9f7a-2f4f8f4c9a10";
const KID: &str = "hint-signing";
const NOW: i64 = 1_767_225_600;
const MAX_AGE: i64 = 600;
const SKEW: i64 = 300;

struct Signer {
    pair: RsaKeyPair,
    key: EntraKey,
    header: String,
}

static SIGNER: LazyLock<Signer> = LazyLock::new(|| {
    let pair = RsaKeyPair::from_pkcs8(include_bytes!("../keys/hint-signing.pk8"))
        .expect("the fuzz signing key parses");
    let public = pair.public_key();
    let key = EntraKey::from_components(
        KID.into(),
        public.modulus().big_endian_without_leading_zero(),
        public.exponent().big_endian_without_leading_zero(),
    )
    .expect("the fuzz signing key is a valid Entra key");
    let header = format!(r#"{{"typ":"JWT","alg":"RS256","kid":"{KID}"}}"#);
    Signer {
        pair,
        key,
        header: b64url_encode(header.as_bytes()),
    }
});

impl Signer {
    fn token(&self, payload: &[u8]) -> String {
        let input = format!("{}.{}", self.header, b64url_encode(payload));
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("signing succeeds");
        format!("{input}.{}", b64url_encode(&sig))
    }
}

fuzz_target!(|payload: &[u8]| {
    let token = SIGNER.token(payload);
    let Ok(hint) = UnverifiedHint::parse(&token) else {
        return;
    };
    if hint.claimed_tenant().to_ascii_lowercase() != TENANT {
        return;
    }

    let issuer = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let expect = Expectations {
        issuer: &issuer,
        audiences: &[APP_ID, CLIENT_ID],
        now: NOW,
        max_age: MAX_AGE,
        skew: SKEW,
    };
    let verified = match hint.verify(&SIGNER.key, &expect) {
        Ok(verified) => verified,
        Err(HintError::Jws(JwsError::BadSignature)) => panic!("a genuine signature was refused"),
        Err(_) => return,
    };

    assert_eq!(verified.tid, TENANT);
    assert!(is_guid(&verified.oid), "{}", verified.oid);
    assert_eq!(verified.oid, verified.oid.to_ascii_lowercase());
    assert!((1..=256).contains(&verified.sub.len()));
    assert!((NOW - MAX_AGE..=NOW + SKEW).contains(&verified.iat));

    let claims: serde_json::Value = serde_json::from_slice(payload).expect("accepted JSON");
    let exp = claims.get("exp").and_then(serde_json::Value::as_i64);
    assert_eq!(
        verified.lifetime,
        exp.and_then(|exp| exp.checked_sub(verified.iat))
    );
});
