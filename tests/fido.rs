//! Security keys end to end over HTTPS: enrolment through a one-time link, sign-in through
//! the EAM flow, and the refusals, with a software authenticator in place of the browser's.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use entra_sim::Page;
use entra_sim::authenticator::{Authenticator, Format, Signed};
use vouch::eam::links::Link;
use vouch::jose::{b64url_decode, b64url_encode};

const RP_ID: &str = "vouch.test";

fn key() -> Authenticator {
    Authenticator::new(RP_ID, ISSUER)
}

/// The value of `data-NAME` on the page's first element that has it.
fn data(page: &Page, name: &str) -> String {
    let marker = format!("data-{name}=\"");
    let start = page.body.find(&marker).expect(&marker) + marker.len();
    let len = page.body[start..].find('"').expect("closing quote");
    page.body[start..start + len].to_owned()
}

fn challenge(page: &Page) -> Vec<u8> {
    b64url_decode(&data(page, "challenge"), "challenge").expect("base64url challenge")
}

fn issue_link(stand: &Stand, ttl: i64) -> String {
    let now = stand.app.clock.now();
    let link = Link {
        tid: TENANT.into(),
        oid: USER_OID.into(),
        upn: Some("ada@contoso.com".into()),
        expires: now + ttl,
        uid: 0,
    };
    stand.app.links.issue(link, now).expect("link")
}

async fn open_link(stand: &Stand, token: &str) -> Page {
    let path = format!("/eam/enrol?t={token}");
    stand.browser.get(&path).await.expect("enrol page")
}

async fn register(stand: &Stand, page: &Page, key: &mut Authenticator, format: Format) -> Page {
    let attested = key.register(&challenge(page), format);
    let form = page.form().expect("enrol form");
    let client_data = b64url_encode(&attested.client_data_json);
    let object = b64url_encode(&attested.attestation_object);
    let fields = [
        ("outcome", "ok"),
        ("client_data_json", client_data.as_str()),
        ("attestation_object", object.as_str()),
        ("name", "Blue key"),
    ];
    stand
        .browser
        .submit(&form, &fields)
        .await
        .expect("enrol answered")
}

/// Enrols `key` for the example user through a fresh link.
async fn enrol(stand: &Stand, key: &mut Authenticator) {
    let page = open_link(stand, &issue_link(stand, 900)).await;
    let done = register(stand, &page, key, Format::None).await;
    assert!(done.body.contains("Security key added"), "{}", done.body);
}

/// Posts `signed` from the sign-in page, with some fields replaced.
async fn answer_with(
    stand: &Stand,
    page: &Page,
    signed: &Signed,
    changes: &[(&str, &str)],
) -> Page {
    let form = page.form().expect("sign-in form");
    let id = b64url_encode(&signed.credential_id);
    let client_data = b64url_encode(&signed.client_data_json);
    let auth_data = b64url_encode(&signed.authenticator_data);
    let signature = b64url_encode(&signed.signature);
    let mut fields = vec![
        ("outcome", "ok"),
        ("credential_id", id.as_str()),
        ("client_data_json", client_data.as_str()),
        ("authenticator_data", auth_data.as_str()),
        ("signature", signature.as_str()),
    ];
    fields.retain(|(n, _)| !changes.iter().any(|(c, _)| c == n));
    fields.extend_from_slice(changes);
    stand
        .browser
        .submit(&form, &fields)
        .await
        .expect("fido answered")
}

async fn sign_in(stand: &Stand, key: &mut Authenticator) -> Page {
    let page = stand.authorize_default().await;
    let signed = key.assert(&challenge(&page));
    answer_with(stand, &page, &signed, &[]).await
}

#[tokio::test]
async fn a_key_enrolled_through_a_link_signs_in_with_amr_fido_and_moves_its_counter() {
    let stand = Stand::start().await;
    let mut key = key();
    enrol(&stand, &mut key).await;
    let stored = stand.app.store.fido(TENANT, USER_OID);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "Blue key");

    let page = stand.authorize_default().await;
    assert_eq!(data(&page, "rp-id"), RP_ID);
    assert_eq!(data(&page, "ids"), b64url_encode(&key.credential_id));
    assert_eq!(data(&page, "uv"), "required");
    let signed = key.assert(&challenge(&page));
    let done = answer_with(&stand, &page, &signed, &[]).await;
    let token = answer(&done).get("id_token").expect("id_token").to_owned();
    let claims = stand
        .relying_party()
        .await
        .validate(&token, &expected())
        .expect("Entra accepts the token");
    assert_eq!(claims["amr"], serde_json::json!(["fido"]));
    assert_eq!(
        stand.app.store.fido(TENANT, USER_OID)[0].sign_count,
        key.counter
    );

    let again = answer_with(&stand, &page, &signed, &[]).await;
    assert_eq!(
        again.status, 400,
        "a finished sign-in cannot be answered twice"
    );
}

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

#[tokio::test]
async fn a_cancelled_ceremony_offers_try_again_and_cancel_ends_the_sign_in() {
    let stand = Stand::start().await;
    let mut key = key();
    enrol(&stand, &mut key).await;
    let page = stand.authorize_default().await;
    let form = page.form().expect("form");
    let cancelled = stand
        .browser
        .submit(&form, &[("outcome", "cancelled")])
        .await
        .expect("answered");
    assert!(
        cancelled.body.contains("Security key not used"),
        "{}",
        cancelled.body
    );
    assert!(cancelled.body.contains("value=\"retry\""));

    let retry_form = cancelled.form().expect("retry form");
    let retried = stand
        .browser
        .submit(&retry_form, &[("action", "retry")])
        .await
        .expect("answered");
    assert_eq!(
        challenge(&retried),
        challenge(&page),
        "the same transaction"
    );
    assert_eq!(
        data(&page, "auto"),
        "1",
        "the first page starts the ceremony"
    );
    assert_eq!(
        data(&retried, "auto"),
        "0",
        "a retry waits for the user's gesture"
    );
    let signed = key.assert(&challenge(&retried));
    answer(&answer_with(&stand, &retried, &signed, &[]).await);

    let page = stand.authorize_default().await;
    let form = page.form().expect("form");
    let ended = stand
        .browser
        .submit(&form, &[("action", "cancel")])
        .await
        .expect("answered");
    assert_posted_error(&ended, "access_denied");
}

#[tokio::test]
async fn a_counter_that_goes_back_is_refused_as_a_cloned_key() {
    let stand = Stand::start().await;
    let mut key = key();
    enrol(&stand, &mut key).await;
    answer(&sign_in(&stand, &mut key).await);
    answer(&sign_in(&stand, &mut key).await);
    key.counter = 0;
    assert_posted_error(&sign_in(&stand, &mut key).await, "access_denied");
    assert_eq!(stand.app.store.fido(TENANT, USER_OID)[0].sign_count, 2);
}

#[tokio::test]
async fn every_hostile_assertion_field_ends_the_sign_in_with_access_denied() {
    let stand = Stand::start().await;
    let mut key = key();
    enrol(&stand, &mut key).await;
    let mut stranger = Authenticator::new(RP_ID, ISSUER);
    let foreign = stranger.assert(b"x");
    let wrong_origin = Authenticator::new(RP_ID, "https://evil.test");
    let long = "A".repeat(6000);
    let other_sig = b64url_encode(&foreign.signature);
    let other_id = b64url_encode(&foreign.credential_id);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("credential_id", other_id)],
        vec![("credential_id", String::new())],
        vec![("credential_id", "!!".into())],
        vec![("credential_id", long.clone())],
        vec![("client_data_json", b64url_encode(b"{}"))],
        vec![("client_data_json", b64url_encode(b"not json"))],
        vec![("client_data_json", long.clone())],
        vec![("authenticator_data", b64url_encode(&[0; 10]))],
        vec![("authenticator_data", String::new())],
        vec![("signature", other_sig)],
        vec![("signature", b64url_encode(&[0x30, 0x00]))],
        vec![("signature", "%%".into())],
        vec![("outcome", "made-up".into())],
        vec![("action", "explode".into())],
    ];
    for case in &cases {
        let page = stand.authorize_default().await;
        let signed = key.assert(&challenge(&page));
        let changes: Vec<(&str, &str)> = case.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answered = answer_with(&stand, &page, &signed, &changes).await;
        match case[0].0 {
            "outcome" | "action" => assert_eq!(answered.status, 400, "{case:?}"),
            _ => assert_posted_error(&answered, "access_denied"),
        }
    }

    let page = stand.authorize_default().await;
    let client_data = wrong_origin.client_data("webauthn.get", &challenge(&page));
    let mut signed = key.assert(&challenge(&page));
    signed.signature = key.sign(&signed.authenticator_data, &client_data);
    signed.client_data_json = client_data;
    let answered = answer_with(&stand, &page, &signed, &[]).await;
    assert_posted_error(&answered, "access_denied");
}

#[tokio::test]
async fn an_assertion_for_one_sign_in_does_not_complete_another() {
    let stand = Stand::start().await;
    let mut key = key();
    enrol(&stand, &mut key).await;
    let first = stand.authorize_default().await;
    let second = stand.authorize_default().await;
    assert_ne!(challenge(&first), challenge(&second));
    let signed = key.assert(&challenge(&first));
    assert_posted_error(
        &answer_with(&stand, &second, &signed, &[]).await,
        "access_denied",
    );
}

#[tokio::test]
async fn a_user_with_a_code_and_a_key_chooses_between_them() {
    let stand = Stand::start().await;
    stand.enroll(vouch::factor::otp::TotpParams::default());
    let mut key = key();
    enrol(&stand, &mut key).await;
    let choice = stand.authorize_default().await;
    assert!(
        choice.body.contains("Security key or passkey"),
        "{}",
        choice.body
    );
    let form = choice.form().expect("choice form");
    let page = stand
        .browser
        .submit(&form, &[("method", "fido")])
        .await
        .expect("answered");
    let signed = key.assert(&challenge(&page));
    let token = answer(&answer_with(&stand, &page, &signed, &[]).await);
    assert!(token.get("id_token").is_some());
}

#[tokio::test]
async fn an_expired_sign_in_says_so_and_posts_temporarily_unavailable() {
    let stand = Stand::start().await;
    let mut key = key();
    enrol(&stand, &mut key).await;
    let page = stand.authorize_default().await;
    let signed = key.assert(&challenge(&page));
    stand
        .app
        .clock
        .advance(stand.app.config.transaction_ttl + 1);
    let late = answer_with(&stand, &page, &signed, &[]).await;
    assert_posted_error(&late, "temporarily_unavailable");
    assert!(late.body.contains("took too long"), "{}", late.body);
    assert!(!late.body.contains("<script"), "the user reads why before going on");
}
