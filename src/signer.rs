//! Token signers and the pool that keeps signing off the async runtime.
//!
//! A signer signs an RS256 signing input with one key and names that key. The embedded
//! default keeps an RSA-2048 key in the state directory; hardware backends implement the same
//! trait. Signing is slow (a quarter to a whole millisecond in software, more on a card), so
//! the pool runs it on dedicated threads behind a bounded queue: when the queue is full the
//! sign-in is answered `temporarily_unavailable` at once instead of waiting past Entra's
//! window, and the async runtime never waits on a signature.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use tokio::sync::oneshot;

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

/// Runs signatures on a few dedicated threads behind a bounded queue.
///
/// As many workers as the signer can use at once (the cores, for the software signer) keep
/// the key busy without crowding the cores with threads that each hold half a signature.
/// Up to `capacity` signatures may be queued or under way; past that a signature is refused
/// at once with [`SignError::Busy`], so no sign-in waits past Entra's window.
#[derive(Clone)]
pub struct SignerPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    published: PublishedKey,
    jobs: mpsc::Sender<Job>,
    in_flight: AtomicUsize,
    capacity: usize,
}

struct Job {
    signing_input: String,
    reply: oneshot::Sender<Result<Vec<u8>, SignError>>,
}

impl SignerPool {
    /// A pool with one worker per core.
    pub fn new(signer: Arc<dyn TokenSigner>, capacity: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        SignerPool::with_workers(signer, cores, capacity)
    }

    pub fn with_workers(signer: Arc<dyn TokenSigner>, workers: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..workers.max(1) {
            let (signer, queue) = (signer.clone(), queue.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("vouch-signer-{i}"))
                .spawn(move || work(&*signer, &queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a signer thread");
            }
        }
        let published = signer.published().clone();
        SignerPool {
            inner: Arc::new(PoolInner {
                published,
                jobs,
                in_flight: AtomicUsize::new(0),
                capacity,
            }),
        }
    }

    pub fn published(&self) -> &PublishedKey {
        &self.inner.published
    }

    /// Signatures queued or under way.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// How full the queue is, from 0 to 1.
    pub fn fill(&self) -> f64 {
        self.in_flight() as f64 / self.inner.capacity as f64
    }

    /// Whether the queue is full, so that a new signature would be refused.
    pub fn is_saturated(&self) -> bool {
        self.in_flight() >= self.inner.capacity
    }

    pub async fn sign(&self, signing_input: String) -> Result<Vec<u8>, SignError> {
        let inner = &self.inner;
        if inner.in_flight.fetch_add(1, Ordering::AcqRel) >= inner.capacity {
            inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(SignError::Busy {
                permits: inner.capacity,
            });
        }
        let _slot = Slot(&inner.in_flight);
        let (reply, answer) = oneshot::channel();
        let ended = || SignError::Backend {
            kid: inner.published.kid.clone(),
            detail: "the signer threads have stopped".into(),
        };
        let job = Job {
            signing_input,
            reply,
        };
        inner.jobs.send(job).map_err(|_| ended())?;
        answer.await.map_err(|_| ended())?
    }
}

/// A place in the pool, given back when the signature is answered or abandoned.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A worker: signs queued inputs until the pool is dropped.
fn work(signer: &dyn TokenSigner, queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.recv()
        };
        let Ok(job) = job else {
            return;
        };
        if job.reply.is_closed() {
            continue;
        }
        let _ = job.reply.send(signer.sign(job.signing_input.as_bytes()));
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
    async fn pool_answers_busy_at_once_when_the_queue_is_full() {
        let pool = SignerPool::with_workers(Arc::new(signer()), 1, 1);
        let held = Slot(&pool.inner.in_flight);
        pool.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        assert!(pool.is_saturated());
        let err = pool.sign("a.b".into()).await.unwrap_err();
        assert_eq!(err, SignError::Busy { permits: 1 });
        drop(held);
        assert!(pool.sign("a.b".into()).await.is_ok());
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn many_signatures_at_once_all_come_back_from_few_workers() {
        let s = Arc::new(signer());
        let pool = SignerPool::with_workers(s.clone(), 2, 64);
        let jobs: Vec<_> = (0..32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.sign(format!("h.{i}")).await })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            let sig = job.await.expect("joined").expect("signed");
            let p = s.published();
            let public = RsaPublicKeyComponents { n: &p.n, e: &p.e };
            let input = format!("h.{i}");
            assert!(
                public
                    .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
                    .is_ok()
            );
        }
        assert_eq!(pool.in_flight(), 0);
    }
}
