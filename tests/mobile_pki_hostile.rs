//! Hostile requests to the mobile-PKI endpoints: what a broken or malicious phone app, or a
//! forged browser post, sends. Each gets a clear error and burns nothing it should not.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod mobile;
mod pki_support;

use common::*;
use mobile::*;
use pki_support::flows::StoreFiles;
use pki_support::phone::Phone;
use serde_json::{Value, json};

#[tokio::test]
async fn hostile_phone_requests_are_refused_without_burning_the_challenge() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let phone = Phone::new("ES256");
    let chain = chain_for(&files, &phone, UPN, 5);
    let wait = begin(&stand).await;
    let good = response(&wait.id, &chain, &phone, &wait.challenge);

    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body.to_string().into_bytes()
    };
    let mut extra = good.clone();
    extra["debug"] = json!(true);
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "form",
            "application/x-www-form-urlencoded",
            b"a=b".to_vec(),
            415,
        ),
        (
            "not json",
            "application/json",
            b"{\"challenge_id\":".to_vec(),
            400,
        ),
        ("array", "application/json", b"[1,2]".to_vec(), 400),
        (
            "extra field",
            "application/json",
            extra.to_string().into_bytes(),
            400,
        ),
        (
            "no certs",
            "application/json",
            with("certificates", json!([])),
            400,
        ),
        (
            "17 certs",
            "application/json",
            with("certificates", json!(vec!["MA=="; 17])),
            400,
        ),
        (
            "bad base64",
            "application/json",
            with("certificates", json!(["%%%"])),
            400,
        ),
        (
            "algorithm",
            "application/json",
            with("algorithm", json!("none")),
            400,
        ),
        (
            "long id",
            "application/json",
            with("challenge_id", json!("x".repeat(65))),
            400,
        ),
        (
            "long sig",
            "application/json",
            with("signature", json!(b64(&[1; 1025]))),
            400,
        ),
        ("huge", "application/json", vec![b' '; 70_000], 413),
        (
            "nested",
            "application/json",
            "[".repeat(10_000).into_bytes(),
            400,
        ),
    ];
    for (name, content_type, body, want) in cases {
        let (status, json) = post_raw(&stand, content_type, body).await;
        assert_eq!(status, want, "{name}: {json}");
        assert!(json["error"].is_string(), "{name}: {json}");
    }
    let garbage = with("certificates", json!([b64(b"not a certificate")]));
    let (status, json) = post_raw(&stand, "application/json", garbage).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (403, Some("certificate_refused")),
        "{json}"
    );

    let fresh = waiting(&press(&stand, &wait.form, "continue").await);
    let mismatch = with("algorithm", json!("RS256"));
    let fresh_body = String::from_utf8(mismatch)
        .unwrap()
        .replace(&wait.id, &fresh.id);
    let (status, _) = post_raw(&stand, "application/json", fresh_body.into_bytes()).await;
    assert_eq!(
        status, 403,
        "an algorithm that does not fit the key is a bad signature"
    );

    let last = waiting(&press(&stand, &fresh.form, "continue").await);
    let body = response(&last.id, &chain, &phone, &last.challenge);
    assert_eq!(respond(&stand, &body).await.0, 200);
}

#[tokio::test]
async fn wrong_types_and_unknown_ids_are_refused_as_json() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let phone = Phone::new("EdDSA");
    let chain = chain_for(&files, &phone, UPN, 5);
    let wait = begin(&stand).await;
    let good = response(&wait.id, &chain, &phone, &wait.challenge);

    for (key, value) in [
        ("challenge_id", json!(5)),
        ("certificates", json!("MA==")),
        ("signature", json!(null)),
        ("algorithm", json!(["ES256"])),
    ] {
        let mut body = good.clone();
        body[key] = value;
        let (status, json) = respond(&stand, &body).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (400, Some("malformed_request")),
            "{key}"
        );
    }
    let mut stranger = good.clone();
    stranger["challenge_id"] = json!("\u{202e}<script>");
    let (status, json) = respond(&stand, &stranger).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("unknown_challenge"))
    );
    assert!(
        !json.to_string().contains("<script>"),
        "nothing is echoed: {json}"
    );
    assert_eq!(
        respond(&stand, &good).await.0,
        200,
        "the challenge was still waiting"
    );
}

#[tokio::test]
async fn forged_or_malformed_browser_posts_are_refused() {
    let files = StoreFiles::new();
    let stand = stand(&files).await;
    let wait = begin(&stand).await;
    let txn = wait.form.get("txn").unwrap();
    let browser = &stand.browser;

    let forged = browser
        .post_form(
            "/eam/mobile/wait",
            &[("txn", "AAAA"), ("challenge", &wait.id)],
        )
        .await
        .unwrap();
    let json: Value = serde_json::from_str(&forged.body).unwrap();
    assert_eq!(
        (forged.status.as_u16(), &json["status"]),
        (400, &json!("unknown_sign_in"))
    );
    let twice = browser
        .post_form("/eam/mobile/wait", &[("txn", txn), ("txn", txn)])
        .await
        .unwrap();
    assert_eq!(twice.status, 400);
    assert_eq!(
        poll(&stand, txn, "no-such-challenge").await,
        (200, "gone".to_owned())
    );

    let fake = [
        ("txn", "AAAA"),
        ("challenge", wait.id.as_str()),
        ("action", "continue"),
    ];
    assert_refused(&browser.post_form("/eam/mobile", &fake).await.unwrap(), 400);
    assert_refused(&press(&stand, &wait.form, "approve").await, 400);
    let get = browser.get("/eam/mobile/respond").await.unwrap();
    assert_eq!(get.status, 405);
}
