//! Security keys from the operator's command line: enrolment links, listing and revoking,
//! made locally when no appliance runs and through the admin socket when one does.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod appliance_support;
mod common;

use std::path::Path;

use appliance_support::{Appliance, error_code};
use common::{TENANT, USER_OID, run_vouch, text};
use serde_json::json;
use vouch::eam::links::{EnrolLinks, LinkError, token_hash};
use vouch::store::{CredentialStore, FidoCredential};

fn now() -> i64 {
    vouch::app::Clock::default().now()
}

/// The token at the end of the link a command printed.
fn token_in(stdout: &str) -> String {
    let url = stdout
        .split_whitespace()
        .find(|w| w.contains("/eam/enrol?t="))
        .unwrap_or_else(|| panic!("no link in {stdout}"));
    url.split("?t=").nth(1).expect("token").to_owned()
}

fn credential(id: &str) -> FidoCredential {
    FidoCredential {
        id: id.into(),
        public_key: "pQECAyYgASFYIA".into(),
        sign_count: 3,
        backup_eligible: false,
        aaguid: "00000000-0000-0000-0000-000000000000".into(),
        created: 0,
        name: "Blue key".into(),
    }
}

fn link(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["enroll", "fido-link", "--tenant", TENANT, "--oid", USER_OID];
    args.extend_from_slice(extra);
    run_vouch(dir, &args)
}

#[test]
fn an_operator_issues_a_link_then_lists_and_revokes_keys_without_an_appliance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = link(dir.path(), &["--upn", "ada@contoso.com", "--ttl", "10m"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("https://localhost:8443/eam/enrol?t="),
        "{stdout}"
    );

    let state = dir.path().join("vouch-state");
    let links = EnrolLinks::new(&state);
    let found = links
        .find(&token_hash(&token_in(&stdout)), now())
        .expect("link");
    assert_eq!(found.upn.as_deref(), Some("ada@contoso.com"));
    assert!((now() + 590..=now() + 600).contains(&found.expires));
    let audit = std::fs::read_to_string(state.join("audit/audit-000001.jsonl")).expect("trail");
    assert!(audit.contains(r#""action":"link""#), "{audit}");

    let store = CredentialStore::open(&state).expect("store");
    store
        .add_fido(TENANT, USER_OID, None, credential("a1"))
        .expect("add");
    store
        .add_fido(TENANT, USER_OID, None, credential("b2"))
        .expect("add");
    let counters = vouch::store::FidoCounters::open(&state).expect("counters");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(counters.advance("b2", 3, 9))
        .expect("a sign-in moved b2's counter");
    let user = ["--tenant", TENANT, "--oid", USER_OID];
    let list = run_vouch(dir.path(), &[&["fido", "list"][..], &user].concat());
    let listed = text(&list.stdout);
    assert!(
        listed.contains("a1 \"Blue key\" aaguid=00000000-0000-0000-0000-000000000000")
            && listed.contains("counter=3\n"),
        "{listed}"
    );
    assert!(listed.contains("counter=9"), "{listed}");

    let revoke = run_vouch(
        dir.path(),
        &[&["fido", "revoke", "--id", "a1"][..], &user].concat(),
    );
    assert!(revoke.status.success(), "{}", text(&revoke.stderr));
    let reread = || {
        CredentialStore::open(&state)
            .expect("store")
            .fido(TENANT, USER_OID)
    };
    assert_eq!(reread(), vec![credential("b2")]);
    let again = run_vouch(
        dir.path(),
        &[&["fido", "revoke", "--id", "a1"][..], &user].concat(),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("has no security key a1"),
        "{}",
        text(&again.stderr)
    );
    let all = run_vouch(
        dir.path(),
        &[&["fido", "revoke", "--all"][..], &user].concat(),
    );
    assert!(all.status.success(), "{}", text(&all.stderr));
    assert!(reread().is_empty());
}

#[test]
fn bad_lifetimes_users_and_upns_exit_64_and_issue_no_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    for extra in [
        &["--ttl", "0m"][..],
        &["--ttl", "100h"],
        &["--ttl", "soon"],
        &["--upn", "not a upn"],
    ] {
        let out = link(dir.path(), extra);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    let bad_user = run_vouch(
        dir.path(),
        &[
            "enroll",
            "fido-link",
            "--tenant",
            "contoso",
            "--oid",
            USER_OID,
        ],
    );
    assert_eq!(bad_user.status.code(), Some(64));
    assert!(text(&bad_user.stderr).contains("not a directory ID"));
    let neither = run_vouch(
        dir.path(),
        &["fido", "revoke", "--tenant", TENANT, "--oid", USER_OID],
    );
    assert_eq!(neither.status.code(), Some(64), "{}", text(&neither.stderr));
    assert!(!dir.path().join("vouch-state/enrol-links.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_appliance_running_links_and_revocations_go_through_its_socket() {
    let vouch = Appliance::start().await;
    let config = vouch.config.to_str().unwrap().to_owned();
    let dir = vouch.dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let args = [
            "enroll",
            "fido-link",
            "-c",
            &config,
            "--tenant",
            TENANT,
            "--oid",
            USER_OID,
        ];
        run_vouch(&dir, &args)
    })
    .await
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let state = vouch.dir.path().join("state");
    let hash = token_hash(&token_in(&stdout));
    assert!(EnrolLinks::new(&state).find(&hash, now()).is_ok());

    let socket_link = json!({"v": 1, "cmd": "fido_link", "tid": TENANT, "oid": USER_OID,
        "ttl_secs": 120});
    let answered = vouch.ask(socket_link);
    let url = answered["data"]["url"].as_str().expect("url");
    let replaced = EnrolLinks::new(&state).find(&hash, now());
    assert_eq!(
        replaced,
        Err(LinkError::Unknown),
        "a new link replaces the old one"
    );
    assert!(
        EnrolLinks::new(&state)
            .find(&token_hash(&token_in(url)), now())
            .is_ok()
    );
    for hostile in [
        json!({"v": 1, "cmd": "fido_link", "tid": TENANT, "oid": USER_OID, "ttl_secs": 5}),
        json!({"v": 1, "cmd": "fido_link", "tid": "x", "oid": USER_OID}),
        json!({"v": 1, "cmd": "fido_link", "tid": TENANT, "oid": USER_OID, "upn": "a\u{0}@b"}),
    ] {
        assert_eq!(
            error_code(&vouch.ask(hostile.clone())),
            "invalid",
            "{hostile}"
        );
    }

    CredentialStore::open(&state)
        .expect("store")
        .add_fido(TENANT, USER_OID, None, credential("a1"))
        .expect("add");
    // The appliance rereads a store another process changed at most once a second.
    let ask_keys = json!({"v": 1, "cmd": "fido_keys", "tid": TENANT, "oid": USER_OID});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut keys = vouch.ask(ask_keys.clone());
    while keys["data"]["keys"][0]["id"] != "a1" && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        keys = vouch.ask(ask_keys.clone());
    }
    assert_eq!(keys["data"]["keys"][0]["id"], "a1", "{keys}");
    let revoke = json!({"v": 1, "cmd": "revoke", "tid": TENANT, "oid": USER_OID,
        "method": "fido", "credential": "a1"});
    assert_eq!(vouch.ask(revoke.clone())["ok"], true);
    assert_eq!(error_code(&vouch.ask(revoke)), "failed");
}
