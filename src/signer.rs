//! Token signers and the pool that keeps signing off the async runtime.
//!
//! A signer signs an RS256 signing input with one key and names that key. The embedded
//! default keeps an RSA-2048 key in the state directory; PKCS#11 tokens (and other devices
//! of [`vouch_hsm`]) hold keys through [`backend`]. Signing is slow (a quarter to a whole
//! millisecond in software, more on a token or card), so [`pool`] runs it on dedicated
//! threads behind a bounded queue: when the queue is full or every backend is down the
//! sign-in is answered `temporarily_unavailable` at once instead of waiting past Entra's
//! window, and the async runtime never waits on a signature. [`keyring`] decides which key
//! signs and which are published as rotations go by; [`admin`] is `vouch keys` and
//! `vouch hsm`.

pub mod admin;
pub mod backend;
pub mod keyring;
pub mod pool;

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use vouch_hsm::HsmError;
use vouch_hsm::certificate::CertificateInfo;

use crate::app::Clock;
use crate::config::Config;
use crate::jose::b64url_encode;
use backend::{KeySetError, KeyStore};
use keyring::{KeyLocation, KeyRing};
pub use pool::SignerPool;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("every signer is busy ({permits} signatures in flight)")]
    Busy { permits: usize },
    #[error("signer {kid} failed: {detail}")]
    Backend { kid: String, detail: String },
    #[error("no signer can sign now: {detail}")]
    Unavailable { detail: String },
}

/// Signs JWS signing inputs with one RSA key (RS256, RFC 7518 §3.3).
pub trait TokenSigner: Send + Sync + 'static {
    fn published(&self) -> &PublishedKey;
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// The public half of a signing key as the JWKS publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// base64url SHA-1 of the certificate, used as both `kid` and `x5t`.
    pub kid: String,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub certificate_der: Vec<u8>,
}

impl PublishedKey {
    pub fn new(certificate_der: Vec<u8>, n: Vec<u8>, e: Vec<u8>) -> Self {
        let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &certificate_der);
        let kid = b64url_encode(sha1.as_ref());
        Self {
            kid,
            n,
            e,
            certificate_der,
        }
    }
}

/// The published key of a certificate; its key must be RSA.
pub fn published_from_certificate(der: &[u8]) -> Result<PublishedKey, HsmError> {
    let info = CertificateInfo::from_der(der).map_err(|detail| HsmError::Certificate {
        device: "signing key".into(),
        detail,
    })?;
    Ok(PublishedKey::new(der.to_vec(), info.modulus, info.exponent))
}

/// Opens every configured backend and the key ring (starting one on a first start), and
/// starts the pool over them.
pub fn open(config: &Config, clock: Arc<Clock>) -> Result<SignerPool, KeySetError> {
    let stores = open_stores(config)?;
    let ring = ring_for(config, &stores, clock.now())?;
    let with_workers = stores
        .into_iter()
        .zip(&config.signing.backends)
        .map(|(store, b)| (store, b.workers))
        .collect();
    SignerPool::open(with_workers, ring, clock, config.signer_max_in_flight)
}

/// Opens every configured backend: loads modules and logs in to devices.
pub fn open_stores(config: &Config) -> Result<Vec<Arc<dyn KeyStore>>, KeySetError> {
    crate::provision::ensure_dir(&config.state_dir)?;
    crate::provision::ensure_dir(&config.state_dir.join("signing"))?;
    config
        .signing
        .backends
        .iter()
        .map(|b| b.open(&config.state_dir))
        .collect()
}

/// The stored key ring, or the ring of a first start: the configured key signing now, and
/// a key staged in `signing/next/` by an older vouch published beside it.
pub fn ring_for(
    config: &Config,
    stores: &[Arc<dyn KeyStore>],
    now: i64,
) -> Result<KeyRing, KeySetError> {
    let state_dir = &config.state_dir;
    if let Some(ring) = KeyRing::load(state_dir)? {
        return Ok(ring);
    }
    let Some(store) = stores.first() else {
        return Err(KeySetError::NoActiveKey);
    };
    let first = store.configured_key();
    let kid = published_from_certificate(&store.certificate_der(&first)?)?.kid;
    let mut ring = KeyRing::first(kid, first, now);
    if let Some(staged) = legacy_staged(state_dir, store.as_ref())? {
        ring.stage(staged.0, staged.1, now, config.signing.overlap_secs)?;
    }
    ring.store(state_dir)?;
    Ok(ring)
}

/// A key staged in `signing/next/` before the key ring existed.
fn legacy_staged(
    state_dir: &Path,
    store: &dyn KeyStore,
) -> Result<Option<(String, KeyLocation)>, KeySetError> {
    if !state_dir.join("signing/next/key.pk8").exists() {
        return Ok(None);
    }
    let location = KeyLocation::Software { dir: "next".into() };
    let key = store.key(&location)?;
    let kid = published_from_certificate(key.certificate_der())?.kid;
    Ok(Some((kid, location)))
}

/// An RSA key held in memory, loaded from the state directory.
pub struct SoftwareSigner {
    key: RsaKeyPair,
    published: PublishedKey,
}

impl SoftwareSigner {
    pub fn new(pkcs8: &[u8], certificate_der: Vec<u8>) -> Result<Self, String> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| format!("RSA key rejected: {e}"))?;
        let public = key.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        Ok(Self {
            key,
            published: PublishedKey::new(certificate_der, n, e),
        })
    }
}

impl TokenSigner for SoftwareSigner {
    fn published(&self) -> &PublishedKey {
        &self.published
    }

    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, signing_input, &mut sig)
            .map_err(|_| SignError::Backend {
                kid: self.published.kid.clone(),
                detail: "RSA sign".into(),
            })?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

    fn signer() -> SoftwareSigner {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("keygen");
        let pkcs8 = key.as_der().expect("pkcs8");
        SoftwareSigner::new(pkcs8.as_ref(), b"not a real certificate".to_vec()).expect("signer")
    }

    #[test]
    fn signatures_verify_with_the_published_modulus_and_exponent() {
        let s = signer();
        let sig = s.sign(b"header.payload").expect("sign");
        let p = s.published();
        let public = RsaPublicKeyComponents { n: &p.n, e: &p.e };
        assert!(
            public
                .verify(&RSA_PKCS1_2048_8192_SHA256, b"header.payload", &sig)
                .is_ok()
        );
        assert!(
            public
                .verify(&RSA_PKCS1_2048_8192_SHA256, b"header.payloaD", &sig)
                .is_err()
        );
    }

    #[test]
    fn kid_is_the_base64url_sha1_of_the_certificate() {
        let s = signer();
        assert_eq!(s.published().kid, "YNrspu9znUqbjbuoPf7UgvFdEss");
        assert!(!s.published().kid.contains(['=', '+', '/']));
    }

    #[test]
    fn refuses_a_key_that_is_not_pkcs8_rsa() {
        assert!(SoftwareSigner::new(b"garbage", vec![]).is_err());
    }
}
