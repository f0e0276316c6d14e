//! The slot's certificate: what vouch publishes in the JWKS `x5c`, and the public key every
//! card signature is checked against before it leaves the backend.

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::HsmError;

/// The modulus size vouch signs with (RS256 over an RSA-2048 key, SP 800-78-4 Table 3-1).
const RSA_BITS: usize = 2048;

/// What an operator needs to know about the slot's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    pub subject: String,
    pub not_after: String,
    pub key: String,
}

/// A parsed certificate whose key vouch can use: RSA-2048.
pub(crate) struct SlotCertificate {
    pub(crate) summary: CertificateSummary,
    /// The PKCS#1 `RSAPublicKey`, as aws-lc-rs verifies with it.
    pub(crate) rsa_public_key: Vec<u8>,
}

pub(crate) fn parse(device: &str, der: &[u8]) -> Result<SlotCertificate, HsmError> {
    let unusable = |what: String| HsmError::NotFound {
        device: device.to_owned(),
        what,
    };
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| unusable(format!("parseable X.509 certificate ({e})")))?;
    if !rest.is_empty() {
        return Err(unusable(format!(
            "single X.509 certificate ({} bytes follow it)",
            rest.len()
        )));
    }

    let spki = cert.public_key();
    let bits = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => rsa.key_size(),
        _ => 0,
    };
    if bits != RSA_BITS {
        return Err(unusable(format!(
            "certificate for an RSA-{RSA_BITS} key (the slot's certificate holds another key \
             type or size)"
        )));
    }

    Ok(SlotCertificate {
        summary: CertificateSummary {
            subject: cert.subject().to_string(),
            not_after: cert.validity().not_after.to_string(),
            key: format!("RSA-{bits}"),
        },
        rsa_public_key: spki.subject_public_key.data.to_vec(),
    })
}
