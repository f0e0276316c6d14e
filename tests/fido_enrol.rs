//! Security-key enrolment over HTTPS through one-time links: the link, the page's sealed
//! state, the attestation, and the tenant's allow-list.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod fido_support;

use common::*;
use entra_sim::authenticator::{AttestationKey, Authenticator, Format};
use fido_support::*;
use vouch::jose::b64url_encode;

#[tokio::test]
async fn a_link_enrols_once_and_a_reused_expired_or_forged_link_is_not_valid() {
    let stand = Stand::start().await;
    let token = issue_link(&stand, 900);
    let page = open_link(&stand, &token).await;
    let mut first = key();
    let done = register(&stand, &page, &mut first, Format::PackedSelf).await;
    assert!(done.body.contains("Security key added"), "{}", done.body);

    let reused = open_link(&stand, &token).await;
    assert_eq!(reused.status, 404);
    assert!(reused.body.contains("Link not valid"), "{}", reused.body);
    let replayed = register(&stand, &page, &mut key(), Format::None).await;
    assert!(
        replayed.body.contains("Link not valid"),
        "{}",
        replayed.body
    );

    let late = issue_link(&stand, 120);
    stand.app.clock.advance(121);
    assert_eq!(open_link(&stand, &late).await.status, 404);
    for forged in [
        "",
        "x",
        &token[1..],
        &"A".repeat(43),
        &"A".repeat(500),
        "%ZZ",
    ] {
        assert_eq!(open_link(&stand, forged).await.status, 404, "{forged:?}");
    }
    assert_eq!(stand.app.store.fido(TENANT, USER_OID).len(), 1);
}

#[tokio::test]
async fn a_tampered_or_foreign_enrolment_page_state_enrols_nothing() {
    let stand = Stand::start().await;
    let page = open_link(&stand, &issue_link(&stand, 900)).await;
    let form = page.form().expect("form");
    let state = form.get("state").expect("state").to_owned();
    let mut flipped = state.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    for bad in ["", "AAAA", flipped.as_str(), &"A".repeat(5000)] {
        let answered = stand
            .browser
            .submit(&form, &[("state", bad), ("outcome", "ok")])
            .await
            .expect("answered");
        assert!(answered.body.contains("Link not valid"), "{bad:?}");
    }
    assert!(stand.app.store.fido(TENANT, USER_OID).is_empty());
}

#[tokio::test]
async fn a_malformed_or_wrong_attestation_asks_again_and_keeps_the_link() {
    let stand = Stand::start().await;
    let token = issue_link(&stand, 900);
    let page = open_link(&stand, &token).await;
    let form = page.form().expect("form");
    let mut key = key();
    let other = key.register(b"another challenge", Format::None);
    let wrong_data = b64url_encode(&other.client_data_json);
    let object = b64url_encode(&other.attestation_object);
    let cases: [&[(&str, &str)]; 5] = [
        &[
            ("outcome", "ok"),
            ("client_data_json", "!!"),
            ("attestation_object", "AA"),
        ],
        &[
            ("outcome", "ok"),
            ("client_data_json", ""),
            ("attestation_object", ""),
        ],
        &[
            ("outcome", "ok"),
            ("client_data_json", &wrong_data),
            ("attestation_object", &object),
        ],
        &[("outcome", "cancelled")],
        &[("outcome", "made-up")],
    ];
    for fields in cases {
        let answered = stand.browser.submit(&form, fields).await.expect("answered");
        assert_eq!(answered.status, 200, "{fields:?}");
        assert!(
            answered.body.contains("role=\"alert\""),
            "{fields:?}: {}",
            answered.body
        );
        assert!(
            answered.body.contains("data-challenge"),
            "the ceremony is offered again"
        );
    }
    assert!(stand.app.store.fido(TENANT, USER_OID).is_empty());
    let page = open_link(&stand, &token).await;
    let done = register(&stand, &page, &mut key, Format::None).await;
    assert!(
        done.body.contains("Security key added"),
        "the link still works"
    );
}

#[tokio::test]
async fn a_key_the_store_refuses_leaves_the_link_for_another_try() {
    let stand = Stand::start().await;
    for i in 0..vouch::store::MAX_FIDO_PER_USER {
        let credential = vouch::store::FidoCredential {
            id: format!("held{i}"),
            public_key: "pQECAyYgASFYIA".into(),
            sign_count: 0,
            backup_eligible: false,
            aaguid: "00000000-0000-0000-0000-000000000000".into(),
            created: 0,
            name: format!("key {i}"),
        };
        stand
            .app
            .store
            .add_fido(TENANT, USER_OID, None, credential)
            .expect("held");
    }
    let token = issue_link(&stand, 900);
    let page = open_link(&stand, &token).await;
    let full = register(&stand, &page, &mut key(), Format::None).await;
    assert!(full.body.contains("role=\"alert\""), "{}", full.body);
    assert!(full.body.contains("revoke one first"), "{}", full.body);

    stand
        .app
        .store
        .revoke_fido(TENANT, USER_OID, "held0")
        .expect("a key revoked");
    let page = open_link(&stand, &token).await;
    assert_eq!(page.status, 200, "the link was put back");
    let done = register(&stand, &page, &mut key(), Format::None).await;
    assert!(done.body.contains("Security key added"), "{}", done.body);
}

/// A vendor's attestation root and a batch attestation key it certified for `aaguid`.
struct Vendor {
    root_pem: String,
    batch: AttestationKey,
}

fn vendor(name: &str, aaguid: [u8; 16]) -> Vendor {
    use rcgen::{BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, KeyPair};
    let root_key = KeyPair::generate().unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name.push(DnType::CommonName, name);
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root_pem = root.self_signed(&root_key).unwrap().pem();

    let batch_key = KeyPair::generate().unwrap();
    let mut batch = CertificateParams::new(Vec::<String>::new()).unwrap();
    let dn = &mut batch.distinguished_name;
    dn.push(DnType::CountryName, "SE");
    dn.push(DnType::OrganizationName, name);
    dn.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
    dn.push(DnType::CommonName, "Batch 1");
    let mut value = vec![0x04, 0x10];
    value.extend_from_slice(&aaguid);
    let aaguid_oid = [1, 3, 6, 1, 4, 1, 45724, 1, 1, 4];
    batch.custom_extensions = vec![CustomExtension::from_oid_content(&aaguid_oid, value)];
    let issuer = rcgen::Issuer::from_params(&root, &root_key);
    let cert = batch.signed_by(&batch_key, &issuer).unwrap();
    Vendor {
        root_pem,
        batch: AttestationKey {
            pkcs8: batch_key.serialize_der(),
            chain: vec![cert.der().to_vec()],
        },
    }
}

const MODEL: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

/// A stand whose tenant allows only [`MODEL`], attested by `trusted`'s root.
async fn allow_list_stand(trusted: &Vendor) -> (Stand, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("attestation-roots.pem");
    std::fs::write(&roots, &trusted.root_pem).unwrap();
    let tenant = format!(
        "[tenant.fido]\nallowed_aaguids = [\"{MODEL}\"]\nattestation_roots = [{:?}]",
        roots.display().to_string()
    );
    (Stand::start_with("", &tenant).await, dir)
}

fn model_key() -> Authenticator {
    let mut key = key();
    key.aaguid = vouch::config::parse_aaguid(MODEL).unwrap();
    key
}

#[tokio::test]
async fn a_key_attested_by_a_trusted_vendor_for_an_allowed_model_enrols() {
    let trusted = vendor("Vendor A", vouch::config::parse_aaguid(MODEL).unwrap());
    let (stand, _roots) = allow_list_stand(&trusted).await;
    let page = open_link(&stand, &issue_link(&stand, 900)).await;
    assert_eq!(data(&page, "attestation"), "direct");
    let attested = model_key().register_certified(&challenge(&page), &trusted.batch);
    let done = submit_attested(&stand, &page, attested).await;
    assert!(done.body.contains("Security key added"), "{}", done.body);
    assert_eq!(stand.app.store.fido(TENANT, USER_OID).len(), 1);
}

#[tokio::test]
async fn a_tenant_allow_list_refuses_a_key_without_a_vouched_model() {
    let model = vouch::config::parse_aaguid(MODEL).unwrap();
    let trusted = vendor("Vendor A", model);
    let (stand, _roots) = allow_list_stand(&trusted).await;
    let page = open_link(&stand, &issue_link(&stand, 900)).await;
    let refused = register(&stand, &page, &mut model_key(), Format::PackedSelf).await;
    assert!(refused.body.contains("allow-list"), "{}", refused.body);

    let forger = vendor("Vendor A", model);
    let page = open_link(&stand, &issue_link(&stand, 900)).await;
    let forged = model_key().register_certified(&challenge(&page), &forger.batch);
    let refused = submit_attested(&stand, &page, forged).await;
    assert!(
        refused.body.contains("trusted authenticator vendor"),
        "{}",
        refused.body
    );

    let other_model = vendor("Vendor A", [7; 16]);
    let page = open_link(&stand, &issue_link(&stand, 900)).await;
    let mut other = key();
    other.aaguid = [7; 16];
    let attested = other.register_certified(&challenge(&page), &other_model.batch);
    let refused = submit_attested(&stand, &page, attested).await;
    assert!(refused.body.contains("allow-list"), "{}", refused.body);
    assert!(stand.app.store.fido(TENANT, USER_OID).is_empty());
}
