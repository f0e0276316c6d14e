//! Criterion benchmarks of client-certificate verification, each beside raw rustls-webpki doing
//! the same work in the same run:
//!
//! - `chain`: a user certificate under an issuing CA under a root (ECDSA P-256), through
//!   vouch cold (issuer-link cache emptied before each verify) and cached, against webpki's
//!   `verify_for_usage` on the same chain;
//! - `revocation`: the same chain with a 100,000-entry CRL from the issuing CA (and a small
//!   one from the root), through vouch (CRLs verified once at load, serials hashed), against
//!   webpki given the CRLs per path: as DER parsed per path (what a server holding the CRL
//!   bytes does) and pre-parsed into webpki's owned form (signature still checked per path);
//! - `phone_answer`: what the appliance checks of a phone's answer, the cached chain and the
//!   challenge signature with the leaf's key, against one raw aws-lc-rs P-256 verify;
//! - `challenge_issue`: issuing (and removing) a phone challenge with 9,999 others pending,
//!   against drawing its 48 random bytes;
//! - `waiting_page`: drawing the page with the challenge's QR code, which has no primitive
//!   of its own, beside one RSA-2048 sign (the id_token's), to read as a ratio.
//!
//! Inputs are made once at a fixed instant; the user certificate is not revoked, so every
//! path reads the whole revocation data it has.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    RSA_PKCS1_SHA256, UnparsedPublicKey,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use vouch::eam::challenges::{Challenges, MAX_PENDING, Subject};
use vouch::eam::i18n::Lang;
use vouch::eam::pki_pages::{MobileWait, mobile_wait};
use vouch::pki::challenge::{ChallengeAlgorithm, verify_challenge};
use vouch::pki::config::{
    Amr, BindingRule, EKU_CLIENT_AUTH, OcspPolicy, TenantScope, TrustStoreConfig,
};
use vouch::pki::{Timestamp, TrustStore, verify_chain_offline};
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage,
    OwnedCertRevocationList, RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

/// 2026-06-01T00:00:00Z.
const AT: Timestamp = Timestamp(1_780_272_000);
const BIG_CRL_ENTRIES: u64 = 100_000;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn date(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date(1_577_836_800);
    params.not_after = date(2_208_988_800);
    params
}

struct Pki {
    root: CertificateDer<'static>,
    issuing: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    /// The leaf's private key, PKCS#8.
    leaf_key: Vec<u8>,
    root_crl: Vec<u8>,
    big_crl: Vec<u8>,
}

fn crl(issuer: &Issuer<'_, KeyPair>, entries: u64) -> Vec<u8> {
    let revoked_certs = (1..=entries)
        .map(|n| RevokedCertParams {
            serial_number: SerialNumber::from(1_000_000 + n),
            revocation_time: date(1_767_225_600),
            reason_code: None,
            invalidity_date: None,
        })
        .collect();
    let params = CertificateRevocationListParams {
        this_update: date(AT.0 - 3600),
        next_update: date(AT.0 + 86_400),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(issuer).unwrap().der().to_vec()
}

fn pki() -> Pki {
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("Bench Root");
    let root = root_params.self_signed(&root_key).unwrap().der().clone();
    let root_issuer = Issuer::new(root_params, root_key);

    let issuing_key = KeyPair::generate().unwrap();
    let issuing_params = ca_params("Bench Issuing");
    let issuing = issuing_params
        .signed_by(&issuing_key, &root_issuer)
        .unwrap()
        .der()
        .clone();
    let issuing_issuer = Issuer::new(issuing_params, issuing_key);

    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "user@bench.example");
    leaf_params.serial_number = Some(SerialNumber::from(7u64));
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf_params.not_before = date(1_577_836_800);
    leaf_params.not_after = date(2_208_988_800);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuing_issuer)
        .unwrap()
        .der()
        .clone();

    Pki {
        root_crl: crl(&root_issuer, 1),
        big_crl: crl(&issuing_issuer, BIG_CRL_ENTRIES),
        root,
        issuing,
        leaf,
        leaf_key: leaf_key.serialize_der(),
    }
}

fn store(pki: &Pki, crls: Vec<(String, Vec<u8>)>) -> TrustStore {
    let config = TrustStoreConfig {
        name: "bench".into(),
        scope: TenantScope::Shared,
        roots: Vec::new(),
        intermediates: Vec::new(),
        ekus: vec![EKU_CLIENT_AUTH.to_vec()],
        binding: BindingRule::Upn,
        amr: Amr::Sc,
        crl_files: Vec::new(),
        crl_urls: Vec::new(),
        crl_refresh_secs: 3600,
        crl_grace_secs: 0,
        ocsp: OcspPolicy::Off,
        ocsp_timeout_ms: 1000,
        enrolled: Vec::new(),
        methods: vec![vouch::factor::Method::SmartCard],
    };
    TrustStore::build(&config, vec![pki.root.clone()], Vec::new(), crls).unwrap()
}

fn webpki_verify(
    leaf: &CertificateDer<'_>,
    anchors: &[TrustAnchor<'_>],
    intermediates: &[CertificateDer<'_>],
    crls: Option<&[&CertRevocationList<'_>]>,
) {
    let time = UnixTime::since_unix_epoch(Duration::from_secs(AT.0 as u64));
    let revocation = crls.map(|crls| {
        RevocationOptionsBuilder::new(crls)
            .unwrap()
            .with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Deny)
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build()
    });
    let cert = EndEntityCert::try_from(leaf).unwrap();
    let algs = rustls::crypto::aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .all;
    cert.verify_for_usage(
        algs,
        anchors,
        intermediates,
        time,
        KeyUsage::client_auth(),
        revocation,
        None,
    )
    .unwrap();
}

fn chain(c: &mut Criterion) {
    let pki = pki();
    let chain = vec![pki.leaf.clone(), pki.issuing.clone()];
    let anchors = vec![webpki::anchor_from_trusted_cert(&pki.root).unwrap()];
    let store = store(&pki, Vec::new());

    let mut group = c.benchmark_group("chain");
    group.bench_function(BenchmarkId::new("vouch", "cold"), |b| {
        b.iter(|| {
            store.cache.clear();
            black_box(verify_chain_offline(&store, &chain, AT).unwrap());
        })
    });
    group.bench_function(BenchmarkId::new("vouch", "cached"), |b| {
        b.iter(|| black_box(verify_chain_offline(&store, &chain, AT).unwrap()))
    });
    group.bench_function(BenchmarkId::new("webpki", "verify_for_usage"), |b| {
        b.iter(|| webpki_verify(&pki.leaf, &anchors, &chain[1..], None))
    });
    group.finish();
}

fn revocation(c: &mut Criterion) {
    let pki = pki();
    let chain = vec![pki.leaf.clone(), pki.issuing.clone()];
    let anchors = vec![webpki::anchor_from_trusted_cert(&pki.root).unwrap()];
    let crls = vec![
        ("root.crl".into(), pki.root_crl.clone()),
        ("issuing.crl".into(), pki.big_crl.clone()),
    ];
    let store = store(&pki, crls);
    let owned: Vec<CertRevocationList<'static>> = [&pki.root_crl, &pki.big_crl]
        .iter()
        .map(|der| OwnedCertRevocationList::from_der(der).unwrap().into())
        .collect();
    let owned_refs: Vec<&CertRevocationList<'_>> = owned.iter().collect();

    let mut group = c.benchmark_group("revocation_100k_crl");
    group.bench_function(BenchmarkId::new("vouch", "cached"), |b| {
        b.iter(|| black_box(verify_chain_offline(&store, &chain, AT).unwrap()))
    });
    group.bench_function(BenchmarkId::new("vouch", "cold"), |b| {
        b.iter(|| {
            store.cache.clear();
            black_box(verify_chain_offline(&store, &chain, AT).unwrap());
        })
    });
    group.bench_function(BenchmarkId::new("webpki", "crl_der_per_path"), |b| {
        b.iter(|| {
            let parsed: Vec<CertRevocationList<'_>> = [&pki.root_crl, &pki.big_crl]
                .iter()
                .map(|der| BorrowedCertRevocationList::from_der(der).unwrap().into())
                .collect();
            let refs: Vec<&CertRevocationList<'_>> = parsed.iter().collect();
            webpki_verify(&pki.leaf, &anchors, &chain[1..], Some(&refs));
        })
    });
    group.bench_function(BenchmarkId::new("webpki", "owned_crl_per_path"), |b| {
        b.iter(|| webpki_verify(&pki.leaf, &anchors, &chain[1..], Some(&owned_refs)))
    });
    group.finish();
}

fn phone_answer(c: &mut Criterion) {
    let pki = pki();
    let chain = vec![pki.leaf.clone(), pki.issuing.clone()];
    let store = store(&pki, Vec::new());
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pki.leaf_key).unwrap();
    let challenge = [7u8; 32];
    let signature = key.sign(&SystemRandom::new(), &challenge).unwrap();
    let point = key.public_key().as_ref().to_vec();
    let es256 = ChallengeAlgorithm::EcdsaP256Sha256P1363;

    let mut group = c.benchmark_group("phone_answer");
    group.bench_function(
        BenchmarkId::new("vouch", "chain_cached_and_signature"),
        |b| {
            b.iter(|| {
                let verified = verify_chain_offline(&store, &chain, AT).unwrap();
                let leaf = EndEntityCert::try_from(&chain[0]).unwrap();
                let spki = leaf.subject_public_key_info();
                verify_challenge(spki.as_ref(), es256, &challenge, signature.as_ref()).unwrap();
                black_box(verified)
            })
        },
    );
    group.bench_function(BenchmarkId::new("vouch", "signature"), |b| {
        b.iter(|| {
            let leaf = EndEntityCert::try_from(&chain[0]).unwrap();
            let spki = leaf.subject_public_key_info();
            verify_challenge(spki.as_ref(), es256, &challenge, signature.as_ref()).unwrap();
        })
    });
    group.bench_function(BenchmarkId::new("primitive", "p256_verify"), |b| {
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point);
        b.iter(|| {
            key.verify(black_box(&challenge), signature.as_ref())
                .unwrap()
        })
    });
    group.finish();
}

fn challenge_issue(c: &mut Criterion) {
    let subject = |txn: String| Subject {
        txn_id: txn,
        tid: "t".into(),
        oid: "o".into(),
        upn: None,
        amr: "swk".into(),
        expires: AT.0 + 600,
    };
    let challenges = Challenges::default();
    for i in 0..MAX_PENDING - 1 {
        challenges.issue(subject(i.to_string()), AT.0).unwrap();
    }

    let mut group = c.benchmark_group("challenge_issue");
    group.bench_function(BenchmarkId::new("vouch", "issue_among_9999"), |b| {
        b.iter(|| {
            let (id, _) = challenges.issue(subject("bench".into()), AT.0).unwrap();
            challenges.remove(black_box(&id));
        })
    });
    group.bench_function(BenchmarkId::new("primitive", "random_48_bytes"), |b| {
        let mut bytes = [0u8; 48];
        b.iter(|| aws_lc_rs::rand::fill(black_box(&mut bytes)).unwrap())
    });
    group.finish();
}

fn waiting_page(c: &mut Criterion) {
    let link = "vouch-pki://sign?api=https%3A%2F%2Fmfa.example.com%2Feam%2Fmobile%2Frespond\
&challenge_id=q1w2e3r4t5y6u7i8o9p0aa&challenge=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let page = MobileWait {
        lang: Lang::En,
        action: "/eam/mobile",
        wait: "/eam/mobile/wait",
        transaction: &"t".repeat(400),
        challenge_id: "q1w2e3r4t5y6u7i8o9p0aa",
        compare_code: "434 505",
        link,
        message: None,
    };
    let pkcs8 = RsaKeyPair::generate(KeySize::Rsa2048)
        .and_then(|k| k.as_der())
        .unwrap();
    let rsa = RsaKeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let rng = SystemRandom::new();

    let mut group = c.benchmark_group("waiting_page");
    group.bench_function(BenchmarkId::new("vouch", "mobile_wait"), |b| {
        b.iter(|| black_box(mobile_wait(black_box(&page))))
    });
    group.bench_function(BenchmarkId::new("primitive", "rsa2048_sign"), |b| {
        let mut signature = vec![0; rsa.public_modulus_len()];
        b.iter(|| {
            rsa.sign(
                &RSA_PKCS1_SHA256,
                &rng,
                black_box(link.as_bytes()),
                &mut signature,
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = chain, revocation, phone_answer, challenge_issue, waiting_page
}
criterion_main!(benches);
