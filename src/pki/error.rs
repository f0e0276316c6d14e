//! What can go wrong with a certificate, split by who is at fault.
//!
//! A [`Refusal`] is the certificate's fault: the sign-in fails and the user is told to use
//! another card. An [`Outage`] is the appliance's: the revocation data it needs is stale or
//! unreachable, so it cannot decide, and the flow answers `temporarily_unavailable` instead of
//! passing or refusing a certificate it could not check. Every message names what was wrong and
//! what would fix it.

use std::fmt;

use super::time::Timestamp;

/// Why a certificate could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The certificate is not acceptable; another attempt with it will fail the same way.
    #[error("certificate refused: {0}")]
    Refused(#[from] Refusal),
    /// Revocation status could not be established; the same certificate may pass later.
    #[error("revocation status unavailable: {0}")]
    Outage(#[from] Outage),
}

impl CertificateError {
    /// Whether the flow should answer `temporarily_unavailable` rather than refuse.
    pub fn is_outage(&self) -> bool {
        matches!(self, CertificateError::Outage(_))
    }
}

/// The certificate itself is the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("no certificate was presented")]
    Empty,
    #[error("{count} certificates presented; at most {max} are read")]
    TooManyCertificates { count: usize, max: usize },
    #[error("certificate {index} in the chain is not valid DER: {detail}")]
    Malformed { index: usize, detail: String },
    #[error("expired on {not_after}; the user needs a renewed certificate")]
    Expired { not_after: Timestamp },
    #[error("not valid before {not_before}; check the card or the appliance clock")]
    NotYetValid { not_before: Timestamp },
    #[error("revoked on {revoked_at}{} by {source_name}", reason_suffix(reason))]
    Revoked {
        serial: String,
        revoked_at: Timestamp,
        reason: Option<String>,
        source_name: String,
    },
    #[error(
        "unknown issuer: no path from issuer {issuer} to a root of trust store {store}; \
         add its CA to the store if it should be trusted"
    )]
    UnknownIssuer { issuer: String, store: String },
    #[error("a signature in the chain does not verify (issuer {issuer})")]
    BadSignature { issuer: String },
    #[error("wrong extended key usage: needs one of {allowed}; the certificate has {present}")]
    WrongEku { allowed: String, present: String },
    #[error("no binding for the user: {detail}")]
    NoBinding { detail: String },
    #[error("path building gave up ({limit}); the chain is too long or loops")]
    BudgetExceeded { limit: &'static str },
    #[error("trust store {store} does not serve tenant {tid}")]
    WrongTenant { store: String, tid: String },
    #[error(
        "no revocation information covers the certificate issued by {issuer}; \
         configure a CRL or OCSP for that CA"
    )]
    RevocationUnknown { issuer: String },
    #[error("the chain is not valid: {detail}")]
    InvalidPath { detail: String },
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// The appliance cannot decide right now; nothing is wrong with the certificate as far as known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Outage {
    #[error(
        "CRL {source_name} is stale: next update was due {next_update}, grace ended {grace_end}; \
         check that its distribution point is reachable"
    )]
    StaleCrl {
        source_name: String,
        next_update: Timestamp,
        grace_end: Timestamp,
    },
    #[error(
        "the CRL covering issuer {issuer} could not be loaded ({sources} source(s) failing); \
         see `vouch crl status`"
    )]
    CrlUnavailable { issuer: String, sources: usize },
    #[error("OCSP is required but responder {responder} gave no usable answer: {detail}")]
    OcspUnavailable { responder: String, detail: String },
}

/// A trust store or revocation source that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{path}: cannot read: {detail}")]
    Read { path: String, detail: String },
    #[error("{path}: {detail}")]
    Certificate { path: String, detail: String },
    #[error("CRL {source_name}: {detail}")]
    Crl { source_name: String, detail: String },
    #[error("{url}: {detail}")]
    Fetch { url: String, detail: String },
}

/// Hex of a serial number or digest, as operators see it in other tools.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
