//! Smart-card sign-in over real TLS: the browser presents a client certificate from a
//! generated CA on the client-certificate listener, and Entra checks the token it gets.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod pki_support;

use common::*;
use entra_sim::{Browser, Page};
use pki_support::flows::{StoreFiles, private};
use pki_support::{Ca, Leaf, Loopback, OcspAnswer, Status};
use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vouch::pki::Timestamp;

/// The UPN in the simulator's hints.
const UPN: &str = "testuser2@contoso.com";
const CARDS: &str = "https://cards.vouch.test";

/// The store files and the `[server]` lines for a stand with the card listener.
struct Cards {
    files: StoreFiles,
}

impl std::ops::Deref for Cards {
    type Target = StoreFiles;

    fn deref(&self) -> &StoreFiles {
        &self.files
    }
}

impl Cards {
    fn new() -> Cards {
        Cards {
            files: StoreFiles::new(),
        }
    }

    fn config(&self, amr: &str, store_extra: &str) -> String {
        let store = self.section(TENANT, amr, "[\"smart_card\"]", store_extra);
        format!("client_cert_listen = \"127.0.0.1:0\"\nclient_cert_url = \"{CARDS}\"\n{store}")
    }

    async fn stand(&self, amr: &str, store_extra: &str) -> Stand {
        Stand::start_with(&self.config(amr, store_extra), "").await
    }
}

/// The smart-card page Entra's request leads to, checked to post to the card listener.
async fn card_page(stand: &Stand) -> entra_sim::Form {
    let page = stand.authorize_default().await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Sign in with your smart card"),
        "{}",
        page.body
    );
    let csp = page.header(http::header::CONTENT_SECURITY_POLICY).unwrap();
    assert!(
        csp.contains(&format!("form-action 'self' {CARDS} https://vouch.test;")),
        "{csp}"
    );
    let form = page.form().expect("the smart-card page has a form");
    assert_eq!(form.action, format!("{CARDS}/eam/smartcard"));
    form
}

/// Submits `form` (from either listener's page) through `browser` with `action`.
async fn submit(browser: &Browser, form: &entra_sim::Form, action: &str) -> Page {
    let path = form.action.strip_prefix(CARDS).unwrap_or(&form.action);
    let mut fields: Vec<(&str, &str)> = form
        .fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    fields.push(("action", action));
    browser.post_form(path, &fields).await.expect("answered")
}

/// Signs in with `card` and returns the page the card listener answers.
async fn sign_in(
    stand: &Stand,
    card: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
) -> Page {
    let form = card_page(stand).await;
    let browser = stand.card_browser(card.0, card.1);
    submit(&browser, &form, "verify").await
}

async fn token_amr(stand: &Stand, page: &Page) -> serde_json::Value {
    let answer = answer(page);
    assert_eq!(answer.get("state"), Some(STATE));
    let token = answer.get("id_token").expect("a token");
    let claims = stand
        .relying_party()
        .await
        .validate(token, &expected())
        .expect("Entra accepts the token");
    assert_eq!(claims["acr"], "possessionorinherence");
    claims["amr"].clone()
}

/// Asserts the page shows the card form again with a message containing `words`.
fn assert_refused_with(page: &Page, words: &str) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(words), "{}", page.body);
    assert!(!page.body.contains("name=\"id_token\""));
    let form = page.form().expect("the page offers another try");
    assert_eq!(form.action, format!("{CARDS}/eam/smartcard"));
}

#[tokio::test]
async fn a_card_from_the_tenants_ca_signs_in_with_amr_sc() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let done = sign_in(&stand, cards.card(Leaf::new(UPN, 7))).await;
    assert_eq!(token_amr(&stand, &done).await, serde_json::json!(["sc"]));
    stand.shutdown().await;
}

#[tokio::test]
async fn a_store_granting_hwk_gives_tokens_with_amr_hwk() {
    let cards = Cards::new();
    let stand = cards.stand("hwk", "").await;
    let done = sign_in(&stand, cards.card(Leaf::new(UPN, 8))).await;
    assert_eq!(token_amr(&stand, &done).await, serde_json::json!(["hwk"]));
}

#[tokio::test]
async fn a_card_revoked_by_crl_is_refused_and_the_user_may_cancel() {
    let cards = Cards::new();
    cards.crls(&[3, 9], cards.now + 86_400);
    let stand = cards.stand("sc", "").await;
    let refused = sign_in(&stand, cards.card(Leaf::new(UPN, 9))).await;
    assert_refused_with(&refused, "This certificate has been revoked.");

    let form = refused.form().unwrap();
    let cancel = refused.body.split("formaction=\"").nth(1).unwrap();
    assert!(
        cancel.starts_with("https://vouch.test/eam/method"),
        "{cancel}"
    );
    let (txn, method) = (form.get("txn").unwrap(), form.get("method").unwrap());
    let fields = [("txn", txn), ("method", method), ("action", "cancel")];
    let cancelled = stand
        .browser
        .post_form("/eam/method", &fields)
        .await
        .unwrap();
    assert_posted_error(&cancelled, "access_denied");

    let trail = stand.state_dir().join("audit").join("audit-000001.jsonl");
    let text = std::fs::read_to_string(trail).unwrap();
    let outcomes: Vec<(String, String, String)> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "sign_in")
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (field("method"), field("outcome"), field("reason"))
        })
        .collect();
    let refused = (
        "smart_card".into(),
        "certificate_refused".into(),
        "certificate revoked".into(),
    );
    let ended = (
        "smart_card".into(),
        "access_denied".into(),
        "user cancelled".into(),
    );
    assert_eq!(outcomes, vec![refused, ended]);
}

#[tokio::test]
async fn a_card_revoked_by_its_ocsp_responder_is_refused() {
    let cards = Cards::new();
    let mut answer = OcspAnswer::good(&cards.issuing, 11);
    answer.status = Status::Revoked(Timestamp(cards.now - 600));
    answer.this_update = Timestamp(cards.now - 60);
    answer.next_update = Some(Timestamp(cards.now + 3600));
    let responder = Loopback::start(answer.sign(&cards.issuing.key(), None)).await;
    let stand = cards.stand("sc", "ocsp = \"require\"").await;

    let leaf = Leaf::new(UPN, 11).ocsp(&responder.url("/ocsp"));
    let refused = sign_in(&stand, cards.card(leaf)).await;
    assert_refused_with(&refused, "This certificate has been revoked.");
    assert_eq!(responder.hits(), 1);
}

#[tokio::test]
async fn an_unreachable_required_ocsp_responder_ends_the_sign_in_as_temporarily_unavailable() {
    let cards = Cards::new();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ocsp", closed.local_addr().unwrap());
    drop(closed);
    let stand = cards.stand("sc", "ocsp = \"require\"").await;
    let done = sign_in(&stand, cards.card(Leaf::new(UPN, 12).ocsp(&url))).await;
    assert_posted_error(&done, "temporarily_unavailable");
}

#[tokio::test]
async fn a_stale_crl_ends_the_sign_in_as_temporarily_unavailable() {
    let cards = Cards::new();
    cards.crls(&[], cards.now - 86_400);
    let stand = cards.stand("sc", "").await;
    let done = sign_in(&stand, cards.card(Leaf::new(UPN, 7))).await;
    assert_posted_error(&done, "temporarily_unavailable");
}

#[tokio::test]
async fn an_expired_card_is_refused_with_its_end_date() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let leaf = Leaf::new(UPN, 7).valid(Timestamp(1_577_836_800), Timestamp(cards.now - 86_400));
    let refused = sign_in(&stand, cards.card(leaf)).await;
    assert_refused_with(&refused, "This certificate expired on");
}

#[tokio::test]
async fn a_certificate_without_client_auth_is_refused_for_its_key_usage() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let leaf = Leaf::new(UPN, 7).ekus(vec![ExtendedKeyUsagePurpose::EmailProtection]);
    let refused = sign_in(&stand, cards.card(leaf)).await;
    assert_refused_with(&refused, "This certificate may not be used to sign in.");
}

#[tokio::test]
async fn another_users_card_is_refused_and_a_retry_with_the_right_card_succeeds() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let refused = sign_in(&stand, cards.card(Leaf::new("mallory@contoso.com", 7))).await;
    assert_refused_with(&refused, "does not belong to your account");

    let (chain, key) = cards.card(Leaf::new(UPN, 8));
    let browser = stand.card_browser(chain, key);
    let done = submit(&browser, &refused.form().unwrap(), "verify").await;
    assert_eq!(token_amr(&stand, &done).await, serde_json::json!(["sc"]));
}

#[tokio::test]
async fn a_card_from_an_unknown_ca_is_refused_as_not_trusted() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let stranger = Ca::root("Stranger Root").intermediate("Stranger Issuing");
    let (cert, key) = stranger.issue_keyed(Leaf::new(UPN, 7));
    let refused = sign_in(&stand, (vec![cert, stranger.cert.clone()], private(&key))).await;
    assert_refused_with(&refused, "not issued by an authority trusted");
}

#[tokio::test]
async fn a_chain_of_ten_intermediates_is_refused_within_the_budget() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let mut cas = vec![cards.root.intermediate("Deep 1")];
    for i in 2..=10 {
        let next = cas.last().unwrap().intermediate(&format!("Deep {i}"));
        cas.push(next);
    }
    let (leaf, key) = cas.last().unwrap().issue_keyed(Leaf::new(UPN, 7));
    let mut chain = vec![leaf];
    chain.extend(cas.iter().rev().map(|c| c.cert.clone()));
    let refused = sign_in(&stand, (chain, private(&key))).await;
    assert_refused_with(&refused, "cannot be used to sign in");
}

#[tokio::test]
async fn a_path_building_loop_is_refused_within_the_budget() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let (a, b) = (Ca::root("Loop A"), Ca::root("Loop B"));
    let (leaf, key) = a.issue_keyed(Leaf::new(UPN, 7));
    let mut chain = vec![leaf];
    for _ in 0..5 {
        chain.push(b.intermediate("Loop A").cert.clone());
        chain.push(a.intermediate("Loop B").cert.clone());
    }
    let refused = sign_in(&stand, (chain, private(&key))).await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(refused.body.contains("role=\"alert\""), "{}", refused.body);
    assert!(!refused.body.contains("name=\"id_token\""));
}

#[tokio::test]
async fn no_certificate_shows_a_page_that_says_so() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let form = card_page(&stand).await;
    let page = submit(&stand.cardless_browser(), &form, "verify").await;
    assert_refused_with(&page, "No certificate was presented.");
}

#[tokio::test]
async fn the_smart_card_endpoint_refuses_forged_reused_or_malformed_forms() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let (chain, key) = cards.card(Leaf::new(UPN, 7));
    let browser = stand.card_browser(chain, key);
    let form = card_page(&stand).await;

    let forged = browser
        .post_form("/eam/smartcard", &[("txn", "AAAA"), ("action", "verify")])
        .await
        .unwrap();
    assert_refused(&forged, 400);
    let unknown = submit(&browser, &form, "steal").await;
    assert_refused(&unknown, 400);
    let garbage = browser
        .send(
            http::Method::POST,
            "/eam/smartcard",
            Some("application/x-www-form-urlencoded"),
            bytes::Bytes::from_static(b"txn=%ZZ&&&action"),
        )
        .await
        .unwrap();
    assert_eq!(garbage.status, 400);

    let done = submit(&browser, &form, "verify").await;
    assert!(answer(&done).get("id_token").is_some());
    let again = submit(&browser, &form, "verify").await;
    assert_refused(&again, 400);
}

#[tokio::test]
async fn without_a_client_certificate_listener_no_smart_card_is_offered() {
    let cards = Cards::new();
    let config = cards.config("sc", "");
    let without = config.lines().skip(2).collect::<Vec<_>>().join("\n");
    let stand = Stand::start_with(&without, "").await;
    let page = stand.authorize_default().await;
    assert_posted_error(&page, "access_denied");
}

#[tokio::test]
async fn a_reload_reaches_the_card_listener_and_shutdown_closes_it() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let config = Stand::config_in(&stand.entra, &stand.dir, &cards.config("hwk", ""));
    stand.reload(config);
    let done = sign_in(&stand, cards.card(Leaf::new(UPN, 7))).await;
    assert_eq!(token_amr(&stand, &done).await, serde_json::json!(["hwk"]));

    let addr = stand.client_cert_addr().unwrap();
    stand.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn with_two_stores_the_refusal_comes_from_the_store_the_card_chains_to() {
    let cards = Cards::new();
    cards.crls(&[9], cards.now + 86_400);
    let other_root = Ca::root("Other Root");
    let other_path = cards.path("other.der");
    std::fs::write(&other_path, other_root.cert.as_ref()).unwrap();
    let other = format!(
        "[[trust_store]]\nname = \"other\"\ntenants = [\"{TENANT}\"]\n\
         roots = [\"{other_path}\"]\nbinding = \"upn\"\namr = \"sc\"\n"
    );
    let listener = format!("client_cert_listen = \"127.0.0.1:0\"\nclient_cert_url = \"{CARDS}\"");
    let ours = cards.section(TENANT, "sc", "[\"smart_card\"]", "");
    let stand = Stand::start_with(&format!("{listener}\n{other}{ours}"), "").await;

    let refused = sign_in(&stand, cards.card(Leaf::new(UPN, 9))).await;
    assert_refused_with(&refused, "This certificate has been revoked.");
    let done = sign_in(&stand, cards.card(Leaf::new(UPN, 10))).await;
    assert_eq!(token_amr(&stand, &done).await, serde_json::json!(["sc"]));
}

/// The smart-card page a German browser is shown, checked to be German and to keep its posts.
async fn german_card_page(stand: &Stand) -> entra_sim::Form {
    let page = authorize_with(stand, &german(stand.browser.clone())).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<html lang=\"de\">"), "{}", page.body);
    assert!(
        page.body.contains("<h1>Mit Ihrer Smartcard anmelden</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Mein Zertifikat verwenden</button>"));
    let csp = page.header(http::header::CONTENT_SECURITY_POLICY).unwrap();
    assert!(
        csp.contains(&format!("form-action 'self' {CARDS} https://vouch.test;")),
        "{csp}"
    );
    let form = page.form().expect("the smart-card page has a form");
    assert_eq!(form.action, format!("{CARDS}/eam/smartcard"));
    form
}

#[tokio::test]
async fn a_german_browser_reads_the_card_page_and_each_refusal_in_german() {
    let cards = Cards::new();
    cards.crls(&[9], cards.now + 86_400);
    let stand = cards.stand("sc", "").await;
    let form = german_card_page(&stand).await;

    let (chain, key) = cards.card(Leaf::new(UPN, 9));
    let revoked = submit(&german(stand.card_browser(chain, key)), &form, "verify").await;
    assert_refused_with(
        &revoked,
        "role=\"alert\">Dieses Zertifikat wurde gesperrt.</p>",
    );
    assert!(revoked.body.contains(">Erneut versuchen</button>"));
    assert!(!revoked.body.contains("revoked"), "{}", revoked.body);

    let ended = cards.now - 86_400;
    let leaf = Leaf::new(UPN, 7).valid(Timestamp(1_577_836_800), Timestamp(ended));
    let (chain, key) = cards.card(leaf);
    let expired = submit(&german(stand.card_browser(chain, key)), &form, "verify").await;
    let day = time::OffsetDateTime::from_unix_timestamp(ended)
        .unwrap()
        .date();
    assert_refused_with(
        &expired,
        &format!("Dieses Zertifikat ist am {day} abgelaufen."),
    );

    let none = submit(&german(stand.cardless_browser()), &form, "verify").await;
    assert_refused_with(&none, "Es wurde kein Zertifikat vorgelegt.");
}

#[tokio::test]
async fn a_card_sign_in_that_took_too_long_says_so_in_german_before_returning_to_entra() {
    let cards = Cards::new();
    let stand = cards.stand("sc", "").await;
    let form = german_card_page(&stand).await;
    stand
        .app
        .clock
        .advance(stand.app.config.transaction_ttl + 1);

    let (chain, key) = cards.card(Leaf::new(UPN, 7));
    let ended = submit(&german(stand.card_browser(chain, key)), &form, "verify").await;
    assert_expired_in_german(&ended);
}
