//! Mobile-PKI sign-in over real TLS: the browser shows a challenge, a phone signs it with the
//! key of a certificate from a generated CA and posts JSON, and the waiting browser finishes
//! with a token Entra accepts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod pki_support;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use common::*;
use entra_sim::{Form, Page};
use pki_support::Leaf;
use pki_support::flows::StoreFiles;
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};

const UPN: &str = "testuser2@contoso.com";

/// A phone's key, with the scheme it signs with.
struct Phone {
    algorithm: &'static str,
    public: Vec<u8>,
    spki_alg: &'static rcgen::SignatureAlgorithm,
    key: Key,
}

enum Key {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl rcgen::PublicKeyData for Phone {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.spki_alg
    }
}

impl Phone {
    fn new(algorithm: &'static str) -> Phone {
        let ec = |alg| EcdsaKeyPair::generate(alg).unwrap();
        let rsa = || RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let (key, spki_alg) = match algorithm {
            "RS256" => (
                Key::Rsa(rsa(), &signature::RSA_PKCS1_SHA256),
                &rcgen::PKCS_RSA_SHA256,
            ),
            "PS256" => (
                Key::Rsa(rsa(), &signature::RSA_PSS_SHA256),
                &rcgen::PKCS_RSA_SHA256,
            ),
            "ES256" => (
                Key::Ec(ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)),
                &rcgen::PKCS_ECDSA_P256_SHA256,
            ),
            "ES256-DER" => (
                Key::Ec(ec(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)),
                &rcgen::PKCS_ECDSA_P256_SHA256,
            ),
            "ES384" => (
                Key::Ec(ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)),
                &rcgen::PKCS_ECDSA_P384_SHA384,
            ),
            _ => (
                Key::Ed(Ed25519KeyPair::generate().unwrap()),
                &rcgen::PKCS_ED25519,
            ),
        };
        let public = match &key {
            Key::Rsa(k, _) => k.public_key().as_ref().to_vec(),
            Key::Ec(k) => k.public_key().as_ref().to_vec(),
            Key::Ed(k) => k.public_key().as_ref().to_vec(),
        };
        Phone {
            algorithm,
            public,
            spki_alg,
            key,
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Rsa(k, padding) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(*padding, &rng, message, &mut out).unwrap();
                out
            }
            Key::Ec(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Key::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }
}

/// A stand whose tenant has a store serving the phone flow with `amr` "swk".
async fn stand(files: &StoreFiles) -> Stand {
    let store = files.section(TENANT, "swk", "[\"mobile_pki\"]", "");
    Stand::start_with(&store, "").await
}

/// The waiting page's form, and the challenge its QR link carries.
struct Waiting {
    form: Form,
    id: String,
    challenge: Vec<u8>,
}

fn waiting(page: &Page) -> Waiting {
    assert_eq!(page.status, 200, "{}", page.body);
    let csp = page.header(http::header::CONTENT_SECURITY_POLICY).unwrap();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let form = page.form().expect("the waiting page has a form");
    assert_eq!(form.action, "/eam/mobile");
    let start = page
        .body
        .find("href=\"vouch-pki://sign?")
        .expect("a link for the app");
    let link = &page.body[start + 6..];
    let link = link[..link.find('"').unwrap()].replace("&amp;", "&");
    let query = link.split_once('?').unwrap().1;
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| params.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(get("api"), format!("{ISSUER}/eam/mobile/respond"));
    let id = get("challenge_id");
    assert_eq!(form.get("challenge"), Some(id.as_str()));
    let challenge = vouch::jose::b64url_decode(&get("challenge"), "challenge").unwrap();
    assert_eq!(challenge.len(), 32);
    Waiting {
        form,
        id,
        challenge,
    }
}

async fn begin(stand: &Stand) -> Waiting {
    waiting(&stand.authorize_default().await)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The app's JSON: `phone` signs `message` and presents `chain`.
fn response(id: &str, chain: &[CertificateDer<'_>], phone: &Phone, message: &[u8]) -> Value {
    let certificates: Vec<String> = chain.iter().map(|c| b64(c.as_ref())).collect();
    json!({
        "challenge_id": id,
        "certificates": certificates,
        "algorithm": phone.algorithm,
        "signature": b64(&phone.sign(message)),
    })
}

async fn post_raw(stand: &Stand, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let page = stand
        .browser
        .send(
            http::Method::POST,
            "/eam/mobile/respond",
            Some(content_type),
            bytes::Bytes::from(body),
        )
        .await
        .unwrap();
    let value = serde_json::from_str(&page.body).unwrap_or(Value::Null);
    (page.status.as_u16(), value)
}

async fn respond(stand: &Stand, body: &Value) -> (u16, Value) {
    post_raw(stand, "application/json", body.to_string().into_bytes()).await
}

/// A phone certificate for `upn` from the store's issuing CA, with the issuing CA.
fn chain_for(
    files: &StoreFiles,
    phone: &Phone,
    upn: &str,
    serial: u64,
) -> Vec<CertificateDer<'static>> {
    let leaf = files.issuing.issue_for(Leaf::new(upn, serial), phone);
    vec![leaf, files.issuing.cert.clone()]
}

async fn poll(stand: &Stand, txn: &str, id: &str) -> (u16, String) {
    let fields = [("txn", txn), ("challenge", id)];
    let page = stand
        .browser
        .post_form("/eam/mobile/wait", &fields)
        .await
        .unwrap();
    let value: Value = serde_json::from_str(&page.body).unwrap();
    (
        page.status.as_u16(),
        value["status"].as_str().unwrap().to_owned(),
    )
}

async fn press(stand: &Stand, form: &Form, action: &str) -> Page {
    stand
        .browser
        .submit(form, &[("action", action)])
        .await
        .unwrap()
}

async fn amr_of(stand: &Stand, page: &Page) -> Value {
    let answer = answer(page);
    let token = answer.get("id_token").expect("a token");
    let claims = stand
        .relying_party()
        .await
        .validate(token, &expected())
        .expect("Entra accepts the token");
    claims["amr"].clone()
}

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
