//! JSON Web Signature handling for the two tokens vouch touches: the `id_token_hint` that
//! Entra signs and the `id_token` vouch signs back.
//!
//! Both are RS256 compact JWS (RFC 7515 §7.1). The parsing here is written by hand rather than
//! through a general JWT crate because the hint is the hottest input of the appliance. The
//! decoder borrows from the token, decodes the header and signature into stack buffers, reads
//! each part once, and verifies with a key parsed when the key set was fetched. In the
//! `hot_paths` bench (group `hint`, RSA-2048, on a shared two-core machine) that validates a
//! hint at 0.89 to 0.91 of the rate of the bare aws-lc-rs verify, where the `jsonwebtoken`
//! crate, which parses the key and the claims again for every token, reaches 0.70. The rest
//! is about a microsecond of base64 and serde_json work on the three parts.

pub mod hint;
pub mod token;

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use hint::EntraKey;

/// The largest compact JWS accepted anywhere in vouch.
pub const MAX_COMPACT_LEN: usize = 16 * 1024;
/// Stack room for a decoded header; longer headers are decoded onto the heap.
const HEADER_BUF: usize = 512;
/// Stack room for a decoded signature: an RSA-8192 signature, the largest key accepted.
const SIGNATURE_BUF: usize = 1024;

/// A compact JWS split into its three parts, each still base64url text.
#[derive(Debug, Clone, Copy)]
pub struct Compact<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
    /// `header.payload`, the bytes the signature covers (RFC 7515 §5.2).
    pub signing_input: &'a str,
}

/// Why a compact JWS could not even be split and decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    #[error("token is {len} bytes; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
    #[error("token has {parts} dot-separated parts; a compact JWS has exactly 3")]
    WrongPartCount { parts: usize },
    #[error("token {part} is not unpadded base64url")]
    BadBase64 { part: &'static str },
}

impl<'a> Compact<'a> {
    pub fn split(token: &'a str) -> Result<Self, CompactError> {
        if token.len() > MAX_COMPACT_LEN {
            return Err(CompactError::TooLong {
                len: token.len(),
                max: MAX_COMPACT_LEN,
            });
        }

        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CompactError::WrongPartCount {
                parts: token.split('.').count(),
            });
        };

        let signing_input = &token[..header.len() + 1 + payload.len()];
        Ok(Self {
            header,
            payload,
            signature,
            signing_input,
        })
    }
}

/// Why a compact JWS was refused before or at its signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    #[error(transparent)]
    Compact(#[from] CompactError),
    #[error("token header is not a JSON object of the expected shape: {detail}")]
    BadHeader { detail: String },
    #[error("token is signed with {alg}; only RS256 is accepted")]
    Algorithm { alg: String },
    #[error("token header marks extensions critical ({names}); none are supported")]
    CriticalHeader { names: String },
    #[error("token signature does not verify")]
    BadSignature,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<Vec<String>>,
}

/// A compact JWS whose header passed vouch's rules: UTF-8 JSON throughout, members it ignores
/// included (RFC 7515 §5.2 step 4), `alg` RS256, and no extension marked critical (RFC 7515
/// §4.1.11). Headers such as `jku`, `x5u` and `jwk` are ignored, never followed. The signature
/// is not yet checked.
#[derive(Debug, Clone)]
pub struct Jws<'a> {
    pub compact: Compact<'a>,
    /// The header's `kid`, if it has a non-empty one.
    pub kid: Option<String>,
}

impl<'a> Jws<'a> {
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        let compact = Compact::split(token)?;
        let mut buf = [0u8; HEADER_BUF];
        let bytes = b64url_decode_into(compact.header, "header", &mut buf)?;
        let bad = |detail: String| JwsError::BadHeader { detail };
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(e.to_string()))?;
        let header: Header<'_> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if header.alg != "RS256" {
            return Err(JwsError::Algorithm {
                alg: truncate(&header.alg),
            });
        }
        if let Some(crit) = header.crit {
            return Err(JwsError::CriticalHeader {
                names: truncate(&crit.join(",")),
            });
        }
        let kid = header
            .kid
            .filter(|kid| !kid.is_empty())
            .map(Cow::into_owned);
        Ok(Self { compact, kid })
    }

    pub fn payload(&self) -> Result<Vec<u8>, JwsError> {
        Ok(b64url_decode(self.compact.payload, "payload")?)
    }

    /// Checks the RS256 signature over the signing input with `key`.
    pub fn verify(&self, key: &EntraKey) -> Result<(), JwsError> {
        self.compact.verify(key)
    }
}

impl Compact<'_> {
    /// Checks the RS256 signature over the signing input with `key`; the header is not read.
    pub fn verify(&self, key: &EntraKey) -> Result<(), JwsError> {
        let mut buf = [0u8; SIGNATURE_BUF];
        let sig = b64url_decode_into(self.signature, "signature", &mut buf)?;
        if key.verify(self.signing_input.as_bytes(), &sig) {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// Keeps attacker-supplied strings short in errors and logs.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Decodes unpadded base64url strictly: padding, whitespace and the standard alphabet are
/// refused, so that one token has exactly one encoding.
pub fn b64url_decode(text: &str, part: &'static str) -> Result<Vec<u8>, CompactError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| CompactError::BadBase64 { part })
}

/// Decodes as [`b64url_decode`] does, into `buf` when the result fits there.
fn b64url_decode_into<'b>(
    text: &str,
    part: &'static str,
    buf: &'b mut [u8],
) -> Result<Cow<'b, [u8]>, CompactError> {
    if base64::decoded_len_estimate(text.len()) > buf.len() {
        return b64url_decode(text, part).map(Cow::Owned);
    }
    let len = URL_SAFE_NO_PAD
        .decode_slice(text, buf)
        .map_err(|_| CompactError::BadBase64 { part })?;
    Ok(Cow::Borrowed(&buf[..len]))
}

pub fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_parts_and_keeps_the_signing_input() {
        let c = Compact::split("aGVhZA.cGF5.c2ln").expect("three parts");
        assert_eq!(c.signing_input, "aGVhZA.cGF5");
        assert_eq!(c.signature, "c2ln");
    }

    #[test]
    fn refuses_jwe_shaped_and_truncated_tokens() {
        assert_eq!(
            Compact::split("a.b.c.d.e").unwrap_err(),
            CompactError::WrongPartCount { parts: 5 }
        );
        assert_eq!(
            Compact::split("a.b").unwrap_err(),
            CompactError::WrongPartCount { parts: 2 }
        );
        assert_eq!(
            Compact::split("").unwrap_err(),
            CompactError::WrongPartCount { parts: 1 }
        );
    }

    #[test]
    fn refuses_oversized_tokens_before_looking_inside() {
        let big = "a".repeat(MAX_COMPACT_LEN + 1);
        assert!(matches!(
            Compact::split(&big),
            Err(CompactError::TooLong { .. })
        ));
    }

    #[test]
    fn refuses_a_header_that_is_not_utf8_even_in_a_member_vouch_ignores() {
        let header = b"{\"alg\":\"RS256\",\"kid\":\"k\",\"x\":\"\xff\"}";
        let token = format!("{}.e30.c2ln", b64url_encode(header));
        let err = Jws::parse(&token).unwrap_err();
        assert!(matches!(err, JwsError::BadHeader { .. }), "{err}");
    }

    #[test]
    fn base64url_refuses_padding_and_standard_alphabet() {
        assert!(b64url_decode("YQ==", "payload").is_err());
        assert!(b64url_decode("a+b/", "payload").is_err());
        assert!(b64url_decode("a b", "payload").is_err());
        assert_eq!(b64url_decode("YQ", "payload").expect("valid"), b"a");
    }

    #[test]
    fn decoding_into_a_buffer_agrees_with_decoding_onto_the_heap() {
        let long = b64url_encode(&[0xa5; 700]);
        for text in [
            "",
            "YQ",
            "YR",
            "YQ==",
            "a+b/",
            "a b",
            "Y",
            "YWJj",
            long.as_str(),
        ] {
            let mut buf = [0u8; 16];
            let into = b64url_decode_into(text, "part", &mut buf).map(|b| b.into_owned());
            assert_eq!(into, b64url_decode(text, "part"), "{text}");
        }
    }
}
