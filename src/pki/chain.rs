//! Path validation of a presented chain with rustls-webpki, under webpki's path-building
//! budget, with the issuer-link cache in front of it.
//!
//! webpki validates the path: signatures, validity at the given instant, basic constraints,
//! path length, name constraints, key usage and the store's allowed extended key usages
//! (RFC 5280 §6.1). Revocation is not asked of webpki here: [`super::revocation`] checks each
//! certificate of the validated path against CRLs verified once at load.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, TrustAnchor};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use super::cache::{AnchorInfo, CachedLink, PathCa};
use super::certificate::{self, CertificateFacts, MAX_CHAIN_CERTIFICATES};
use super::config::oid_text;
use super::error::Refusal;
use super::signed;
use super::store::TrustStore;
use super::time::Timestamp;

/// A path webpki has validated, from the leaf's issuer to the anchor.
#[derive(Debug, Clone)]
pub struct ValidPath {
    /// The CAs from the leaf's issuer upward, anchor excluded.
    pub cas: Arc<[PathCa]>,
    pub root: Arc<AnchorInfo>,
    /// Whether the path came from the issuer-link cache.
    pub cached: bool,
}

/// The allowed key purposes of a store: a certificate that lists key purposes must list one
/// of them; one that lists none may be used for any (RFC 5280 §4.2.1.12).
pub struct AllowedEkus<'a>(pub &'a [Vec<u8>]);

impl ExtendedKeyUsageValidator for AllowedEkus<'_> {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut empty = true;
        for id in iter {
            let id = id?;
            empty = false;
            if self
                .0
                .iter()
                .any(|allowed| KeyPurposeId::new(allowed) == id)
            {
                return Ok(());
            }
        }
        if empty {
            return Ok(());
        }
        // The context variant names one static key purpose; a store may allow several.
        #[allow(deprecated)]
        Err(webpki::Error::RequiredEkuNotFound)
    }
}

/// Validates `chain` (leaf first, then any intermediates the client sent) against the store.
/// Beyond webpki, which takes a root as bare trust anchor information (RFC 5280 §6.1.1), the
/// root certificate must be within its validity too: an expired root is an operator's cue to
/// replace it, not to keep trusting it.
pub fn validate(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    at: Timestamp,
) -> Result<ValidPath, Refusal> {
    let path = validate_path(store, chain, at)?;
    if at > path.root.not_after {
        return Err(Refusal::Expired {
            not_after: path.root.not_after,
        });
    }
    if at < path.root.not_before {
        return Err(Refusal::NotYetValid {
            not_before: path.root.not_before,
        });
    }
    Ok(path)
}

fn validate_path(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    at: Timestamp,
) -> Result<ValidPath, Refusal> {
    let leaf_der = chain.first().ok_or(Refusal::Empty)?;
    if chain.len() > MAX_CHAIN_CERTIFICATES {
        let max = MAX_CHAIN_CERTIFICATES;
        return Err(Refusal::TooManyCertificates {
            count: chain.len(),
            max,
        });
    }
    let leaf = EndEntityCert::try_from(leaf_der).map_err(|e| malformed(0, &e))?;
    certificate::check_key(leaf.subject_public_key_info().as_ref()).map_err(|detail| {
        Refusal::InvalidPath {
            detail: format!("the certificate: {detail}"),
        }
    })?;
    let time = at.to_unix();
    let ekus = AllowedEkus(&store.ekus);

    for link in store.cache.candidates(leaf.issuer()) {
        if !link.valid_at(at) {
            continue;
        }
        let anchors = std::slice::from_ref(&link.anchor);
        let checked =
            leaf.verify_for_usage(signed::algorithms(), anchors, &[], time, &ekus, None, None);
        if checked.is_ok() {
            let (cas, root) = (link.cas.clone(), link.root.clone());
            return Ok(ValidPath {
                cas,
                root,
                cached: true,
            });
        }
    }
    validate_cold(store, &leaf, chain, at)
}

fn validate_cold(
    store: &TrustStore,
    leaf: &EndEntityCert<'_>,
    chain: &[CertificateDer<'_>],
    at: Timestamp,
) -> Result<ValidPath, Refusal> {
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .chain(store.intermediates.iter())
        .map(|c| CertificateDer::from(c.as_ref()))
        .collect();
    let ekus = AllowedEkus(&store.ekus);
    let path = leaf
        .verify_for_usage(
            signed::algorithms(),
            &store.anchors,
            &intermediates,
            at.to_unix(),
            &ekus,
            None,
            None,
        )
        .map_err(|e| refusal(store, chain, &e))?;

    let anchor_spki = path.anchor().subject_public_key_info.as_ref();
    let root = store
        .anchor_infos
        .iter()
        .zip(&store.anchors)
        .find(|(_, ta)| ta.subject_public_key_info.as_ref() == anchor_spki)
        .map(|(info, _)| info.clone())
        .ok_or_else(|| Refusal::InvalidPath {
            detail: "webpki chose an anchor the store does not hold".into(),
        })?;
    let mut cas = Vec::new();
    for ca in path.intermediate_certificates() {
        cas.push(path_ca(ca)?);
    }
    let cacheable = path.anchor().name_constraints.is_none()
        && cas.iter().skip(1).all(|ca| !ca.has_name_constraints);
    let cas: Arc<[PathCa]> = cas.into();
    if cacheable && !cas.is_empty() {
        remember(store, &cas, &root);
    }
    Ok(ValidPath {
        cas,
        root,
        cached: false,
    })
}

fn path_ca(ca: &webpki::Cert<'_>) -> Result<PathCa, Refusal> {
    let der = ca.der().into_owned();
    let facts = CertificateFacts::read(&der).map_err(|detail| Refusal::InvalidPath { detail })?;
    if !facts.may_sign_certs {
        let detail = format!(
            "CA {} may not sign certificates: its key usage lacks keyCertSign (RFC 5280 §4.2.1.3)",
            facts.subject
        );
        return Err(Refusal::InvalidPath { detail });
    }
    Ok(PathCa {
        serial: ca.serial().to_vec(),
        issuer: ca.issuer().to_vec(),
        spki: ca.subject_public_key_info().as_ref().to_vec(),
        subject_text: facts.subject,
        may_sign_crls: facts.may_sign_crls,
        not_before: facts.not_before,
        not_after: facts.not_after,
        has_name_constraints: facts.has_name_constraints,
        der,
    })
}

fn remember(store: &TrustStore, cas: &Arc<[PathCa]>, root: &Arc<AnchorInfo>) {
    let issuer = &cas[0];
    let Ok(anchor) = webpki::anchor_from_trusted_cert(&issuer.der) else {
        return;
    };
    let anchor: TrustAnchor<'static> = anchor.to_owned();
    let subject = anchor.subject.as_ref().to_vec();
    let link = CachedLink {
        anchor,
        cas: cas.clone(),
        root: root.clone(),
        valid_from: cas
            .iter()
            .map(|c| c.not_before)
            .max()
            .unwrap_or(Timestamp(i64::MAX)),
        valid_until: cas
            .iter()
            .map(|c| c.not_after)
            .min()
            .unwrap_or(Timestamp(i64::MIN)),
    };
    store.cache.insert(subject, link);
}

fn malformed(index: usize, e: &webpki::Error) -> Refusal {
    Refusal::Malformed {
        index,
        detail: format!("{e:?}"),
    }
}

fn issuer_text(chain: &[CertificateDer<'_>]) -> String {
    chain
        .first()
        .and_then(|c| CertificateFacts::read(c).ok())
        .map_or_else(|| "(unreadable)".into(), |f| f.issuer)
}

/// Turns webpki's verdict into what an operator can act on.
#[allow(deprecated)] // RequiredEkuNotFound: see AllowedEkus.
fn refusal(store: &TrustStore, chain: &[CertificateDer<'_>], e: &webpki::Error) -> Refusal {
    use webpki::Error as E;
    match e {
        E::CertExpired { not_after, .. } => Refusal::Expired {
            not_after: Timestamp::from_unix(*not_after),
        },
        E::CertNotValidYet { not_before, .. } => Refusal::NotYetValid {
            not_before: Timestamp::from_unix(*not_before),
        },
        E::UnknownIssuer => Refusal::UnknownIssuer {
            issuer: issuer_text(chain),
            store: store.name.clone(),
        },
        E::InvalidSignatureForPublicKey => Refusal::BadSignature {
            issuer: issuer_text(chain),
        },
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => Refusal::WrongEku {
            allowed: store
                .ekus
                .iter()
                .map(|e| oid_text(e))
                .collect::<Vec<_>>()
                .join(", "),
            present: leaf_ekus(chain),
        },
        E::MaximumPathBuildCallsExceeded => budget("too many path-building calls"),
        E::MaximumSignatureChecksExceeded => budget("too many signature checks"),
        E::MaximumPathDepthExceeded => budget("path deeper than 6 CAs"),
        E::MaximumNameConstraintComparisonsExceeded => budget("too many name-constraint checks"),
        E::BadDer | E::BadDerTime | E::TrailingData(_) => malformed(0, e),
        other => Refusal::InvalidPath {
            detail: format!("{other:?}"),
        },
    }
}

fn budget(limit: &'static str) -> Refusal {
    Refusal::BudgetExceeded { limit }
}

fn leaf_ekus(chain: &[CertificateDer<'_>]) -> String {
    let facts = chain.first().and_then(|c| CertificateFacts::read(c).ok());
    match facts.and_then(|f| f.ekus) {
        Some(list) => list.join(", "),
        None => "no extended key usage (an intermediate CA restricts it)".into(),
    }
}
