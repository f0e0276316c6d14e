//! Verification of the `id_token_hint` Entra sends with every sign-in.
//!
//! The order follows the protocol reference (§4.4): split and size-check, header (`RS256` only,
//! `kid` required, no `crit`), read `tid` from the unverified payload only to pick the tenant's
//! key set, verify the signature, then check `iss`, `aud`, freshness on `iat` (never `exp`,
//! since Entra issues hints already expired) and the shape of `sub`, `oid` and `tid`.

use std::fmt;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::{Compact, Jws, JwsError, b64url_decode, truncate};

/// Why a hint was refused. Every variant means "do not trust this request".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HintError {
    #[error(transparent)]
    Jws(#[from] JwsError),
    #[error("hint payload is not valid JSON of the expected shape: {detail}")]
    BadPayload { detail: String },
    #[error("hint header has no kid")]
    MissingKid,
    #[error("hint claim {claim} is missing or malformed")]
    BadClaim { claim: &'static str },
    #[error("hint iss {found} is not the issuer {expected} of its tenant")]
    Issuer { found: String, expected: String },
    #[error("hint aud {found} is not this tenant's App ID")]
    Audience { found: String },
    #[error("hint was issued {seconds} s in the future")]
    FromFuture { seconds: i64 },
    #[error("hint was issued {seconds} s ago; at most {max} s is accepted")]
    TooOld { seconds: i64, max: i64 },
    #[error("hint is not valid before a time {seconds} s in the future")]
    NotYetValid { seconds: i64 },
}

/// The checks that depend on the tenant the hint claims to come from.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// `https://{authority-host}/{tid}/v2.0` for the tenant.
    pub issuer: &'a str,
    /// The App ID, and optionally the Client ID, that `aud` may carry.
    pub audiences: &'a [&'a str],
    pub now: i64,
    pub max_age: i64,
    pub skew: i64,
}

/// One of Entra's signing keys, parsed once when the key set was fetched.
pub struct EntraKey {
    pub kid: String,
    key: ParsedPublicKey,
}

impl std::fmt::Debug for EntraKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl EntraKey {
    /// Builds a key from the big-endian modulus and exponent of a JWK (RFC 7518 §6.3.1).
    /// Moduli outside 2048 to 8192 bits are refused.
    pub fn from_components(kid: String, n: &[u8], e: &[u8]) -> Option<Self> {
        let n = &n[n.iter().take_while(|b| **b == 0).count()..];
        if !(256..=1024).contains(&n.len()) {
            return None;
        }
        let components = RsaPublicKeyComponents { n, e };
        let key = components
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .ok()?;
        Some(Self { kid, key })
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        self.key.verify_sig(message, sig).is_ok()
    }
}

/// `aud`: one string or an array of them (RFC 7519 §4.1.3), read in one pass.
#[derive(Debug, Clone)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AudienceVisitor)
    }
}

struct AudienceVisitor;

impl<'de> Visitor<'de> for AudienceVisitor {
    type Value = Audience;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, aud: &str) -> Result<Audience, E> {
        Ok(Audience::One(aud.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
        let mut list = Vec::new();
        while let Some(aud) = seq.next_element()? {
            list.push(aud);
        }
        Ok(Audience::Many(list))
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Claims {
    iss: String,
    aud: Audience,
    sub: String,
    oid: String,
    tid: String,
    iat: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    preferred_username: Option<String>,
}

/// A hint whose header and payload parsed, but whose signature is not yet checked.
#[derive(Debug)]
pub struct UnverifiedHint<'a> {
    compact: Compact<'a>,
    kid: String,
    claims: Claims,
}

/// What a verified hint establishes about the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHint {
    pub tid: String,
    pub oid: String,
    pub sub: String,
    pub iat: i64,
    /// `exp - iat`, logged to learn how Entra sets the hint's lifetime; `None` without `exp` or
    /// when the difference does not fit.
    pub lifetime: Option<i64>,
    pub preferred_username: Option<String>,
}

impl<'a> UnverifiedHint<'a> {
    pub fn parse(token: &'a str) -> Result<Self, HintError> {
        let Jws { compact, kid } = Jws::parse(token)?;
        let kid = kid.ok_or(HintError::MissingKid)?;
        let payload = b64url_decode(compact.payload, "payload").map_err(JwsError::from)?;
        let claims = read_claims(&payload)?;
        Ok(Self {
            compact,
            kid,
            claims,
        })
    }

    /// The tenant the unverified payload names: only for choosing a key set.
    pub fn claimed_tenant(&self) -> &str {
        &self.claims.tid
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verify(
        self,
        key: &EntraKey,
        expect: &Expectations<'_>,
    ) -> Result<VerifiedHint, HintError> {
        self.compact.verify(key)?;

        let mut claims = self.claims;
        check_shape(&claims)?;
        if claims.iss != expect.issuer {
            let found = truncate(&claims.iss);
            return Err(HintError::Issuer {
                found,
                expected: expect.issuer.to_owned(),
            });
        }
        check_audience(&claims.aud, expect.audiences)?;
        check_times(&claims, expect)?;

        claims.tid.make_ascii_lowercase();
        claims.oid.make_ascii_lowercase();
        Ok(VerifiedHint {
            lifetime: claims.exp.and_then(|exp| exp.checked_sub(claims.iat)),
            tid: claims.tid,
            oid: claims.oid,
            sub: claims.sub,
            iat: claims.iat,
            preferred_username: claims.preferred_username,
        })
    }
}

/// Parses the payload, which must be UTF-8 throughout (RFC 7519 §7.2 step 10). The whole
/// payload is checked first: serde_json's slice parser skips the check in members it ignores,
/// and its string parser then needs no per-string checks.
fn read_claims(payload: &[u8]) -> Result<Claims, HintError> {
    let bad = |detail: String| HintError::BadPayload { detail };
    let text = std::str::from_utf8(payload).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(text).map_err(|e| bad(e.to_string()))
}

fn check_shape(claims: &Claims) -> Result<(), HintError> {
    if claims.sub.is_empty() || claims.sub.len() > 256 {
        return Err(HintError::BadClaim { claim: "sub" });
    }
    if !is_guid(&claims.oid) {
        return Err(HintError::BadClaim { claim: "oid" });
    }
    if !is_guid(&claims.tid) {
        return Err(HintError::BadClaim { claim: "tid" });
    }
    Ok(())
}

fn check_audience(aud: &Audience, allowed: &[&str]) -> Result<(), HintError> {
    let ok = match aud {
        Audience::One(a) => allowed.contains(&a.as_str()),
        Audience::Many(list) => list.iter().any(|a| allowed.contains(&a.as_str())),
    };
    if ok {
        return Ok(());
    }
    let found = match aud {
        Audience::One(a) => truncate(a),
        Audience::Many(list) => truncate(&list.join(",")),
    };
    Err(HintError::Audience { found })
}

fn check_times(claims: &Claims, expect: &Expectations<'_>) -> Result<(), HintError> {
    let age = expect.now.saturating_sub(claims.iat);
    if age < -expect.skew {
        return Err(HintError::FromFuture { seconds: -age });
    }
    if age > expect.max_age {
        return Err(HintError::TooOld {
            seconds: age,
            max: expect.max_age,
        });
    }
    if let Some(nbf) = claims.nbf {
        let ahead = nbf.saturating_sub(expect.now);
        if ahead > expect.skew {
            return Err(HintError::NotYetValid { seconds: ahead });
        }
    }
    Ok(())
}

/// A GUID in its 8-4-4-4-12 hexadecimal form, as Entra writes `tid` and `oid`.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_guids_only_in_their_canonical_shape() {
        assert!(is_guid("14c2f153-90a7-4689-9db7-9543bf084dad"));
        assert!(is_guid("14C2F153-90A7-4689-9DB7-9543BF084DAD"));
        assert!(!is_guid("14c2f15390a746899db79543bf084dad"));
        assert!(!is_guid("14c2f153-90a7-4689-9db7-9543bf084daz"));
        assert!(!is_guid("{14c2f153-90a7-4689-9db7-9543bf084dad}"));
        assert!(!is_guid(""));
    }

    fn audience(aud: &str) -> Result<Audience, String> {
        let json = format!(
            r#"{{"iss":"i","aud":{aud},"sub":"s","oid":"o","tid":"t","iat":1,"name":[{{}}]}}"#
        );
        let claims: Result<Claims, _> = serde_json::from_str(&json);
        claims.map(|c| c.aud).map_err(|e| e.to_string())
    }

    #[test]
    fn audience_is_one_string_or_an_array_of_strings() {
        assert!(matches!(audience(r#""a""#), Ok(Audience::One(a)) if a == "a"));
        let many = audience(r#"["a","b\u0041"]"#);
        assert!(matches!(many, Ok(Audience::Many(list)) if list == ["a", "bA"]));
        assert!(matches!(audience("[]"), Ok(Audience::Many(list)) if list.is_empty()));
        for bad in ["1", "null", "{}", r#"["a",1]"#, r#"[["a"]]"#, "true"] {
            assert!(audience(bad).is_err(), "{bad}");
        }
    }

    fn header(json: &str) -> String {
        format!("{}.e30.c2ln", super::super::b64url_encode(json.as_bytes()))
    }

    #[test]
    fn refuses_every_algorithm_but_rs256() {
        for alg in ["none", "HS256", "RS512", "PS256", "ES256", "rs256"] {
            let token = header(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#));
            let err = UnverifiedHint::parse(&token).unwrap_err();
            let expected = HintError::Jws(JwsError::Algorithm { alg: alg.into() });
            assert_eq!(err, expected, "{alg}");
        }
    }

    #[test]
    fn refuses_a_header_without_kid_or_with_crit() {
        let err = UnverifiedHint::parse(&header(r#"{"alg":"RS256"}"#)).unwrap_err();
        assert_eq!(err, HintError::MissingKid);
        let err = UnverifiedHint::parse(&header(r#"{"alg":"RS256","kid":""}"#)).unwrap_err();
        assert_eq!(err, HintError::MissingKid);
        let crit = r#"{"alg":"RS256","kid":"k","crit":["b64"],"b64":false}"#;
        let err = UnverifiedHint::parse(&header(crit)).unwrap_err();
        assert!(matches!(
            err,
            HintError::Jws(JwsError::CriticalHeader { .. })
        ));
    }

    #[test]
    fn refuses_headers_that_are_not_json_objects() {
        for bad in ["[]", "null", "\"RS256\"", "{", r#"{"alg":1,"kid":"k"}"#] {
            let err = UnverifiedHint::parse(&header(bad)).unwrap_err();
            assert!(
                matches!(err, HintError::Jws(JwsError::BadHeader { .. })),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn refuses_duplicate_header_members() {
        let dup = r#"{"alg":"RS256","alg":"none","kid":"k"}"#;
        let err = UnverifiedHint::parse(&header(dup)).unwrap_err();
        assert!(matches!(err, HintError::Jws(JwsError::BadHeader { .. })));
    }

    #[test]
    fn a_signed_hint_with_an_exp_too_far_from_iat_has_no_lifetime() {
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

        let pair = KeyPair::generate(KeySize::Rsa2048).expect("keygen");
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero();
        let e = public.exponent().big_endian_without_leading_zero();
        let key = EntraKey::from_components("k".into(), n, e).expect("key");
        let tid = "14c2f153-90a7-4689-9db7-9543bf084dad";
        let claims = serde_json::json!({
            "iss": "i", "aud": "a", "sub": "s", "oid": tid, "tid": tid,
            "iat": 1000, "exp": i64::MIN,
        });
        let encode = super::super::b64url_encode;
        let input = format!(
            "{}.{}",
            encode(br#"{"alg":"RS256","kid":"k"}"#),
            encode(claims.to_string().as_bytes())
        );
        let mut sig = vec![0; pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .expect("sign");
        let token = format!("{input}.{}", encode(&sig));

        let expect = Expectations {
            issuer: "i",
            audiences: &["a"],
            now: 1000,
            max_age: 600,
            skew: 300,
        };
        let hint = UnverifiedHint::parse(&token).expect("parses");
        let verified = hint.verify(&key, &expect).expect("verifies");
        assert_eq!(verified.lifetime, None);
    }

    #[test]
    fn refuses_a_payload_that_is_not_utf8_even_in_a_claim_vouch_ignores() {
        let header = br#"{"alg":"RS256","kid":"k"}"#;
        let mut payload =
            br#"{"iss":"i","aud":"a","sub":"s","oid":"o","tid":"t","iat":1,"#.to_vec();
        payload.extend_from_slice(b"\"name\":\"\xff\"}");
        let encode = super::super::b64url_encode;
        let token = format!("{}.{}.c2ln", encode(header), encode(&payload));
        let err = UnverifiedHint::parse(&token).unwrap_err();
        assert!(matches!(err, HintError::BadPayload { .. }), "{err}");
    }
}
