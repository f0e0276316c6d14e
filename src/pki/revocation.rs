//! Revocation status of every certificate on a validated path (RFC 5280 §6.3), from the
//! store's CRLs and, for the leaf, its OCSP answers (RFC 6960).
//!
//! Rules:
//! - A CRL speaks for a certificate only if it names the certificate's issuer, was signed by
//!   the key of the issuer on this path (whose key usage, if present, allows CRL signing), and
//!   its issuing distribution point includes the certificate.
//! - A serial on any such CRL is revoked, whatever the CRL's age.
//! - When only stale CRLs speak for a certificate, the verdict is an outage.
//! - No CRL at all: an outage while a configured source has never loaded, otherwise a refusal,
//!   because the store promises revocation checking for every CA it trusts. A store with no
//!   CRL source and OCSP off does not check revocation.
//! - OCSP answers for the leaf replace the CRL when they are fresh and at least as new.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use webpki::EndEntityCert;

use super::cache::PathCa;
use super::chain::ValidPath;
use super::config::OcspPolicy;
use super::crl::{self, Crl, CrlSet, Role};
use super::error::{CertificateError, Outage, Refusal};
use super::ocsp::{OcspKey, OcspStatus};
use super::store::TrustStore;
use super::time::Timestamp;

/// One certificate of the path and the key that issued it.
struct Subject<'a> {
    der: &'a [u8],
    serial: &'a [u8],
    issuer: &'a [u8],
    role: Role,
    issuer_spki: &'a [u8],
    issuer_text: &'a str,
    issuer_may_sign_crls: bool,
}

/// What decided the leaf's status, for the verdict shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The store checks no revocation.
    NotChecked,
    /// Good on these CRLs (their sources).
    Crl(Vec<String>),
    /// Good per this OCSP responder.
    Ocsp(String),
}

/// Why the leaf's status could not be read from what is cached: its OCSP answer is needed.
#[derive(Debug, Clone)]
pub struct NeedOcsp {
    pub key: OcspKey,
    pub responder: String,
}

pub enum Checked {
    Done(Evidence),
    NeedOcsp(NeedOcsp),
}

/// Checks the leaf `leaf_der` and the CAs of `path` at `at`. `online` allows asking for an
/// OCSP answer that is not cached.
pub fn check(
    store: &TrustStore,
    leaf_der: &CertificateDer<'_>,
    path: &ValidPath,
    at: Timestamp,
    online: bool,
) -> Result<Checked, CertificateError> {
    let crls = store.crls();
    if crls.is_empty() && store.ocsp_policy == OcspPolicy::Off {
        return Ok(Checked::Done(Evidence::NotChecked));
    }
    let leaf = EndEntityCert::try_from(leaf_der).map_err(|e| Refusal::Malformed {
        index: 0,
        detail: format!("{e:?}"),
    })?;
    for (i, ca) in path.cas.iter().enumerate() {
        let subject = ca_subject(ca, path, i);
        check_crls(store, &crls, &subject, at)?;
    }
    let issuer = issuer_of_leaf(path);
    let subject = Subject {
        der: leaf_der.as_ref(),
        serial: leaf.serial(),
        issuer: leaf.issuer(),
        role: Role::EndEntity,
        issuer_spki: issuer.0,
        issuer_text: issuer.1,
        issuer_may_sign_crls: issuer.2,
    };
    check_leaf(store, &crls, &subject, at, online)
}

fn issuer_of_leaf(path: &ValidPath) -> (&[u8], &str, bool) {
    match path.cas.first() {
        Some(ca) => (&ca.spki, &ca.subject_text, ca.may_sign_crls),
        None => (
            &path.root.spki,
            &path.root.subject_text,
            path.root.may_sign_crls,
        ),
    }
}

fn ca_subject<'a>(ca: &'a PathCa, path: &'a ValidPath, i: usize) -> Subject<'a> {
    let (issuer_spki, issuer_text, may_sign) = match path.cas.get(i + 1) {
        Some(up) => (
            up.spki.as_slice(),
            up.subject_text.as_str(),
            up.may_sign_crls,
        ),
        None => (
            path.root.spki.as_slice(),
            path.root.subject_text.as_str(),
            path.root.may_sign_crls,
        ),
    };
    Subject {
        der: ca.der.as_ref(),
        serial: &ca.serial,
        issuer: &ca.issuer,
        role: Role::Ca,
        issuer_spki,
        issuer_text,
        issuer_may_sign_crls: may_sign,
    }
}

fn check_leaf(
    store: &TrustStore,
    crls: &CrlSet,
    leaf: &Subject<'_>,
    at: Timestamp,
    online: bool,
) -> Result<Checked, CertificateError> {
    if store.ocsp_policy == OcspPolicy::Off {
        return check_crls(store, crls, leaf, at).map(Checked::Done);
    }
    let key = OcspKey::new(leaf.issuer_spki, leaf.serial);
    let newest_crl = covering(crls, leaf).map(|c| c.this_update).max();
    if let Some(answer) = store.ocsp.fresh(&key, at) {
        let as_new = newest_crl.is_none_or(|t| answer.this_update >= t);
        if as_new || store.ocsp_policy == OcspPolicy::Require {
            return match answer.status {
                OcspStatus::Good => Ok(Checked::Done(Evidence::Ocsp(answer.responder.clone()))),
                OcspStatus::Revoked {
                    at: when,
                    ref reason,
                } => Err(Refusal::Revoked {
                    serial: crl::serial_text(leaf.serial),
                    revoked_at: when,
                    reason: reason.clone(),
                    source_name: format!("OCSP responder {}", answer.responder),
                }
                .into()),
                OcspStatus::Unknown => Err(Refusal::RevocationUnknown {
                    issuer: leaf.issuer_text.to_owned(),
                }
                .into()),
            };
        }
    }
    let responder = store.ocsp_responder(leaf.der);
    match (store.ocsp_policy, responder) {
        (_, Some(responder)) if online && !store.ocsp.failed_recently(&key, at) => {
            Ok(Checked::NeedOcsp(NeedOcsp { key, responder }))
        }
        (OcspPolicy::Require, responder) => Err(Outage::OcspUnavailable {
            responder: responder.unwrap_or_else(|| "(none named by the certificate)".into()),
            detail: store
                .ocsp
                .last_error(&key)
                .unwrap_or_else(|| "no answer".into()),
        }
        .into()),
        _ => check_crls(store, crls, leaf, at).map(Checked::Done),
    }
}

fn covering<'c>(crls: &'c CrlSet, subject: &'c Subject<'c>) -> impl Iterator<Item = &'c Arc<Crl>> {
    let mut dps: Option<Option<Vec<String>>> = None;
    crls.for_issuer(subject.issuer).iter().filter(move |crl| {
        if !subject.issuer_may_sign_crls || crl.signed_by(subject.issuer_spki).is_err() {
            return false;
        }
        if !crl.has_scope() {
            return crl.covers(subject.role, None);
        }
        let dps = dps.get_or_insert_with(|| crl::certificate_dp_uris(subject.der));
        crl.covers(subject.role, dps.as_deref())
    })
}

/// A configured CRL of the same issuer name, signed by another key (a separate CRL-signing key,
/// RFC 5280 §6.3.3 (f)), that lists the serial. vouch does not validate a separate path for
/// such a CRL, so it cannot pass a certificate; it can only refuse one, which is the safe way
/// to use a list an operator configured.
fn listed_elsewhere<'c>(crls: &'c CrlSet, subject: &Subject<'_>) -> Option<&'c Arc<Crl>> {
    crls.for_issuer(subject.issuer)
        .iter()
        .find(|crl| crl.lookup(subject.serial).is_some())
}

fn check_crls(
    store: &TrustStore,
    crls: &CrlSet,
    subject: &Subject<'_>,
    at: Timestamp,
) -> Result<Evidence, CertificateError> {
    if crls.is_empty() {
        return Ok(Evidence::NotChecked);
    }
    let mut fresh = Vec::new();
    let mut stale: Option<&Arc<Crl>> = None;
    for crl in covering(crls, subject) {
        if let Some(entry) = crl.lookup(subject.serial) {
            return Err(Refusal::Revoked {
                serial: crl::serial_text(subject.serial),
                revoked_at: entry.revoked_at,
                reason: entry.reason.clone(),
                source_name: format!("CRL {}", crl.source),
            }
            .into());
        }
        if crl.is_stale(at, store.crl_grace_secs) {
            stale = Some(crl);
        } else {
            fresh.push(crl.source.clone());
        }
    }
    if let Some(crl) = listed_elsewhere(crls, subject) {
        let entry = crl
            .lookup(subject.serial)
            .cloned()
            .unwrap_or_else(|| unreachable!("found by lookup"));
        return Err(Refusal::Revoked {
            serial: crl::serial_text(subject.serial),
            revoked_at: entry.revoked_at,
            reason: entry.reason,
            source_name: format!("CRL {} (signed by another key of the same CA)", crl.source),
        }
        .into());
    }
    if !fresh.is_empty() {
        return Ok(Evidence::Crl(fresh));
    }
    if let Some(crl) = stale {
        let next_update = crl.next_update.unwrap_or(crl.this_update);
        return Err(Outage::StaleCrl {
            source_name: crl.source.clone(),
            next_update,
            grace_end: next_update.plus(store.crl_grace_secs),
        }
        .into());
    }
    let issuer = subject.issuer_text.to_owned();
    match crls.failing() {
        0 => Err(Refusal::RevocationUnknown { issuer }.into()),
        sources => Err(Outage::CrlUnavailable { issuer, sources }.into()),
    }
}
