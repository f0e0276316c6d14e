//! What the mobile-PKI tests share: a stand with a store serving the phone flow, the waiting
//! page read as the app and the browser read it, and the app's JSON.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use base64::Engine as _;
use entra_sim::{Form, Page};
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};

use crate::common::*;
use crate::pki_support::Leaf;
use crate::pki_support::flows::StoreFiles;
use crate::pki_support::phone::Phone;

pub const UPN: &str = "testuser2@contoso.com";

/// A stand whose tenant has a store serving the phone flow with `amr` "swk".
pub async fn stand(files: &StoreFiles) -> Stand {
    let store = files.section(TENANT, "swk", "[\"mobile_pki\"]", "");
    Stand::start_with(&store, "").await
}

/// The waiting page's form, and the challenge its QR link carries.
pub struct Waiting {
    pub form: Form,
    pub id: String,
    pub challenge: Vec<u8>,
}

pub fn waiting(page: &Page) -> Waiting {
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

pub async fn begin(stand: &Stand) -> Waiting {
    waiting(&stand.authorize_default().await)
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The app's JSON: `phone` signs `message` and presents `chain`.
pub fn response(id: &str, chain: &[CertificateDer<'_>], phone: &Phone, message: &[u8]) -> Value {
    let certificates: Vec<String> = chain.iter().map(|c| b64(c.as_ref())).collect();
    json!({
        "challenge_id": id,
        "certificates": certificates,
        "algorithm": phone.algorithm,
        "signature": b64(&phone.sign(message)),
    })
}

pub async fn post_raw(stand: &Stand, content_type: &str, body: Vec<u8>) -> (u16, Value) {
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

pub async fn respond(stand: &Stand, body: &Value) -> (u16, Value) {
    post_raw(stand, "application/json", body.to_string().into_bytes()).await
}

/// A phone certificate for `upn` from the store's issuing CA, with the issuing CA.
pub fn chain_for(
    files: &StoreFiles,
    phone: &Phone,
    upn: &str,
    serial: u64,
) -> Vec<CertificateDer<'static>> {
    let leaf = files.issuing.issue_for(Leaf::new(upn, serial), phone);
    vec![leaf, files.issuing.cert.clone()]
}

pub async fn poll(stand: &Stand, txn: &str, id: &str) -> (u16, String) {
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

pub async fn press(stand: &Stand, form: &Form, action: &str) -> Page {
    stand
        .browser
        .submit(form, &[("action", action)])
        .await
        .unwrap()
}

pub async fn amr_of(stand: &Stand, page: &Page) -> Value {
    let answer = answer(page);
    let token = answer.get("id_token").expect("a token");
    let claims = stand
        .relying_party()
        .await
        .validate(token, &expected())
        .expect("Entra accepts the token");
    claims["amr"].clone()
}
