//! Token signers and the pool that keeps signing off the async runtime.
//!
//! A signer signs an RS256 signing input with one key and names that key. The embedded
//! default keeps an RSA-2048 key in the state directory; hardware backends implement the same
//! trait. Signing is slow (about a millisecond in software, more on a card), so the pool runs
//! it on the blocking thread pool behind a bounded number of permits: when every permit is
//! taken the sign-in is answered `temporarily_unavailable` at once instead of queueing past
//! Entra's window.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use tokio::sync::Semaphore;

use crate::jose::b64url_encode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("every signer is busy ({permits} signatures in flight)")]
    Busy { permits: usize },
    #[error("signer {kid} failed: {detail}")]
    Backend { kid: String, detail: String },
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

/// Runs signatures on the blocking pool, never more than `permits` at once.
#[derive(Clone)]
pub struct SignerPool {
    signer: Arc<dyn TokenSigner>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl SignerPool {
    pub fn new(signer: Arc<dyn TokenSigner>, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            signer,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    pub fn published(&self) -> &PublishedKey {
        self.signer.published()
    }

    /// Signatures in flight or waiting for a blocking thread.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// Whether every signing slot is taken, so that a new signature would be refused.
    pub fn is_saturated(&self) -> bool {
        self.permits.available_permits() == 0
    }

    pub async fn sign(&self, signing_input: String) -> Result<Vec<u8>, SignError> {
        let busy = SignError::Busy {
            permits: self.capacity,
        };
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| busy)?;
        let signer = self.signer.clone();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            signer.sign(signing_input.as_bytes())
        });
        job.await.map_err(|e| SignError::Backend {
            kid: self.signer.published().kid.clone(),
            detail: format!("signing task ended: {e}"),
        })?
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

    #[tokio::test]
    async fn pool_answers_busy_at_once_when_every_permit_is_taken() {
        let pool = SignerPool::new(Arc::new(signer()), 1);
        let held = pool.permits.clone().try_acquire_owned().expect("permit");
        let err = pool.sign("a.b".into()).await.unwrap_err();
        assert_eq!(err, SignError::Busy { permits: 1 });
        drop(held);
        assert!(pool.sign("a.b".into()).await.is_ok());
    }
}
