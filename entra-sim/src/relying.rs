//! Entra as the receiver of an EAM provider's answer (protocol reference §6 and §7).
//!
//! [`RelyingParty::discover`] reads the provider's discovery document and JWKS and applies the
//! rules Entra applies to them; [`RelyingParty::validate`] checks an `id_token` the way Entra
//! does: signature with a published key matched by `kid`, `iss` equal to the discovery
//! issuer, `aud` the Client ID, `sub` the hint's, `nonce` echoed, `acr` one requested string
//! and `amr` an array of exactly one requested method.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::browser::Browser;

/// What the relying party expects of one sign-in's `id_token`.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub client_id: &'a str,
    pub sub: &'a str,
    pub nonce: Option<&'a str>,
    pub acr_values: &'a [&'a str],
    pub amr_values: &'a [&'a str],
}

/// A provider's metadata as Entra caches it.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    pub issuer: String,
    pub discovery: Value,
    pub jwks: Value,
    keys: HashMap<String, (String, String)>,
}

impl RelyingParty {
    /// Fetches discovery and JWKS from the provider the browser talks to. The `jwks_uri` is
    /// followed by its path, since in tests the issuer's host name need not resolve.
    pub async fn discover(browser: &Browser, discovery_path: &str) -> Result<RelyingParty, String> {
        let page = browser
            .get(discovery_path)
            .await
            .map_err(|e| e.to_string())?;
        if page.status != 200 {
            return Err(format!("discovery answered {}", page.status));
        }
        if page.header(header::CONTENT_LENGTH).is_none() {
            return Err("discovery was sent without Content-Length".into());
        }
        let discovery: Value =
            serde_json::from_str(&page.body).map_err(|e| format!("discovery is not JSON: {e}"))?;
        let jwks_uri = discovery["jwks_uri"].as_str().unwrap_or_default();
        let path = path_of(jwks_uri).ok_or("jwks_uri is not an https URL")?;
        let page = browser.get(path).await.map_err(|e| e.to_string())?;
        if page.status != 200 {
            return Err(format!("jwks_uri answered {}", page.status));
        }
        RelyingParty::from_documents(&discovery.to_string(), &page.body)
    }

    /// Checks the two documents the way Entra does and keeps the keys.
    pub fn from_documents(discovery: &str, jwks: &str) -> Result<RelyingParty, String> {
        let discovery: Value =
            serde_json::from_str(discovery).map_err(|e| format!("discovery is not JSON: {e}"))?;
        let issuer = check_discovery(&discovery)?;
        let jwks: Value =
            serde_json::from_str(jwks).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let keys = check_jwks(&jwks)?;
        Ok(RelyingParty {
            issuer,
            discovery,
            jwks,
            keys,
        })
    }

    /// Validates an `id_token` and returns its claims.
    pub fn validate(&self, id_token: &str, expected: &Expected<'_>) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|e| format!("header: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("token is signed with {:?}, not RS256", header.alg));
        }
        let kid = header.kid.ok_or("token header has no kid")?;
        let (n, e) = self
            .keys
            .get(&kid)
            .ok_or_else(|| format!("AADSTS50012: KeyID of token is '{kid}', not in the JWKS"))?;
        let key = DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[expected.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
            .map_err(|e| format!("token refused: {e}"))?;
        let claims = data.claims;

        if claims["sub"] != expected.sub {
            return Err(format!("sub {} is not the hint's", claims["sub"]));
        }
        match (expected.nonce, claims.get("nonce")) {
            (Some(n), Some(got)) if got == n => {}
            (None, None) => {}
            (want, got) => return Err(format!("nonce {got:?} where {want:?} was sent")),
        }
        let acr = claims["acr"]
            .as_str()
            .ok_or("AADSTS5001258: acr is not a string")?;
        if !expected.acr_values.contains(&acr) {
            return Err(format!("AADSTS5001258: acr {acr} was not requested"));
        }
        let amr = claims["amr"]
            .as_array()
            .ok_or("AADSTS5001256: amr is not an array")?;
        let [Value::String(method)] = amr.as_slice() else {
            return Err(format!("amr must hold exactly one string, holds {amr:?}"));
        };
        if !expected.amr_values.contains(&method.as_str()) {
            return Err(format!("AADSTS5001257: amr {method} was not requested"));
        }
        Ok(claims)
    }
}

fn path_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    rest.find('/').map(|i| &rest[i..])
}

fn check_discovery(doc: &Value) -> Result<String, String> {
    let issuer = doc["issuer"].as_str().ok_or("discovery has no issuer")?;
    if !issuer.starts_with("https://") || issuer.ends_with('/') || issuer.contains(['?', '#']) {
        return Err(format!("issuer {issuer} breaks Entra's issuer rules"));
    }
    for field in ["authorization_endpoint", "jwks_uri"] {
        let url = doc[field]
            .as_str()
            .ok_or(format!("discovery has no {field}"))?;
        if !url.starts_with("https://") || url.contains(['?', '#']) {
            return Err(format!("{field} {url} is not an https URL without query"));
        }
    }
    let has = |field: &str, value: &str| {
        doc[field]
            .as_array()
            .is_some_and(|list| list.iter().any(|v| v == value))
    };
    let required = [
        ("scopes_supported", "openid"),
        ("response_types_supported", "id_token"),
        ("id_token_signing_alg_values_supported", "RS256"),
    ];
    for (field, value) in required {
        if !has(field, value) {
            return Err(format!("discovery {field} lacks {value}"));
        }
    }
    if !doc["subject_types_supported"].is_array() {
        return Err("discovery has no subject_types_supported".into());
    }
    if doc.get("claim_types_supported").is_some() && !has("claim_types_supported", "normal") {
        return Err("claim_types_supported must include normal".into());
    }
    Ok(issuer.to_owned())
}

fn check_jwks(jwks: &Value) -> Result<HashMap<String, (String, String)>, String> {
    let list = jwks["keys"].as_array().ok_or("JWKS has no keys array")?;
    let mut keys = HashMap::new();
    for key in list {
        let kid = key["kid"].as_str().ok_or("a JWK has no kid")?;
        let text = |field: &str| {
            key[field]
                .as_str()
                .ok_or(format!("JWK {kid} has no {field}"))
        };
        let (n, e) = (text("n")?, text("e")?);
        for (field, value) in [("n", n), ("e", e), ("kid", kid)] {
            if URL_SAFE_NO_PAD.decode(value).is_err() {
                return Err(format!("JWK {kid} {field} is not unpadded base64url"));
            }
        }
        let x5c = key["x5c"]
            .as_array()
            .and_then(|c| c.first())
            .and_then(Value::as_str)
            .ok_or(format!("JWK {kid} has no x5c (AADSTS5001255)"))?;
        STANDARD
            .decode(x5c)
            .map_err(|_| format!("JWK {kid} x5c is not base64 DER"))?;
        if key["use"] != "sig" || key["kty"] != "RSA" {
            return Err(format!("JWK {kid} is not an RSA signing key"));
        }
        keys.insert(kid.to_owned(), (n.to_owned(), e.to_owned()));
    }
    if keys.is_empty() {
        return Err("JWKS holds no key".into());
    }
    Ok(keys)
}
