//! Token signing by a PIV card through pcscd: the emulated card (`vouch-piv-sim`) plugs into
//! vsmartcard's vpcd reader, and the appliance signs whole sign-ins with it, reports it in
//! `vouch hsm`, and rotates to a key in another slot.
//!
//! Needs pcscd with vsmartcard-vpcd (`scripts/install-packages`, `scripts/start-services`).
//! One card fits the reader, so the tests take turns.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::*;
use vouch::factor::otp::TotpParams;
use vouch::signer::admin::{self, StageArgs};
use vouch_piv_sim::{Provisioned, SimCard, VPCD_PORT};

const READER: &str = "Virtual PCD 00 00";
const PIN: &str = "975311";

static READER_TURN: Mutex<()> = Mutex::new(());

/// The reader's turn, or `None` when pcscd is not running here (a failure under CI).
fn turn() -> Option<MutexGuard<'static, ()>> {
    if !Path::new("/run/pcscd/pcscd.comm").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pcscd is not running; scripts/start-services starts it"
        );
        eprintln!("skipped: pcscd is not running; run scripts/start-services");
        return None;
    }
    Some(READER_TURN.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A provisioned card in the reader, once pcscd shows it, and a PIN file for it.
struct Card {
    /// The emulated card: it stays in the reader until the test ends.
    card: SimCard,
    provisioned: Provisioned,
    dir: tempfile::TempDir,
    pin_file: PathBuf,
}

fn inserted_card() -> Card {
    inserted_card_with(|_| ())
}

/// A provisioned card that `prepare` changes before it goes into the reader: once there,
/// pcscd talks to it too, and would break up a multi-command change.
fn inserted_card_with(prepare: impl FnOnce(&SimCard)) -> Card {
    let card = SimCard::start();
    let provisioned = card.provision(PIN).unwrap();
    prepare(&card);
    card.insert(VPCD_PORT).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("piv.pin");
    std::fs::write(&pin_file, PIN).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let config = vouch_hsm::piv::PivConfig {
        reader: Some(READER.into()),
        slot: vouch_hsm::piv::Slot::default(),
        pin_file: pin_file.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = vouch_hsm::piv::status(&config).unwrap();
        let present = status
            .readers
            .iter()
            .any(|r| r.name == READER && matches!(r.card, Some(Ok(_))));
        if present {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pcscd never saw the card:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Card {
        card,
        provisioned,
        dir,
        pin_file,
    }
}

fn piv_signer(pin_file: &Path) -> String {
    format!(
        r#"
        [signer]
        [[signer.backend]]
        kind = "piv"
        reader = "{READER}"
        pin_file = "{}"
        "#,
        pin_file.display()
    )
}

async fn sign_in(stand: &Stand, seed: &[u8]) -> Option<String> {
    let page = stand.authorize(&Stand::entra_form(&stand.hint_now())).await;
    let code = stand.code(seed, TotpParams::default());
    let done = stand.submit_code(&page, &code).await;
    answer(&done).get("id_token").map(str::to_owned)
}

/// Runs an async test body on its own runtime while the test holds the reader.
fn run<F: std::future::Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(body);
}

/// Runs `body` on the reader's turn with a card that `prepare` changed before it went in;
/// `prepare`'s result goes to `body`. Nothing runs when pcscd is not here (outside CI).
fn on_card<T, F>(prepare: impl FnOnce(&SimCard) -> T, body: impl FnOnce(Card, T) -> F)
where
    F: std::future::Future<Output = ()>,
{
    let Some(_turn) = turn() else { return };
    let mut prepared = None;
    let card = inserted_card_with(|card| prepared = Some(prepare(card)));
    run(body(card, prepared.expect("prepared")));
}

/// The appliance signing with the card, and a user enrolled for TOTP.
async fn stand_on(card: &Card) -> (Stand, Vec<u8>) {
    let stand = Stand::start_with(&piv_signer(&card.pin_file), "").await;
    let seed = stand.enroll(TotpParams::default());
    (stand, seed)
}

#[test]
fn a_sign_in_signed_by_a_piv_card_through_pcscd_is_accepted_against_the_published_jwks() {
    on_card(|_| (), signs_with_the_card);
}

async fn signs_with_the_card(card: Card, (): ()) {
    let (stand, seed) = stand_on(&card).await;

    let token = sign_in(&stand, &seed).await.expect("a token");
    assert_eq!(kid_of(&token), kid(&card.provisioned.certificate_der));
    let rp = stand.relying_party().await;
    use base64::Engine as _;
    let x5c = base64::engine::general_purpose::STANDARD
        .decode(rp.jwks["keys"][0]["x5c"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(
        x5c, card.provisioned.certificate_der,
        "the card's certificate"
    );
    rp.validate(&token, &expected())
        .expect("Entra accepts the token");
    stand.shutdown().await;
}

#[test]
fn a_key_staged_in_another_slot_is_published_then_signs_after_promotion() {
    on_card(|card| card.add_key(0x9D).unwrap(), rotates_to_slot_9d);
}

async fn rotates_to_slot_9d(card: Card, second: Vec<u8>) {
    let (stand, seed) = stand_on(&card).await;
    let now = stand.app.clock.now();

    let args = StageArgs {
        id: Some("9d".into()),
        ..StageArgs::default()
    };
    let staged = admin::stage(&stand.app.config, &args, now).unwrap();
    assert!(staged.contains(&kid(&second)), "{staged}");
    stand
        .app
        .signer
        .refresh(&stand.app.config.state_dir)
        .unwrap();
    let published: Vec<String> = stand
        .app
        .signer
        .published_keys()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        published,
        vec![kid(&card.provisioned.certificate_der), kid(&second)]
    );
    let token = sign_in(&stand, &seed).await.expect("a token");
    assert_eq!(kid_of(&token), kid(&card.provisioned.certificate_der));

    admin::promote(&stand.app.config, now).unwrap();
    stand
        .app
        .signer
        .refresh(&stand.app.config.state_dir)
        .unwrap();
    // The next time step, so that the user's code is a new one.
    stand.app.clock.advance(30);
    let token = sign_in(&stand, &seed).await.expect("a token");
    assert_eq!(kid_of(&token), kid(&second), "slot 9d signs now");
    stand
        .relying_party()
        .await
        .validate(&token, &expected())
        .expect("Entra accepts the new key's token");
    stand.shutdown().await;
}

#[test]
fn a_card_pulled_between_sign_ins_answers_temporarily_unavailable_and_signing_resumes() {
    on_card(|_| (), survives_removal);
}

async fn survives_removal(card: Card, (): ()) {
    let (stand, seed) = stand_on(&card).await;
    assert!(sign_in(&stand, &seed).await.is_some());

    card.card.remove();
    stand.app.clock.advance(30);
    let page = stand.authorize(&Stand::entra_form(&stand.hint_now())).await;
    let done = stand
        .submit_code(&page, &stand.code(&seed, TotpParams::default()))
        .await;
    assert_posted_error(&done, "temporarily_unavailable");

    wait_until_pcscd_sees_no_card(&card.pin_file).await;
    card.card.insert(VPCD_PORT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !stand.app.signer.is_available() {
        assert!(Instant::now() < deadline, "signing did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stand.app.clock.advance(30);
    let token = sign_in(&stand, &seed).await.expect("signed again");
    stand
        .relying_party()
        .await
        .validate(&token, &expected())
        .expect("Entra accepts the token signed after the card came back");
    stand.shutdown().await;
}

/// pcscd records a vpcd card's removal at its next poll; a card put back before then is
/// taken for the old one. A physical reader reports removal by itself.
async fn wait_until_pcscd_sees_no_card(pin_file: &Path) {
    let config = vouch_hsm::piv::PivConfig {
        reader: Some(READER.into()),
        slot: vouch_hsm::piv::Slot::default(),
        pin_file: pin_file.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let config = config.clone();
        let status = tokio::task::spawn_blocking(move || vouch_hsm::piv::status(&config))
            .await
            .unwrap()
            .unwrap();
        if status
            .readers
            .iter()
            .any(|r| r.name == READER && r.card.is_none())
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pcscd did not notice the card leave"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn hsm_status_and_test_sign_report_the_reader_slot_certificate_and_pin_tries() {
    let Some(_turn) = turn() else { return };
    let card = inserted_card();
    let config = card.dir.path().join("vouch.toml");
    let body = format!(
        "[server]\nstate_dir = \"state\"\n{}",
        piv_signer(&card.pin_file)
    );
    std::fs::write(&config, body).unwrap();
    let config = config.to_str().unwrap();

    let out = run_vouch(card.dir.path(), &["hsm", "status", "--config", config]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for needle in [
        READER,
        "slot 9c",
        "tries left",
        &kid(&card.provisioned.certificate_der),
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }

    let out = run_vouch(card.dir.path(), &["hsm", "test-sign", "--config", config]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("ok ") && stdout.contains("verified"),
        "{stdout}"
    );
}

#[test]
fn a_wrong_pin_stops_the_start_with_the_tries_left_and_is_not_presented_twice() {
    let Some(_turn) = turn() else { return };
    let card = inserted_card();
    std::fs::write(&card.pin_file, "111111").unwrap();
    let config = card.dir.path().join("vouch.toml");
    let body = format!(
        "[server]\nstate_dir = \"state\"\n{}",
        piv_signer(&card.pin_file)
    );
    std::fs::write(&config, body).unwrap();
    let config = config.to_str().unwrap();

    let out = run_vouch(card.dir.path(), &["hsm", "test-sign", "--config", config]);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("PIN"), "{report}");
    assert!(
        !report.contains("111111"),
        "the PIN stays out of the report"
    );

    let status = run_vouch(card.dir.path(), &["hsm", "status", "--config", config]);
    let stdout = text(&status.stdout);
    assert!(stdout.contains("2 tries left"), "one try spent:\n{stdout}");
}

#[test]
fn a_piv_backend_without_a_pin_source_or_with_a_bad_slot_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("kind = \"piv\"\n", "signer.backend[0].pin_file"),
        (
            "kind = \"piv\"\npin_file = \"/p\"\npin_credential = \"piv\"\n",
            "signer.backend[0].pin_file",
        ),
        (
            "kind = \"piv\"\nslot = \"9b\"\npin_file = \"/p\"\n",
            "signer.backend[0].slot",
        ),
        (
            "kind = \"piv\"\nslot = \"9c\\u0000\"\npin_file = \"/p\"\n",
            "signer.backend[0].slot",
        ),
        (
            "kind = \"piv\"\nreader = \"\"\npin_file = \"/p\"\n",
            "signer.backend[0].reader",
        ),
        ("kind = \"piv\"\npin = \"123456\"\n", "pin"),
    ];
    for (backend, key) in cases {
        let config = dir.path().join("vouch.toml");
        std::fs::write(&config, format!("[[signer.backend]]\n{backend}")).unwrap();
        let out = run_vouch(dir.path(), &["check", "--config", config.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{backend}: {stderr}");
        assert!(
            stderr.contains(key),
            "{backend}: {key} missing from {stderr}"
        );
        assert!(
            !stderr.contains("123456"),
            "a PIN in the file is not echoed"
        );
    }
}
