//! What the security-key tests share: a software authenticator for the stand's RP, the
//! enrolment link and page, and the sign-in page's answer.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use entra_sim::Page;
use entra_sim::authenticator::{Attested, Authenticator, Format, Signed};
use vouch::eam::links::Link;
use vouch::jose::{b64url_decode, b64url_encode};

use crate::common::{ISSUER, Stand, TENANT, USER_OID};

pub const RP_ID: &str = "vouch.test";

pub fn key() -> Authenticator {
    Authenticator::new(RP_ID, ISSUER)
}

/// The value of `data-NAME` on the page's first element that has it.
pub fn data(page: &Page, name: &str) -> String {
    let marker = format!("data-{name}=\"");
    let start = page.body.find(&marker).expect(&marker) + marker.len();
    let len = page.body[start..].find('"').expect("closing quote");
    page.body[start..start + len].to_owned()
}

pub fn challenge(page: &Page) -> Vec<u8> {
    b64url_decode(&data(page, "challenge"), "challenge").expect("base64url challenge")
}

pub fn issue_link(stand: &Stand, ttl: i64) -> String {
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

pub async fn open_link(stand: &Stand, token: &str) -> Page {
    let path = format!("/eam/enrol?t={token}");
    stand.browser.get(&path).await.expect("enrol page")
}

pub async fn register(stand: &Stand, page: &Page, key: &mut Authenticator, format: Format) -> Page {
    let attested = key.register(&challenge(page), format);
    submit_attested(stand, page, attested).await
}

/// Posts what `navigator.credentials.create` gave back on the enrolment page's form.
pub async fn submit_attested(stand: &Stand, page: &Page, attested: Attested) -> Page {
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
pub async fn enrol(stand: &Stand, key: &mut Authenticator) {
    let page = open_link(stand, &issue_link(stand, 900)).await;
    let done = register(stand, &page, key, Format::None).await;
    assert!(done.body.contains("Security key added"), "{}", done.body);
}

/// Posts `signed` from the sign-in page, with some fields replaced.
pub async fn answer_with(
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

pub async fn sign_in(stand: &Stand, key: &mut Authenticator) -> Page {
    let page = stand.authorize_default().await;
    let signed = key.assert(&challenge(&page));
    answer_with(stand, &page, &signed, &[]).await
}
