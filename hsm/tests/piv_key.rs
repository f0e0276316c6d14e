//! `PivKey` against the emulated card reached in-process: signing, the PIN rules, a wrong
//! certificate, and a card that goes away and comes back.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{InProcess, PIN, config, pin_file, verify_rs256, write_pin};
use vouch_hsm::piv::{PinState, PivKey, card, probe};
use vouch_hsm::{HsmError, SigningKey};

const INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0";

fn open(link: &InProcess, pin_path: &std::path::Path) -> Result<PivKey, HsmError> {
    PivKey::open_with(config(None, pin_path), Box::new(link.clone()))
}

fn pin_state(link: &InProcess) -> PinState {
    let mut t = link.clone();
    probe(&mut t, vouch_hsm::piv::Slot::SIGNATURE)
        .unwrap()
        .pin
        .unwrap()
}

#[test]
fn a_signature_from_the_card_verifies_against_the_certificate_read_from_it() {
    let (link, provisioned) = InProcess::provisioned();
    let (_dir, pin) = pin_file(PIN, 0o600);
    let key = open(&link, &pin).unwrap();

    assert_eq!(
        key.certificate_der(),
        provisioned.certificate_der.as_slice()
    );
    assert!(key.name().contains("slot 9c"), "{}", key.name());
    let mut session = key.session().unwrap();
    for _ in 0..3 {
        let signature = session.sign_rs256(INPUT).unwrap();
        verify_rs256(key.certificate_der(), INPUT, &signature);
    }
}

#[test]
fn a_wrong_pin_is_refused_with_the_tries_left_and_never_presented_again() {
    let (link, _) = InProcess::provisioned();
    let (_dir, pin) = pin_file("999999", 0o600);

    let err = open(&link, &pin).err().unwrap();
    assert_eq!(
        err,
        HsmError::WrongPin {
            device: "in-process card".into(),
            retries_left: 2
        }
    );
    assert!(err.to_string().contains("2 tries left"), "{err}");
    assert_eq!(link.pins_presented(), 1);

    let (_dir2, good) = pin_file(PIN, 0o600);
    let key = open(&link, &good).unwrap();
    write_pin(&good, "999999", 0o600);
    for _ in 0..5 {
        assert!(matches!(
            key.session().err(),
            Some(HsmError::WrongPin { .. })
        ));
    }
    assert_eq!(
        link.pins_presented(),
        3,
        "the wrong PIN was presented once per key"
    );
    assert_eq!(pin_state(&link), PinState::Retries(2));
}

#[test]
fn a_corrected_pin_file_is_tried_again_and_signs() {
    let (link, _) = InProcess::provisioned();
    let (_dir, pin) = pin_file(PIN, 0o600);
    let key = open(&link, &pin).unwrap();

    write_pin(&pin, "135790", 0o600);
    assert!(matches!(
        key.session().err(),
        Some(HsmError::WrongPin {
            retries_left: 2,
            ..
        })
    ));
    assert!(matches!(
        key.session().err(),
        Some(HsmError::WrongPin {
            retries_left: 2,
            ..
        })
    ));

    write_pin(&pin, PIN, 0o600);
    let signature = key.session().unwrap().sign_rs256(INPUT).unwrap();
    verify_rs256(key.certificate_der(), INPUT, &signature);
    assert_eq!(pin_state(&link), PinState::Verified);
}

#[test]
fn a_blocked_pin_is_reported_and_costs_no_try() {
    let (link, _) = InProcess::provisioned();
    let mut t = link.clone();
    let wrong = vouch_hsm::piv::pin::Pin::new(b"000000").unwrap();
    card::select(&mut t).unwrap();
    for _ in 0..3 {
        let _ = card::verify_pin(&mut t, &wrong);
    }
    assert_eq!(pin_state(&link), PinState::Blocked);

    let (_dir, pin) = pin_file(PIN, 0o600);
    let err = open(&link, &pin).err().unwrap();
    assert!(matches!(err, HsmError::PinBlocked { .. }), "{err}");
    assert!(err.to_string().contains("PUK"), "{err}");
}

#[test]
fn a_pin_file_others_can_read_stops_the_open_before_the_card_sees_it() {
    let (link, _) = InProcess::provisioned();
    let (_dir, pin) = pin_file(PIN, 0o644);
    let err = open(&link, &pin).err().unwrap();
    assert!(matches!(err, HsmError::PinFile { .. }), "{err}");
    assert_eq!(link.pins_presented(), 0);
}

#[test]
fn a_certificate_for_another_key_is_caught_at_the_first_signature() {
    let (link, _) = InProcess::provisioned();
    let other = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let params = rcgen::CertificateParams::new(vec!["other.test".to_owned()]).unwrap();
    let foreign = params.self_signed(&other).unwrap();
    link.card.write_certificate(0x9C, foreign.der()).unwrap();

    let (_dir, pin) = pin_file(PIN, 0o600);
    let key = open(&link, &pin).unwrap();
    let err = key.session().unwrap().sign_rs256(INPUT).unwrap_err();
    assert!(matches!(err, HsmError::KeyMismatch { .. }), "{err}");
}

#[test]
fn a_removed_card_makes_signing_unavailable_and_the_next_session_resumes() {
    let (link, _) = InProcess::provisioned();
    let (_dir, pin) = pin_file(PIN, 0o600);
    let key = open(&link, &pin).unwrap();
    let mut session = key.session().unwrap();

    link.present.store(false, Ordering::SeqCst);
    let err = session.sign_rs256(INPUT).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(matches!(
        key.session().err(),
        Some(HsmError::Unavailable { .. })
    ));

    link.present.store(true, Ordering::SeqCst);
    let signature = key.session().unwrap().sign_rs256(INPUT).unwrap();
    verify_rs256(key.certificate_der(), INPUT, &signature);
}

#[test]
fn status_reads_the_certificate_and_the_tries_left_without_spending_one() {
    let (link, _) = InProcess::provisioned();
    link.card.reset();
    let mut t = link.clone();
    let status = probe(&mut t, vouch_hsm::piv::Slot::SIGNATURE).unwrap();
    let cert = status.certificate.unwrap();
    assert!(
        cert.subject.contains("emulated PIV card"),
        "{}",
        cert.subject
    );
    assert_eq!(cert.key, "RSA-2048");
    assert!(cert.not_after.contains("2035"), "{}", cert.not_after);
    assert_eq!(status.pin.unwrap(), PinState::Retries(3));
    assert_eq!(link.pins_presented(), 0);
}
