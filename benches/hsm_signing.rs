//! Token issuance through the signer pool against the raw rate of the PKCS#11 module.
//!
//! Both sides use the same SoftHSM2 token, key and number of sessions (one per thread), so
//! their ratio is the pool's cost: building the claims and signing input, the queue, the
//! hand-off to a signer thread and back to the async runtime, and assembling the token.
//!
//! - `pkcs11_rs256/primitive/raw_sessions_N`: N threads, each with its own logged-in
//!   session, call `C_Sign` (CKM_SHA256_RSA_PKCS) back to back;
//! - `pkcs11_rs256/path/pool_workers_N`: id_tokens issued through a [`SignerPool`] with N
//!   workers over the same key, with enough sign-ins in flight to keep every worker busy.
//!
//! One iteration is a batch of [`BATCH`] signatures, so the throughput lines read directly
//! as signatures per second. The inputs are fixed at setup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::task::JoinSet;
use vouch::jose::token::{self, IdTokenClaims};
use vouch::signer::{SignerPool, published_from_certificate};
use vouch_hsm::SigningKey as _;
use vouch_hsm::pkcs11::{KeyRef, Pkcs11Key, Pkcs11Token};
use vouch_hsm::softhsm::TestToken;

/// Signatures per iteration.
const BATCH: u64 = 64;
/// Sessions on each side.
const SESSIONS: usize = 2;
/// Sign-ins kept in flight on the pool side: enough that no worker waits for work.
const IN_FLIGHT: usize = 4 * SESSIONS;

fn claims(now: i64) -> IdTokenClaims<'static> {
    IdTokenClaims {
        iss: "https://vouch.test",
        aud: entra_sim::CLIENT_ID,
        sub: entra_sim::USER_SUB,
        iat: now,
        nbf: now,
        exp: now + 300,
        nonce: Some("AwABEgEAAAADAOz_BQD0_8Xk"),
        acr: "possessionorinherence",
        amr: ["otp"],
    }
}

/// Signs `total` inputs on `SESSIONS` threads with a session each.
fn raw(key: &Pkcs11Key, input: &[u8], total: u64) -> Duration {
    let per_thread = total / SESSIONS as u64;
    let mut sessions: Vec<_> = (0..SESSIONS)
        .map(|_| key.session().expect("session"))
        .collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for session in &mut sessions {
            s.spawn(move || {
                for _ in 0..per_thread {
                    std::hint::black_box(session.sign_rs256(input).expect("signature"));
                }
            });
        }
    });
    started.elapsed()
}

/// Issues `total` id_tokens through the pool, `IN_FLIGHT` at a time.
async fn issue(pool: &SignerPool, now: i64, total: u64) -> Duration {
    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut issued = 0;
    while issued < total || !running.is_empty() {
        while issued < total && running.len() < IN_FLIGHT {
            let pool = pool.clone();
            running.spawn(async move {
                let key = pool.signing_key().expect("a signing key");
                let input = token::signing_input(&key.published.kid, &claims(now));
                let signature = pool.sign_with(&key, input.clone()).await.expect("signed");
                token::assemble(input, &signature)
            });
            issued += 1;
        }
        if let Some(done) = running.join_next().await {
            std::hint::black_box(done.expect("joined"));
        }
    }
    started.elapsed()
}

fn pkcs11(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestToken::create(dir.path()).expect("SoftHSM token");
    t.add_key("signing", &[0x01], true).expect("key");
    let token = Pkcs11Token::open(&t.config()).expect("token");
    let key = token.key(&KeyRef::Id(vec![0x01]), None).expect("key");
    let published = published_from_certificate(key.certificate_der()).expect("certificate");
    let now = entra_sim::unix_now();
    let input = token::signing_input(&published.kid, &claims(now));

    let pool_key = Arc::new(token.key(&KeyRef::Id(vec![0x01]), None).expect("key"));
    let pool = SignerPool::single(pool_key, published, SESSIONS, 64);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("pkcs11_rs256");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function(
        BenchmarkId::new("primitive", format!("raw_sessions_{SESSIONS}")),
        |b| b.iter_custom(|iters| raw(&key, input.as_bytes(), iters * BATCH)),
    );
    group.bench_function(
        BenchmarkId::new("path", format!("pool_workers_{SESSIONS}")),
        |b| b.iter_custom(|iters| runtime.block_on(issue(&pool, now, iters * BATCH))),
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = pkcs11
}
criterion_main!(benches);
