//! `verify_client` with certificates from a generated PKI: what a smart card or a phone would
//! present, and what an attacker or a broken CA would.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod pki_support;

use pki_support::*;
use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::CertificateDer;
use vouch::pki::config::{Amr, BindingRule, EnrolledCertificate, OcspPolicy};
use vouch::pki::{
    CertificateError, Evidence, ExpectedUser, Outage, Refusal, TrustStore, verify_client,
    verify_client_offline,
};

fn refusal(result: Result<vouch::pki::VerifiedCertificate, CertificateError>) -> Refusal {
    match result {
        Err(CertificateError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn outage(result: Result<vouch::pki::VerifiedCertificate, CertificateError>) -> Outage {
    match result {
        Err(CertificateError::Outage(o)) => o,
        other => panic!("expected an outage, got {other:?}"),
    }
}

struct Pki {
    root: Ca,
    issuing: Ca,
}

impl Pki {
    fn new() -> Pki {
        let root = Ca::root("Contoso Root");
        let issuing = root.intermediate("Contoso Issuing");
        Pki { root, issuing }
    }

    fn chain(&self, leaf: CertificateDer<'static>) -> Vec<CertificateDer<'static>> {
        vec![leaf, self.issuing.cert.clone()]
    }

    fn store_with_crls(&self, crls: Vec<(String, Vec<u8>)>) -> TrustStore {
        store(&self.root, &config("cards", BindingRule::Upn), crls)
    }

    fn crls(&self, revoked: &[u64]) -> Vec<(String, Vec<u8>)> {
        vec![
            ("root.crl".into(), self.root.fresh_crl(&[])),
            ("issuing.crl".into(), self.issuing.fresh_crl(revoked)),
        ]
    }
}

#[tokio::test]
async fn a_valid_certificate_of_the_user_is_accepted_with_the_stores_amr() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[99]));
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));

    let verified = verify_client(&store, &chain, AT, &user()).await.unwrap();
    assert_eq!(verified.amr, Amr::Sc);
    assert_eq!(verified.serial, "07");
    assert!(verified.subject.contains(UPN));
    assert!(matches!(verified.revocation, Evidence::Crl(ref s) if s == &["issuing.crl"]));
}

#[tokio::test]
async fn a_certificate_revoked_by_crl_is_refused_with_the_date_and_the_crl() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[5, 7, 9]));
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(matches!(
        refused,
        Refusal::Revoked { ref source_name, .. } if source_name == "CRL issuing.crl"
    ));
    assert!(
        refused
            .to_string()
            .starts_with("revoked on 2026-01-01T00:00:00Z by CRL issuing.crl")
    );
}

#[tokio::test]
async fn a_revoked_intermediate_revokes_its_users() {
    let pki = Pki::new();
    let mut params = ca_params("Contoso Issuing 2");
    params.serial_number = Some(rcgen::SerialNumber::from(4242u64));
    let issuing = pki.root.sub_ca(params);
    let crls = vec![
        ("root.crl".into(), pki.root.fresh_crl(&[4242])),
        ("issuing.crl".into(), issuing.fresh_crl(&[])),
    ];
    let store = pki.store_with_crls(crls);
    let chain = vec![issuing.user_cert(UPN, 7), issuing.cert.clone()];
    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(
        matches!(refused, Refusal::Revoked { ref serial, .. } if serial == "10:92"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_stale_crl_is_an_outage_not_a_pass() {
    let pki = Pki::new();
    let stale = pki
        .issuing
        .crl(&[], AT.plus(-10 * 86_400), AT.plus(-86_400));
    let crls = vec![
        ("root.crl".into(), pki.root.fresh_crl(&[])),
        ("issuing.crl".into(), stale),
    ];
    let store = pki.store_with_crls(crls);
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));

    let result = verify_client(&store, &chain, AT, &user()).await;
    assert!(result.as_ref().unwrap_err().is_outage());
    assert!(matches!(outage(result), Outage::StaleCrl { .. }));
}

#[tokio::test]
async fn the_crl_grace_keeps_a_late_crl_in_use() {
    let pki = Pki::new();
    let late = pki.issuing.crl(&[], AT.plus(-10 * 86_400), AT.plus(-3600));
    let crls = vec![
        ("root.crl".into(), pki.root.fresh_crl(&[])),
        ("issuing.crl".into(), late),
    ];
    let mut cfg = config("cards", BindingRule::Upn);
    cfg.crl_grace_secs = 7200;
    let store = store(&pki.root, &cfg, crls);
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));
    assert!(verify_client(&store, &chain, AT, &user()).await.is_ok());
}

#[tokio::test]
async fn a_serial_on_a_stale_crl_is_still_revoked() {
    let pki = Pki::new();
    let stale = pki
        .issuing
        .crl(&[7], AT.plus(-10 * 86_400), AT.plus(-86_400));
    let crls = vec![
        ("root.crl".into(), pki.root.fresh_crl(&[])),
        ("issuing.crl".into(), stale),
    ];
    let store = pki.store_with_crls(crls);
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));
    assert!(matches!(
        refusal(verify_client(&store, &chain, AT, &user()).await),
        Refusal::Revoked { .. }
    ));
}

#[tokio::test]
async fn an_expired_certificate_is_refused_with_its_end_date() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let leaf = Leaf::new(UPN, 7).valid(AT.plus(-86_400 * 400), AT.plus(-86_400));
    let chain = pki.chain(pki.issuing.issue(leaf));

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert_eq!(
        refused.to_string(),
        format!(
            "expired on {}; the user needs a renewed certificate",
            AT.plus(-86_400)
        )
    );
}

#[tokio::test]
async fn a_certificate_not_yet_valid_is_refused() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let leaf = Leaf::new(UPN, 7).valid(AT.plus(86_400), AT.plus(86_400 * 400));
    let chain = pki.chain(pki.issuing.issue(leaf));
    assert!(matches!(
        refusal(verify_client(&store, &chain, AT, &user()).await),
        Refusal::NotYetValid { .. }
    ));
}

#[tokio::test]
async fn a_certificate_without_client_auth_is_refused_for_its_eku() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let leaf = Leaf::new(UPN, 7).ekus(vec![ExtendedKeyUsagePurpose::ServerAuth]);
    let chain = pki.chain(pki.issuing.issue(leaf));

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(
        matches!(refused, Refusal::WrongEku { ref present, .. } if present == "server_auth"),
        "{refused}"
    );
}

#[tokio::test]
async fn another_users_certificate_is_refused_for_lack_of_binding() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let chain = pki.chain(pki.issuing.user_cert("grace@contoso.example", 8));

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(matches!(refused, Refusal::NoBinding { .. }));
    assert!(
        refused
            .to_string()
            .contains("grace@contoso.example is not ada@contoso.example")
    );
}

#[tokio::test]
async fn the_upn_comparison_ignores_ascii_case_and_needs_the_hint_to_carry_one() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let chain = pki.chain(pki.issuing.user_cert("ADA@Contoso.Example", 8));
    assert!(verify_client(&store, &chain, AT, &user()).await.is_ok());

    let no_upn = ExpectedUser {
        upn: None,
        ..user()
    };
    assert!(matches!(
        refusal(verify_client(&store, &chain, AT, &no_upn).await),
        Refusal::NoBinding { .. }
    ));
}

#[tokio::test]
async fn an_enrolled_binding_matches_tid_and_oid_only() {
    let pki = Pki::new();
    let leaf = pki.issuing.user_cert("someone-else@contoso.example", 9);
    let mut cfg = config("enrolled", BindingRule::Enrolled);
    cfg.enrolled = vec![EnrolledCertificate {
        tid: TENANT.into(),
        oid: OID.into(),
        sha256: vouch::pki::crl::sha256(&leaf),
    }];
    let store = store(&pki.root, &cfg, pki.crls(&[]));
    let chain = pki.chain(leaf);
    assert!(verify_client(&store, &chain, AT, &user()).await.is_ok());

    let other = ExpectedUser {
        oid: "00000000-0000-0000-0000-0000000000b2",
        ..user()
    };
    let refused = refusal(verify_client(&store, &chain, AT, &other).await);
    assert!(refused.to_string().contains("enrolled for another user"));
}

#[tokio::test]
async fn a_store_refuses_users_of_tenants_it_does_not_serve() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));
    let stranger = ExpectedUser {
        tid: "00000000-0000-0000-0000-0000000000f9",
        ..user()
    };
    assert!(matches!(
        refusal(verify_client(&store, &chain, AT, &stranger).await),
        Refusal::WrongTenant { .. }
    ));
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_with_its_issuer() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let rogue = Ca::root("Rogue Root").intermediate("Contoso Issuing");
    let chain = vec![rogue.user_cert(UPN, 7), rogue.cert.clone()];

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(
        matches!(
            refused,
            Refusal::UnknownIssuer { ref issuer, .. } if issuer.contains("Contoso Issuing")
        ),
        "{refused}"
    );
}

#[tokio::test]
async fn a_chain_of_ten_intermediates_exceeds_the_depth_budget_with_a_clear_error() {
    let root = Ca::root("Deep Root");
    let mut cas = vec![root.intermediate("Deep 1")];
    for i in 2..=10 {
        let next = cas.last().unwrap().intermediate(&format!("Deep {i}"));
        cas.push(next);
    }
    let leaf = cas.last().unwrap().user_cert(UPN, 7);
    let mut chain = vec![leaf];
    chain.extend(cas.iter().rev().map(|c| c.cert.clone()));
    let store = store(&root, &config("deep", BindingRule::Upn), Vec::new());

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(
        matches!(refused, Refusal::BudgetExceeded { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("path building gave up"));
}

#[tokio::test]
async fn a_path_building_loop_stops_within_the_budget() {
    // Two CAs that certify each other under the same names, plus decoys: every path loops.
    let root = Ca::root("Loop Root");
    let a = Ca::root("Loop A");
    let b = Ca::root("Loop B");
    let mut chain = vec![a.user_cert(UPN, 7)];
    for _ in 0..6 {
        chain.push(b.intermediate("Loop A").cert.clone());
        chain.push(a.intermediate("Loop B").cert.clone());
    }
    let store = store(&root, &config("loop", BindingRule::Upn), Vec::new());

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(
        matches!(
            refused,
            Refusal::BudgetExceeded { .. }
                | Refusal::UnknownIssuer { .. }
                | Refusal::TooManyCertificates { .. }
        ),
        "{refused}"
    );
}

#[tokio::test]
async fn a_second_verification_of_the_same_issuer_uses_the_link_cache_and_agrees() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[8]));
    let first = pki.chain(pki.issuing.user_cert(UPN, 7));
    assert!(verify_client(&store, &first, AT, &user()).await.is_ok());
    assert_eq!(store.cache.len(), 1);

    let revoked = pki.chain(pki.issuing.user_cert(UPN, 8));
    assert!(matches!(
        refusal(verify_client(&store, &revoked, AT, &user()).await),
        Refusal::Revoked { .. }
    ));
    let expired = pki.chain(
        pki.issuing
            .issue(Leaf::new(UPN, 9).valid(AT.plus(-900_000), AT.plus(-1))),
    );
    assert!(matches!(
        refusal(verify_client(&store, &expired, AT, &user()).await),
        Refusal::Expired { .. }
    ));
    let path = vouch::pki::chain::validate(&store, &first, AT).unwrap();
    assert!(path.cached);
}

#[tokio::test]
async fn the_cache_is_cleared_when_crls_are_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let mut cfg = config("cards", BindingRule::Upn);
    cfg.roots = vec![write(
        dir.path(),
        "root.pem",
        pem(&pki.root.cert).as_bytes(),
    )];
    cfg.crl_files = vec![
        write(dir.path(), "root.crl", &pki.root.fresh_crl(&[])),
        write(dir.path(), "issuing.crl", &pki.issuing.fresh_crl(&[])),
    ];
    let store = TrustStore::load(&cfg).unwrap();
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));
    assert!(verify_client(&store, &chain, AT, &user()).await.is_ok());
    assert_eq!(store.cache.len(), 1);

    write(dir.path(), "issuing.crl", &pki.issuing.fresh_crl(&[7]));
    store.refresh().await;
    assert_eq!(store.cache.len(), 0);
    assert!(matches!(
        refusal(verify_client(&store, &chain, AT, &user()).await),
        Refusal::Revoked { .. }
    ));
}

fn pem(cert: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn crls_from_a_distribution_point_are_fetched_on_refresh() {
    let pki = Pki::new();
    let server = Loopback::start(pki.issuing.fresh_crl(&[7])).await;
    let root_server = Loopback::start(pki.root.fresh_crl(&[])).await;
    let mut cfg = config("cards", BindingRule::Upn);
    cfg.crl_urls = vec![server.url("/issuing.crl"), root_server.url("/root.crl")];
    let store = store(&pki.root, &cfg, Vec::new());
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));

    let before = verify_client(&store, &chain, AT, &user()).await;
    assert!(matches!(outage(before), Outage::CrlUnavailable { .. }));
    store.refresh().await;
    assert_eq!(server.hits(), 1);
    assert!(matches!(
        refusal(verify_client(&store, &chain, AT, &user()).await),
        Refusal::Revoked { .. }
    ));

    server.set(500, Vec::new());
    store.refresh().await;
    let crls = store.crls();
    let status = crls
        .sources
        .iter()
        .find(|s| s.source.ends_with("/issuing.crl"))
        .unwrap();
    assert!(status.crl.is_some(), "the previous CRL stays");
    assert!(status.last_error.as_deref().unwrap().contains("HTTP 500"));
}

#[tokio::test]
async fn a_crl_signed_by_the_wrong_key_is_refused_at_load_and_covers_nothing() {
    let pki = Pki::new();
    let impostor = Ca::root("Contoso Issuing");
    let forged = impostor.fresh_crl(&[]);
    let mut cfg = config("cards", BindingRule::Upn);
    let built = TrustStore::build(
        &cfg,
        vec![pki.root.cert.clone()],
        vec![pki.issuing.cert.clone()],
        vec![("forged.crl".into(), forged.clone())],
    );
    let err = built.unwrap_err().to_string();
    assert!(
        err.contains("forged.crl") && err.contains("does not verify"),
        "{err}"
    );

    // When the issuer is only known from the client's chain, the CRL loads but cannot cover.
    cfg.name = "late".into();
    let crls = vec![
        ("root.crl".into(), pki.root.fresh_crl(&[])),
        ("forged.crl".into(), forged),
    ];
    let store = store(&pki.root, &cfg, crls);
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));
    assert!(matches!(
        refusal(verify_client(&store, &chain, AT, &user()).await),
        Refusal::RevocationUnknown { .. }
    ));
}

#[test]
fn garbage_and_truncated_crls_are_refused_with_a_reason() {
    let pki = Pki::new();
    let cfg = config("cards", BindingRule::Upn);
    let good = pki.issuing.fresh_crl(&[1, 2, 3]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", b"not a crl at all".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("trailing", [good.clone(), vec![0]].concat()),
        (
            "pem-garbage",
            b"-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n".to_vec(),
        ),
        ("a-certificate", pki.issuing.cert.to_vec()),
    ];
    for (name, bytes) in cases {
        let built = TrustStore::build(
            &cfg,
            vec![pki.root.cert.clone()],
            Vec::new(),
            vec![(name.into(), bytes)],
        );
        let err = built.expect_err(name).to_string();
        assert!(err.starts_with(&format!("CRL {name}: ")), "{name}: {err}");
    }
}

#[tokio::test]
async fn garbage_certificates_and_oversize_chains_are_refused_without_panic() {
    let pki = Pki::new();
    let store = pki.store_with_crls(pki.crls(&[]));
    let leaf = pki.issuing.user_cert(UPN, 7);
    let cases: Vec<Vec<CertificateDer<'static>>> = vec![
        Vec::new(),
        vec![CertificateDer::from(b"garbage".to_vec())],
        vec![CertificateDer::from(leaf[..leaf.len() - 10].to_vec())],
        vec![CertificateDer::from(vec![
            0x30, 0x84, 0xff, 0xff, 0xff, 0xff,
        ])],
        vec![leaf.clone(); 40],
        vec![leaf.clone(), CertificateDer::from(vec![0u8; 70_000])],
    ];
    for chain in cases {
        let result = verify_client(&store, &chain, AT, &user()).await;
        assert!(
            matches!(result, Err(CertificateError::Refused(_))),
            "{result:?}"
        );
    }
}

mod ocsp {
    use super::*;

    fn ocsp_store(pki: &Pki, policy: OcspPolicy, crls: Vec<(String, Vec<u8>)>) -> TrustStore {
        let mut cfg = config("ocsp", BindingRule::Upn);
        cfg.ocsp = policy;
        cfg.ocsp_timeout_ms = 500;
        store(&pki.root, &cfg, crls)
    }

    #[tokio::test]
    async fn a_good_ocsp_answer_is_used_and_cached_until_next_update() {
        let pki = Pki::new();
        let responder =
            Loopback::start(OcspAnswer::good(&pki.issuing, 7).sign(&pki.issuing.key(), None)).await;
        let store = ocsp_store(&pki, OcspPolicy::Require, pki.crls(&[]));
        let chain = pki.chain(
            pki.issuing
                .issue(Leaf::new(UPN, 7).ocsp(&responder.url("/ocsp"))),
        );

        let verified = verify_client(&store, &chain, AT, &user()).await.unwrap();
        assert_eq!(verified.revocation, Evidence::Ocsp(responder.url("/ocsp")));
        assert!(
            verify_client(&store, &chain, AT.plus(60), &user())
                .await
                .is_ok()
        );
        assert_eq!(responder.hits(), 1, "the second answer came from the cache");
        let mut later = OcspAnswer::good(&pki.issuing, 7);
        later.this_update = AT.plus(7000);
        later.next_update = Some(AT.plus(10_000));
        responder.set(200, later.sign(&pki.issuing.key(), None));
        assert!(
            verify_client(&store, &chain, AT.plus(7200), &user())
                .await
                .is_ok()
        );
        assert_eq!(
            responder.hits(),
            2,
            "past nextUpdate the responder is asked again"
        );
    }

    #[tokio::test]
    async fn a_certificate_revoked_by_ocsp_is_refused_although_the_crl_is_older() {
        let pki = Pki::new();
        let mut answer = OcspAnswer::good(&pki.issuing, 7);
        answer.status = Status::Revoked(AT.plus(-600));
        let responder = Loopback::start(answer.sign(&pki.issuing.key(), None)).await;
        let store = ocsp_store(&pki, OcspPolicy::Prefer, pki.crls(&[]));
        let chain = pki.chain(
            pki.issuing
                .issue(Leaf::new(UPN, 7).ocsp(&responder.url("/ocsp"))),
        );

        let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
        assert!(
            refused.to_string().contains("by OCSP responder"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_delegated_responder_needs_ocsp_signing_from_the_issuer() {
        let pki = Pki::new();
        let delegate = pki.issuing.sub_ca(responder_params("Contoso OCSP"));
        let body = OcspAnswer::good(&pki.issuing, 7).sign(&delegate.key(), Some(&delegate.cert));
        let responder = Loopback::start(body).await;
        let store = ocsp_store(&pki, OcspPolicy::Require, Vec::new());
        let chain = pki.chain(
            pki.issuing
                .issue(Leaf::new(UPN, 7).ocsp(&responder.url("/ocsp"))),
        );
        assert!(verify_client(&store, &chain, AT, &user()).await.is_ok());

        let stranger = Ca::root("Stranger");
        let forged = OcspAnswer::good(&pki.issuing, 7).sign(&stranger.key(), Some(&stranger.cert));
        responder.set(200, forged);
        let chain = pki.chain(
            pki.issuing
                .issue(Leaf::new(UPN, 7).ocsp(&responder.url("/ocsp"))),
        );
        let fresh_store = ocsp_store(&pki, OcspPolicy::Require, Vec::new());
        let failed = outage(verify_client(&fresh_store, &chain, AT, &user()).await);
        assert!(
            failed
                .to_string()
                .contains("signed neither by the issuing CA"),
            "{failed}"
        );
    }

    #[tokio::test]
    async fn ocsp_answers_for_another_certificate_or_with_a_wrong_nonce_are_not_used() {
        let pki = Pki::new();
        let other = OcspAnswer::good(&pki.issuing, 8).sign(&pki.issuing.key(), None);
        let responder = Loopback::start(other).await;
        let store = ocsp_store(&pki, OcspPolicy::Require, Vec::new());
        let chain = pki.chain(
            pki.issuing
                .issue(Leaf::new(UPN, 7).ocsp(&responder.url("/ocsp"))),
        );
        let failed = outage(verify_client(&store, &chain, AT, &user()).await);
        assert!(
            failed
                .to_string()
                .contains("does not answer for the certificate"),
            "{failed}"
        );

        let mut replayed = OcspAnswer::good(&pki.issuing, 7);
        replayed.nonce = Some(vec![1; 16]);
        responder.set(200, replayed.sign(&pki.issuing.key(), None));
        let store = ocsp_store(&pki, OcspPolicy::Require, Vec::new());
        let failed = outage(verify_client(&store, &chain, AT, &user()).await);
        assert!(failed.to_string().contains("nonce"), "{failed}");
    }

    #[tokio::test]
    async fn an_unreachable_responder_is_an_outage_when_required_and_the_crl_when_preferred() {
        let pki = Pki::new();
        let responder = Loopback::start(b"garbage".to_vec()).await;
        let url = responder.url("/ocsp");
        let chain = pki.chain(pki.issuing.issue(Leaf::new(UPN, 7).ocsp(&url)));

        let required = ocsp_store(&pki, OcspPolicy::Require, pki.crls(&[]));
        let failed = outage(verify_client(&required, &chain, AT, &user()).await);
        assert!(matches!(failed, Outage::OcspUnavailable { .. }), "{failed}");

        let preferred = ocsp_store(&pki, OcspPolicy::Prefer, pki.crls(&[]));
        let verified = verify_client(&preferred, &chain, AT, &user())
            .await
            .unwrap();
        assert!(matches!(verified.revocation, Evidence::Crl(_)));
        assert_eq!(responder.hits(), 2);
        // A failed responder is left alone for a while instead of slowing every sign-in.
        assert!(
            verify_client(&preferred, &chain, AT.plus(1), &user())
                .await
                .is_ok()
        );
        assert_eq!(responder.hits(), 2);
    }

    #[tokio::test]
    async fn an_expired_or_future_ocsp_answer_is_not_used() {
        let pki = Pki::new();
        let mut expired = OcspAnswer::good(&pki.issuing, 7);
        expired.this_update = AT.plus(-7200);
        expired.next_update = Some(AT.plus(-3600));
        let responder = Loopback::start(expired.sign(&pki.issuing.key(), None)).await;
        let chain = pki.chain(
            pki.issuing
                .issue(Leaf::new(UPN, 7).ocsp(&responder.url("/ocsp"))),
        );
        let store = ocsp_store(&pki, OcspPolicy::Require, Vec::new());
        assert!(
            outage(verify_client(&store, &chain, AT, &user()).await)
                .to_string()
                .contains("expired")
        );

        let mut future = OcspAnswer::good(&pki.issuing, 7);
        future.this_update = AT.plus(86_400);
        future.next_update = Some(AT.plus(2 * 86_400));
        responder.set(200, future.sign(&pki.issuing.key(), None));
        let store = ocsp_store(&pki, OcspPolicy::Require, Vec::new());
        assert!(
            outage(verify_client(&store, &chain, AT, &user()).await)
                .to_string()
                .contains("future")
        );
    }

    #[test]
    fn offline_verification_never_asks_a_responder() {
        let pki = Pki::new();
        let store = ocsp_store(&pki, OcspPolicy::Require, Vec::new());
        let chain = pki.chain(
            pki.issuing
                .issue(Leaf::new(UPN, 7).ocsp("http://127.0.0.1:9/ocsp")),
        );
        let result = verify_client_offline(&store, &chain, AT, &user());
        assert!(result.unwrap_err().is_outage());
    }
}

#[tokio::test]
async fn a_trust_store_section_loads_through_the_configuration_and_names_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    write(dir.path(), "root.pem", pem(&pki.root.cert).as_bytes());
    write(dir.path(), "issuing.crl", &pki.issuing.fresh_crl(&[]));
    write(dir.path(), "root.crl", &pki.root.fresh_crl(&[]));
    let text = format!(
        "[[trust_store]]\nname = \"cards\"\ntenants = [\"{TENANT}\"]\nroots = [\"root.pem\"]\n\
         binding = \"upn\"\namr = \"hwk\"\ncrl_files = [\"root.crl\", \"issuing.crl\"]\n"
    );
    let config = vouch::config::Config::parse(&text, "test.toml", dir.path()).unwrap();
    let stores = vouch::pki::TrustStores::load_and_refresh(&config.trust_stores).unwrap();
    let store = stores.for_tenant(TENANT).next().unwrap();
    let chain = pki.chain(pki.issuing.user_cert(UPN, 7));
    assert_eq!(
        verify_client(store, &chain, AT, &user()).await.unwrap().amr,
        Amr::Hwk
    );

    write(dir.path(), "root.pem", b"not a certificate");
    let err = vouch::pki::TrustStores::load(&config.trust_stores)
        .unwrap_err()
        .to_string();
    assert!(err.contains("root.pem") && err.contains("PEM"), "{err}");

    let duplicate = format!("{text}{text}");
    let err = vouch::config::Config::parse(&duplicate, "test.toml", dir.path()).unwrap_err();
    assert_eq!(err.key, "trust_store[1].name");
}

#[tokio::test]
async fn a_ca_whose_key_usage_lacks_key_cert_sign_cannot_issue() {
    let root = Ca::root("Contoso Root");
    let mut params = ca_params("CRL Signer Only");
    params.key_usages = vec![rcgen::KeyUsagePurpose::CrlSign];
    let signer = root.sub_ca(params);
    let store = store(&root, &config("cards", BindingRule::Upn), Vec::new());
    let chain = vec![signer.user_cert(UPN, 7), signer.cert.clone()];

    let refused = refusal(verify_client(&store, &chain, AT, &user()).await);
    assert!(
        refused.to_string().contains("lacks keyCertSign"),
        "{refused}"
    );
}

#[tokio::test]
async fn an_expired_root_is_refused_even_when_its_links_are_cached() {
    let root = Ca::root_until("Short Root", AT.plus(86_400));
    let issuing = root.intermediate("Contoso Issuing");
    let store = store(&root, &config("cards", BindingRule::Upn), Vec::new());
    let chain = vec![issuing.user_cert(UPN, 7), issuing.cert.clone()];
    assert!(verify_client(&store, &chain, AT, &user()).await.is_ok());
    assert_eq!(store.cache.len(), 1);

    let later = AT.plus(2 * 86_400);
    let refused = refusal(verify_client(&store, &chain, later, &user()).await);
    assert_eq!(
        refused,
        Refusal::Expired {
            not_after: AT.plus(86_400)
        }
    );
}
