//! The emulated card answers as a PIV card should, in-process.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use vouch_piv_sim::SimCard;

fn sw(answer: &[u8]) -> u16 {
    u16::from_be_bytes([answer[answer.len() - 2], answer[answer.len() - 1]])
}

#[test]
fn a_provisioned_card_holds_the_certificate_and_the_new_pin() {
    let card = SimCard::start();
    let provisioned = card.provision("246810").unwrap();

    let object = card
        .command(
            "GET DATA",
            [0xCB, 0x3F, 0xFF],
            &[0x5C, 0x03, 0x5F, 0xC1, 0x0A],
        )
        .unwrap();
    let der = &provisioned.certificate_der;
    assert!(object.windows(der.len()).any(|w| w == der.as_slice()));

    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"123456\xFF\xFF");
    assert_eq!(
        sw(&card.transmit(&verify)),
        0x63C2,
        "the old PIN is refused"
    );
    verify[5..].copy_from_slice(b"246810\xFF\xFF");
    assert_eq!(sw(&card.transmit(&verify)), 0x9000);
}

#[test]
fn a_truncated_piv_aid_selects_the_application() {
    let card = SimCard::start();
    let answer = card.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08]);
    assert_eq!(sw(&answer), 0x9000);
    let other = card.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0xD2, 0x76, 0x00, 0x01, 0x24]);
    assert_eq!(sw(&other), 0x6A82);
}

#[test]
fn garbage_apdus_get_an_error_status() {
    let card = SimCard::start();
    for apdu in [
        &[][..],
        &[0x00],
        &[0x00, 0xA4, 0x04],
        &[0x00, 0xA4, 0x04, 0x00, 0x09, 0x01],
    ] {
        let answer = card.transmit(apdu);
        assert_eq!(answer.len(), 2, "{apdu:02X?}");
        assert_ne!(sw(&answer), 0x9000, "{apdu:02X?}");
    }
}
