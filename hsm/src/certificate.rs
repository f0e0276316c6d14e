//! The X.509 certificate published for a signing key: what the JWKS and the operator need
//! from it, and the check that it belongs to the key that signs.
//!
//! Only RSA keys sign vouch's tokens (RS256, RFC 7518 §3.3), so a certificate for any other
//! kind of key is refused here rather than published.

use std::path::Path;

use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::public_key::PublicKey;

/// The parts of a certificate vouch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub der: Vec<u8>,
    /// The subject as an RFC 4514 string, e.g. `CN=vouch token signing`.
    pub subject: String,
    /// Unix seconds of `notAfter` (RFC 5280 §4.1.2.5).
    pub not_after: i64,
    /// RSA modulus, big-endian without leading zeros.
    pub modulus: Vec<u8>,
    /// RSA public exponent, big-endian without leading zeros.
    pub exponent: Vec<u8>,
}

impl CertificateInfo {
    /// Parses a DER certificate whose subject public key is RSA.
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, String> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let spki = cert.public_key();
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err("the certificate's key is not RSA; vouch signs with RS256".into());
        };
        Ok(CertificateInfo {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            not_after: cert.validity().not_after.timestamp(),
            modulus: strip_zeros(rsa.modulus).to_vec(),
            exponent: strip_zeros(rsa.exponent).to_vec(),
        })
    }

    /// Reads the first certificate of a PEM file.
    pub fn from_pem_file(path: &Path) -> Result<CertificateInfo, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
            .map_err(|e| format!("holds no PEM certificate: {e}"))?;
        if pem.label != "CERTIFICATE" {
            return Err(format!(
                "holds a {:?} where a CERTIFICATE belongs",
                pem.label
            ));
        }
        CertificateInfo::from_der(&pem.contents)
    }

    /// Whether the certificate is for the RSA key with this modulus and exponent.
    pub fn matches(&self, modulus: &[u8], exponent: &[u8]) -> bool {
        self.modulus == strip_zeros(modulus) && self.exponent == strip_zeros(exponent)
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncated_certificates_are_refused_with_a_reason() {
        assert!(CertificateInfo::from_der(b"").is_err());
        assert!(CertificateInfo::from_der(b"\x30\x82\xff\xff").is_err());
        assert!(CertificateInfo::from_der(&[0x30; 64]).is_err());
    }

    #[test]
    fn leading_zeros_do_not_make_a_different_key() {
        let info = CertificateInfo {
            der: vec![],
            subject: String::new(),
            not_after: 0,
            modulus: vec![0xc1, 2],
            exponent: vec![1, 0, 1],
        };
        assert!(info.matches(&[0, 0xc1, 2], &[1, 0, 1]));
        assert!(!info.matches(&[0xc1, 3], &[1, 0, 1]));
    }
}
