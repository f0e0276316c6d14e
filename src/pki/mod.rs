//! Certificates as a second factor: trust stores, path validation, revocation and the binding
//! of a certificate to the Entra user.
//!
//! The flows call one function: [`verify_client`] with the store that serves the tenant, the
//! chain the client presented (leaf first), the instant, and the user from the verified hint.
//! It answers a [`VerifiedCertificate`] (with the `amr` the store grants) or a
//! [`CertificateError`] that says whether to refuse the certificate or to answer
//! `temporarily_unavailable` because revocation data is missing.
//!
//! Order of the checks: tenant served by the store → path validation by webpki (through the
//! issuer-link cache) → revocation of every certificate on the path (CRLs, and OCSP for the
//! leaf per the store's policy) → binding to the user.

pub mod binding;
pub mod cache;
pub mod certificate;
pub mod chain;
pub mod challenge;
pub mod cli;
pub mod config;
pub mod crl;
pub mod error;
pub mod fetch;
pub mod ocsp;
pub mod revocation;
pub mod signed;
pub mod store;
pub mod time;

use rustls::pki_types::CertificateDer;

pub use binding::ExpectedUser;
pub use certificate::CertificateFacts;
pub use config::{Amr, BindingRule, OcspPolicy, TrustStoreConfig};
pub use error::{CertificateError, LoadError, Outage, Refusal};
pub use revocation::Evidence;
pub use store::{TrustStore, TrustStores};
pub use time::Timestamp;

use chain::ValidPath;
use revocation::{Checked, NeedOcsp};

/// A certificate that passed every check, and what the flow needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    /// The trust store that accepted it.
    pub store: String,
    /// The `amr` value the token carries for it.
    pub amr: Amr,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_after: Timestamp,
    /// SHA-256 of the leaf's DER.
    pub sha256: [u8; 32],
    /// What showed it is not revoked.
    pub revocation: Evidence,
}

/// A chain that is valid and not revoked, before any binding to a user.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    pub path: ValidPath,
    pub revocation: Evidence,
}

/// Verifies a client's certificate for `user`: the one call the certificate flows make.
pub async fn verify_client(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    at: Timestamp,
    user: &ExpectedUser<'_>,
) -> Result<VerifiedCertificate, CertificateError> {
    serves(store, user)?;
    let verified = verify_chain(store, chain, at).await?;
    finish(store, chain, verified, user)
}

/// [`verify_client`] from cached revocation data only: an OCSP answer not yet cached counts as
/// unavailable. For the operator CLI and benchmarks.
pub fn verify_client_offline(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    at: Timestamp,
    user: &ExpectedUser<'_>,
) -> Result<VerifiedCertificate, CertificateError> {
    serves(store, user)?;
    let verified = verify_chain_offline(store, chain, at)?;
    finish(store, chain, verified, user)
}

/// Refuses a user of a tenant the store does not serve, before any chain work.
fn serves(store: &TrustStore, user: &ExpectedUser<'_>) -> Result<(), CertificateError> {
    if store.serves(user.tid) {
        return Ok(());
    }
    let (store, tid) = (store.name.clone(), user.tid.to_owned());
    Err(Refusal::WrongTenant { store, tid }.into())
}

fn finish(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    verified: VerifiedChain,
    user: &ExpectedUser<'_>,
) -> Result<VerifiedCertificate, CertificateError> {
    let leaf = chain.first().ok_or(Refusal::Empty)?;
    let facts =
        CertificateFacts::read(leaf).map_err(|detail| Refusal::Malformed { index: 0, detail })?;
    binding::check(store, &facts, user)?;
    Ok(VerifiedCertificate {
        store: store.name.clone(),
        amr: store.amr,
        subject: facts.subject,
        issuer: facts.issuer,
        serial: facts.serial,
        not_after: facts.not_after,
        sha256: facts.sha256,
        revocation: verified.revocation,
    })
}

/// Validates the path and checks revocation, asking OCSP responders when the store's policy
/// needs an answer that is not cached.
pub async fn verify_chain(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    at: Timestamp,
) -> Result<VerifiedChain, CertificateError> {
    let path = chain::validate(store, chain, at)?;
    let leaf = chain.first().ok_or(Refusal::Empty)?;
    match revocation::check(store, leaf, &path, at, true)? {
        Checked::Done(revocation) => Ok(VerifiedChain { path, revocation }),
        Checked::NeedOcsp(need) => {
            ask_responder(store, leaf, &path, &need, at).await;
            match revocation::check(store, leaf, &path, at, false)? {
                Checked::Done(revocation) => Ok(VerifiedChain { path, revocation }),
                Checked::NeedOcsp(_) => unreachable_ocsp(&need),
            }
        }
    }
}

/// [`verify_chain`] without network: cached OCSP answers and loaded CRLs only.
pub fn verify_chain_offline(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    at: Timestamp,
) -> Result<VerifiedChain, CertificateError> {
    let path = chain::validate(store, chain, at)?;
    let leaf = chain.first().ok_or(Refusal::Empty)?;
    match revocation::check(store, leaf, &path, at, false)? {
        Checked::Done(revocation) => Ok(VerifiedChain { path, revocation }),
        Checked::NeedOcsp(need) => unreachable_ocsp(&need),
    }
}

fn unreachable_ocsp(need: &NeedOcsp) -> Result<VerifiedChain, CertificateError> {
    Err(Outage::OcspUnavailable {
        responder: need.responder.clone(),
        detail: "no answer".into(),
    }
    .into())
}

/// Asks the leaf's OCSP responder and caches what it answers, or why it failed.
async fn ask_responder(
    store: &TrustStore,
    leaf: &CertificateDer<'_>,
    path: &ValidPath,
    need: &NeedOcsp,
    at: Timestamp,
) {
    let result = fetch_answer(store, leaf, path, &need.responder, at).await;
    match result {
        Ok(answer) => store.ocsp.store(need.key.clone(), answer),
        Err(detail) => {
            tracing::debug!(
                store = %store.name,
                responder = %need.responder,
                %detail,
                "OCSP failed"
            );
            store.ocsp.record_failure(need.key.clone(), at, detail);
        }
    }
}

async fn fetch_answer(
    store: &TrustStore,
    leaf: &CertificateDer<'_>,
    path: &ValidPath,
    responder: &str,
    at: Timestamp,
) -> Result<ocsp::OcspAnswer, String> {
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("{e:?}"))?;
    let owned_anchor;
    let (spki, anchor) = match path.cas.first() {
        Some(ca) => {
            owned_anchor =
                webpki::anchor_from_trusted_cert(&ca.der).map_err(|e| format!("{e:?}"))?;
            (ca.spki.as_slice(), &owned_anchor)
        }
        None => {
            let anchor = store
                .anchor_with_spki(&path.root.spki)
                .ok_or("the path's root is not in the store")?;
            (path.root.spki.as_slice(), anchor)
        }
    };
    let request =
        ocsp::Request::new(cert.issuer(), spki, cert.serial()).ok_or("cannot build the request")?;
    let body = fetch::post(
        responder,
        "application/ocsp-request",
        request.der.clone(),
        ocsp::MAX_RESPONSE_BYTES,
        store.ocsp_timeout,
    )
    .await?;
    let issuer = ocsp::Issuer { spki, anchor };
    ocsp::read_response(&body, &request, &issuer, responder, at)
}
