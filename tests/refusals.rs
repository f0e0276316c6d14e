//! Hostile and malformed sign-ins: each ends in the exact outcome the protocol reference asks
//! for (a 400 page that posts nothing, `access_denied`, or `temporarily_unavailable`), and none
//! issues a token.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use entra_sim::authority::compact;
use entra_sim::{Authority, Failure};
use serde_json::{Value, json};
use vouch::factor::otp::TotpParams;

fn with(
    fields: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut fields: Vec<_> = fields.into_iter().filter(|(k, _)| *k != name).collect();
    if let Some(v) = value {
        fields.push((name, v.to_owned()));
    }
    fields
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload and an arbitrary signature.
fn forged(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(payload.to_string()),
        b64(signature)
    )
}

async fn refused_hint(stand: &Stand, hint: &str) -> entra_sim::Page {
    let page = stand.authorize(&Stand::entra_form(hint)).await;
    assert_refused(&page, 400);
    page
}

fn default_claims(stand: &Stand) -> Value {
    stand.entra.hint_claims(TENANT, USER_OID, USER_SUB, APP_ID)
}

#[tokio::test]
async fn redirect_uris_other_than_entras_exact_ones_get_a_400_page() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let hint = stand.entra.default_hint();
    let cases = [
        Some("http://login.microsoftonline.com/common/federation/externalauthprovider"),
        Some("https://login.microsoftonline.com/common/federation/externalauthprovider/"),
        Some("https://LOGIN.MICROSOFTONLINE.COM/common/federation/externalauthprovider"),
        Some("https://login.microsoftonline.com/common/federation/ExternalAuthProvider"),
        Some(
            "https://login.microsoftonline.com.evil.example/common/federation/externalauthprovider",
        ),
        Some(concat!(
            "https://evil.example/?",
            "https://login.microsoftonline.com/common/federation/externalauthprovider"
        )),
        Some(""),
        None,
    ];
    for case in cases {
        let page = stand
            .authorize(&with(Stand::entra_form(&hint), "redirect_uri", case))
            .await;
        assert_refused(&page, 400);
        assert!(
            page.body.contains("redirect_uri"),
            "{case:?}: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn a_parameter_given_twice_is_refused() {
    let stand = Stand::start().await;
    let hint = stand.entra.default_hint();
    for name in ["redirect_uri", "id_token_hint", "state", "client_id"] {
        let mut fields = Stand::entra_form(&hint);
        let value = fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .expect("field");
        fields.push((name, value));
        let page = stand.authorize(&fields).await;
        assert_refused(&page, 400);
        assert!(
            page.body.contains("more than once"),
            "{name}: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn a_wrong_response_type_mode_or_scope_is_refused() {
    let stand = Stand::start().await;
    let hint = stand.entra.default_hint();
    let cases = [
        ("response_type", Some("code")),
        ("response_type", None),
        ("response_mode", Some("query")),
        ("response_mode", Some("fragment")),
        ("scope", Some("profile")),
        ("scope", Some("openidx")),
        ("scope", None),
    ];
    for (name, value) in cases {
        let page = stand
            .authorize(&with(Stand::entra_form(&hint), name, value))
            .await;
        assert_refused(&page, 400);
        assert!(page.body.contains(name), "{name}={value:?}: {}", page.body);
    }
    let page = stand
        .authorize(&with(
            Stand::entra_form(&hint),
            "response_type",
            Some("ID_TOKEN"),
        ))
        .await;
    assert_eq!(
        page.status, 200,
        "response_type is compared case-insensitively"
    );
}

#[tokio::test]
async fn hints_signed_with_any_algorithm_but_rs256_are_refused() {
    let stand = Stand::start().await;
    let claims = default_claims(&stand);
    let kid = stand.entra.current_key().kid.clone();
    let modulus = stand.entra.current_key().jwk("x")["n"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, modulus.as_bytes());
    for alg in ["none", "HS256", "RS512", "PS256", "ES256"] {
        let header = json!({"typ": "JWT", "alg": alg, "kid": kid});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = match alg {
            "none" => Vec::new(),
            _ => aws_lc_rs::hmac::sign(&hmac_key, input.as_bytes())
                .as_ref()
                .to_vec(),
        };
        let page = refused_hint(&stand, &format!("{input}.{}", b64(signature))).await;
        assert!(page.body.contains("only RS256"), "{alg}: {}", page.body);
    }
}

#[tokio::test]
async fn a_hint_without_kid_is_refused() {
    let stand = Stand::start().await;
    let key = stand.entra.current_key();
    let hint = compact(
        &key,
        &json!({"typ": "JWT", "alg": "RS256"}),
        &default_claims(&stand),
    );
    let page = refused_hint(&stand, &hint).await;
    assert!(page.body.contains("kid"), "{}", page.body);
}

#[tokio::test]
async fn an_unknown_kid_costs_one_throttled_refresh_then_refusal() {
    let stand = Stand::start().await;
    let before = stand.entra.key_fetches();
    let stranger = entra_sim::authority::SigningKey::generate().expect("key");
    let claims = default_claims(&stand);
    let hint = compact(&stranger, &Authority::hint_header(&stranger), &claims);

    let page = refused_hint(&stand, &hint).await;
    assert!(
        page.body.contains("key Entra does not publish"),
        "{}",
        page.body
    );
    assert_eq!(
        stand.entra.key_fetches(),
        before + 1,
        "one refresh for the unknown kid"
    );

    let other = entra_sim::authority::SigningKey::generate().expect("key");
    let hint = compact(&other, &Authority::hint_header(&other), &claims);
    refused_hint(&stand, &hint).await;
    assert_eq!(
        stand.entra.key_fetches(),
        before + 1,
        "no second refresh within 5 minutes"
    );
}

#[tokio::test]
async fn a_hint_whose_payload_was_changed_after_signing_is_refused() {
    let stand = Stand::start().await;
    let hint = stand.entra.default_hint();
    let parts: Vec<&str> = hint.split('.').collect();
    let mut claims = default_claims(&stand);
    claims["oid"] = json!("00000000-0000-0000-0000-000000000001");
    let tampered = format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2]);
    let page = refused_hint(&stand, &tampered).await;
    assert!(page.body.contains("signature"), "{}", page.body);

    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("signature");
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(sig));
    refused_hint(&stand, &flipped).await;
}

#[tokio::test]
async fn a_hint_from_a_tenant_not_onboarded_is_refused() {
    let stand = Stand::start().await;
    let foreign = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let claims = stand.entra.hint_claims(foreign, USER_OID, USER_SUB, APP_ID);
    let page = refused_hint(&stand, &stand.entra.hint(&claims)).await;
    assert!(page.body.contains("not set up"), "{}", page.body);
}

#[tokio::test]
async fn a_hint_whose_iss_does_not_name_its_tid_is_refused() {
    let stand = Stand::start().await;
    let mut claims = default_claims(&stand);
    claims["iss"] = json!(stand.entra.issuer("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    let page = refused_hint(&stand, &stand.entra.hint(&claims)).await;
    assert!(page.body.contains("iss"), "{}", page.body);

    let mut claims = default_claims(&stand);
    claims["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
    refused_hint(&stand, &stand.entra.hint(&claims)).await;
}

#[tokio::test]
async fn a_hint_for_another_audience_is_refused() {
    let stand = Stand::start().await;
    for aud in [
        json!("11112222-bbbb-3333-cccc-4444dddd5555"),
        json!([]),
        json!(["other"]),
    ] {
        let mut claims = default_claims(&stand);
        claims["aud"] = aud;
        let page = refused_hint(&stand, &stand.entra.hint(&claims)).await;
        assert!(page.body.contains("aud"), "{}", page.body);
    }
}

#[tokio::test]
async fn a_hint_from_the_future_or_long_ago_is_refused_but_an_expired_one_is_not() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let now = stand.app.clock.now();
    for (iat, nbf) in [(now + 600, now), (now - 3600, now - 3600), (now, now + 600)] {
        let mut claims = default_claims(&stand);
        claims["iat"] = json!(iat);
        claims["nbf"] = json!(nbf);
        claims["exp"] = json!(iat + 300);
        refused_hint(&stand, &stand.entra.hint(&claims)).await;
    }
    let mut claims = default_claims(&stand);
    claims["exp"] = json!(now - 120);
    let page = stand
        .authorize(&Stand::entra_form(&stand.entra.hint(&claims)))
        .await;
    assert_eq!(page.status, 200, "freshness is judged on iat, not exp");
}

#[tokio::test]
async fn a_hint_missing_sub_oid_or_tid_or_with_malformed_ones_is_refused() {
    let stand = Stand::start().await;
    let cases: [(&str, Option<Value>); 6] = [
        ("sub", None),
        ("sub", Some(json!(""))),
        ("oid", None),
        ("oid", Some(json!("not-a-guid"))),
        ("oid", Some(json!(42))),
        ("tid", None),
    ];
    for (claim, value) in cases {
        let mut claims = default_claims(&stand);
        match value {
            Some(v) => claims[claim] = v,
            None => {
                claims.as_object_mut().expect("object").remove(claim);
            }
        }
        refused_hint(&stand, &stand.entra.hint(&claims)).await;
    }
}

#[tokio::test]
async fn malformed_hints_are_refused_without_harm() {
    let stand = Stand::start().await;
    let key = stand.entra.current_key();
    let header = Authority::hint_header(&key);
    let cases = [
        String::new(),
        "not a token".into(),
        "a.b".into(),
        "a.b.c.d.e".into(),
        "!!!.@@@.###".into(),
        format!("{}.{}.", b64(header.to_string()), b64("{")),
        forged(&json!([1, 2]), &json!({}), b"sig"),
        format!("{}=.{}.c2ln", b64(header.to_string()), b64("{}")),
        format!("{}.{}.c2ln", b64("{\"alg\":\"RS256\""), b64("{}")),
        forged(&header, &json!("a string"), b"sig"),
        compact(&key, &header, &json!({"tid": TENANT})),
    ];
    for hint in cases {
        refused_hint(&stand, &hint).await;
    }
}

#[tokio::test]
async fn an_oversized_body_or_hint_is_refused() {
    let stand = Stand::start().await;
    let mut claims = default_claims(&stand);
    claims["padding"] = json!("x".repeat(20_000));
    let page = refused_hint(&stand, &stand.entra.hint(&claims)).await;
    assert!(page.body.contains("at most"), "{}", page.body);

    let fields = with(
        Stand::entra_form(&stand.entra.default_hint()),
        "filler",
        Some(&"y".repeat(70_000)),
    );
    let page = stand.authorize(&fields).await;
    assert_refused(&page, 413);
}

#[tokio::test]
async fn a_post_that_is_not_a_form_is_refused() {
    let stand = Stand::start().await;
    let body = bytes::Bytes::from_static(b"{\"id_token_hint\":\"x\"}");
    let page = stand
        .browser
        .send(
            http::Method::POST,
            "/eam/authorize",
            Some("application/json"),
            body,
        )
        .await
        .expect("answered");
    assert_refused(&page, 415);
    let page = stand
        .browser
        .send(
            http::Method::POST,
            "/eam/authorize",
            Some("application/x-www-form-urlencoded"),
            bytes::Bytes::from_static(b"a=%zz"),
        )
        .await
        .expect("answered");
    assert_refused(&page, 400);
    let page = stand
        .browser
        .send(
            http::Method::PUT,
            "/eam/authorize",
            None,
            bytes::Bytes::new(),
        )
        .await
        .expect("answered");
    assert_eq!(page.status, 405);
}

#[tokio::test]
async fn a_client_id_other_than_the_tenants_is_refused() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let hint = stand.entra.default_hint();
    for value in [Some(APP_ID), Some(""), None] {
        let page = stand
            .authorize(&with(Stand::entra_form(&hint), "client_id", value))
            .await;
        assert_refused(&page, 400);
        assert!(page.body.contains("client_id"), "{}", page.body);
    }
}

#[tokio::test]
async fn claims_that_no_enrolled_factor_can_meet_post_access_denied() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let hint = stand.entra.default_hint();
    let cases = [
        r#"{"id_token":{"acr":{"essential":true,"values":["knowledge"]}}}"#,
        r#"{"id_token":{"acr":{"values":["inherence"]}}}"#,
        r#"{"id_token":{"acr":{"values":["possession"]},"amr":{"values":["fido","sc"]}}}"#,
        r#"{"id_token":{"amr":{"values":["otp"]}}}"#,
        r#"{}"#,
    ];
    for claims in cases {
        let page = stand
            .authorize(&with(Stand::entra_form(&hint), "claims", Some(claims)))
            .await;
        assert_posted_error(&page, "access_denied");
    }
    let page = stand
        .authorize(&with(Stand::entra_form(&hint), "claims", Some("{not json")))
        .await;
    assert_refused(&page, 400);
}

#[tokio::test]
async fn a_user_with_no_enrolled_factor_gets_access_denied() {
    let stand = Stand::start().await;
    let page = stand.authorize_default().await;
    assert_posted_error(&page, "access_denied");
}

#[tokio::test]
async fn a_wrong_code_asks_again_and_too_many_end_the_sign_in() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let good = stand.code(&seed, params);
    let wrong = if good == "000000" { "111111" } else { "000000" };

    let mut page = stand.authorize_default().await;
    for left in (1..5).rev() {
        page = stand.submit_code(&page, wrong).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains(&format!("Attempts left: {left}")),
            "{}",
            page.body
        );
        assert!(page.form().is_some_and(|f| f.action == "/eam/otp"));
    }
    let done = stand.submit_code(&page, wrong).await;
    assert_posted_error(&done, "access_denied");
    assert!(
        done.body.contains("too many wrong attempts"),
        "{}",
        done.body
    );

    let again = stand.authorize_default().await;
    let done = stand.submit_code(&again, &good).await;
    assert_posted_error(&done, "access_denied");
}

#[tokio::test]
async fn a_malformed_code_asks_again_without_counting_against_the_user() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let mut page = stand.authorize_default().await;
    for bad in ["", "12345", "1234567", "abcdef", "<script>", "１２３４５６"] {
        page = stand.submit_code(&page, bad).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("6-digit"), "{}", page.body);
        assert!(!page.body.contains("<script>"));
    }
    let done = stand.submit_code(&page, &stand.code(&seed, params)).await;
    assert!(answer(&done).get("id_token").is_some());
}

#[tokio::test]
async fn a_code_is_accepted_once() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let code = stand.code(&seed, params);

    let first = stand.authorize_default().await;
    let done = stand.submit_code(&first, &code).await;
    assert!(answer(&done).get("id_token").is_some());

    let second = stand.authorize_default().await;
    let page = stand.submit_code(&second, &code).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("already been used"), "{}", page.body);
    assert!(page.form().is_some_and(|f| f.get("id_token").is_none()));
}

#[tokio::test]
async fn a_completed_transaction_cannot_be_replayed() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let page = stand.authorize_default().await;
    let done = stand.submit_code(&page, &stand.code(&seed, params)).await;
    assert!(answer(&done).get("id_token").is_some());

    stand.app.clock.advance(30);
    let replay = stand.submit_code(&page, &stand.code(&seed, params)).await;
    assert_refused(&replay, 400);
    assert!(replay.body.contains("already finished"), "{}", replay.body);
}

#[tokio::test]
async fn a_forged_or_altered_transaction_is_refused() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let page = stand.authorize_default().await;
    let form = page.form().expect("form");
    let txn = form.get("txn").expect("txn").to_owned();
    let mut altered = txn.clone().into_bytes();
    altered[30] = if altered[30] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    let code = stand.code(&seed, params);
    for bad in [altered.as_str(), "", "x", &txn[..txn.len() - 4]] {
        let page = stand
            .browser
            .submit(
                &form,
                &[("txn", bad), ("code", &code), ("action", "verify")],
            )
            .await
            .expect("answered");
        assert_refused(&page, 400);
    }
}

#[tokio::test]
async fn an_expired_transaction_posts_temporarily_unavailable() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let page = stand.authorize_default().await;
    stand.app.clock.advance(241);
    let done = stand.submit_code(&page, &stand.code(&seed, params)).await;
    assert_posted_error(&done, "temporarily_unavailable");
}

#[tokio::test]
async fn entra_keys_unreachable_from_the_start_post_temporarily_unavailable() {
    let entra = Authority::start().await.expect("simulator");
    entra.fail(Some(Failure::Status(503)));
    let stand = Stand::around(entra, "", "").await;
    stand.enroll(TotpParams::default());
    let page = stand.authorize_default().await;
    assert_posted_error(&page, "temporarily_unavailable");

    stand.entra.fail(Some(Failure::Garbage));
    stand.app.keys.refresh_all().await;
    let page = stand.authorize_default().await;
    assert_posted_error(&page, "temporarily_unavailable");

    stand.entra.fail(None);
    stand.app.keys.refresh_all().await;
    let page = stand.authorize_default().await;
    assert_eq!(page.status, 200, "recovers once Entra answers again");
}

#[tokio::test]
async fn an_entra_host_that_refuses_connections_is_an_outage() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let entra = Authority::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &entra.ca_pem).expect("ca");
    let text = format!(
        "[server]\nissuer = \"{ISSUER}\"\nstate_dir = \"state\"\n\
         [[tenant]]\nid = \"{TENANT}\"\napp_id = \"{APP_ID}\"\nclient_id = \"{CLIENT_ID}\"\n\
         [tenant.test_authority]\nurl = \"https://127.0.0.1:{port}\"\nca_file = \"ca.pem\"\n"
    );
    let config = vouch::config::Config::parse(&text, "t.toml", dir.path()).expect("config");
    let app = vouch::app::App::new(config).expect("app");
    app.keys.refresh_all().await;
    let status = app.keys.status();
    assert_eq!(status[0].keys, 0);
    assert!(
        status[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("connecting"))
    );
    let err = app.keys.key_set(TENANT, "kid").await.expect_err("no keys");
    assert!(
        matches!(err, vouch::entra::keys::KeyError::Unavailable { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_method_route_starts_only_an_offered_method_of_an_open_sign_in() {
    let stand = Stand::start().await;
    let params = TotpParams::default();
    stand.enroll(params);
    let page = stand.authorize_default().await;
    let txn = page
        .form()
        .expect("form")
        .get("txn")
        .expect("txn")
        .to_owned();
    let post = async |fields: &[(&str, &str)]| {
        stand
            .browser
            .post_form("/eam/method", fields)
            .await
            .expect("answered")
    };

    for method in ["fido", "", "TOTP", "totp\0", &"m".repeat(5000)] {
        let refused = post(&[("txn", &txn), ("method", method)]).await;
        assert_refused(&refused, 400);
    }
    assert_refused(&post(&[("txn", "forged"), ("method", "totp")]).await, 400);
    assert_refused(&post(&[("method", "totp")]).await, 400);

    let started = post(&[("txn", &txn), ("method", "totp")]).await;
    assert_eq!(started.status, 200);
    assert!(started.body.contains("name=\"code\""), "{}", started.body);

    let cancelled = post(&[("txn", &txn), ("action", "cancel")]).await;
    assert_posted_error(&cancelled, "access_denied");
    let after = post(&[("txn", &txn), ("method", "totp")]).await;
    assert_refused(&after, 400);
    assert!(after.body.contains("already finished"), "{}", after.body);
}

#[tokio::test]
async fn refusals_before_a_sign_in_can_answer_entra_are_in_the_readers_language() {
    let stand = Stand::start().await;
    let browser = german(stand.browser.clone());
    let send = async |method, path, content_type, body: &'static [u8]| {
        let body = bytes::Bytes::from_static(body);
        browser
            .send(method, path, content_type, body)
            .await
            .expect("answered")
    };
    let form = Some("application/x-www-form-urlencoded");
    let cases = [
        (
            send(
                http::Method::POST,
                "/eam/authorize",
                Some("text/plain"),
                b"x",
            )
            .await,
            415,
            "Anfrage nicht verstanden",
        ),
        (
            send(http::Method::PUT, "/eam/otp", None, b"").await,
            405,
            "Anfrage nicht erlaubt",
        ),
        (
            send(http::Method::GET, "/nowhere", None, b"").await,
            404,
            "Nicht gefunden",
        ),
        (
            send(
                http::Method::POST,
                "/eam/otp",
                form,
                b"txn=forged&action=verify",
            )
            .await,
            400,
            "nicht von diesem Dienst begonnen",
        ),
        (
            send(
                http::Method::POST,
                "/eam/authorize",
                form,
                b"id_token_hint=x",
            )
            .await,
            400,
            "Anmeldeanfrage von Microsoft Entra",
        ),
    ];
    for (page, status, words) in cases {
        assert_eq!(page.status, status, "{}", page.body);
        assert!(page.body.contains("<html lang=\"de\">"), "{}", page.body);
        assert!(page.body.contains(words), "{words}: {}", page.body);
    }

    let fields = with(
        Stand::entra_form(&stand.entra.default_hint()),
        "filler",
        Some(&"y".repeat(70_000)),
    );
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = browser.post_form("/eam/authorize", &fields).await;
    let page = page.expect("answered");
    assert_refused(&page, 413);
    assert!(page.body.contains("Anfrage zu groß"), "{}", page.body);
}
