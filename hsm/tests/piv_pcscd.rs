//! The PIV backend end to end through pcscd: the emulated card plugs into vsmartcard's
//! vpcd reader "Virtual PCD 00 00" (port 35963) and vouch reaches it through PC/SC.
//!
//! Needs pcscd running with vsmartcard-vpcd (`scripts/install-packages`,
//! `scripts/start-services`). One card fits a port, so the tests take turns.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{PIN, config, pin_file, verify_rs256};
use vouch_hsm::piv::{PinState, PivKey, status};
use vouch_hsm::{HsmError, SigningKey};
use vouch_piv_sim::{SimCard, VPCD_PORT};

const READER: &str = "Virtual PCD 00 00";
const EMPTY_READER: &str = "Virtual PCD 00 01";
const INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJlbnRyYSJ9";

static PORT: Mutex<()> = Mutex::new(());

/// The port's turn, or `None` when pcscd is not running here (a failure under CI).
fn turn() -> Option<MutexGuard<'static, ()>> {
    if !Path::new("/run/pcscd/pcscd.comm").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pcscd is not running; scripts/start-services starts it"
        );
        eprintln!("skipped: pcscd is not running; run scripts/start-services");
        return None;
    }
    Some(PORT.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A provisioned card inserted into the vpcd reader.
fn inserted_card() -> (SimCard, vouch_piv_sim::Provisioned) {
    let card = SimCard::start();
    let provisioned = card.provision(PIN).unwrap();
    card.insert(VPCD_PORT).unwrap();
    (card, provisioned)
}

/// Opens the key, waiting while pcscd notices the card.
fn open_when_present(pin: &Path) -> Result<PivKey, HsmError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match PivKey::open(config(Some(READER), pin)) {
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => return other,
        }
    }
}

#[test]
fn a_signature_made_through_pcscd_verifies_against_the_certificate_read_from_the_card() {
    let Some(_turn) = turn() else { return };
    let (_card, provisioned) = inserted_card();
    let (_dir, pin) = pin_file(PIN, 0o600);

    let key = open_when_present(&pin).unwrap();
    assert_eq!(
        key.certificate_der(),
        provisioned.certificate_der.as_slice()
    );
    assert_eq!(key.name(), format!("PIV slot 9c in {READER:?}"));
    let signature = key.session().unwrap().sign_rs256(INPUT).unwrap();
    verify_rs256(&provisioned.certificate_der, INPUT, &signature);
}

#[test]
fn the_first_reader_with_a_piv_card_is_found_when_none_is_configured() {
    let Some(_turn) = turn() else { return };
    let (_card, _) = inserted_card();
    let (_dir, pin) = pin_file(PIN, 0o600);
    open_when_present(&pin).unwrap();

    let key = PivKey::open(config(None, &pin)).unwrap();
    assert!(key.name().contains(READER), "{}", key.name());
}

#[test]
fn sessions_on_several_threads_sign_together_without_breaking_each_others_pin_check() {
    let Some(_turn) = turn() else { return };
    let (_card, provisioned) = inserted_card();
    let (_dir, pin) = pin_file(PIN, 0o600);
    let key = open_when_present(&pin).unwrap();

    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let mut session = key.session().unwrap();
                scope.spawn(move || {
                    (0..4)
                        .map(|_| session.sign_rs256(INPUT))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        for worker in workers {
            for signature in worker.join().unwrap().unwrap() {
                verify_rs256(&provisioned.certificate_der, INPUT, &signature);
            }
        }
    });
}

#[test]
fn closing_one_session_leaves_the_others_signing() {
    let Some(_turn) = turn() else { return };
    let (_card, provisioned) = inserted_card();
    let (_dir, pin) = pin_file(PIN, 0o600);
    let key = open_when_present(&pin).unwrap();

    let mut kept = key.session().unwrap();
    for _ in 0..3 {
        drop(key.session().unwrap());
        let signature = kept.sign_rs256(INPUT).unwrap();
        verify_rs256(&provisioned.certificate_der, INPUT, &signature);
    }
}

#[test]
fn a_wrong_pin_counts_down_once_and_vouch_does_not_try_it_again() {
    let Some(_turn) = turn() else { return };
    let (_card, _) = inserted_card();
    let (_dir, good) = pin_file(PIN, 0o600);
    let key = open_when_present(&good).unwrap();

    common::write_pin(&good, "112233", 0o600);
    for _ in 0..4 {
        let err = key.session().err().unwrap();
        assert!(
            matches!(
                err,
                HsmError::WrongPin {
                    retries_left: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    let seen = status(&config(Some(READER), &good)).unwrap();
    let reader = seen.readers.iter().find(|r| r.name == READER).unwrap();
    let card = reader.card.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(card.pin.as_ref().unwrap(), &PinState::Retries(2));
}

#[test]
fn a_removed_card_is_unavailable_at_once_and_signing_resumes_when_it_is_back() {
    let Some(_turn) = turn() else { return };
    let (card, provisioned) = inserted_card();
    let (_dir, pin) = pin_file(PIN, 0o600);
    let key = open_when_present(&pin).unwrap();
    let mut session = key.session().unwrap();
    session.sign_rs256(INPUT).unwrap();

    card.remove();
    let started = Instant::now();
    let err = session.sign_rs256(INPUT).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = key.session().err().unwrap();
    assert!(matches!(err, HsmError::Unavailable { .. }), "{err}");

    wait_until_pcscd_sees_no_card(&pin);
    card.insert(VPCD_PORT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let signature = loop {
        match key.session().and_then(|mut s| s.sign_rs256(INPUT)) {
            Ok(signature) => break signature,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("signing did not resume: {e}"),
        }
    };
    verify_rs256(&provisioned.certificate_der, INPUT, &signature);
}

/// vpcd notices a removed card when a command to it fails. pcscd then reports the reader
/// empty at once, but its event thread only records the removal at its next poll (every
/// 400 ms); a card put back before that poll is taken for the old one and stays unusable.
/// A physical reader reports removal by itself, so only the emulated setup needs this wait.
fn wait_until_pcscd_sees_no_card(pin: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let seen = status(&config(Some(READER), pin)).unwrap();
        if seen
            .readers
            .iter()
            .any(|r| r.name == READER && r.card.is_none())
        {
            std::thread::sleep(Duration::from_secs(1));
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("pcscd did not notice the card leaving {READER}");
}

#[test]
fn a_reader_that_is_not_there_is_named_in_the_error() {
    let (_dir, pin) = pin_file(PIN, 0o600);
    let Some(_turn) = turn() else { return };
    let err = PivKey::open(config(Some("Acme Token 9000"), &pin))
        .err()
        .unwrap();
    assert!(matches!(err, HsmError::Unavailable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("Acme Token 9000") && text.contains(READER),
        "{text}"
    );

    let err = PivKey::open(config(Some(EMPTY_READER), &pin))
        .err()
        .unwrap();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains(EMPTY_READER), "{err}");
}

#[test]
fn status_shows_each_reader_the_card_its_certificate_and_the_tries_left() {
    let Some(_turn) = turn() else { return };
    let (card, _) = inserted_card();
    let (_dir, pin) = pin_file(PIN, 0o600);
    open_when_present(&pin).unwrap();
    card.reset();

    let seen = status(&config(Some(READER), &pin)).unwrap();
    let text = seen.to_string();
    assert!(
        text.contains(&format!("reader {READER:?} (configured)")),
        "{text}"
    );
    assert!(text.contains("PIV application: found"), "{text}");
    assert!(text.contains("slot 9c: RSA-2048 key"), "{text}");
    assert!(text.contains("emulated PIV card"), "{text}");
    assert!(
        text.contains(&format!("reader {EMPTY_READER:?}\n  card: none")),
        "{text}"
    );
}

/// pcsc-lite's client finds pcscd through `PCSCLITE_CSOCK_NAME`; the test runs itself again
/// with it pointing nowhere, as if pcscd were down.
#[test]
fn without_pcscd_the_error_names_the_service_and_how_to_start_it() {
    const NAME: &str = "without_pcscd_the_error_names_the_service_and_how_to_start_it";
    if std::env::var_os("PCSCLITE_CSOCK_NAME").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && log.contains("1 passed"), "{log}");
        return;
    }
    let (_dir, pin) = pin_file(PIN, 0o600);
    let err = PivKey::open(config(Some(READER), &pin)).err().unwrap();
    assert!(matches!(err, HsmError::Pcsc { .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("pcscd is not running"), "{err}");
    let err = status(&config(None, &pin)).unwrap_err();
    assert!(err.to_string().contains("pcscd"), "{err}");
}
