//! A real browser on the user pages: Chromium with a virtual FIDO2 authenticator, pointed at
//! an appliance on `https://localhost:PORT`, with pages photographed for review.
//!
//! WebAuthn needs a secure context whose host matches the RP ID, so the appliance's issuer is
//! `https://localhost:PORT` and Chromium trusts its self-signed certificate by the key's
//! hash (`--ignore-certificate-errors-spki-list`), which leaves the page a secure context.
//! The answer vouch posts to Entra is caught with the `Fetch` domain before it leaves.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod cdp;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use cdp::Chromium;

/// One browser at a time: on a two-core machine several at once only slow each other.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether Chromium is installed; under `CI=true` its absence fails the test.
pub fn chromium_present() -> bool {
    if Path::new(cdp::CHROMIUM).is_file() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing; scripts/install-packages installs it",
            cdp::CHROMIUM
        );
    }
    eprintln!("skipping: {} is not installed", cdp::CHROMIUM);
    false
}

/// A loopback port free for both IPv4 and IPv6 at the time of asking.
pub fn free_port() -> u16 {
    loop {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = v4.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("::1", port)).is_ok() {
            return port;
        }
    }
}

/// The base64 SHA-256 of a PEM certificate's SubjectPublicKeyInfo, as Chromium's SPKI list
/// wants it.
pub fn spki_hash(cert_pem: &Path) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let der = CertificateDer::from_pem_file(cert_pem).expect("certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    let spki = cert.tbs_certificate.subject_pki.raw;
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
    STANDARD.encode(hash.as_ref())
}

/// A tab with a virtual authenticator, trusting the appliance whose certificate is given.
pub struct Tab {
    pub browser: Chromium,
    pub authenticator: String,
}

/// The page widths every page is photographed at.
const SIZES: [(&str, u32, u32, bool); 2] =
    [("desktop", 1280, 800, false), ("phone", 390, 844, true)];

impl Tab {
    pub fn open(cert_pem: &Path) -> Tab {
        let trust = format!(
            "--ignore-certificate-errors-spki-list={}",
            spki_hash(cert_pem)
        );
        let mut browser = Chromium::launch(&[trust]);
        browser.call("Page.enable", json!({}));
        browser.call("WebAuthn.enable", json!({ "enableUI": false }));
        let options = json!({ "options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true,
            "automaticPresenceSimulation": true,
        }});
        let added = browser.call("WebAuthn.addVirtualAuthenticator", options);
        let authenticator = added["authenticatorId"].as_str().expect("id").to_owned();
        let catch = json!({ "patterns": [{
            "urlPattern": "https://login.microsoftonline.com/*", "requestStage": "Request",
        }]});
        browser.call("Fetch.enable", catch);
        Tab {
            browser,
            authenticator,
        }
    }

    /// Whether the authenticator answers presence tests at once, or leaves them pending.
    pub fn presence(&mut self, automatic: bool) {
        let params = json!({ "authenticatorId": self.authenticator, "enabled": automatic });
        self.browser
            .call("WebAuthn.setAutomaticPresenceSimulation", params);
    }

    /// Whether the authenticator reports the user verified (PIN or biometric).
    pub fn user_verified(&mut self, verified: bool) {
        let params = json!({ "authenticatorId": self.authenticator, "isUserVerified": verified });
        self.browser.call("WebAuthn.setUserVerified", params);
    }

    pub fn accept_language(&mut self, value: &str) {
        let params = json!({ "userAgent": "vouch-browser-test", "acceptLanguage": value });
        self.browser.call("Emulation.setUserAgentOverride", params);
    }

    /// Opens `url` and waits until its document has loaded.
    pub fn navigate(&mut self, url: &str) {
        self.mark_document();
        self.browser.call("Page.navigate", json!({ "url": url }));
        self.wait_new_document();
    }

    /// Tags the current document, so that a wait can tell it from the next one.
    fn mark_document(&mut self) {
        self.browser.eval("window.vouchSeen=true");
        self.browser.clear_events();
    }

    /// Waits until a document other than the tagged one has loaded.
    fn wait_new_document(&mut self) {
        let loaded = "!window.vouchSeen && document.readyState === 'complete'";
        while !self.browser.holds(loaded) {
            self.browser.event("Page.loadEventFired");
        }
    }

    /// Posts a form from a blank page, as Entra's page does.
    pub fn post_form(&mut self, url: &str, fields: &[(&str, String)]) {
        self.navigate("about:blank");
        let fields: Vec<Value> = fields.iter().map(|(n, v)| json!([n, v])).collect();
        let script = format!(
            "(function(){{var f=document.createElement('form');f.method='post';f.action={};\
             {}.forEach(function(p){{var i=document.createElement('input');i.type='hidden';\
             i.name=p[0];i.value=p[1];f.appendChild(i);}});document.body.appendChild(f);\
             f.submit();return true;}})()",
            json!(url),
            Value::Array(fields)
        );
        self.mark_document();
        self.browser.eval(&script);
    }

    /// Waits until a page titled `title` has loaded.
    pub fn wait_title(&mut self, title: &str) {
        let loaded = format!(
            "!window.vouchSeen && document.readyState === 'complete' && document.title === {}",
            json!(title)
        );
        while !self.browser.holds(&loaded) {
            self.browser.event("Page.loadEventFired");
        }
    }

    pub fn title(&mut self) -> String {
        self.browser
            .eval("document.title")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn text(&mut self) -> String {
        let text = self.browser.eval("document.body.innerText");
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Clicks the element `selector` names.
    pub fn click(&mut self, selector: &str) {
        let script = format!("document.querySelector({}).click();true", json!(selector));
        self.browser.eval(&script);
    }

    /// Clicks the element `selector` names and waits for the page it leads to.
    pub fn click_and_load(&mut self, selector: &str) {
        self.mark_document();
        self.click(selector);
        self.wait_new_document();
    }

    /// Types `value` into the input `selector` names.
    pub fn fill(&mut self, selector: &str, value: &str) {
        let script = format!(
            "document.querySelector({}).value={};true",
            json!(selector),
            json!(value)
        );
        self.browser.eval(&script);
    }

    /// Waits for the answer page's post to Entra, answers it, and returns its fields.
    pub fn entra_post(&mut self) -> Vec<(String, String)> {
        let paused = self.browser.event("Fetch.requestPaused");
        let body = paused["request"]["postData"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let page = STANDARD.encode("<!doctype html><title>Entra</title><p>received</p>");
        let answer = json!({
            "requestId": paused["requestId"], "responseCode": 200, "body": page,
            "responseHeaders": [{ "name": "Content-Type", "value": "text/html" }],
        });
        self.browser.call("Fetch.fulfillRequest", answer);
        form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }

    /// Saves the page at desktop and phone width as `target/screenshots/NAME-WIDTH.png`.
    pub fn screenshots(&mut self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        for (size, width, height, mobile) in SIZES {
            let metrics = json!({
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
            });
            self.browser
                .call("Emulation.setDeviceMetricsOverride", metrics);
            let shot = self
                .browser
                .call("Page.captureScreenshot", json!({ "format": "png" }));
            let png = STANDARD
                .decode(shot["data"].as_str().expect("data"))
                .expect("base64");
            std::fs::write(dir.join(format!("{name}-{size}.png")), png).expect("screenshot");
        }
        self.browser
            .call("Emulation.clearDeviceMetricsOverride", json!({}));
    }
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}
