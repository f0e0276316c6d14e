//! The `id_token` vouch posts back to Entra (protocol reference §5.2).
//!
//! `aud` is the request's `client_id`, `sub` the hint's `sub`, `acr` one requested string and
//! `amr` an array of exactly one method; `nonce` appears only when the request carried one.

use serde::Serialize;

use super::b64url_encode;

#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub sub: &'a str,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    pub acr: &'a str,
    pub amr: [&'a str; 1],
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// The `header.payload` text to be signed.
pub fn signing_input(kid: &str, claims: &IdTokenClaims<'_>) -> String {
    let header = Header {
        alg: "RS256",
        typ: "JWT",
        kid,
    };
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(claims).unwrap_or_default();

    let mut out = b64url_encode(&header);
    out.push('.');
    out.push_str(&b64url_encode(&payload));
    out
}

/// Appends the signature to a signing input, giving the compact JWS.
pub fn assemble(mut signing_input: String, signature: &[u8]) -> String {
    signing_input.push('.');
    signing_input.push_str(&b64url_encode(signature));
    signing_input
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::b64url_decode;

    fn claims(nonce: Option<&str>) -> IdTokenClaims<'_> {
        IdTokenClaims {
            iss: "https://mfa.example.com",
            aud: "client",
            sub: "s\"ub",
            iat: 10,
            nbf: 10,
            exp: 310,
            nonce,
            acr: "possessionorinherence",
            amr: ["otp"],
        }
    }

    fn payload(input: &str) -> serde_json::Value {
        let part = input.split('.').nth(1).expect("payload part");
        serde_json::from_slice(&b64url_decode(part, "payload").expect("b64")).expect("json")
    }

    #[test]
    fn amr_is_an_array_and_acr_a_string() {
        let p = payload(&signing_input("kid", &claims(Some("n"))));
        assert_eq!(p["amr"], serde_json::json!(["otp"]));
        assert_eq!(p["acr"], "possessionorinherence");
        assert_eq!(p["nonce"], "n");
        assert_eq!(p["sub"], "s\"ub");
    }

    #[test]
    fn nonce_is_absent_rather_than_empty_when_the_request_had_none() {
        let p = payload(&signing_input("kid", &claims(None)));
        assert!(p.get("nonce").is_none());
    }

    #[test]
    fn header_names_rs256_and_the_kid() {
        let input = signing_input("abc_-", &claims(None));
        let h = input.split('.').next().expect("header");
        let h: serde_json::Value =
            serde_json::from_slice(&b64url_decode(h, "header").expect("b64")).expect("json");
        assert_eq!(
            h,
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "abc_-"})
        );
    }
}
