//! What a certificate says about itself, read once with x509-parser: names, validity, key,
//! extensions. Path validation never relies on this: webpki decides whether a chain is valid;
//! this module feeds the binding to the user, messages, the revocation lookups and
//! `vouch cert inspect`.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_PKIX_ACCESS_DESCRIPTOR_OCSP, OID_X509_EXT_EXTENDED_KEY_USAGE};
use x509_parser::prelude::X509Certificate;

use super::config::oid_text;
use super::error::{Hex, LoadError};
use super::signed::{self, read_tlv};
use super::time::Timestamp;

/// The most certificates read from one chain file or one client.
pub const MAX_CHAIN_CERTIFICATES: usize = 16;
/// The largest certificate read.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// The Microsoft UPN otherName, 1.3.6.1.4.1.311.20.2.3.
const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

/// The parts of a certificate vouch reads outside path validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// UPNs from SAN otherName 1.3.6.1.4.1.311.20.2.3.
    pub upns: Vec<String>,
    pub emails: Vec<String>,
    pub dns_names: Vec<String>,
    /// Key purposes as names or dotted OIDs; `None` when the extension is absent.
    pub ekus: Option<Vec<String>>,
    pub key_type: String,
    pub is_ca: bool,
    /// Whether the key usage, if present, allows signing CRLs (RFC 5280 §4.2.1.3).
    pub may_sign_crls: bool,
    /// Whether the key usage, if present, allows signing certificates.
    pub may_sign_certs: bool,
    pub has_name_constraints: bool,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_responders: Vec<String>,
    pub sha256: [u8; 32],
}

impl CertificateFacts {
    pub fn read(der: &[u8]) -> Result<CertificateFacts, String> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let validity = cert.validity();
        let mut facts = CertificateFacts {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: Hex(cert.raw_serial()).to_string(),
            not_before: Timestamp(validity.not_before.timestamp()),
            not_after: Timestamp(validity.not_after.timestamp()),
            upns: Vec::new(),
            emails: Vec::new(),
            dns_names: Vec::new(),
            ekus: None,
            key_type: key_type(&cert),
            is_ca: cert.is_ca(),
            may_sign_crls: true,
            may_sign_certs: true,
            has_name_constraints: false,
            crl_distribution_points: super::crl::certificate_dp_uris(der).unwrap_or_default(),
            ocsp_responders: Vec::new(),
            sha256: super::crl::sha256(der),
        };
        for ext in cert.extensions() {
            if ext.oid == OID_X509_EXT_EXTENDED_KEY_USAGE {
                facts.ekus = Some(eku_list(ext.value));
            }
            facts.absorb(ext.parsed_extension());
        }
        Ok(facts)
    }

    fn absorb(&mut self, ext: &ParsedExtension<'_>) {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                            if let Some(upn) = utf8_in_explicit(value) {
                                self.upns.push(upn);
                            }
                        }
                        GeneralName::RFC822Name(mail) => self.emails.push((*mail).to_owned()),
                        GeneralName::DNSName(dns) => self.dns_names.push((*dns).to_owned()),
                        _ => {}
                    }
                }
            }
            ParsedExtension::KeyUsage(ku) => {
                self.may_sign_crls = ku.crl_sign();
                self.may_sign_certs = ku.key_cert_sign();
            }
            ParsedExtension::NameConstraints(_) => self.has_name_constraints = true,
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                        && let GeneralName::URI(uri) = desc.access_location
                    {
                        self.ocsp_responders.push(uri.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
}

/// Checks that a SubjectPublicKeyInfo holds a key vouch can verify signatures with: RSA of
/// 2048 bits or more in whole bytes, EC on P-256, P-384 or P-521, or Ed25519. Other keys (DSA,
/// P-192, short RSA) are refused before they are used for anything.
pub fn check_key(spki: &[u8]) -> Result<(), String> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    const CURVES: [&[u8]; 3] = [
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        &[0x2b, 0x81, 0x04, 0x00, 0x22],
        &[0x2b, 0x81, 0x04, 0x00, 0x23],
    ];
    let malformed = || "its public key is malformed".to_owned();
    let (outer, _) = signed::expect(spki, signed::SEQUENCE).ok_or_else(malformed)?;
    let (alg, rest) = signed::expect(outer.contents, signed::SEQUENCE).ok_or_else(malformed)?;
    let (bits, _) = signed::expect(rest, signed::BIT_STRING).ok_or_else(malformed)?;
    let key = signed::bit_string_bytes(bits.contents).ok_or_else(malformed)?;
    let (oid, params) = signed::expect(alg.contents, 0x06).ok_or_else(malformed)?;
    match oid.contents {
        RSA => {
            let (rsa, _) = signed::expect(key, signed::SEQUENCE).ok_or_else(malformed)?;
            let (modulus, _) = signed::expect(rsa.contents, 0x02).ok_or_else(malformed)?;
            let n = modulus.contents;
            let n = n.strip_prefix(&[0]).unwrap_or(n);
            let size = n
                .first()
                .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
            if size < 2048 || size % 8 != 0 {
                return Err(format!(
                    "its RSA key of {size} bits is not usable (2048 or more, whole bytes)"
                ));
            }
            Ok(())
        }
        EC => match signed::read_tlv(params) {
            Some((curve, _)) if curve.tag == 0x06 && CURVES.contains(&curve.contents) => Ok(()),
            _ => Err("its EC key is not on P-256, P-384 or P-521".into()),
        },
        ED25519 => Ok(()),
        other => Err(format!(
            "its key type {} is not one vouch verifies",
            oid_text(other)
        )),
    }
}

/// `[0] EXPLICIT UTF8String`, the value of a UPN otherName.
fn utf8_in_explicit(value: &[u8]) -> Option<String> {
    let (outer, _) = signed::expect(value, 0xa0)?;
    let (inner, _) = signed::expect(outer.contents, 0x0c)?;
    String::from_utf8(inner.contents.to_vec()).ok()
}

fn eku_list(value: &[u8]) -> Vec<String> {
    let Some((seq, _)) = signed::expect(value, signed::SEQUENCE) else {
        return vec!["(malformed)".into()];
    };
    let mut out = Vec::new();
    let mut rest = seq.contents;
    while let Some((oid, next)) = read_tlv(rest) {
        out.push(oid_text(oid.contents));
        rest = next;
    }
    out
}

fn key_type(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {} bits", rsa.key_size()),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| match oid.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_owned(),
                    "1.3.132.0.34" => "P-384".to_owned(),
                    "1.3.132.0.35" => "P-521".to_owned(),
                    other => other.to_owned(),
                })
                .unwrap_or_default();
            format!("EC {curve} ({} bits)", point.key_size())
        }
        Ok(PublicKey::DSA(_)) => "DSA".into(),
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => "Ed25519".into(),
            "1.3.101.113" => "Ed448".into(),
            other => format!("unknown ({other})"),
        },
    }
}

/// Reads certificates from PEM (`CERTIFICATE` blocks) or a single DER certificate.
pub fn read_certificates(
    bytes: &[u8],
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let fail = |detail: String| LoadError::Certificate {
        path: path.to_owned(),
        detail,
    };
    if bytes.first() == Some(&0x30) {
        if bytes.len() > MAX_CERTIFICATE_BYTES {
            return Err(fail(format!("more than {MAX_CERTIFICATE_BYTES} bytes")));
        }
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(bytes) {
        let cert = item.map_err(|e| fail(format!("bad PEM: {e}")))?;
        if certs.len() == MAX_CHAIN_CERTIFICATES * 64 {
            return Err(fail("too many certificates".into()));
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(fail("no PEM CERTIFICATE block and not DER".into()));
    }
    Ok(certs)
}

/// Reads a certificate file from disk.
pub fn read_certificate_file(
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LoadError::Read {
        path: name.clone(),
        detail: e.to_string(),
    })?;
    read_certificates(&bytes, &name)
}
