//! A test stand: the Entra simulator, a vouch appliance that trusts it, and a browser.
//!
//! The appliance runs in this process on a free loopback port with a state directory of its
//! own, so tests can move its clock and enrol users directly.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod raw;

use std::path::PathBuf;
use std::sync::Arc;

use entra_sim::{Authority, Browser, Expected, Page, RelyingParty};
use vouch::app::App;
use vouch::config::Config;
use vouch::factor::otp::{self, TotpParams};
use vouch::server::Server;
use vouch::signer::TokenSigner;

pub use entra_sim::{APP_ID, CLIENT_ID, DEFAULT_CLAIMS, REDIRECT_URI, TENANT, USER_OID, USER_SUB};

pub const ISSUER: &str = "https://vouch.test";
pub const NONCE: &str = "AwABEgEAAAADAOz_BQD0_8Xk";
pub const STATE: &str = "rQQIARAAjZE9aMNAFMdfk1I";
pub const REQUEST_ID: &str = "0f3c7a5e-1b2d-4e8f-9a6b-5c4d3e2f1a0b";

pub struct Stand {
    pub entra: Authority,
    pub app: Arc<App>,
    pub browser: Browser,
    server: Option<Server>,
    pub dir: tempfile::TempDir,
}

impl Stand {
    /// A stand with one onboarded tenant whose keys come from the simulator.
    pub async fn start() -> Stand {
        Stand::start_with("", "").await
    }

    /// `server_extra` is added to `[server]`, `tenant_extra` to the tenant's table.
    pub async fn start_with(server_extra: &str, tenant_extra: &str) -> Stand {
        let entra = Authority::start().await.expect("Entra simulator");
        Stand::around(entra, server_extra, tenant_extra).await
    }

    /// A stand around a simulator made (and perhaps broken) beforehand.
    pub async fn around(entra: Authority, server_extra: &str, tenant_extra: &str) -> Stand {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Stand::config(&entra, &dir, server_extra, tenant_extra);
        let app = App::new(config).expect("app");
        Stand::serve(entra, app, dir).await
    }

    /// A stand whose token signer waits at `gate` before each signature.
    pub async fn gated(server_extra: &str, gate: Arc<Gate>) -> Stand {
        let entra = Authority::start().await.expect("Entra simulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Stand::config(&entra, &dir, server_extra, "");
        vouch::provision::ensure_dir(&config.state_dir).expect("state dir");
        let inner = vouch::provision::software_signer(&config.state_dir).expect("signer");
        let published = [inner.published().clone()];
        let signer = GatedSigner { inner, gate };
        let pool = vouch::signer::SignerPool::new(Arc::new(signer), config.signer_max_in_flight);
        let app = App::with_signer(config, pool, &published).expect("app");
        Stand::serve(entra, app, dir).await
    }

    /// A stand whose signer pool is made by `pool` from the stand's configuration.
    pub async fn with_pool(
        server_extra: &str,
        pool: impl FnOnce(&Config) -> vouch::signer::SignerPool,
    ) -> Stand {
        let entra = Authority::start().await.expect("Entra simulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Stand::config(&entra, &dir, server_extra, "");
        vouch::provision::ensure_dir(&config.state_dir).expect("state dir");
        let pool = pool(&config);
        let app = App::with_signer(config, pool, &[]).expect("app");
        Stand::serve(entra, app, dir).await
    }

    /// The configuration a stand would run with, in `dir`.
    pub fn config_in(entra: &Authority, dir: &tempfile::TempDir, server_extra: &str) -> Config {
        Stand::config(entra, dir, server_extra, "")
    }

    /// A stand around an app made elsewhere (with [`Stand::config_in`]).
    pub async fn around_app(entra: Authority, app: App, dir: tempfile::TempDir) -> Stand {
        Stand::serve(entra, app, dir).await
    }

    fn config(
        entra: &Authority,
        dir: &tempfile::TempDir,
        server_extra: &str,
        tenant_extra: &str,
    ) -> Config {
        let ca = dir.path().join("entra-ca.pem");
        std::fs::write(&ca, &entra.ca_pem).expect("CA file");
        let text = format!(
            r#"
            [server]
            {issuer}
            {listen}
            {state_dir}
            {server_extra}

            [[tenant]]
            id = "{TENANT}"
            app_id = "{APP_ID}"
            client_id = "{CLIENT_ID}"
            {tenant_extra}

            [tenant.test_authority]
            url = "{origin}"
            ca_file = "entra-ca.pem"
            "#,
            origin = entra.origin,
            issuer = unless_given(server_extra, "issuer", &format!("issuer = \"{ISSUER}\"")),
            listen = unless_given(server_extra, "listen", "listen = [\"127.0.0.1:0\"]"),
            state_dir = if server_extra.contains("state_dir") {
                ""
            } else {
                "state_dir = \"state\""
            },
        );
        Config::parse(&text, "stand.toml", dir.path()).expect("stand config")
    }

    async fn serve(entra: Authority, app: App, dir: tempfile::TempDir) -> Stand {
        let config = &app.config;
        let tls = vouch::provision::tls_config(&config.state_dir, None).expect("TLS");
        let listen = config.listen.clone();
        let cert = config.state_dir.join("tls").join("cert.pem");
        let app = Arc::new(app);
        app.keys.refresh_all().await;
        let server = Server::start(app.clone(), tls, &listen)
            .await
            .expect("server");
        let origin = format!("https://127.0.0.1:{}", server.addrs[0].port());
        let pem = std::fs::read(cert).expect("appliance certificate");
        let browser = Browser::new(&origin, &pem).expect("browser");
        Stand {
            entra,
            app,
            browser,
            server: Some(server),
            dir,
        }
    }

    /// Where the client-certificate listener is bound, when the stand has one.
    pub fn client_cert_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().and_then(|s| s.client_cert_addr)
    }

    /// A browser on the client-certificate listener that presents `chain` with `key`.
    pub fn card_browser(
        &self,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Browser {
        let addr = self
            .client_cert_addr()
            .expect("a client-certificate listener");
        let origin = format!("https://127.0.0.1:{}", addr.port());
        let cert = self.state_dir().join("tls").join("cert.pem");
        let pem = std::fs::read(cert).expect("appliance certificate");
        Browser::with_client_cert(&origin, &pem, chain, key).expect("card browser")
    }

    /// Applies `config` as a reload (SIGHUP) would, with the stand's TLS files.
    pub fn reload(&self, config: Config) {
        let server = self.server.as_ref().expect("running");
        let next = server.app().reconfigure(config).expect("reconfigured");
        let tls = vouch::provision::tls_config(&self.state_dir(), None).expect("TLS");
        server.reload(Arc::new(next), tls);
    }

    /// A browser on the client-certificate listener that presents no certificate.
    pub fn cardless_browser(&self) -> Browser {
        let addr = self
            .client_cert_addr()
            .expect("a client-certificate listener");
        let cert = self.state_dir().join("tls").join("cert.pem");
        let pem = std::fs::read(cert).expect("appliance certificate");
        Browser::new(&format!("https://127.0.0.1:{}", addr.port()), &pem).expect("browser")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.app.config.state_dir.clone()
    }

    /// Enrols the example user for TOTP and returns the seed.
    pub fn enroll(&self, params: TotpParams) -> Vec<u8> {
        let now = self.app.clock.now();
        self.app
            .store
            .enroll_totp(TENANT, USER_OID, params, false, now)
            .expect("enrol")
    }

    /// The code the user's authenticator shows now, by the appliance's clock.
    pub fn code(&self, seed: &[u8], params: TotpParams) -> String {
        otp::totp(seed, params, self.app.clock.now())
    }

    /// The form Entra's page posts, for the given hint.
    pub fn entra_form(hint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("scope", "openid".into()),
            ("response_type", "id_token".into()),
            ("response_mode", "form_post".into()),
            ("client_id", CLIENT_ID.into()),
            ("redirect_uri", REDIRECT_URI.into()),
            ("nonce", NONCE.into()),
            ("state", STATE.into()),
            ("id_token_hint", hint.into()),
            ("claims", DEFAULT_CLAIMS.into()),
            ("client-request-id", REQUEST_ID.into()),
        ]
    }

    /// Posts an authorize request made of `fields`.
    pub async fn authorize(&self, fields: &[(&str, String)]) -> Page {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.browser
            .post_form("/eam/authorize", &fields)
            .await
            .expect("authorize answered")
    }

    /// Entra's default request for the example user with a fresh hint.
    pub async fn authorize_default(&self) -> Page {
        let hint = self.entra.default_hint();
        self.authorize(&Stand::entra_form(&hint)).await
    }

    /// Entra's default hint, issued at the appliance's (perhaps advanced) clock.
    pub fn hint_now(&self) -> String {
        let now = self.app.clock.now();
        let mut claims = self.entra.hint_claims(TENANT, USER_OID, USER_SUB, APP_ID);
        claims["iat"] = now.into();
        claims["nbf"] = now.into();
        claims["exp"] = (now - 1).into();
        self.entra.hint(&claims)
    }

    /// Submits a code on the OTP page.
    pub async fn submit_code(&self, page: &Page, code: &str) -> Page {
        let form = page.form().expect("the code page has a form");
        self.browser
            .submit(&form, &[("code", code), ("action", "verify")])
            .await
            .expect("OTP answered")
    }

    /// Entra's view of the appliance's metadata.
    pub async fn relying_party(&self) -> RelyingParty {
        RelyingParty::discover(&self.browser, "/.well-known/openid-configuration")
            .await
            .expect("metadata Entra accepts")
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// `line`, unless the extra configuration sets `key` itself.
fn unless_given(extra: &str, key: &str, line: &str) -> String {
    let given = extra.lines().any(|l| l.trim_start().starts_with(key));
    if given {
        String::new()
    } else {
        line.to_owned()
    }
}

/// A door the gated signer waits at: shut, signatures wait; open, they go ahead.
#[derive(Default)]
pub struct Gate {
    open: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub fn shut() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Opens the gate when dropped, so that a failed test does not leave a signature waiting
    /// and the runtime waiting for it.
    pub fn opener(self: &Arc<Self>) -> GateOpener {
        GateOpener(self.clone())
    }

    fn pass(&self) {
        let open = self.open.lock().unwrap();
        let _open = self.changed.wait_while(open, |open| !*open).unwrap();
    }
}

pub struct GateOpener(Arc<Gate>);

impl Drop for GateOpener {
    fn drop(&mut self) {
        self.0.open();
    }
}

struct GatedSigner {
    inner: vouch::signer::SoftwareSigner,
    gate: Arc<Gate>,
}

impl TokenSigner for GatedSigner {
    fn published(&self) -> &vouch::signer::PublishedKey {
        self.inner.published()
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, vouch::signer::SignError> {
        self.gate.pass();
        self.inner.sign(input)
    }
}

/// What Entra expects of the token for the default request.
pub fn expected() -> Expected<'static> {
    Expected {
        client_id: CLIENT_ID,
        sub: USER_SUB,
        nonce: Some(NONCE),
        acr_values: &["possessionorinherence"],
        amr_values: &[
            "face", "fido", "fpt", "hwk", "iris", "otp", "pop", "retina", "sc", "sms", "swk",
            "tel", "vbm",
        ],
    }
}

/// The answer page's form, checked to post to Entra and nowhere else.
/// The `kid` in a token's header.
pub fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("header");
    let json = vouch::jose::b64url_decode(header, "header").expect("base64url");
    let header: serde_json::Value = serde_json::from_slice(&json).expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

/// The `kid` vouch publishes for a signing certificate.
pub fn kid(certificate: &[u8]) -> String {
    vouch::signer::published_from_certificate(certificate)
        .expect("certificate")
        .kid
}

/// Runs the `vouch` binary in `dir`.
pub fn run_vouch(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("vouch runs")
}

/// Bytes a process wrote, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn answer(page: &Page) -> entra_sim::Form {
    assert_eq!(page.status, 200, "{}", page.body);
    let form = page.form().expect("answer page has a form");
    assert_eq!(form.action, REDIRECT_URI);
    form
}

/// Asserts a 400-class refusal page that posts nothing anywhere.
pub fn assert_refused(page: &Page, status: u16) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(!page.body.contains("<form"), "a refusal posts nothing");
    assert!(
        !page.body.contains("name=\"id_token\""),
        "a refusal carries no token"
    );
    assert!(!page.body.contains("eyJ"), "a refusal echoes no token");
    let csp = page
        .header(http::header::CONTENT_SECURITY_POLICY)
        .unwrap_or_default();
    assert!(csp.contains("form-action 'none'"), "{csp}");
}

/// `browser`, asking for pages in German first, as a German-speaking user's browser does.
pub fn german(browser: Browser) -> Browser {
    let languages = http::HeaderValue::from_static("de-DE,de;q=0.9,en;q=0.5");
    browser.with_header(http::header::ACCEPT_LANGUAGE, languages)
}

/// Entra's default request posted by `browser`, with a fresh hint.
pub async fn authorize_with(stand: &Stand, browser: &Browser) -> Page {
    let form = Stand::entra_form(&stand.entra.default_hint());
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = browser.post_form("/eam/authorize", &fields).await;
    page.expect("authorize answered")
}

/// Asserts the held answer page that tells the user, in German, that the sign-in took too
/// long, before it posts `temporarily_unavailable` to Entra.
pub fn assert_expired_in_german(page: &Page) {
    assert_posted_error(page, "temporarily_unavailable");
    assert!(page.body.contains("<html lang=\"de\">"), "{}", page.body);
    assert!(page.body.contains("zu lange gedauert"), "{}", page.body);
    assert!(
        !page.body.contains("<script"),
        "the notice waits for the user"
    );
}

/// Asserts an error posted back to Entra with the request's state.
pub fn assert_posted_error(page: &Page, error: &str) {
    let form = answer(page);
    assert_eq!(form.get("error"), Some(error), "{}", page.body);
    assert_eq!(form.get("state"), Some(STATE));
    assert_eq!(form.get("id_token"), None);
}

/// The shared test data folder: `VOUCH_TESTDATA`, else `../shared/testdata` beside the
/// project. Under `CI=true` a missing suite fails the test instead of skipping it.
pub fn testdata(suite: &str) -> Option<PathBuf> {
    let root = std::env::var_os("VOUCH_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    let dir = root.join(suite);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("test suite {} is missing under CI", dir.display());
    }
    eprintln!("skipping: test suite {} is not present", dir.display());
    None
}

/// The outcome of one case of a conformance suite.
pub struct CaseResult {
    pub id: String,
    /// Whether vouch's outcome is the one the suite expects.
    pub as_expected: bool,
    pub detail: String,
}

/// Prints `N passed, N failed` for a suite and asserts that the cases that deviate from the
/// suite's expectation are exactly those in `tests/allowlists/{name}.txt`. An entry ending
/// in `*` covers every case id that starts with what precedes it, and must cover one.
pub fn assert_deviations_allowed(name: &str, results: &[CaseResult]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/allowlists")
        .join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let allowed: std::collections::BTreeSet<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let matches = |entry: &str, id: &str| match entry.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => entry == id,
    };

    let failed: Vec<&CaseResult> = results.iter().filter(|r| !r.as_expected).collect();
    println!(
        "{name}: {} passed, {} failed ({} allowed)",
        results.len() - failed.len(),
        failed.len(),
        allowed.len()
    );
    let unexpected: Vec<String> = failed
        .iter()
        .filter(|r| !allowed.iter().any(|a| matches(a, &r.id)))
        .map(|r| format!("{}: {}", r.id, r.detail))
        .collect();
    let now_passing: Vec<&&str> = allowed
        .iter()
        .filter(|a| !failed.iter().any(|r| matches(a, &r.id)))
        .collect();
    assert!(
        unexpected.is_empty() && now_passing.is_empty(),
        "{name}: deviations not in the allowlist: {unexpected:#?}; \
         allowlisted cases that now pass (remove them): {now_passing:?}"
    );
}
