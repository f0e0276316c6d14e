//! The user pages in a real browser: Chromium, headless, with a virtual FIDO2 authenticator
//! from the DevTools `WebAuthn` domain, against an appliance on `https://localhost:PORT`.
//! Each sign-in starts the way Entra starts it (a form post of the hint) and ends with the
//! answer vouch posts back, caught before it leaves the browser. Every page is photographed
//! at desktop and phone width into `target/screenshots/`.
//!
//! Without Chromium these tests say so and pass, except under `CI=true`, where they fail.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod browser_support;
mod common;
mod mobile;
mod pki_support;

use browser_support::{ONE_AT_A_TIME, Tab, chromium_present, free_port};
use common::*;
use mobile::{UPN, chain_for, respond, response};
use pki_support::flows::StoreFiles;
use pki_support::phone::Phone;
use vouch::eam::links::Link;
use vouch::factor::otp::TotpParams;

/// A stand whose issuer, and so RP ID and origin, is `https://localhost:PORT`.
async fn localhost_stand() -> (Stand, String) {
    let port = free_port();
    let origin = format!("https://localhost:{port}");
    let extra = format!("issuer = \"{origin}\"\nlisten = [\"127.0.0.1:{port}\", \"[::1]:{port}\"]");
    (Stand::start_with(&extra, "").await, origin)
}

fn link_url(app: &vouch::app::App, origin: &str) -> String {
    let now = app.clock.now();
    let link = Link {
        tid: TENANT.into(),
        oid: USER_OID.into(),
        upn: Some("ada@contoso.com".into()),
        expires: now + 900,
        uid: 0,
    };
    let token = app.links.issue(link, now).expect("link");
    format!("{origin}/eam/enrol?t={token}")
}

/// What Entra's page posts to the appliance for a fresh hint.
fn entra_request(stand: &Stand, origin: &str) -> (String, Vec<(&'static str, String)>) {
    let hint = stand.entra.default_hint();
    (format!("{origin}/eam/authorize"), Stand::entra_form(&hint))
}

fn field<'a>(posted: &'a [(String, String)], name: &str) -> &'a str {
    posted
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {posted:?}"))
}

/// Checks the token Entra received and returns its `amr`.
async fn amr_of(stand: &Stand, posted: &[(String, String)]) -> serde_json::Value {
    assert_eq!(field(posted, "state"), STATE);
    let token = field(posted, "id_token");
    let claims = stand
        .relying_party()
        .await
        .validate(token, &expected())
        .expect("Entra accepts the token");
    claims["amr"].clone()
}

fn cert(stand: &Stand) -> std::path::PathBuf {
    stand.state_dir().join("tls").join("cert.pem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_enrolled_in_chromium_signs_in_through_the_whole_eam_flow_with_amr_fido() {
    if !chromium_present() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let (stand, origin) = localhost_stand().await;
    let (link, cert) = (link_url(&stand.app, &origin), cert(&stand));
    let (authorize, form) = entra_request(&stand, &origin);
    let posted = tokio::task::spawn_blocking(move || {
        let mut tab = Tab::open(&cert);
        tab.navigate(&link);
        tab.fill("#key-name", "Laptop");
        tab.click("#enrol-start");
        tab.wait_title("Security key added");
        tab.screenshots("enrol-done");
        tab.post_form(&authorize, &form);
        tab.entra_post()
    })
    .await
    .expect("browser run");

    assert_eq!(amr_of(&stand, &posted).await, serde_json::json!(["fido"]));
    let keys = stand.app.store.fido(TENANT, USER_OID);
    assert_eq!(keys.len(), 1, "the key enrolled in the browser is stored");
    assert_eq!(keys[0].name, "Laptop");
    stand.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_typed_in_chromium_signs_in_after_a_wrong_one_with_amr_otp() {
    if !chromium_present() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let (stand, origin) = localhost_stand().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let good = stand.code(&seed, params);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let (authorize, form, cert) = {
        let (a, f) = entra_request(&stand, &origin);
        (a, f, cert(&stand))
    };
    let (posted, retry_text) = tokio::task::spawn_blocking(move || {
        let mut tab = Tab::open(&cert);
        tab.post_form(&authorize, &form);
        tab.wait_title("Enter your code");
        tab.screenshots("otp");
        tab.fill("#code", wrong);
        tab.click_and_load("button[value=verify]");
        tab.wait_title("Enter your code");
        let retry_text = tab.text();
        tab.screenshots("otp-wrong");
        tab.fill("#code", &good);
        tab.click("button[value=verify]");
        (tab.entra_post(), retry_text)
    })
    .await
    .expect("browser run");

    assert!(retry_text.contains("Attempts left: 4"), "{retry_text}");
    assert_eq!(amr_of(&stand, &posted).await, serde_json::json!(["otp"]));
    stand.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_ceremony_in_chromium_offers_try_again_which_then_signs_in() {
    if !chromium_present() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let (stand, origin) = localhost_stand().await;
    let (link, cert) = (link_url(&stand.app, &origin), cert(&stand));
    let (authorize, form) = entra_request(&stand, &origin);
    let (posted, cancelled_text) = tokio::task::spawn_blocking(move || {
        let mut tab = Tab::open(&cert);
        tab.navigate(&link);
        tab.click("#enrol-start");
        tab.wait_title("Security key added");
        tab.user_verified(false);
        tab.post_form(&authorize, &form);
        tab.wait_title("Security key not used");
        let text = tab.text();
        tab.screenshots("fido-cancelled");
        tab.user_verified(true);
        tab.click_and_load("button[value=retry]");
        tab.wait_title("Use your security key");
        tab.click("#fido-start");
        (tab.entra_post(), text)
    })
    .await
    .expect("browser run");

    assert!(cancelled_text.contains("Try again"), "{cancelled_text}");
    assert_eq!(amr_of(&stand, &posted).await, serde_json::json!(["fido"]));
    stand.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_in_english_and_german_at_desktop_and_phone_width() {
    if !chromium_present() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let (stand, origin) = localhost_stand().await;
    stand.enroll(TotpParams::default());
    let (app, first_link) = (stand.app.clone(), link_url(&stand.app, &origin));
    let links_origin = origin.clone();
    let (authorize, form) = entra_request(&stand, &origin);
    let (_, form_de) = entra_request(&stand, &origin);
    let bogus = format!("{origin}/eam/enrol?t=not-a-link");
    let cert = cert(&stand);
    let (titles, expired) = tokio::task::spawn_blocking(move || {
        let mut tab = Tab::open(&cert);
        tab.navigate(&bogus);
        tab.wait_title("Link not valid");
        tab.screenshots("link-invalid");
        tab.navigate(&first_link);
        tab.click("#enrol-start");
        tab.wait_title("Security key added");

        tab.presence(false);
        tab.navigate(&link_url(&app, &links_origin));
        tab.click("#enrol-start");
        tab.screenshots("enrol");
        tab.post_form(&authorize, &form);
        tab.wait_title("Choose how to sign in");
        tab.screenshots("choose");
        tab.click_and_load("button[value=fido]");
        tab.wait_title("Use your security key");
        tab.screenshots("fido");

        tab.accept_language("de-DE,de;q=0.9,en;q=0.5");
        tab.post_form(&authorize, &form_de);
        tab.wait_title("Anmeldemethode wählen");
        tab.screenshots("choose-de");
        tab.click_and_load("button[value=fido]");
        let german = tab.title();
        tab.screenshots("fido-de");

        app.clock.advance(app.config.transaction_ttl + 1);
        tab.click_and_load("button[value=cancel]");
        let expired = tab.text();
        tab.screenshots("expired-de");
        (german, expired)
    })
    .await
    .expect("browser run");

    assert_eq!(titles, "Sicherheitsschlüssel verwenden");
    assert!(expired.contains("zu lange gedauert"), "{expired}");
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    for name in [
        "link-invalid",
        "enrol",
        "choose",
        "fido",
        "choose-de",
        "fido-de",
    ] {
        for size in ["desktop", "phone"] {
            let path = shots.join(format!("{name}-{size}.png"));
            let png = std::fs::read(&path).expect("screenshot written");
            assert!(png.starts_with(b"\x89PNG"), "{}", path.display());
        }
    }
    stand.shutdown().await;
}

/// A localhost stand whose tenant trusts `files` for smart cards and phones, with a
/// client-certificate listener the smart-card page posts to (not reached here).
async fn certificate_stand(files: &StoreFiles) -> (Stand, String) {
    let port = free_port();
    let origin = format!("https://localhost:{port}");
    let store = files.section(TENANT, "hwk", "[\"smart_card\", \"mobile_pki\"]", "");
    let extra = format!(
        "issuer = \"{origin}\"\nlisten = [\"127.0.0.1:{port}\", \"[::1]:{port}\"]\n\
         client_cert_listen = \"127.0.0.1:0\"\nclient_cert_url = \"https://localhost:1\"\n{store}"
    );
    (Stand::start_with(&extra, "").await, origin)
}

/// The challenge id and bytes a waiting page's app link carries.
fn challenge_of(link: &str) -> (String, Vec<u8>) {
    let query = link.split_once('?').expect("a query").1;
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .expect(name)
            .1
            .clone()
    };
    let challenge = vouch::jose::b64url_decode(&get("challenge"), "challenge").unwrap();
    (get("challenge_id"), challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_approves_a_sign_in_waiting_in_chromium_and_the_certificate_pages_are_shown() {
    if !chromium_present() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let files = StoreFiles::new();
    let (stand, origin) = certificate_stand(&files).await;
    let forms: Vec<_> = (0..4).map(|_| entra_request(&stand, &origin)).collect();
    let cert = cert(&stand);
    let (link_to, link) = std::sync::mpsc::channel();
    let browser = tokio::task::spawn_blocking(move || {
        let mut tab = Tab::open(&cert);
        let mut titles = Vec::new();
        for (i, (authorize, form)) in forms.iter().enumerate() {
            if i == 2 {
                tab.accept_language("de-DE,de;q=0.9,en;q=0.5");
            }
            let (method, name) =
                [("smart_card", "smart-card"), ("mobile_pki", "phone-wait")][i % 2];
            tab.post_form(authorize, form);
            tab.wait_title(["Choose how to sign in", "Anmeldemethode wählen"][i / 2]);
            tab.click_and_load(&format!("button[value={method}]"));
            titles.push(tab.title());
            tab.screenshots(&format!("{name}{}", ["", "-de"][i / 2]));
        }
        let app_link = "document.querySelector('a[href^=\"vouch-pki:\"]').getAttribute('href')";
        let app_link = tab.browser.eval(app_link);
        link_to
            .send(app_link.as_str().unwrap_or_default().to_owned())
            .unwrap();
        (titles, tab.entra_post())
    });
    let link = tokio::task::spawn_blocking(move || link.recv())
        .await
        .unwrap();
    let (id, challenge) = challenge_of(&link.expect("the waiting page's app link"));
    let phone = Phone::new("ES256");
    let chain = chain_for(&files, &phone, UPN, 5);
    let (status, json) = respond(&stand, &response(&id, &chain, &phone, &challenge)).await;
    assert_eq!(status, 200, "{json}");

    let (titles, posted) = browser.await.expect("browser run");
    let expected = [
        "Sign in with your smart card",
        "Approve on your phone",
        "Mit Ihrer Smartcard anmelden",
        "Auf dem Telefon bestätigen",
    ];
    assert_eq!(titles, expected);
    assert_eq!(amr_of(&stand, &posted).await, serde_json::json!(["hwk"]));
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    for name in ["smart-card", "phone-wait", "smart-card-de", "phone-wait-de"] {
        for size in ["desktop", "phone"] {
            let path = shots.join(format!("{name}-{size}.png"));
            let png = std::fs::read(&path).expect("screenshot written");
            assert!(png.starts_with(b"\x89PNG"), "{}", path.display());
        }
    }
    stand.shutdown().await;
}
