//! What `PivKey` adds on top of the card: one RS256 signature through `PivKey` (hash,
//! PKCS#1 padding, VERIFY, GENERAL AUTHENTICATE, checking the result against the
//! certificate) beside the card's own VERIFY + GENERAL AUTHENTICATE on an already padded
//! block, both against the emulated card in-process, so the card's RSA time is the same in
//! both and the ratio is vouch's overhead. `host_side_work` times that overhead alone: the
//! hash and padding before the card, the check of its signature after.
//!
//! Run: `cargo bench -p vouch-hsm --bench piv_sign -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use vouch_hsm::SigningKey;
use vouch_hsm::piv::pin::Pin;
use vouch_hsm::piv::{PivKey, Slot, card};

const INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiIsImtpZCI6InBpdiJ9.eyJzdWIiOiJiZW5jaCJ9";

fn sign(c: &mut Criterion) {
    let (link, _) = common::InProcess::provisioned();
    let (_dir, pin_path) = common::pin_file(common::PIN, 0o600);
    let key = PivKey::open_with(common::config(None, &pin_path), Box::new(link.clone())).unwrap();
    let mut session = key.session().unwrap();
    let block = vouch_hsm::piv::pkcs1_sha256_block(INPUT);
    let pin = Pin::new(common::PIN.as_bytes()).unwrap();
    let mut raw = link.clone();

    let mut group = c.benchmark_group("piv_sign");
    group.bench_function("card_verify_and_general_authenticate", |b| {
        b.iter(|| {
            card::verify_pin(&mut raw, &pin).unwrap();
            card::sign_rsa_2048(&mut raw, Slot::SIGNATURE, &block).unwrap()
        })
    });
    group.bench_function("pivkey_sign_rs256", |b| {
        b.iter(|| session.sign_rs256(INPUT).unwrap())
    });
    let signature = session.sign_rs256(INPUT).unwrap();
    group.bench_function("host_side_work", |b| {
        b.iter(|| {
            let block = vouch_hsm::piv::pkcs1_sha256_block(INPUT);
            common::verify_rs256(key.certificate_der(), INPUT, &signature);
            block
        })
    });
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
