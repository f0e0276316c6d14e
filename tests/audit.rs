//! The audit trail as an operator meets it: sign-ins recorded before they are answered, and
//! `vouch audit verify` naming the first record that was altered or removed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use vouch::factor::otp::TotpParams;

fn verify(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["audit", "verify", "--dir"])
        .arg(dir)
        .output()
        .expect("vouch runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

fn trail(dir: &Path) -> std::path::PathBuf {
    dir.join("audit-000001.jsonl")
}

async fn signed_in_stand(audit: &Path, extra: &str) -> (Stand, entra_sim::Page) {
    let server_extra = format!("[audit]\ndir = \"{}\"\n{extra}", audit.display());
    let stand = Stand::start_with(&server_extra, "").await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let page = stand.authorize_default().await;
    let code = stand.code(&seed, params);
    let done = stand.submit_code(&page, &code).await;
    (stand, done)
}

#[tokio::test]
async fn a_sign_in_is_on_the_trail_when_its_token_is_posted_and_holds_no_secret() {
    let audit = tempfile::tempdir().expect("tempdir");
    let (stand, done) = signed_in_stand(audit.path(), "").await;
    let token = answer(&done).get("id_token").expect("a token").to_owned();

    let text = std::fs::read_to_string(trail(audit.path())).expect("the trail");
    let record: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .find(|r: &serde_json::Value| r["event"] == "sign_in")
        .expect("a sign-in record");
    assert_eq!(record["outcome"], "token");
    assert_eq!(record["tid"], TENANT);
    assert_eq!(record["oid"], USER_OID);
    assert_eq!(record["amr"], "otp");
    assert_eq!(record["source"], "127.0.0.1");
    assert!(!text.contains(&token[..40]) && !text.contains(USER_SUB));
    assert!(!text.contains("eyJ"), "no token or hint on the trail");
    stand.shutdown().await;

    let (status, out) = verify(audit.path());
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("chain whole"), "{out}");
}

#[tokio::test]
async fn verify_names_an_altered_and_then_a_removed_record() {
    let audit = tempfile::tempdir().expect("tempdir");
    let (stand, _) = signed_in_stand(audit.path(), "").await;
    for _ in 0..2 {
        let next = stand.authorize_default().await;
        let cancel = next.form().expect("form");
        let ended = stand
            .browser
            .submit(&cancel, &[("code", ""), ("action", "cancel")])
            .await
            .expect("answered");
        assert_posted_error(&ended, "access_denied");
    }
    stand.shutdown().await;

    let path = trail(audit.path());
    let original: Vec<String> = std::fs::read_to_string(&path)
        .expect("trail")
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(original.len() >= 3, "{original:?}");

    let mut altered = original.clone();
    altered[1] = altered[1].replacen("\"time\":", "\"time\":1", 1);
    std::fs::write(&path, altered.join("\n") + "\n").expect("alter");
    let (status, out) = verify(audit.path());
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("audit-000001.jsonl:2: altered"), "{out}");

    let mut removed = original.clone();
    removed.remove(1);
    std::fs::write(&path, removed.join("\n") + "\n").expect("remove");
    let (status, out) = verify(audit.path());
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("audit-000001.jsonl:2: removed or out of order"),
        "{out}"
    );
}

#[tokio::test]
async fn a_sign_in_whose_record_cannot_be_written_gets_no_token() {
    let audit = tempfile::tempdir().expect("tempdir");
    {
        let log = vouch::audit::AuditLog::open(audit.path(), 1 << 20).expect("open");
        for _ in 0..40 {
            log.record(vouch::audit::Event::Recovered { torn_bytes: 0 })
                .await
                .expect("filler");
        }
    }
    // The next file cannot be created, so the first record past 4096 bytes fails.
    std::fs::create_dir(audit.path().join("audit-000002.jsonl")).expect("block");
    let (stand, done) = signed_in_stand(audit.path(), "max_file_bytes = 4096").await;
    assert_posted_error(&done, "temporarily_unavailable");
    let counted = stand.app.oversight.feed.counters();
    assert_eq!(counted.by_outcome.get("token"), None, "{counted:?}");
    assert_eq!(counted.errors_by_reason["audit trail unwritable"], 1);
    stand.shutdown().await;
}

#[test]
fn verify_of_a_missing_folder_fails_with_the_reason() {
    let (status, out) = verify(Path::new("/nonexistent/vouch-audit"));
    assert_eq!(status, 1);
    assert!(out.contains("cannot read the audit trail"), "{out}");
}
