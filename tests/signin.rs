//! Whole sign-ins over TLS: Entra's request, the user's code, and the token Entra checks.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use http::header;
use vouch::factor::otp::{Algorithm, TotpParams};

#[tokio::test]
async fn a_user_with_totp_signs_in_and_entra_accepts_the_token() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);

    let page = stand.authorize_default().await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = page.form().expect("code form");
    assert_eq!(form.action, "/eam/otp");
    assert!(form.get("txn").is_some_and(|t| t.len() > 40));
    assert!(
        !page.body.contains(USER_SUB),
        "the page does not show the sub"
    );

    let code = stand.code(&seed, params);
    let done = stand.submit_code(&page, &code).await;
    let answer = answer(&done);
    assert_eq!(answer.names(), vec!["id_token", "state"]);
    assert_eq!(answer.get("state"), Some(STATE));

    let rp = stand.relying_party().await;
    assert_eq!(rp.issuer, ISSUER);
    let token = answer.get("id_token").expect("id_token");
    let claims = rp
        .validate(token, &expected())
        .expect("Entra accepts the token");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["acr"], "possessionorinherence");
    assert_eq!(claims["amr"], serde_json::json!(["otp"]));
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    let lifetime = claims["exp"].as_i64().expect("exp") - iat;
    assert!((60..=600).contains(&lifetime), "lifetime {lifetime}");
    stand.shutdown().await;
}

#[tokio::test]
async fn the_answer_page_is_uncached_and_may_post_only_to_entra() {
    let stand = Stand::start().await;
    let seed = stand.enroll(TotpParams::default());
    let page = stand.authorize_default().await;
    let done = stand
        .submit_code(&page, &stand.code(&seed, TotpParams::default()))
        .await;

    assert_eq!(done.header(header::CACHE_CONTROL), Some("no-store"));
    let csp = done
        .header(header::CONTENT_SECURITY_POLICY)
        .expect("CSP")
        .to_owned();
    assert!(
        csp.contains("form-action https://login.microsoftonline.com;"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("script-src 'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("script nonce");
    assert!(done.body.contains(&format!("<script nonce=\"{nonce}\">")));
    assert!(done.body.contains("document.forms[0].submit()"));
    assert!(
        done.body
            .contains("<button type=\"submit\">Continue</button>")
    );
    stand.shutdown().await;
}

#[tokio::test]
async fn a_request_without_nonce_or_state_gets_a_token_without_them() {
    let stand = Stand::start().await;
    let seed = stand.enroll(TotpParams::default());
    let hint = stand.entra.default_hint();
    let fields: Vec<_> = Stand::entra_form(&hint)
        .into_iter()
        .filter(|(k, _)| *k != "nonce" && *k != "state")
        .collect();
    let page = stand.authorize(&fields).await;
    let done = stand
        .submit_code(&page, &stand.code(&seed, TotpParams::default()))
        .await;

    let answer = answer(&done);
    assert_eq!(answer.names(), vec!["id_token"]);
    let mut want = expected();
    want.nonce = None;
    let claims = stand
        .relying_party()
        .await
        .validate(answer.get("id_token").expect("token"), &want)
        .expect("accepted");
    assert!(claims.get("nonce").is_none());
    stand.shutdown().await;
}

#[tokio::test]
async fn an_eight_digit_sha256_authenticator_signs_in() {
    let stand = Stand::start().await;
    let params = TotpParams {
        algorithm: Algorithm::Sha256,
        digits: 8,
    };
    let seed = stand.enroll(params);
    assert_eq!(seed.len(), 32);
    let page = stand.authorize_default().await;
    assert!(page.body.contains("maxlength=\"8\""));
    let done = stand.submit_code(&page, &stand.code(&seed, params)).await;
    let answer = answer(&done);
    let token = answer.get("id_token").expect("token");
    stand
        .relying_party()
        .await
        .validate(token, &expected())
        .expect("accepted");
    stand.shutdown().await;
}

#[tokio::test]
async fn the_first_requested_acr_the_factor_meets_is_returned() {
    let stand = Stand::start().await;
    let seed = stand.enroll(TotpParams::default());
    let hint = stand.entra.default_hint();
    let claims = concat!(
        r#"{"id_token":{"acr":{"values":["inherence","knowledgeorpossession","possession"]},"#,
        r#""amr":{"values":["otp","fido"]}}}"#
    );
    let mut fields = Stand::entra_form(&hint);
    fields.retain(|(k, _)| *k != "claims");
    fields.push(("claims", claims.into()));

    let page = stand.authorize(&fields).await;
    let done = stand
        .submit_code(&page, &stand.code(&seed, TotpParams::default()))
        .await;
    let answer = answer(&done);
    let mut want = expected();
    want.acr_values = &["knowledgeorpossession"];
    want.amr_values = &["otp"];
    let token = answer.get("id_token").expect("token");
    let got = stand
        .relying_party()
        .await
        .validate(token, &want)
        .expect("accepted");
    assert_eq!(got["acr"], "knowledgeorpossession");
    stand.shutdown().await;
}

#[tokio::test]
async fn a_hint_addressed_to_the_client_id_is_accepted_only_when_opted_in() {
    let refusing = Stand::start().await;
    let claims = refusing
        .entra
        .hint_claims(TENANT, USER_OID, USER_SUB, CLIENT_ID);
    let page = refusing
        .authorize(&Stand::entra_form(&refusing.entra.hint(&claims)))
        .await;
    assert_refused(&page, 400);
    assert!(page.body.contains("aud"), "{}", page.body);
    refusing.shutdown().await;

    let accepting = Stand::start_with("", "accept_client_id_audience = true").await;
    let seed = accepting.enroll(TotpParams::default());
    let claims = accepting
        .entra
        .hint_claims(TENANT, USER_OID, USER_SUB, CLIENT_ID);
    let page = accepting
        .authorize(&Stand::entra_form(&accepting.entra.hint(&claims)))
        .await;
    let done = accepting
        .submit_code(&page, &accepting.code(&seed, TotpParams::default()))
        .await;
    assert!(answer(&done).get("id_token").is_some(), "{}", done.body);
    accepting.shutdown().await;
}

#[tokio::test]
async fn a_key_entra_rolled_in_is_fetched_on_its_first_hint() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let fetched = stand.entra.key_fetches();

    stand.entra.rotate().expect("new key");
    let page = stand.authorize_default().await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.form().is_some_and(|f| f.action == "/eam/otp"));
    assert_eq!(stand.entra.key_fetches(), fetched + 1);

    let page = stand.authorize_default().await;
    assert_eq!(page.status, 200);
    assert_eq!(
        stand.entra.key_fetches(),
        fetched + 1,
        "cached after one fetch"
    );
    stand.shutdown().await;
}

#[tokio::test]
async fn a_user_who_cancels_is_sent_back_with_access_denied() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let page = stand.authorize_default().await;
    let form = page.form().expect("code form");
    let done = stand
        .browser
        .submit(&form, &[("action", "cancel")])
        .await
        .expect("answered");
    assert_posted_error(&done, "access_denied");
    stand.shutdown().await;
}

#[tokio::test]
async fn keys_fetched_before_an_entra_outage_keep_sign_ins_working() {
    let stand = Stand::start().await;
    let seed = stand.enroll(TotpParams::default());
    stand.entra.fail(Some(entra_sim::Failure::Status(503)));
    stand.app.keys.refresh_all().await;

    let page = stand.authorize_default().await;
    let done = stand
        .submit_code(&page, &stand.code(&seed, TotpParams::default()))
        .await;
    assert!(answer(&done).get("id_token").is_some(), "{}", done.body);
    let status = stand.app.keys.status();
    assert!(
        status[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("503"))
    );
    assert_eq!(status[0].keys, 1);
    stand.shutdown().await;
}

#[tokio::test]
async fn discovery_and_jwks_are_served_as_entra_requires() {
    let stand = Stand::start().await;
    let page = stand
        .browser
        .get("/.well-known/openid-configuration")
        .await
        .expect("discovery");
    assert_eq!(page.status, 200);
    let length = page.header(header::CONTENT_LENGTH).expect("Content-Length");
    assert_eq!(length.parse::<usize>().ok(), Some(page.body.len()));
    assert!(page.header(header::TRANSFER_ENCODING).is_none());
    let doc: serde_json::Value = serde_json::from_str(&page.body).expect("json");
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{ISSUER}/eam/authorize")
    );
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(
        doc["response_modes_supported"],
        serde_json::json!(["form_post"])
    );

    let rp = stand.relying_party().await;
    let keys = rp.jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kid"], key["x5t"]);
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        key["kid"].as_str(),
        Some(stand.app.signer.published().kid.as_str())
    );
    stand.shutdown().await;
}

#[tokio::test]
async fn a_staged_key_is_published_beside_the_signing_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    vouch::provision::ensure_dir(&state).expect("state dir");
    let active = vouch::provision::software_signer(&state).expect("active key");
    let staged = vouch::provision::stage_signing_key(&state).expect("staged key");
    let server = format!("state_dir = \"{}\"", state.display());
    let stand = Stand::start_with(&server, "").await;

    let rp = stand.relying_party().await;
    let kids: Vec<&str> = rp.jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    use vouch::signer::TokenSigner as _;
    assert_eq!(
        kids,
        vec![
            active.published().kid.as_str(),
            staged.published().kid.as_str()
        ]
    );
    assert_eq!(stand.app.signer.published().kid, active.published().kid);
    stand.shutdown().await;
}

#[tokio::test]
async fn a_bare_get_of_the_authorize_endpoint_is_a_harmless_page() {
    let stand = Stand::start().await;
    let page = stand.browser.get("/eam/authorize").await.expect("probe");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<form"));
    assert!(!page.body.contains("id_token"));
    let page = stand
        .browser
        .get("/eam/authorize?id_token_hint=x&redirect_uri=https://evil.example/")
        .await
        .expect("probe with parameters");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("evil.example"));
    stand.shutdown().await;
}
