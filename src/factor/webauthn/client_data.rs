//! The client data a browser signs over (§5.8.1), and the checks of §7.1 steps 7–10 and
//! §7.2 steps 11–14.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::{RelyingParty, WebAuthnError};

/// The ceremony a client data claims to be.
pub const CREATE: &str = "webauthn.create";
pub const GET: &str = "webauthn.get";

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
    #[serde(rename = "topOrigin", default)]
    top_origin: Option<String>,
}

/// Checks that `json` is a client data of the `expected` ceremony, answering `challenge`, on
/// one of the relying party's origins, in a top-level page.
pub fn check(
    json: &[u8],
    expected: &'static str,
    challenge: &[u8],
    rp: &RelyingParty,
) -> Result<(), WebAuthnError> {
    let data: ClientData =
        serde_json::from_slice(json).map_err(|e| WebAuthnError::ClientData(e.to_string()))?;

    if data.kind != expected {
        return Err(WebAuthnError::WrongType {
            expected,
            found: data.kind,
        });
    }
    let answered = URL_SAFE_NO_PAD
        .decode(&data.challenge)
        .map_err(|_| WebAuthnError::WrongChallenge)?;
    if answered != challenge {
        return Err(WebAuthnError::WrongChallenge);
    }
    if !rp.origins.contains(&data.origin) {
        return Err(WebAuthnError::WrongOrigin(data.origin));
    }
    // The user pages are never framed (their CSP says frame-ancestors 'none'), so a
    // ceremony run in a frame is someone else's page.
    if data.cross_origin == Some(true) || data.top_origin.is_some() {
        return Err(WebAuthnError::CrossOrigin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp() -> RelyingParty {
        RelyingParty {
            id: "example.org".into(),
            origins: vec!["https://example.org".into()],
        }
    }

    fn json(kind: &str, challenge: &[u8], origin: &str, extra: &str) -> Vec<u8> {
        let challenge = URL_SAFE_NO_PAD.encode(challenge);
        format!(r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}"{extra}}}"#)
            .into_bytes()
    }

    #[test]
    fn a_matching_client_data_passes_and_unknown_members_are_ignored() {
        let data = json(GET, b"abc", "https://example.org", r#","extra":1"#);
        assert_eq!(check(&data, GET, b"abc", &rp()), Ok(()));
    }

    #[test]
    fn each_mismatch_is_refused_with_its_reason() {
        let origin = "https://example.org";
        let cases = [
            (json(CREATE, b"abc", origin, ""), "ceremony"),
            (json(GET, b"abd", origin, ""), "challenge"),
            (json(GET, b"abc", "https://example.org.evil", ""), "origin"),
            (json(GET, b"abc", "http://example.org", ""), "origin"),
            (json(GET, b"abc", origin, r#","crossOrigin":true"#), "frame"),
            (
                json(GET, b"abc", origin, r#","topOrigin":"https://x""#),
                "frame",
            ),
        ];
        for (data, why) in cases {
            let err = check(&data, GET, b"abc", &rp()).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn malformed_client_data_is_refused_without_panic() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"\xff\xfe",
            b"[]",
            br#"{"type":"webauthn.get"}"#,
            br#"{"type":1,"challenge":"YWJj","origin":"https://example.org"}"#,
            br#"{"type":"webauthn.get","challenge":"YWJj=","origin":"https://example.org"}"#,
        ];
        for input in inputs {
            assert!(check(input, GET, b"abc", &rp()).is_err());
        }
    }
}
