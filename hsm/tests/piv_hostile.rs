//! A card that answers badly: short answers, wrong tags, lengths past the end, odd status
//! words, endless paging, random bytes. Each gives a clear error naming the command, and
//! nothing panics.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use vouch_hsm::HsmError;
use vouch_hsm::piv::pin::Pin;
use vouch_hsm::piv::transport::{ExclusiveWork, Transport};
use vouch_hsm::piv::{Connector, PivConfig, PivKey, Slot, card, probe};

/// Answers SELECT with success and every other command from `answer`.
struct Hostile<F: FnMut(&[u8]) -> Vec<u8> + Send> {
    answer: F,
}

impl<F: FnMut(&[u8]) -> Vec<u8> + Send> Transport for Hostile<F> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, HsmError> {
        if apdu.get(1) == Some(&0xA4) {
            return Ok(vec![0x90, 0x00]);
        }
        Ok((self.answer)(apdu))
    }

    fn reader(&self) -> &str {
        "hostile reader"
    }

    fn exclusive(&mut self, work: &mut ExclusiveWork<'_>) -> Result<Vec<u8>, HsmError> {
        work(self)
    }
}

fn answering(answer: Vec<u8>) -> Hostile<impl FnMut(&[u8]) -> Vec<u8> + Send> {
    Hostile {
        answer: move |_: &[u8]| answer.clone(),
    }
}

fn with_sw(data: &[u8], sw: u16) -> Vec<u8> {
    [data, &sw.to_be_bytes()].concat()
}

fn read_certificate(answer: Vec<u8>) -> HsmError {
    card::read_certificate(&mut answering(answer), Slot::SIGNATURE).unwrap_err()
}

fn sign(answer: Vec<u8>) -> HsmError {
    card::sign_rsa_2048(&mut answering(answer), Slot::SIGNATURE, &[0; 256]).unwrap_err()
}

fn assert_malformed(err: &HsmError, command: &str) {
    assert!(
        matches!(err, HsmError::Malformed { command: c, .. } if *c == command),
        "{command}: {err}"
    );
    assert!(err.to_string().contains("hostile reader"), "{err}");
}

#[test]
fn certificate_objects_with_bad_framing_are_reported_as_malformed() {
    let cases: Vec<Vec<u8>> = vec![
        with_sw(&[], 0x9000),
        with_sw(&[0x53], 0x9000),
        with_sw(&[0x54, 0x02, 0x70, 0x00], 0x9000),
        with_sw(&[0x53, 0x82, 0xFF, 0xFF, 0x70, 0x01], 0x9000),
        with_sw(&[0x53, 0x84, 0x00, 0x00, 0x00, 0x01, 0x00], 0x9000),
        with_sw(&[0x53, 0x04, 0x70, 0x09, 0x01, 0x02], 0x9000),
        with_sw(&[0x53, 0x01, 0x00, 0xAA], 0x9000),
        vec![0x90],
        vec![],
    ];
    for answer in cases {
        assert_malformed(&read_certificate(answer), "GET DATA");
    }
}

#[test]
fn a_certificate_object_without_a_usable_certificate_says_what_is_missing() {
    let empty = read_certificate(with_sw(&[0x53, 0x03, 0x71, 0x01, 0x00], 0x9000));
    assert!(matches!(empty, HsmError::NotFound { .. }), "{empty}");

    let compressed = read_certificate(with_sw(
        &[0x53, 0x07, 0x70, 0x02, 0x1F, 0x8B, 0x71, 0x01, 0x01],
        0x9000,
    ));
    assert!(
        compressed.to_string().contains("uncompressed"),
        "{compressed}"
    );

    let absent = read_certificate(with_sw(&[], 0x6A82));
    assert!(
        absent.to_string().contains("certificate in slot 9c"),
        "{absent}"
    );
}

#[test]
fn a_certificate_that_is_not_an_rsa_2048_x509_certificate_stops_the_open() {
    struct Fixed(Vec<u8>);
    impl Connector for Fixed {
        fn connect(&self) -> Result<Box<dyn Transport>, HsmError> {
            Ok(Box::new(answering(self.0.clone())))
        }
    }
    let p256 = rcgen::KeyPair::generate().unwrap();
    let p256_cert = rcgen::CertificateParams::new(vec!["x.test".to_owned()])
        .unwrap()
        .self_signed(&p256)
        .unwrap();
    for (cert, expected) in [
        (vec![0x30, 0x03, 0x02, 0x01, 0x01], "parseable X.509"),
        (p256_cert.der().to_vec(), "RSA-2048"),
    ] {
        let mut object = vec![0x70, 0x82];
        object.extend((cert.len() as u16).to_be_bytes());
        object.extend(&cert);
        let mut answer = vec![0x53, 0x82];
        answer.extend((object.len() as u16).to_be_bytes());
        answer.extend(object);
        let config = PivConfig {
            reader: None,
            slot: Slot::SIGNATURE,
            pin_file: "/nonexistent-but-absolute".into(),
        };
        let err = PivKey::open_with(config, Box::new(Fixed(with_sw(&answer, 0x9000))))
            .err()
            .unwrap();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn signatures_with_bad_framing_or_length_are_reported_as_malformed() {
    let cases: Vec<Vec<u8>> = vec![
        with_sw(&[0x7C, 0x04, 0x82, 0x02, 0x01, 0x02], 0x9000),
        with_sw(&[0x7D, 0x02, 0x82, 0x00], 0x9000),
        with_sw(&[0x7C, 0x02, 0x81, 0x00], 0x9000),
        with_sw(&[0x7C, 0x82, 0x01, 0x04, 0x82, 0x82, 0x01, 0x00], 0x9000),
        with_sw(&[0x7C], 0x9000),
        vec![0x61],
    ];
    for answer in cases {
        assert_malformed(&sign(answer), "GENERAL AUTHENTICATE");
    }
}

#[test]
fn refusals_of_general_authenticate_name_the_slot_or_the_status_word() {
    for sw in [0x6A80, 0x6A86, 0x6985] {
        let err = sign(with_sw(&[], sw));
        assert!(
            err.to_string().contains("key in slot 9c"),
            "{sw:04X}: {err}"
        );
    }
    let err = sign(with_sw(&[], 0x6982));
    assert_eq!(
        err,
        HsmError::Card {
            reader: "hostile reader".into(),
            command: "GENERAL AUTHENTICATE",
            sw: 0x6982
        }
    );
}

#[test]
fn pin_answers_map_to_tries_left_blocked_or_the_status_word() {
    let pin = Pin::new(b"123456").unwrap();
    let verify = |sw: u16| card::verify_pin(&mut answering(with_sw(&[], sw)), &pin);
    assert!(matches!(
        verify(0x63C2),
        Err(HsmError::WrongPin {
            retries_left: 2,
            ..
        })
    ));
    assert!(matches!(verify(0x63C0), Err(HsmError::PinBlocked { .. })));
    assert!(matches!(verify(0x6983), Err(HsmError::PinBlocked { .. })));
    assert!(matches!(
        verify(0x6300),
        Err(HsmError::Card { sw: 0x6300, .. })
    ));
    assert!(matches!(
        verify(0x6A88),
        Err(HsmError::Card { sw: 0x6A88, .. })
    ));
    let err = card::verify_pin(&mut answering(vec![0x63]), &pin).unwrap_err();
    assert_malformed(&err, "VERIFY");
}

#[test]
fn a_card_that_pages_forever_is_cut_off() {
    let mut page = vec![0xAB; 256];
    page.extend([0x61, 0x00]);
    let err = read_certificate(page);
    assert_malformed(&err, "GET DATA");
    assert!(err.to_string().contains("longer than"), "{err}");
}

#[test]
fn random_answers_never_panic() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let len = (next() % 300) as usize;
        let mut answer: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if next() % 2 == 0 && answer.len() >= 2 {
            let n = answer.len();
            answer[n - 2..].copy_from_slice(&[0x90, 0x00]);
        }
        let mut t = answering(answer);
        let _ = probe(&mut t, Slot::SIGNATURE);
        let _ = card::sign_rsa_2048(&mut t, Slot::SIGNATURE, &[0; 256]);
    }
}
