//! Security-key enrolment over HTTPS through one-time links: the link, the page's sealed
//! state, the attestation, and the tenant's allow-list.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod fido_support;

use common::*;
use entra_sim::authenticator::Format;
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
async fn a_tenant_allow_list_refuses_a_key_without_a_vouched_model() {
    let tenant = "[tenant.fido]\nallowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]";
    let stand = Stand::start_with("", tenant).await;
    let page = open_link(&stand, &issue_link(&stand, 900)).await;
    assert_eq!(data(&page, "attestation"), "direct");
    let refused = register(&stand, &page, &mut key(), Format::PackedSelf).await;
    assert!(refused.body.contains("allow-list"), "{}", refused.body);
    assert!(stand.app.store.fido(TENANT, USER_OID).is_empty());
}
