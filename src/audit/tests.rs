use std::fs;

use super::verify::{Fault, VerifyError, verify};
use super::*;

fn sign_in(outcome: &str) -> Event {
    Event::SignIn(SignIn {
        tid: "t".into(),
        oid: "o".into(),
        method: Some("totp".into()),
        amr: Some("otp".into()),
        outcome: outcome.into(),
        reason: "code accepted".into(),
        source: "127.0.0.1".into(),
        client_request_id: None,
    })
}

async fn write(dir: &Path, n: usize, max_file_bytes: u64) {
    let log = AuditLog::open(dir, max_file_bytes).expect("open");
    for _ in 0..n {
        log.record(sign_in("token")).await.expect("recorded");
    }
}

fn fault_of(dir: &Path) -> (String, usize, Fault) {
    match verify(dir) {
        Err(VerifyError::Bad(bad)) => {
            let name = bad.file.file_name().expect("name").to_string_lossy().into();
            (name, bad.line, bad.fault)
        }
        other => panic!("expected a bad record, got {other:?}"),
    }
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").expect("write");
}

#[tokio::test]
async fn an_untouched_trail_verifies_and_its_head_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 3, DEFAULT_MAX_FILE_BYTES).await;
    write(dir.path(), 2, DEFAULT_MAX_FILE_BYTES).await;
    let verified = verify(dir.path()).expect("verifies");
    assert_eq!(verified.records, 5);
    assert_eq!(verified.head.seq, Some(4));
    let reopened = AuditLog::open(dir.path(), DEFAULT_MAX_FILE_BYTES).expect("open");
    assert_eq!(reopened.head(), verified.head);
}

#[tokio::test]
async fn concurrent_records_all_land_in_one_unbroken_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(AuditLog::open(dir.path(), DEFAULT_MAX_FILE_BYTES).expect("open"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let log = log.clone();
        tasks.spawn(async move { log.record(sign_in("token")).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("joined").expect("recorded");
    }
    assert_eq!(verify(dir.path()).expect("verifies").records, 50);
}

#[tokio::test]
async fn rotation_starts_new_files_and_the_chain_runs_across_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 40, 4096).await;
    let verified = verify(dir.path()).expect("verifies");
    assert!(verified.files >= 2, "{verified:?}");
    assert_eq!(verified.records, 40);
    let files = chain::files(dir.path()).expect("files");
    let first_of_second = &lines(&files[1])[0];
    let last_of_first = lines(&files[0]).pop().expect("a record");
    let linked: chain::Linked = serde_json::from_str(first_of_second).expect("record");
    assert_eq!(linked.prev, chain::sha256_hex(last_of_first.as_bytes()));
}

#[tokio::test]
async fn an_altered_record_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 5, DEFAULT_MAX_FILE_BYTES).await;
    let path = chain::files(dir.path()).expect("files").remove(0);
    let mut text = lines(&path);
    text[2] = text[2].replace("\"token\"", "\"access_denied\"");
    rewrite(&path, &text);
    let (file, line, fault) = fault_of(dir.path());
    assert_eq!((file.as_str(), line), ("audit-000001.jsonl", 3));
    assert!(matches!(fault, Fault::Altered(_)), "{fault:?}");
}

#[tokio::test]
async fn a_removed_record_is_named_at_the_record_after_the_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 5, DEFAULT_MAX_FILE_BYTES).await;
    let path = chain::files(dir.path()).expect("files").remove(0);
    let mut text = lines(&path);
    text.remove(1);
    rewrite(&path, &text);
    let (_, line, fault) = fault_of(dir.path());
    assert_eq!(line, 2);
    assert_eq!(
        fault,
        Fault::Removed {
            expected_seq: 1,
            found_seq: 2
        }
    );
}

#[tokio::test]
async fn swapped_records_are_out_of_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 4, DEFAULT_MAX_FILE_BYTES).await;
    let path = chain::files(dir.path()).expect("files").remove(0);
    let mut text = lines(&path);
    text.swap(1, 2);
    rewrite(&path, &text);
    assert!(matches!(fault_of(dir.path()).2, Fault::Removed { .. }));
}

#[tokio::test]
async fn a_cut_short_file_is_truncated_and_a_removed_first_file_is_missing_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 40, 4096).await;
    let files = chain::files(dir.path()).expect("files");
    let text = fs::read(&files[0]).expect("read");
    fs::write(&files[0], &text[..text.len() - 5]).expect("cut");
    let (file, _, fault) = fault_of(dir.path());
    assert_eq!(
        (file.as_str(), fault),
        ("audit-000001.jsonl", Fault::Truncated)
    );

    fs::remove_file(&files[0]).expect("remove");
    assert!(matches!(fault_of(dir.path()).2, Fault::MissingStart { .. }));
}

#[tokio::test]
async fn a_torn_last_line_is_cut_off_at_start_and_the_cut_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 3, DEFAULT_MAX_FILE_BYTES).await;
    let path = chain::files(dir.path()).expect("files").remove(0);
    let mut text = fs::read(&path).expect("read");
    text.extend_from_slice(b"{\"seq\":3,\"ti");
    fs::write(&path, text).expect("tear");
    assert_eq!(fault_of(dir.path()).2, Fault::Truncated);

    let log = AuditLog::open(dir.path(), DEFAULT_MAX_FILE_BYTES).expect("reopen");
    log.record(sign_in("access_denied"))
        .await
        .expect("recorded");
    let verified = verify(dir.path()).expect("verifies after recovery");
    assert_eq!(verified.records, 5);
    let all = lines(&path);
    assert!(all[3].contains("\"event\":\"recovered\"") && all[3].contains("\"torn_bytes\":12"));
}

#[tokio::test]
async fn a_record_carries_who_and_what_and_its_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 1, DEFAULT_MAX_FILE_BYTES).await;
    let path = chain::files(dir.path()).expect("files").remove(0);
    let record: serde_json::Value =
        serde_json::from_str(&lines(&path)[0]).expect("one JSON record");
    assert_eq!(record["seq"], 0);
    assert_eq!(record["prev"], chain::GENESIS);
    assert_eq!(record["event"], "sign_in");
    for field in [
        "tid", "oid", "method", "amr", "outcome", "reason", "source", "time",
    ] {
        assert!(!record[field].is_null(), "{field} missing");
    }
}

#[test]
fn a_second_writer_of_one_trail_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = AuditLog::open(dir.path(), DEFAULT_MAX_FILE_BYTES).expect("open");
    let Err(e) = AuditLog::open(dir.path(), DEFAULT_MAX_FILE_BYTES) else {
        panic!("two writers on one trail");
    };
    assert!(matches!(e, AuditError::InUse { .. }), "{e}");
    assert!(e.to_string().contains("running appliance"), "{e}");
    drop(first);
    let second = AuditLog::open(dir.path(), DEFAULT_MAX_FILE_BYTES).expect("reopen");
    let event = Event::Key {
        action: "stage".into(),
        kid: "k".into(),
        uid: 0,
    };
    second.record_blocking(event).expect("recorded");
    let files = chain::files(dir.path()).expect("files");
    assert_eq!(files.len(), 1, "the lock file is not a trail file");
}

#[test]
fn an_unreadable_last_record_stops_the_start_with_a_pointer_to_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("audit-000001.jsonl"), "not json\n").expect("write");
    let Err(e) = AuditLog::open(dir.path(), DEFAULT_MAX_FILE_BYTES) else {
        panic!("opened a trail whose head is unreadable");
    };
    assert!(e.to_string().contains("vouch audit verify"), "{e}");
}
