//! The admin socket of a running `vouch serve`: its commands, its answers to hostile
//! messages, reloads, and who it lets in.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::process::Command;
use std::time::{Duration, Instant};

mod appliance_support;
mod pki_support;

use appliance_support::{Appliance, config_text, error_code};
use entra_sim::TENANT;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn status_keys_tenants_and_counters_answer_over_the_socket() {
    let vouch = Appliance::start().await;
    let mut conn = vouch.connect();
    let status = conn.ask(json!({"v": 1, "cmd": "status"}));
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        status["data"]["signer"]["backends"][0]["up"], true,
        "{status}"
    );
    assert_eq!(status["data"]["log_filter"], "error");
    assert!(status["data"]["audit"]["head_seq"].is_u64(), "{status}");

    let keys = conn.ask(json!({"v": 1, "cmd": "keys"}));
    assert_eq!(keys["data"]["signing_kid"], status["data"]["signer"]["kid"]);
    assert_eq!(keys["data"]["staged_kid"], Value::Null);
    assert_eq!(keys["data"]["ring"][0]["state"], "active", "{keys}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tenants = conn.ask(json!({"v": 1, "cmd": "tenants"}));
        let tenant = &tenants["data"]["tenants"][0];
        assert_eq!(tenant["id"], TENANT);
        if tenant["entra_keys"]["keys"].as_u64() >= Some(1) {
            assert!(tenant["entra_keys"]["age_secs"].is_u64(), "{tenants}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Entra's keys never came: {tenants}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let counters = conn.ask(json!({"v": 1, "cmd": "counters"}));
    assert_eq!(
        counters["data"]["per_second"].as_array().map(Vec::len),
        Some(120)
    );
    let recent = conn.ask(json!({"v": 1, "cmd": "recent", "limit": 5}));
    assert_eq!(recent["data"]["recent"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_wrong_versions_are_answered_and_the_connection_goes_on() {
    let vouch = Appliance::start().await;
    let mut conn = vouch.connect();
    assert_eq!(error_code(&conn.send_raw(b"garbage\n")), "malformed");
    assert_eq!(error_code(&conn.send_raw(b"\xff\xfe\x00\n")), "malformed");
    assert_eq!(error_code(&conn.send_raw(b"[]\n")), "malformed");
    assert_eq!(error_code(&conn.ask(json!({"cmd": "status"}))), "version");
    assert_eq!(
        error_code(&conn.ask(json!({"v": 9, "cmd": "status"}))),
        "version"
    );
    assert_eq!(
        error_code(&conn.ask(json!({"v": 1, "cmd": "rm"}))),
        "unknown_command"
    );
    let bad_user = json!({"v": 1, "cmd": "revoke", "tid": "x", "oid": "y"});
    assert_eq!(error_code(&conn.ask(bad_user)), "invalid");
    assert_eq!(conn.ask(json!({"v": 1, "cmd": "status"}))["ok"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_message_is_refused_and_the_connection_closed() {
    let vouch = Appliance::start().await;
    let mut conn = vouch.connect();
    let huge = vec![b'a'; 200 * 1024];
    let _ = conn.stream.write_all(&huge);
    assert_eq!(error_code(&conn.answer()), "too_large");
    assert!(conn.is_closed());
    assert_eq!(vouch.ask(json!({"v": 1, "cmd": "status"}))["ok"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_message_is_named_and_a_stalled_client_holds_up_no_one() {
    let vouch = Appliance::start().await;
    let mut stalled = vouch.connect();
    stalled
        .stream
        .write_all(b"{\"v\":1,\"cmd\":")
        .expect("send");

    let started = Instant::now();
    assert_eq!(vouch.ask(json!({"v": 1, "cmd": "status"}))["ok"], true);
    assert!(started.elapsed() < Duration::from_secs(5));

    stalled
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    let answer = stalled.answer();
    assert_eq!(error_code(&answer), "malformed");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cut short")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_config_is_not_applied_on_reload_and_the_answer_says_why() {
    let vouch = Appliance::start().await;
    std::fs::write(&vouch.config, "[server]\nlisten = 7\n").expect("break config");
    let answer = vouch.ask(json!({"v": 1, "cmd": "reload"}));
    assert_eq!(error_code(&answer), "failed");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("running configuration stays"), "{message}");
    assert!(message.contains("server.listen"), "{message}");
    let status = vouch.ask(json!({"v": 1, "cmd": "status"}));
    assert_eq!(status["data"]["tenants"], 1, "the running config stays");

    let good = config_text(&vouch.entra, vouch.dir.path(), "[otp]\nmax_failures = 3");
    std::fs::write(&vouch.config, good).expect("fix config");
    let answer = vouch.ask(json!({"v": 1, "cmd": "reload"}));
    assert_eq!(answer["ok"], true, "{answer}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = vouch.audit_text();
    assert!(
        audit.contains(r#""event":"reload","applied":false"#),
        "{audit}"
    );
    assert!(
        audit.contains(r#""event":"reload","applied":true"#),
        "{audit}"
    );
    assert!(
        audit.contains(r#""event":"admin","uid":0,"command":"reload""#),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_filter_changes_and_a_bad_one_is_refused() {
    let vouch = Appliance::start().await;
    let set = |filter: &str| vouch.ask(json!({"v": 1, "cmd": "log_level", "filter": filter}));
    assert_eq!(set("vouch=debug,info")["ok"], true);
    assert_eq!(error_code(&set("vouch=loudest")), "invalid");
    let status = vouch.ask(json!({"v": 1, "cmd": "status"}));
    assert_eq!(status["data"]["log_filter"], "vouch=debug,info");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_enrols_finds_and_revokes_a_user_and_each_change_is_audited() {
    let vouch = Appliance::start().await;
    let oid = "6f1c3a2b-0d4e-4f5a-8b7c-9d0e1f2a3b4c";
    let enrol = json!({"v": 1, "cmd": "enrol_totp", "tid": TENANT, "oid": oid});
    let enrolled = vouch.ask(enrol.clone());
    assert_eq!(enrolled["ok"], true, "{enrolled}");
    let uri = enrolled["data"]["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains("secret="));
    assert_eq!(error_code(&vouch.ask(enrol)), "failed", "no silent replace");

    let found = vouch.ask(json!({"v": 1, "cmd": "enrolments", "find": "6f1c3a2b"}));
    assert_eq!(found["data"]["enrolments"][0]["oid"], oid);
    assert_eq!(found["data"]["enrolments"][0]["methods"], json!(["totp"]));

    let with_upn = json!({"v": 1, "cmd": "enrol_totp", "tid": TENANT, "oid": oid,
        "upn": "Ada.Lovelace@contoso.com", "replace": true});
    assert_eq!(vouch.ask(with_upn)["ok"], true);
    let found = vouch.ask(json!({"v": 1, "cmd": "enrolments", "find": "ada.lovelace@"}));
    assert_eq!(
        found["data"]["enrolments"][0]["oid"], oid,
        "found by UPN: {found}"
    );
    assert_eq!(
        found["data"]["enrolments"][0]["upn"],
        "Ada.Lovelace@contoso.com"
    );
    let hostile = json!({"v": 1, "cmd": "enrol_totp", "tid": TENANT, "oid": oid,
        "upn": "x\u{0}@y", "replace": true});
    assert_eq!(error_code(&vouch.ask(hostile)), "invalid");

    let revoke = json!({"v": 1, "cmd": "revoke", "tid": TENANT, "oid": oid});
    assert_eq!(vouch.ask(revoke.clone())["ok"], true);
    assert_eq!(error_code(&vouch.ask(revoke)), "failed");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = vouch.audit_text();
    assert!(audit.contains(r#""event":"enrolment""#) && audit.contains(r#""action":"revoke""#));
    assert!(!audit.contains("secret="), "the seed stays off the trail");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_staged_over_the_socket_is_published_at_once_and_promotion_makes_it_sign() {
    let vouch = Appliance::start().await;
    let before = vouch.ask(json!({"v": 1, "cmd": "keys"}));
    let first = before["data"]["signing_kid"].as_str().unwrap().to_owned();

    let staged = vouch.ask(json!({"v": 1, "cmd": "stage_key"}));
    assert_eq!(staged["ok"], true, "{staged}");
    let next = staged["data"]["staged_kid"].as_str().unwrap().to_owned();
    assert_ne!(next, first);
    let keys = vouch.ask(json!({"v": 1, "cmd": "keys"}));
    assert_eq!(
        keys["data"]["signing_kid"],
        first.as_str(),
        "still signs with the old key"
    );
    assert_eq!(keys["data"]["staged_kid"], next.as_str(), "{keys}");
    let states: Vec<(&str, &str)> = keys["data"]["ring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&(next.as_str(), "next")), "{keys}");
    assert_eq!(
        error_code(&vouch.ask(json!({"v": 1, "cmd": "stage_key"}))),
        "invalid",
        "a second staged key is refused"
    );

    let promoted = vouch.ask(json!({"v": 1, "cmd": "promote_key"}));
    assert_eq!(promoted["ok"], true, "{promoted}");
    assert_eq!(promoted["data"]["signing_kid"], next.as_str());
    assert!(
        promoted["data"]["warning"].is_string(),
        "promoting within the overlap warns: {promoted}"
    );
    let keys = vouch.ask(json!({"v": 1, "cmd": "keys"}));
    assert_eq!(keys["data"]["signing_kid"], next.as_str(), "signs at once");
    let retiring = keys["data"]["ring"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == first.as_str())
        .map(|k| k["state"].clone());
    assert_eq!(retiring, Some(json!("retiring")), "{keys}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = vouch.audit_text();
    assert!(audit.contains(r#""action":"stage""#) && audit.contains(r#""action":"promote""#));
}

fn vouch_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .output()
        .expect("vouch runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn command_line_changes_go_through_the_running_appliance_and_are_audited() {
    let vouch = Appliance::start().await;
    let config = vouch.config.to_str().unwrap().to_owned();
    let oid = "0d9c7f3e-2b1a-4c5d-8e6f-7a8b9c0d1e2f";
    let enrol = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            vouch_cli(&[
                "enroll",
                "totp",
                "-c",
                &config,
                "--tenant",
                TENANT,
                "--oid",
                oid,
                "--upn",
                "grace@contoso.com",
            ])
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&enrol.stdout);
    assert!(
        enrol.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&enrol.stderr)
    );
    assert!(
        stdout.contains("otpauth://totp/vouch:grace%40contoso.com?"),
        "{stdout}"
    );
    let found = vouch.ask(json!({"v": 1, "cmd": "enrolments", "find": "grace@"}));
    assert_eq!(found["data"]["enrolments"][0]["oid"], oid, "{found}");

    let stage = tokio::task::spawn_blocking({
        let config = config.clone();
        move || vouch_cli(&["keys", "stage", "-c", &config])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&stage.stdout).into_owned();
    assert!(
        stage.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&stage.stderr)
    );
    let keys = vouch.ask(json!({"v": 1, "cmd": "keys"}));
    let staged = keys["data"]["staged_kid"]
        .as_str()
        .expect("a staged key")
        .to_owned();
    assert!(stdout.contains(&staged), "{stdout}");

    let revoke = tokio::task::spawn_blocking(move || {
        vouch_cli(&[
            "enroll", "revoke", "-c", &config, "--tenant", TENANT, "--oid", oid,
        ])
    })
    .await
    .unwrap();
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = vouch.audit_text();
    let own = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt as _;
        m.uid()
    });
    let uid = format!(r#""uid":{}"#, own.unwrap());
    for needle in [
        r#""action":"enrol""#,
        r#""action":"stage""#,
        r#""action":"revoke""#,
        uid.as_str(),
    ] {
        assert!(audit.contains(needle), "{needle} missing from\n{audit}");
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics");
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_stores_show_each_crl_fresh_or_stale_over_the_socket_and_in_metrics() {
    let port = free_port();
    let closed = free_port();
    let vouch = Appliance::start_with(|dir| {
        let root = pki_support::Ca::root("Contoso Root");
        let now = vouch::pki::Timestamp::now();
        let fresh = root.crl(&[7, 9], now.plus(-3600), now.plus(86_400));
        let stale = root.crl(&[], now.plus(-10 * 86_400), now.plus(-86_400));
        std::fs::write(dir.join("root.pem"), pem(&root.cert)).unwrap();
        std::fs::write(dir.join("fresh.crl"), fresh).unwrap();
        std::fs::write(dir.join("stale.crl"), stale).unwrap();
        format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[[trust_store]]\nname = \"cards\"\n\
             shared = true\nbinding = \"upn\"\namr = \"sc\"\nroots = [\"root.pem\"]\n\
             crl_files = [\"fresh.crl\", \"stale.crl\"]\n\
             crl_urls = [\"http://127.0.0.1:{closed}/issuing.crl\"]\n"
        )
    })
    .await;

    let answer = vouch.ask(json!({"v": 1, "cmd": "trust_stores"}));
    assert_eq!(answer["ok"], true, "{answer}");
    let store = &answer["data"]["trust_stores"][0];
    assert_eq!(store["name"], "cards");
    assert_eq!(store["tenants"], "shared");
    let crls = store["crls"].as_array().unwrap();
    let state = |file: &str| {
        let source = crls
            .iter()
            .find(|c| c["source"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("{file} missing: {answer}"));
        (source["state"].clone(), source["entries"].clone())
    };
    assert_eq!(state("fresh.crl"), (json!("fresh"), json!(2)));
    assert_eq!(state("stale.crl"), (json!("stale"), json!(0)));
    assert_eq!(state("issuing.crl"), (json!("not_loaded"), Value::Null));

    let status = vouch.ask(json!({"v": 1, "cmd": "status"}));
    let revocation = &status["data"]["revocation"];
    assert_eq!(revocation["crl_sources"], 3, "{status}");
    assert_eq!(revocation["crl_stale"], 1, "{status}");
    assert_eq!(revocation["crl_not_loaded"], 1, "{status}");

    let exposition = tokio::task::spawn_blocking(move || scrape(port))
        .await
        .unwrap();
    let fresh_line = exposition
        .lines()
        .find(|l| l.starts_with("vouch_crl_fresh{") && l.contains("fresh.crl"))
        .unwrap_or_else(|| panic!("no fresh.crl gauge in\n{exposition}"));
    assert!(fresh_line.ends_with(" 1"), "{fresh_line}");
    let stale_line = exposition
        .lines()
        .find(|l| l.starts_with("vouch_crl_fresh{") && l.contains("stale.crl"))
        .unwrap_or_else(|| panic!("no stale.crl gauge in\n{exposition}"));
    assert!(stale_line.ends_with(" 0"), "{stale_line}");
    assert!(
        exposition.contains("vouch_crl_age_seconds{"),
        "{exposition}"
    );
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn another_user_is_refused_with_a_clear_message() {
    if !std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
    {
        eprintln!("needs root to run a client as another user; the check's logic is unit-tested");
        return;
    }
    let vouch = Appliance::start().await;
    // Open the file and its folders to everyone, so that only the credential check stands.
    use std::os::unix::fs::PermissionsExt as _;
    for path in [vouch.dir.path().to_path_buf(), vouch.dir.path().join("run")] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&vouch.socket, std::fs::Permissions::from_mode(0o666)).unwrap();

    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_vouch"))
        .args(["admin", "--socket"])
        .arg(&vouch.socket)
        .arg(r#"{"v":1,"cmd":"status"}"#)
        .output()
        .expect("setpriv runs");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{answer}");
    let answer: Value = serde_json::from_str(answer.trim()).expect("one refusal line");
    assert_eq!(error_code(&answer), "forbidden");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("uid 65534") && message.contains("group"),
        "{message}"
    );
}
