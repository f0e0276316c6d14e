//! WebAuthn (FIDO2) verification: the assertions a security key signs at sign-in and the
//! attestations it gives at enrolment (W3C Web Authentication Level 3).
//!
//! Written over aws-lc-rs and a CBOR decoder rather than taken from a WebAuthn library. The
//! kept Rust library (webauthn-rs-core) links OpenSSL, a system library the appliance's
//! default build must not need, and brings a second crypto stack beside aws-lc-rs; the checks
//! an EAM provider needs are a short, fixed list that the spec numbers step by step, and each
//! step below cites the one it follows. The vectors in `tests/webauthn_vectors.rs` and the
//! `webauthn` benchmark group keep it honest.
//!
//! Rules kept everywhere:
//! - the challenge, origin and RP ID come from the transaction and the configuration, never
//!   from what the browser sends;
//! - a credential is used only by the user it was enrolled for, and its signature counter
//!   must move forward unless it has always been zero;
//! - a credential's backup eligibility never changes once enrolled (§6.1.3).

pub mod assertion;
pub mod attestation_trust;
pub mod auth_data;
mod certificate;
pub mod client_data;
pub mod cose;
pub mod registration;

pub use assertion::{Assertion, StoredCredential, Verified, verify_assertion};
pub use registration::{Attestation, NewCredential, Registration, verify_registration};

/// The relying party a ceremony must be addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The RP ID: the host name the credentials are scoped to (§5.1.2).
    pub id: String,
    /// The exact origins the pages are served from, e.g. `https://mfa.example.com`.
    pub origins: Vec<String>,
}

/// Whether the authenticator must verify the user (PIN or biometric) (§5.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    #[default]
    Required,
    Preferred,
    Discouraged,
}

impl UserVerification {
    fn demands(self) -> bool {
        self == UserVerification::Required
    }
}

/// Says what is wrong with a CBOR item in words, without its bytes.
fn cbor_error<E: std::fmt::Debug>(e: ciborium::de::Error<E>) -> String {
    match e {
        ciborium::de::Error::Io(_) => "CBOR ends too soon".into(),
        ciborium::de::Error::Syntax(at) => format!("CBOR is malformed at byte {at}"),
        ciborium::de::Error::Semantic(_, what) => format!("CBOR is not as expected: {what}"),
        ciborium::de::Error::RecursionLimitExceeded => "CBOR is nested too deep".into(),
    }
}

/// Why a ceremony was refused. None of these carries the signature or the challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebAuthnError {
    #[error("the client data is not valid JSON with type, challenge and origin: {0}")]
    ClientData(String),
    #[error("the client data is for a {found:?} ceremony, not {expected:?}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("the client data answers another challenge")]
    WrongChallenge,
    #[error("the ceremony ran on origin {0:?}, which is not configured")]
    WrongOrigin(String),
    #[error("the ceremony ran inside a frame of another origin")]
    CrossOrigin,
    #[error("the authenticator data is for another RP ID")]
    WrongRpId,
    #[error("the authenticator data is malformed: {0}")]
    AuthData(&'static str),
    #[error("the credential public key is malformed or not allowed: {0}")]
    Key(String),
    #[error("COSE algorithm {0} is not supported")]
    UnsupportedAlgorithm(i64),
    #[error("the user was not present (UP flag clear)")]
    UserNotPresent,
    #[error("the user was not verified (UV flag clear) and the policy requires it")]
    UserNotVerified,
    #[error("the assertion is for another credential")]
    WrongCredential,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the signature counter went from {stored} to {received}; the key may be cloned")]
    CounterWentBack { stored: u32, received: u32 },
    #[error("the credential's backup eligibility changed since enrolment")]
    BackupEligibilityChanged,
    #[error("the attestation object is malformed: {0}")]
    AttestationObject(String),
    #[error("attestation format {0:?} is not supported")]
    UnsupportedAttestation(String),
    #[error("the attestation statement does not verify: {0}")]
    Attestation(String),
    #[error("authenticator model {0} is not on the tenant's allow-list")]
    AaguidNotAllowed(String),
    #[error("the attestation is not from a trusted authenticator vendor: {0}")]
    UntrustedAttestation(String),
}
