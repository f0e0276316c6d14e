//! The console driven in a real terminal: tmux runs it on a private server, the test types
//! keys with `send-keys` and reads the screen with `capture-pane`, against a `vouch serve`
//! of its own that trusts an Entra simulator.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use entra_sim::USER_OID;
use entra_sim::{APP_ID, Authority, Browser, CLIENT_ID, DEFAULT_CLAIMS, REDIRECT_URI, TENANT};
use vouch::factor::otp::{self, TotpParams};

/// The `vouch` binary beside this package's, built first if a narrow test run left it out.
fn vouch_binary() -> PathBuf {
    let console = PathBuf::from(env!("CARGO_BIN_EXE_vouch-console"));
    let vouch = console.with_file_name("vouch");
    if !vouch.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "-p", "vouch", "--bin", "vouch"])
            .status()
            .expect("cargo runs");
        assert!(built.success(), "could not build vouch");
    }
    vouch
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// `vouch serve` with its own folder; stopped and started again on the same state.
struct Appliance {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    entra: Authority,
}

impl Appliance {
    async fn new() -> Appliance {
        let entra = Authority::start().await.expect("Entra simulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        std::fs::write(dir.path().join("entra-ca.pem"), &entra.ca_pem).expect("CA");
        let config = format!(
            r#"
            [server]
            listen = ["127.0.0.1:{port}"]
            issuer = "https://127.0.0.1:{port}"
            state_dir = "state"

            [admin]
            socket = "{socket}"

            [[tenant]]
            id = "{TENANT}"
            name = "Contoso"
            app_id = "{APP_ID}"
            client_id = "{CLIENT_ID}"

            [tenant.test_authority]
            url = "{origin}"
            ca_file = "entra-ca.pem"
            "#,
            socket = dir.path().join("admin.sock").display(),
            origin = entra.origin,
        );
        std::fs::write(dir.path().join("vouch.toml"), config).expect("config");
        Appliance {
            dir,
            port,
            child: None,
            entra,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    async fn start(&mut self) {
        let child = Command::new(vouch_binary())
            .args(["serve", "-c"])
            .arg(self.dir.path().join("vouch.toml"))
            .env("VOUCH_LOG", "error")
            .spawn()
            .expect("vouch serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "the appliance never opened its socket"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Gives the example user a TOTP seed in the appliance's store.
    fn enrol(&self) -> Vec<u8> {
        let store = vouch::store::CredentialStore::open(&self.dir.path().join("state"))
            .expect("credential store");
        let now = entra_sim::unix_now();
        store
            .enroll_totp(TENANT, USER_OID, TotpParams::default(), false, now)
            .expect("enrolled")
    }

    fn browser(&self) -> Browser {
        let cert = std::fs::read(self.dir.path().join("state/tls/cert.pem")).expect("cert");
        Browser::new(&format!("https://127.0.0.1:{}", self.port), &cert).expect("browser")
    }

    /// Entra's request with a fresh hint; the answer is the code page.
    async fn authorize(&self, browser: &Browser) -> entra_sim::Page {
        let hint = self.entra.default_hint();
        let fields = [
            ("scope", "openid"),
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("nonce", "n-0S6_WzA2Mj"),
            ("state", "af0ifjsldkj"),
            ("id_token_hint", hint.as_str()),
            ("claims", DEFAULT_CLAIMS),
        ];
        let page = browser
            .post_form("/eam/authorize", &fields)
            .await
            .expect("authorize answered");
        assert_eq!(page.status, 200, "{}", page.body);
        page
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The console in a tmux session on a private server.
struct Console {
    server: String,
}

impl Console {
    /// Starts the console against `socket`, or `None` when tmux is missing outside CI.
    fn start(socket: &Path, log: &Path) -> Option<Console> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tmux is missing: scripts/install-packages installs it"
            );
            eprintln!("tmux is not installed; skipping the terminal test");
            return None;
        }
        let server = format!("vouch-console-test-{}-{}", std::process::id(), free_port());
        let command = format!(
            "{} --socket {} --log {}",
            env!("CARGO_BIN_EXE_vouch-console"),
            socket.display(),
            log.display()
        );
        let started = Command::new("tmux")
            .args(["-L", &server, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "100", "-y", "30", &command])
            .status()
            .expect("tmux runs");
        assert!(started.success());
        Some(Console { server })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.server, "capture-pane", "-p"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        Command::new("tmux")
            .args(["-L", &self.server, "send-keys"])
            .args(keys)
            .status()
            .expect("send-keys");
    }

    /// Waits until the screen satisfies `seen`, failing with the last screen.
    async fn wait_for(&self, what: &str, seen: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if seen(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never saw {what}:\n{screen}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.server, "kill-server"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_counts_sign_ins_and_the_feed_shows_them() {
    let mut vouch = Appliance::new().await;
    let seed = vouch.enrol();
    vouch.start().await;
    let log = vouch.dir.path().join("console.log");
    let Some(console) = Console::start(&vouch.socket(), &log) else {
        return;
    };
    console
        .wait_for("the connected dashboard", |s| {
            s.contains("connected · vouch")
        })
        .await;

    let browser = vouch.browser();
    let page = vouch.authorize(&browser).await;
    let code = otp::totp(&seed, TotpParams::default(), entra_sim::unix_now());
    let form = page.form().expect("code form");
    let done = browser
        .submit(&form, &[("code", code.as_str()), ("action", "verify")])
        .await
        .expect("code answered");
    let token = done
        .form()
        .and_then(|f| f.get("id_token").map(str::to_owned));
    assert!(token.is_some(), "{}", done.body);
    for _ in 0..2 {
        let page = vouch.authorize(&browser).await;
        let form = page.form().expect("code form");
        browser
            .submit(&form, &[("code", ""), ("action", "cancel")])
            .await
            .expect("cancel answered");
    }

    let screen = console
        .wait_for("three sign-ins counted", |s| s.contains("total 3"))
        .await;
    let row = |name: &str| {
        let line = screen.lines().find(|l| l.contains(&format!("│{name} ")));
        line.unwrap_or_default().to_owned()
    };
    assert!(row("token").contains(" 1 "), "{screen}");
    assert!(row("access_denied").contains(" 2 "), "{screen}");
    assert!(
        screen.contains("user cancelled"),
        "errors by reason: {screen}"
    );
    assert!(screen.contains("Contoso"), "Entra key cache: {screen}");

    console.keys(&["5"]);
    let feed = console
        .wait_for("the feed", |s| s.contains("Sign-ins, newest first"))
        .await;
    assert!(
        feed.contains("factor proven") && feed.contains("user cancelled"),
        "{feed}"
    );
    console.keys(&["/", "f", "a", "c", "t", "Enter"]);
    let filtered = console
        .wait_for("the filtered feed", |s| s.contains("filter \"fact\""))
        .await;
    assert!(!filtered.contains("user cancelled"), "{filtered}");

    console.keys(&["4", "i"]);
    console
        .wait_for("the user's security keys", |s| {
            s.contains("has no security key")
        })
        .await;
    console.keys(&["c", "f"]);
    console
        .wait_for("the link question", |s| s.contains("enrolment link for"))
        .await;
    console.keys(&["y"]);
    let link = console
        .wait_for("the link", |s| s.contains("Security-key link for"))
        .await;
    assert!(link.contains("once for 15 minutes"), "{link}");
    assert!(link.contains("/eam/enrol?t="), "{link}");
    console.keys(&["c"]);

    console.keys(&["?"]);
    console
        .wait_for("the help", |s| s.contains("Keys (? or Esc to close)"))
        .await;
    console.keys(&["Escape", "q"]);
    let log_text = std::fs::read_to_string(&log).expect("the console's log file");
    assert!(log_text.contains("console starting"), "{log_text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_says_the_appliance_is_down_and_reconnects_when_it_returns() {
    let mut vouch = Appliance::new().await;
    let log = vouch.dir.path().join("console.log");
    let Some(console) = Console::start(&vouch.socket(), &log) else {
        return;
    };
    let down = console
        .wait_for("the not-running notice", |s| s.contains("not running"))
        .await;
    assert!(down.contains("vouch serve"), "says how to fix it: {down}");

    vouch.start().await;
    console
        .wait_for("the reconnection", |s| s.contains("connected · vouch"))
        .await;

    vouch.stop();
    console
        .wait_for("the notice after a stop", |s| s.contains("not running"))
        .await;
    vouch.start().await;
    let back = console
        .wait_for("the second reconnection", |s| {
            s.contains("connected · vouch")
        })
        .await;
    assert!(!back.contains("not running"), "{back}");
    console.keys(&["q"]);
}
