//! A stand-in for Microsoft Entra ID, for vouch's tests and load runs.
//!
//! It plays both of Entra's parts in an EAM sign-in, on loopback only:
//!
//! - [`authority`]: the identity provider that signs `id_token_hint`s. It has its own CA, an
//!   HTTPS server that publishes Entra-shaped discovery and key documents per tenant, and
//!   signing keys that can be rotated or made unreachable.
//! - [`relying`]: the relying party that receives vouch's `id_token` and checks it the way
//!   Entra does, through the `jsonwebtoken` crate so that the check does not share code with
//!   the appliance it checks.
//!
//! [`browser`] is the user's browser between them: an HTTPS client that posts forms and reads
//! the auto-submitting pages vouch answers with. [`authenticator`] is the user's security key.

pub mod authenticator;
pub mod authority;
pub mod browser;
pub mod relying;

pub use authority::{Authority, Failure, Identity, SigningKey};
pub use browser::{Browser, Form, Page};
pub use relying::{Expected, RelyingParty};

/// Microsoft's documented example tenant, user and App ID (protocol reference §4.2).
pub const TENANT: &str = "14c2f153-90a7-4689-9db7-9543bf084dad";
pub const USER_OID: &str = "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee";
pub const USER_SUB: &str = "mBfcvuhSHkDWVgV72x2ruIYdSsPSvcj2R0qfc6mGEAA";
pub const APP_ID: &str = "600b719b-3766-4dc5-95a6-3c4a8dc31885";
pub const CLIENT_ID: &str = "6b3c0f7e-6a1e-4c2b-9f7a-2f4f8f4c9a10";

/// The `redirect_uri` of Entra's global cloud.
pub const REDIRECT_URI: &str =
    "https://login.microsoftonline.com/common/federation/externalauthprovider";

/// The `claims` parameter Entra sends by default (protocol reference §3.3).
pub const DEFAULT_CLAIMS: &str = concat!(
    r#"{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"#,
    r#""amr":{"essential":true,"values":["face","fido","fpt","hwk","iris","otp","pop","#,
    r#""retina","sc","sms","swk","tel","vbm"]}}}"#
);

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
