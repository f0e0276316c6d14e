//! Mobile-PKI sign-in over real TLS: the browser shows a challenge, a phone signs it with the
//! key of a certificate from a generated CA and posts JSON, and the waiting browser finishes
//! with a token Entra accepts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod mobile;
mod pki_support;

use common::*;
use mobile::*;
use pki_support::flows::StoreFiles;
use pki_support::phone::Phone;
use serde_json::json;

#[tokio::test]
async fn each_signature_algorithm_signs_in_with_the_stores_amr() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    for (serial, algorithm) in ["RS256", "PS256", "ES256", "ES256-DER", "ES384", "EdDSA"]
        .into_iter()
        .enumerate()
    {
        let phone = Phone::new(algorithm);
        let chain = chain_for(&files, &phone, UPN, serial as u64 + 1);
        let wait = begin(&stand).await;
        let txn = wait.form.get("txn").unwrap().to_owned();
        let polling = {
            let (stand, id) = (&stand, wait.id.clone());
            async move { poll(stand, &txn, &id).await }
        };
        let body = response(&wait.id, &chain, &phone, &wait.challenge);
        let (answered, (status, json)) = tokio::join!(polling, respond(&stand, &body));
        assert_eq!(
            (status, &json["status"]),
            (200, &json!("approved")),
            "{algorithm}: {json}"
        );
        assert_eq!(answered, (200, "done".to_owned()), "{algorithm}");

        let done = press(&stand, &wait.form, "continue").await;
        assert_eq!(amr_of(&stand, &done).await, json!(["swk"]), "{algorithm}");
    }
}

#[tokio::test]
async fn a_replayed_response_is_refused_and_the_sign_in_completes_once() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let phone = Phone::new("ES256");
    let chain = chain_for(&files, &phone, UPN, 5);
    let wait = begin(&stand).await;
    let body = response(&wait.id, &chain, &phone, &wait.challenge);
    assert_eq!(respond(&stand, &body).await.0, 200);

    let (status, json) = respond(&stand, &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (409, Some("already_answered"))
    );
    assert!(
        answer(&press(&stand, &wait.form, "continue").await)
            .get("id_token")
            .is_some()
    );
    let (status, json) = respond(&stand, &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("unknown_challenge"))
    );
    assert_refused(&press(&stand, &wait.form, "continue").await, 400);
}

#[tokio::test]
async fn an_expired_challenge_is_refused_and_the_sign_in_ends_unavailable() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let phone = Phone::new("EdDSA");
    let chain = chain_for(&files, &phone, UPN, 5);
    let wait = begin(&stand).await;
    stand.app.clock.advance(stand.app.config.transaction_ttl);

    let body = response(&wait.id, &chain, &phone, &wait.challenge);
    let (status, json) = respond(&stand, &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (410, Some("expired_challenge"))
    );
    let txn = wait.form.get("txn").unwrap();
    assert_eq!(poll(&stand, txn, &wait.id).await.1, "expired");
    assert_posted_error(
        &press(&stand, &wait.form, "continue").await,
        "temporarily_unavailable",
    );
}

#[tokio::test]
async fn another_sign_ins_challenge_is_refused_to_the_browser_and_the_phone() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let phone = Phone::new("ES384");
    let chain = chain_for(&files, &phone, UPN, 5);
    let (mine, theirs) = (begin(&stand).await, begin(&stand).await);

    let txn = mine.form.get("txn").unwrap();
    assert_eq!(
        poll(&stand, txn, &theirs.id).await,
        (403, "other_sign_in".to_owned())
    );
    let mut crossed = mine.form.clone();
    crossed.fields.retain(|(n, _)| n != "challenge");
    crossed.fields.push(("challenge".into(), theirs.id.clone()));
    let page = press(&stand, &crossed, "continue").await;
    assert_refused(&page, 400);
    assert!(page.body.contains("another sign-in"), "{}", page.body);

    let body = response(&mine.id, &chain, &phone, &theirs.challenge);
    let (status, json) = respond(&stand, &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (403, Some("bad_signature"))
    );
    let again = press(&stand, &mine.form, "continue").await;
    let fresh = waiting(&again);
    assert_ne!(fresh.id, mine.id);
    assert!(again.body.contains("did not verify"), "{}", again.body);
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_a_new_challenge_then_succeeds() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let phone = Phone::new("PS256");
    let chain = chain_for(&files, &phone, UPN, 5);
    let wait = begin(&stand).await;
    let mut body = response(&wait.id, &chain, &phone, &wait.challenge);
    let mut signature = phone.sign(&wait.challenge);
    signature[10] ^= 1;
    body["signature"] = json!(b64(&signature));
    let (status, json) = respond(&stand, &body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (403, Some("bad_signature"))
    );

    let fresh = waiting(&press(&stand, &wait.form, "continue").await);
    let body = response(&fresh.id, &chain, &phone, &fresh.challenge);
    assert_eq!(respond(&stand, &body).await.0, 200);
    let done = press(&stand, &fresh.form, "continue").await;
    assert_eq!(amr_of(&stand, &done).await, json!(["swk"]));
}

#[tokio::test]
async fn another_users_certificate_is_refused_with_a_reason_for_the_user() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let phone = Phone::new("ES256-DER");
    let chain = chain_for(&files, &phone, "mallory@contoso.com", 5);
    let wait = begin(&stand).await;
    let (status, json) =
        respond(&stand, &response(&wait.id, &chain, &phone, &wait.challenge)).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (403, Some("certificate_refused"))
    );
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("does not belong")
    );

    let again = press(&stand, &wait.form, "continue").await;
    assert!(
        again.body.contains("does not belong to your account"),
        "{}",
        again.body
    );
    assert_posted_error(
        &press(&stand, &waiting(&again).form, "cancel").await,
        "access_denied",
    );
}

#[tokio::test]
async fn continue_before_the_phone_answers_keeps_waiting_on_the_same_challenge() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let wait = begin(&stand).await;
    let page = press(&stand, &wait.form, "continue").await;
    let still = waiting(&page);
    assert_eq!(still.id, wait.id);
    assert!(page.body.contains("has not approved"), "{}", page.body);
}

#[tokio::test]
async fn a_user_offered_both_flows_chooses_and_the_phone_flow_follows() {
    let files = StoreFiles::new();
    let methods = "[\"smart_card\", \"mobile_pki\"]";
    let store = files.section(TENANT, "hwk", methods, "");
    let listener = "client_cert_listen = \"127.0.0.1:0\"\nclient_cert_url = \"https://c.test\"";
    let stand = Stand::start_with(&format!("{listener}\n{store}"), "").await;

    let choice = stand.authorize_default().await;
    let form = choice.form().expect("a choice form");
    assert!(
        choice.body.contains("value=\"smart_card\""),
        "{}",
        choice.body
    );
    assert!(
        choice.body.contains("value=\"mobile_pki\""),
        "{}",
        choice.body
    );
    let page = stand
        .browser
        .submit(&form, &[("method", "mobile_pki")])
        .await
        .unwrap();
    let wait = waiting(&page);

    let phone = Phone::new("ES256");
    let chain = chain_for(&files, &phone, UPN, 5);
    let body = response(&wait.id, &chain, &phone, &wait.challenge);
    assert_eq!(respond(&stand, &body).await.0, 200);
    let done = press(&stand, &wait.form, "continue").await;
    assert_eq!(amr_of(&stand, &done).await, json!(["hwk"]));
}

#[tokio::test]
async fn no_certificate_flow_is_offered_when_the_hint_carries_no_upn() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let mut claims = stand.entra.hint_claims(TENANT, USER_OID, USER_SUB, APP_ID);
    claims.as_object_mut().unwrap().remove("preferred_username");
    let page = stand
        .authorize(&Stand::entra_form(&stand.entra.hint(&claims)))
        .await;
    assert_posted_error(&page, "access_denied");
}

#[tokio::test]
async fn an_enrolled_phone_certificate_is_offered_to_its_user_only() {
    let files = StoreFiles::new();
    let phone = Phone::new("ES256");
    let chain = chain_for(&files, &phone, "no-upn-needed@contoso.com", 5);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, chain[0].as_ref());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let enrolled = format!(
        "[[trust_store.enrolled]]\ntid = \"{TENANT}\"\noid = \"{USER_OID}\"\nsha256 = \"{hex}\""
    );
    let methods = "[\"mobile_pki\"]";
    let store = files.section_binding(TENANT, "hwk", methods, "enrolled", &enrolled);
    let stand = Stand::start_with(&store, "").await;

    let wait = begin(&stand).await;
    let body = response(&wait.id, &chain, &phone, &wait.challenge);
    assert_eq!(respond(&stand, &body).await.0, 200);
    let done = press(&stand, &wait.form, "continue").await;
    assert_eq!(amr_of(&stand, &done).await, json!(["hwk"]));

    let other = "00000000-0000-0000-0000-0000000000bb";
    let claims = stand.entra.hint_claims(TENANT, other, USER_SUB, APP_ID);
    let page = stand
        .authorize(&Stand::entra_form(&stand.entra.hint(&claims)))
        .await;
    assert_posted_error(&page, "access_denied");
}

/// The waiting page a German browser is shown, checked to be German.
async fn begin_in_german(stand: &Stand) -> (entra_sim::Browser, Waiting) {
    let browser = german(stand.browser.clone());
    let page = authorize_with(stand, &browser).await;
    assert!(page.body.contains("<html lang=\"de\">"), "{}", page.body);
    for words in [
        "<h1>Auf dem Telefon bestätigen</h1>",
        "aria-label=\"QR-Code für die Telefon-App\"",
        "In der App angezeigter Code: <code>",
        ">In der App auf diesem Gerät öffnen</a>",
        ">Weiter</button>",
    ] {
        assert!(page.body.contains(words), "{words}: {}", page.body);
    }
    let waiting = waiting(&page);
    let code = vouch::pki::challenge::compare_code(&waiting.challenge);
    let shown = format!("<code>{code}</code>");
    assert!(
        page.body.contains(&shown),
        "the app's code {shown}: {}",
        page.body
    );
    (browser, waiting)
}

#[tokio::test]
async fn a_german_browser_waits_in_german_and_reads_the_phones_refusal_in_german() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let (browser, wait) = begin_in_german(&stand).await;
    let early = browser.submit(&wait.form, &[("action", "continue")]).await;
    let early = early.unwrap();
    assert_eq!(waiting(&early).id, wait.id);
    let not_yet = "Ihr Telefon hat die Anmeldung noch nicht bestätigt.";
    assert!(early.body.contains(not_yet), "{}", early.body);

    let phone = Phone::new("ES256");
    let chain = chain_for(&files, &phone, "mallory@contoso.com", 5);
    let (status, json) =
        respond(&stand, &response(&wait.id, &chain, &phone, &wait.challenge)).await;
    assert_eq!(status, 403);
    let english = "This certificate does not belong to your account.";
    assert_eq!(json["message"], english, "the app is answered in English");

    let again = browser.submit(&wait.form, &[("action", "continue")]).await;
    let again = again.unwrap();
    assert_ne!(waiting(&again).id, wait.id, "a fresh challenge");
    let refused = "role=\"alert\">Dieses Zertifikat gehört nicht zu Ihrem Konto.</p>";
    assert!(again.body.contains(refused), "{}", again.body);
    assert!(!again.body.contains(english), "{}", again.body);
}

#[tokio::test]
async fn a_phone_sign_in_that_took_too_long_says_so_in_german_before_returning_to_entra() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let (browser, wait) = begin_in_german(&stand).await;
    stand
        .app
        .clock
        .advance(stand.app.config.transaction_ttl + 1);

    let ended = browser.submit(&wait.form, &[("action", "continue")]).await;
    assert_expired_in_german(&ended.unwrap());

    let again = browser.submit(&wait.form, &[("action", "continue")]).await;
    let again = again.unwrap();
    assert_refused(&again, 400);
    let finished = "Diese Anmeldung ist bereits abgeschlossen.";
    assert!(again.body.contains(finished), "{}", again.body);
}
