//! The `vouch` binary as an operator uses it: first start on embedded defaults, enrolment,
//! configuration errors, and a whole sign-in through a spawned appliance.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;
use entra_sim::{Authority, Browser};

fn vouch(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .current_dir(dir)
        .env("VOUCH_LOG", "info")
        .output()
        .expect("vouch runs")
}

/// A `vouch serve` child and the address it logged.
struct Running {
    child: Child,
    addr: String,
    log: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(dir: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env("VOUCH_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("vouch serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut running = Running {
            child,
            addr: String::new(),
            log,
            seen: Vec::new(),
        };
        let line = running.wait_for("listening");
        let addr = line.split("addr=").nth(1).expect("address field");
        running.addr = addr
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        running
    }

    /// The first log line containing `needle`, already logged or within 30 seconds.
    fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            match self.log.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("vouch never logged {needle:?}: {e}; saw {:#?}", self.seen),
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()));
        self.wait_for("stopped");
        self.child.wait().expect("exit status")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_on_embedded_defaults_makes_its_state_and_serves_discovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = Running::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let line = running.wait_for("serving");
    assert!(
        line.contains("https://localhost:8443/.well-known/openid-configuration"),
        "{line}"
    );

    let state = dir.path().join("vouch-state");
    for file in [
        "tls/cert.pem",
        "tls/key.pem",
        "signing/key.pk8",
        "signing/cert.pem",
        "store.key",
    ] {
        assert!(state.join(file).is_file(), "{file} was not created");
    }
    use std::os::unix::fs::PermissionsExt as _;
    for secret in ["tls/key.pem", "signing/key.pk8", "store.key"] {
        let mode = std::fs::metadata(state.join(secret))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{secret} is readable by others");
    }

    let pem = std::fs::read(state.join("tls/cert.pem")).expect("cert");
    let browser = Browser::new(&format!("https://{}", running.addr), &pem).expect("browser");
    let page = browser
        .get("/.well-known/openid-configuration")
        .await
        .expect("discovery");
    let doc: serde_json::Value = serde_json::from_str(&page.body).expect("json");
    assert_eq!(doc["issuer"], "https://localhost:8443");

    let status = running.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn a_bad_configuration_exits_64_naming_the_file_the_key_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[server]\nissuer = \"https://mfa.example.com/\"",
            "server.issuer",
            "must not end with '/'",
        ),
        (
            "[server]\nlisten = [\"8443\"]",
            "server.listen",
            "socket address",
        ),
        ("[server]\nlisen = []", "lisen", "unknown field"),
        (
            "[transaction]\nttl_secs = 900",
            "transaction.ttl_secs",
            "30 to 290",
        ),
        (
            "[[tenant]]\nid = \"contoso\"\napp_id = \"a\"\nclient_id = \"c\"",
            "tenant[0].id",
            "GUID",
        ),
        ("[server", "(syntax)", ""),
    ];
    for (toml, key, fix) in cases {
        let path = dir.path().join("vouch.toml");
        std::fs::write(&path, toml).expect("write");
        let out = vouch(dir.path(), &["serve", "--config", "vouch.toml"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{toml}: {err}");
        assert!(err.contains("vouch.toml"), "{toml}: {err}");
        assert!(err.contains(key), "{toml}: {err}");
        assert!(err.contains(fix), "{toml}: {err}");
    }
    let out = vouch(dir.path(), &["serve", "--config", "missing.toml"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[test]
fn check_prints_what_a_configuration_sets_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[server]\nissuer = \"https://mfa.example.com\"\n\n[[tenant]]\nid = \"{TENANT}\"\n\
         app_id = \"{APP_ID}\"\nclient_id = \"{CLIENT_ID}\"\n"
    );
    std::fs::write(dir.path().join("vouch.toml"), toml).expect("write");
    let out = vouch(dir.path(), &["check", "--config", "vouch.toml"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("https://mfa.example.com/.well-known/openid-configuration"));
    assert!(stdout.contains(TENANT));
    assert!(
        stdout.contains("RP ID mfa.example.com, origins https://mfa.example.com"),
        "{stdout}"
    );
}

fn base32_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {c}"),
        };
        bits = bits << 5 | u64::from(v);
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

fn enrol(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "enroll",
        "totp",
        "--config",
        "vouch.toml",
        "--tenant",
        TENANT,
    ];
    args.extend_from_slice(&["--oid", USER_OID]);
    args.extend_from_slice(extra);
    vouch(dir, &args)
}

#[test]
fn enrolment_prints_a_scannable_uri_and_refuses_a_second_seed_without_replace() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("vouch.toml"), "").expect("write");
    let out = enrol(dir.path(), &["--algorithm", "sha256", "--digits", "8"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let uri = stdout
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .expect("otpauth URI");
    assert!(uri.contains("algorithm=SHA256&digits=8&period=30"), "{uri}");
    assert!(
        stdout.contains('█') || stdout.contains('▀'),
        "a QR code is drawn"
    );
    assert!(
        text(&out.stderr).contains("not in vouch.toml"),
        "warns the tenant is missing"
    );

    let again = enrol(dir.path(), &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("--replace"));
    let replaced = enrol(dir.path(), &["--replace", "--upn", "ada@contoso.com"]);
    assert!(replaced.status.success());
    assert!(
        text(&replaced.stdout).contains("otpauth://totp/vouch:ada%40contoso.com?"),
        "the app shows the UPN as the account: {}",
        text(&replaced.stdout)
    );

    let list = vouch(dir.path(), &["enroll", "list", "--config", "vouch.toml"]);
    let expected = format!("{TENANT} {USER_OID} ada@contoso.com totp");
    assert!(
        text(&list.stdout).contains(&expected),
        "{}",
        text(&list.stdout)
    );

    let bad_upn = enrol(dir.path(), &["--replace", "--upn", "ada at contoso"]);
    assert_eq!(bad_upn.status.code(), Some(64));
    assert!(text(&bad_upn.stderr).contains("not a user principal name"));

    for bad in [["--tenant", "contoso"], ["--oid", "alice"]] {
        let mut args = vec!["enroll", "totp", "--config", "vouch.toml"];
        args.extend_from_slice(&["--tenant", TENANT, "--oid", USER_OID]);
        let at = args.iter().position(|a| *a == bad[0]).expect("flag");
        args[at + 1] = bad[1];
        let out = vouch(dir.path(), &args);
        assert_eq!(out.status.code(), Some(64), "{bad:?}");
        assert!(text(&out.stderr).contains("GUID"));
    }
    let revoke = [
        "enroll",
        "revoke",
        "--config",
        "vouch.toml",
        "--tenant",
        TENANT,
        "--oid",
        USER_OID,
    ];
    assert!(vouch(dir.path(), &revoke).status.success());
    assert_eq!(vouch(dir.path(), &revoke).status.code(), Some(1));

    let trail = std::fs::read_to_string(dir.path().join("vouch-state/audit/audit-000001.jsonl"))
        .expect("the command line keeps the audit trail while the appliance is stopped");
    let enrolled = trail.matches(r#""action":"enrol""#).count();
    let revoked = trail.matches(r#""action":"revoke""#).count();
    assert_eq!(
        (enrolled, revoked),
        (2, 1),
        "only changes that happened:\n{trail}"
    );
    let verify = vouch(dir.path(), &["audit", "verify", "--config", "vouch.toml"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

/// A folder with a configuration trusting `entra` and the example user enrolled by the CLI;
/// gives the user's seed.
fn lab(dir: &Path, entra: &Authority) -> Vec<u8> {
    std::fs::write(dir.join("entra-ca.pem"), &entra.ca_pem).expect("ca");
    let toml = format!(
        "[server]\nissuer = \"{ISSUER}\"\n\n[[tenant]]\nid = \"{TENANT}\"\napp_id = \"{APP_ID}\"\n\
         client_id = \"{CLIENT_ID}\"\n\n[tenant.test_authority]\nurl = \"{}\"\n\
         ca_file = \"entra-ca.pem\"\n",
        entra.origin
    );
    std::fs::write(dir.join("vouch.toml"), toml).expect("config");
    let out = enrol(dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let uri = text(&out.stdout);
    let secret = uri
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("secret");
    base32_decode(secret)
}

/// Starts the appliance of a lab and waits until it holds Entra's keys.
async fn serve_lab(dir: &Path) -> (Running, Browser) {
    let mut running = Running::start(dir, &["--config", "vouch.toml", "--listen", "127.0.0.1:0"]);
    running.wait_for("test authority instead of Microsoft");
    running.wait_for("Entra signing keys refreshed");
    let pem = std::fs::read(dir.join("vouch-state/tls/cert.pem")).expect("cert");
    let browser = Browser::new(&format!("https://{}", running.addr), &pem).expect("browser");
    (running, browser)
}

/// Entra's request with a fresh hint, then `code` on the code page.
async fn sign_in(browser: &Browser, entra: &Authority, code: &str) -> entra_sim::Page {
    let fields = Stand::entra_form(&entra.default_hint());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = browser
        .post_form("/eam/authorize", &fields)
        .await
        .expect("authorize");
    let form = page.form().expect("code form");
    browser
        .submit(&form, &[("code", code), ("action", "verify")])
        .await
        .expect("otp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_enrolled_by_the_cli_signs_in_through_the_binary() {
    let entra = Authority::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = lab(dir.path(), &entra);
    let (running, browser) = serve_lab(dir.path()).await;

    let code = vouch::factor::otp::totp(&seed, Default::default(), entra_sim::unix_now());
    let done = sign_in(&browser, &entra, &code).await;
    let token = answer(&done).get("id_token").expect("token").to_owned();
    let rp = entra_sim::RelyingParty::discover(&browser, "/.well-known/openid-configuration")
        .await
        .expect("metadata");
    rp.validate(&token, &expected())
        .expect("Entra accepts the token");

    assert!(running.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_spent_before_a_kill_is_refused_after_the_restart() {
    let entra = Authority::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = lab(dir.path(), &entra);
    let (mut running, browser) = serve_lab(dir.path()).await;
    let code = vouch::factor::otp::totp(&seed, Default::default(), entra_sim::unix_now());
    let done = sign_in(&browser, &entra, &code).await;
    assert!(answer(&done).get("id_token").is_some(), "{}", done.body);

    running.child.kill().expect("SIGKILL");
    running.child.wait().expect("killed");
    drop(running);
    let (running, browser) = serve_lab(dir.path()).await;
    let again = sign_in(&browser, &entra, &code).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("already been used"), "{}", again.body);
    assert!(!again.body.contains("name=\"id_token\""));
    assert!(running.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_sign_ins_loses_no_audit_record_of_a_token_given() {
    let entra = Authority::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    lab(dir.path(), &entra);
    let store = vouch::store::CredentialStore::open(&dir.path().join("vouch-state")).unwrap();
    let oids: Vec<String> = (0..40)
        .map(|i| format!("5e1f0000-0000-4000-8000-{i:012x}"))
        .collect();
    let users: Vec<vouch::store::NewTotp<'_>> = oids
        .iter()
        .map(|oid| vouch::store::NewTotp {
            tenant: TENANT,
            oid,
            params: Default::default(),
            upn: None,
        })
        .collect();
    let seeds = store.enroll_totp_many(&users, false, 0).unwrap();
    drop(store);
    let (mut running, browser) = serve_lab(dir.path()).await;

    let now = entra_sim::unix_now();
    let given = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (oid, seed) in oids.iter().zip(&seeds) {
        let mut claims = entra.hint_claims(TENANT, oid, &format!("sub-{oid}"), APP_ID);
        claims["iat"] = now.into();
        let form = Stand::entra_form(&entra.hint(&claims));
        let code = vouch::factor::otp::totp(seed, Default::default(), now);
        let (browser, given, oid) = (browser.clone(), given.clone(), oid.clone());
        tasks.push(tokio::spawn(async move {
            let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let Ok(page) = browser.post_form("/eam/authorize", &fields).await else {
                return;
            };
            let Some(code_form) = page.form() else { return };
            let done = browser
                .submit(&code_form, &[("code", code.as_str()), ("action", "verify")])
                .await;
            let token = done
                .ok()
                .and_then(|d| d.form())
                .and_then(|f| f.get("id_token").map(str::to_owned));
            if token.is_some() {
                given.lock().unwrap().push(oid);
            }
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while given.lock().unwrap().len() < 5 {
        assert!(std::time::Instant::now() < deadline, "no sign-in finished");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    running.child.kill().expect("SIGKILL");
    running.child.wait().expect("killed");
    for task in tasks {
        let _ = task.await;
    }
    drop(running);

    let (running, _) = serve_lab(dir.path()).await;
    assert!(running.terminate().success());
    let verify = vouch(dir.path(), &["audit", "verify", "--config", "vouch.toml"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    let trail = std::fs::read_to_string(dir.path().join("vouch-state/audit/audit-000001.jsonl"))
        .expect("trail");
    let given = given.lock().unwrap().clone();
    assert!(given.len() >= 5 && given.len() <= oids.len());
    for oid in &given {
        let recorded = trail.lines().any(|line| {
            line.contains(r#""event":"sign_in""#)
                && line.contains(&format!(r#""oid":"{oid}""#))
                && line.contains(r#""outcome":"token""#)
        });
        assert!(recorded, "{oid} got a token but has no record:\n{trail}");
    }
}

#[test]
fn a_command_line_mistake_exits_64_and_help_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["no-such-command"][..],
        &["serve", "--no-such-flag"],
        &["enroll", "totp", "--digits", "9"],
        &["keys", "stage", "--label", "a", "--id", "01"],
    ] {
        let out = vouch(dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty(), "{args:?} says what is wrong");
    }
    for args in [&["--help"][..], &["--version"], &["keys", "--help"]] {
        let out = vouch(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!text(&out.stdout).is_empty());
    }
}

fn hang_up(running: &Running) {
    let pid = running.child.id().to_string();
    let sent = Command::new("kill").args(["-HUP", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_a_new_configuration_and_certificate_keeping_open_connections() {
    let entra = Authority::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    lab(dir.path(), &entra);
    let good = std::fs::read_to_string(dir.path().join("vouch.toml")).expect("config");
    let wrong_client = good.replace(CLIENT_ID, "6b3c0f7e-0000-4c2b-9f7a-2f4f8f4c9a10");
    std::fs::write(dir.path().join("vouch.toml"), &wrong_client).expect("config");
    let (mut running, browser) = serve_lab(dir.path()).await;
    let port: u16 = running.addr.rsplit(':').next().unwrap().parse().unwrap();
    let cert = dir.path().join("vouch-state/tls/cert.pem");
    let old_pem = std::fs::read(&cert).expect("cert");
    let mut held = raw::connect(port, &old_pem)
        .await
        .expect("a connection to hold");

    let fields = Stand::entra_form(&entra.default_hint());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = browser.post_form("/eam/authorize", &fields).await.unwrap();
    assert_refused(&refused, 400);

    for (broken, why) in [
        ("[server]\nissuer = 5\n", "server.issuer"),
        ("[server]\nstate_dir = \"elsewhere\"\n", "restart vouch"),
    ] {
        std::fs::write(dir.path().join("vouch.toml"), broken).expect("config");
        hang_up(&running);
        let line = running.wait_for(why);
        assert!(line.contains("reload refused"), "{line}");
    }

    std::fs::write(dir.path().join("vouch.toml"), &good).expect("config");
    std::fs::remove_file(&cert).expect("old certificate removed");
    std::fs::remove_file(cert.with_file_name("key.pem")).expect("old key removed");
    hang_up(&running);
    running.wait_for("configuration and TLS certificate reloaded");

    let fields = Stand::entra_form(&entra.default_hint());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let new_pem = std::fs::read(&cert).expect("new certificate");
    assert_ne!(new_pem, old_pem);
    let fresh = Browser::new(&format!("https://{}", running.addr), &new_pem).unwrap();
    let page = fresh.post_form("/eam/authorize", &fields).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.form().is_some_and(|f| f.get("txn").is_some()),
        "{}",
        page.body
    );

    use tokio::io::AsyncWriteExt as _;
    held.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = raw::read_response(&mut held, Duration::from_secs(5)).await;
    assert_eq!(answer.status(), Some(200), "{}", answer.text);
    assert!(running.terminate().success());
}
