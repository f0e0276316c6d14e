//! Certificate revocation lists (RFC 5280 §5): read once, indexed, and asked in O(1).
//!
//! Rules:
//! - A CRL is parsed strictly by webpki when it is loaded (version, critical extensions, CRL
//!   number, issuing distribution point; delta and indirect CRLs are refused, RFC 5280 §5.2.4
//!   and §5.2.5), so a CRL that webpki would not use is never used here either.
//! - Its revoked serials go into a hash map, so a lookup costs the same for ten entries or a
//!   million.
//! - Its signature is verified once per issuer key and remembered; a CRL whose signature does
//!   not verify under the key of the certificate's issuer does not cover that certificate.
//! - A CRL past `nextUpdate` plus the store's grace is stale: for the certificates it covers
//!   that is an outage, never a pass. A serial listed on a stale CRL is still revoked.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::pki_types::CertificateRevocationListDer;
use rustls::pki_types::pem::PemObject as _;
use webpki::BorrowedCertRevocationList;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

use super::error::{Hex, LoadError};
use super::signed::{self, SignatureProblem, SignedParts};
use super::time::Timestamp;

/// The largest CRL read: about 1.5 million entries.
pub const MAX_CRL_BYTES: usize = 64 * 1024 * 1024;

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    pub revoked_at: Timestamp,
    pub reason: Option<String>,
}

/// Which certificates a CRL speaks for, from its issuing distribution point (RFC 5280 §5.2.5).
#[derive(Debug, Clone, Default)]
struct Scope {
    only_user_certs: bool,
    only_ca_certs: bool,
    /// The URIs of the distribution point's full name; empty when it has none, and then no
    /// certificate that names distribution points is covered.
    uris: Vec<String>,
}

/// A loaded, indexed CRL.
#[derive(Debug)]
pub struct Crl {
    /// Where it came from: a file path or a URL.
    pub source: String,
    /// The issuer Name's DER contents, as webpki gives a certificate's issuer.
    issuer: Vec<u8>,
    pub issuer_text: String,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
    pub number: Option<String>,
    scope: Option<Scope>,
    revoked: HashMap<Box<[u8]>, RevokedEntry>,
    der: Vec<u8>,
    /// SHA-256 of the issuer keys its signature has verified under.
    verified_keys: RwLock<Vec<[u8; 32]>>,
}

/// A certificate's role in the path, for the CRL scope (RFC 5280 §5.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    EndEntity,
    Ca,
}

impl Crl {
    /// Reads a CRL in DER or PEM (`X509 CRL`).
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Crl, LoadError> {
        let fail = |detail: String| LoadError::Crl {
            source_name: source.to_owned(),
            detail,
        };
        if bytes.len() > MAX_CRL_BYTES {
            return Err(fail(format!(
                "{} bytes is more than the {MAX_CRL_BYTES} read",
                bytes.len()
            )));
        }
        let der = match bytes.first() {
            Some(0x30) => bytes.to_vec(),
            Some(_) => CertificateRevocationListDer::from_pem_slice(bytes)
                .map_err(|e| fail(format!("neither DER nor a PEM X509 CRL: {e}")))?
                .as_ref()
                .to_vec(),
            None => return Err(fail("empty".into())),
        };
        Crl::from_der(der, source)
    }

    fn from_der(der: Vec<u8>, source: &str) -> Result<Crl, LoadError> {
        let fail = |detail: String| LoadError::Crl {
            source_name: source.to_owned(),
            detail,
        };
        let strict = BorrowedCertRevocationList::from_der(&der)
            .map_err(|e| fail(format!("not a usable CRL: {}", crl_problem(&e))))?;
        let mut revoked = HashMap::new();
        for entry in &strict {
            let entry =
                entry.map_err(|e| fail(format!("bad revoked entry: {}", crl_problem(&e))))?;
            let value = RevokedEntry {
                revoked_at: Timestamp::from_unix(entry.revocation_date),
                reason: entry.reason_code.map(|r| format!("{r:?}")),
            };
            revoked.insert(Box::from(entry.serial_number), value);
        }

        let (_, parsed) = x509_parser::parse_x509_crl(&der)
            .map_err(|e| fail(format!("cannot read its fields: {e}")))?;
        let issuer = signed::expect(parsed.issuer().as_raw(), signed::SEQUENCE)
            .map(|(name, _)| name.contents.to_vec())
            .ok_or_else(|| fail("its issuer is not a Name".into()))?;
        check_crl_number(&parsed).map_err(fail)?;
        let scope = parsed
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::IssuingDistributionPoint(idp) => Some(Scope {
                    only_user_certs: idp.only_contains_user_certs,
                    only_ca_certs: idp.only_contains_ca_certs,
                    uris: full_name_uris(idp.distribution_point.as_ref()),
                }),
                _ => None,
            });
        let crl = Crl {
            source: source.to_owned(),
            issuer,
            issuer_text: parsed.issuer().to_string(),
            this_update: Timestamp(parsed.last_update().timestamp()),
            next_update: parsed.next_update().map(|t| Timestamp(t.timestamp())),
            number: parsed.crl_number().map(|n| n.to_string()),
            scope,
            revoked,
            der: Vec::new(),
            verified_keys: RwLock::new(Vec::new()),
        };
        Ok(Crl { der, ..crl })
    }

    pub fn issuer(&self) -> &[u8] {
        &self.issuer
    }

    pub fn entries(&self) -> usize {
        self.revoked.len()
    }

    /// Looks a serial up (its DER INTEGER contents, as webpki gives it).
    pub fn lookup(&self, serial: &[u8]) -> Option<&RevokedEntry> {
        self.revoked.get(serial)
    }

    /// Whether the CRL was signed by the key in `issuer_spki`, checking the signature only the
    /// first time each key is asked.
    pub fn signed_by(&self, issuer_spki: &[u8]) -> Result<(), SignatureProblem> {
        let digest = sha256(issuer_spki);
        let known = self.verified_keys.read().map(|k| k.contains(&digest));
        if known.unwrap_or(false) {
            return Ok(());
        }
        let (outer, _) =
            signed::expect(&self.der, signed::SEQUENCE).ok_or(SignatureProblem::Malformed)?;
        let parts = SignedParts::split(outer.contents).ok_or(SignatureProblem::Malformed)?;
        parts.verify(issuer_spki)?;
        if let Ok(mut keys) = self.verified_keys.write()
            && keys.len() < 8
            && !keys.contains(&digest)
        {
            keys.push(digest);
        }
        Ok(())
    }

    /// Whether this CRL's scope includes a certificate with this role and these CRL
    /// distribution point URIs; `None` when the certificate has no CRL distribution points
    /// extension. Follows RFC 5280 §6.3.3 (b) as webpki does: a CRL with an issuing
    /// distribution point covers a certificate that names distribution points only when a URI
    /// of a full name matches.
    pub fn covers(&self, role: Role, cert_dps: Option<&[String]>) -> bool {
        let Some(scope) = &self.scope else {
            return true;
        };
        if scope.only_ca_certs && role != Role::Ca
            || scope.only_user_certs && role != Role::EndEntity
        {
            return false;
        }
        match cert_dps {
            None => true,
            Some(dps) => dps.iter().any(|uri| scope.uris.iter().any(|u| u == uri)),
        }
    }

    /// Whether the CRL has an issuing distribution point, so that a certificate's own
    /// distribution points must be read to know if it is covered.
    pub fn has_scope(&self) -> bool {
        self.scope.is_some()
    }

    /// The instant past which this CRL no longer counts, given the store's grace.
    pub fn stale_after(&self, grace_secs: i64) -> Option<Timestamp> {
        self.next_update.map(|n| n.plus(grace_secs))
    }

    pub fn is_stale(&self, at: Timestamp, grace_secs: i64) -> bool {
        self.stale_after(grace_secs).is_some_and(|end| at > end)
    }

    /// The whole DER, for callers that hand the CRL to webpki.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// RFC 5280 §5.2.3: a conforming CRL carries a CRL number, and marks it non-critical.
fn check_crl_number(
    crl: &x509_parser::revocation_list::CertificateRevocationList<'_>,
) -> Result<(), String> {
    let number = crl
        .extensions()
        .iter()
        .find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_CRL_NUMBER);
    match number {
        None => Err("it has no CRL number (RFC 5280 §5.2.3 requires one)".into()),
        Some(ext) if ext.critical => {
            Err("its CRL number is marked critical (RFC 5280 §5.2.3)".into())
        }
        Some(_) => Ok(()),
    }
}

fn full_name_uris(name: Option<&DistributionPointName<'_>>) -> Vec<String> {
    match name {
        Some(DistributionPointName::FullName(names)) => names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(uri) => Some((*uri).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The URIs of a certificate's CRL distribution points that webpki would match: full names of
/// points with neither a CRL issuer nor reasons (RFC 5280 §4.2.1.13).
pub fn certificate_dp_uris(cert_der: &[u8]) -> Option<Vec<String>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => Some(
                points
                    .points
                    .iter()
                    .filter(|p| p.crl_issuer.is_none() && p.reasons.is_none())
                    .flat_map(|p| full_name_uris(p.distribution_point.as_ref()))
                    .collect(),
            ),
            _ => None,
        })
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn crl_problem(e: &webpki::Error) -> String {
    use webpki::Error as E;
    match e {
        E::UnsupportedDeltaCrl => "a delta CRL, which vouch does not use; give the full CRL".into(),
        E::UnsupportedIndirectCrl => "an indirect CRL, which vouch does not use".into(),
        E::UnsupportedCriticalExtension => "it has a critical extension vouch does not know".into(),
        E::UnsupportedCrlVersion => "only version 2 CRLs are read".into(),
        E::InvalidCrlNumber => "its CRL number is missing or invalid".into(),
        E::BadDer | E::BadDerTime | E::TrailingData(_) => "malformed or truncated DER".into(),
        other => format!("{other:?}"),
    }
}

/// One configured CRL source and how its last load went.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub source: String,
    pub crl: Option<Arc<Crl>>,
    pub loaded_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// Whether a CRL source can decide revocation now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    Fresh,
    /// Past its nextUpdate and the grace: the certificates it covers are undecided.
    Stale,
    /// Never loaded: the certificates it would cover are undecided.
    NotLoaded,
}

impl SourceState {
    pub fn name(self) -> &'static str {
        match self {
            SourceState::Fresh => "fresh",
            SourceState::Stale => "stale",
            SourceState::NotLoaded => "not_loaded",
        }
    }
}

impl SourceStatus {
    /// The source's state at `at`, with `grace_secs` past nextUpdate still fresh.
    pub fn state(&self, at: Timestamp, grace_secs: i64) -> SourceState {
        match &self.crl {
            None => SourceState::NotLoaded,
            Some(crl) if crl.is_stale(at, grace_secs) => SourceState::Stale,
            Some(_) => SourceState::Fresh,
        }
    }
}

/// The CRLs of one trust store, indexed by issuer. Replaced whole when any source changes.
#[derive(Debug, Default)]
pub struct CrlSet {
    by_issuer: HashMap<Vec<u8>, Vec<Arc<Crl>>>,
    pub sources: Vec<SourceStatus>,
}

impl CrlSet {
    pub fn new(sources: Vec<SourceStatus>) -> CrlSet {
        let mut by_issuer: HashMap<Vec<u8>, Vec<Arc<Crl>>> = HashMap::new();
        for crl in sources.iter().filter_map(|s| s.crl.clone()) {
            by_issuer.entry(crl.issuer.clone()).or_default().push(crl);
        }
        CrlSet { by_issuer, sources }
    }

    pub fn for_issuer(&self, issuer: &[u8]) -> &[Arc<Crl>] {
        self.by_issuer.get(issuer).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Sources that have never loaded: the CRL they would give is unknown.
    pub fn failing(&self) -> usize {
        self.sources.iter().filter(|s| s.crl.is_none()).count()
    }
}

/// Serial numbers as operators see them.
pub fn serial_text(serial: &[u8]) -> String {
    Hex(serial).to_string()
}
