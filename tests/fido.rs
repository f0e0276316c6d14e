//! Security-key sign-in end to end over HTTPS, with a software authenticator in place of the
//! browser's: the EAM flow, a cancelled ceremony, and every refusal.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod fido_support;

use common::*;
use entra_sim::authenticator::Authenticator;
use fido_support::*;
use vouch::jose::b64url_encode;

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
    let id = &stand.app.store.fido(TENANT, USER_OID)[0].id;
    assert_eq!(stand.app.fido_counters.current(id, 0), key.counter);

    let again = answer_with(&stand, &page, &signed, &[]).await;
    assert_eq!(
        again.status, 400,
        "a finished sign-in cannot be answered twice"
    );
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
    let id = &stand.app.store.fido(TENANT, USER_OID)[0].id;
    assert_eq!(stand.app.fido_counters.current(id, 0), 2);
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
async fn a_forged_missing_or_repeated_transaction_is_a_400_page_that_posts_nothing() {
    let stand = Stand::start().await;
    let mut key = key();
    enrol(&stand, &mut key).await;
    let page = stand.authorize_default().await;
    let signed = key.assert(&challenge(&page));
    let sealed = page
        .form()
        .expect("form")
        .get("txn")
        .expect("txn")
        .to_owned();
    for txn in ["", "AAAA", &sealed[1..], &"A".repeat(40_000)] {
        let answered = answer_with(&stand, &page, &signed, &[("txn", txn)]).await;
        assert_refused(&answered, 400);
    }
    let twice = format!("txn={sealed}&txn={sealed}&outcome=ok");
    let answered = stand
        .browser
        .send(
            http::Method::POST,
            "/eam/fido",
            Some("application/x-www-form-urlencoded"),
            twice.into(),
        )
        .await
        .expect("answered");
    assert_refused(&answered, 400);
    answer(&answer_with(&stand, &page, &signed, &[]).await);
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
    assert!(
        !late.body.contains("<script"),
        "the user reads why before going on"
    );
}
