//! The PIV card application as vouch uses it (NIST SP 800-73-4 Part 2): SELECT the
//! application, VERIFY the PIN, GENERAL AUTHENTICATE to sign with an RSA-2048 key, GET
//! DATA to read the slot's certificate.
//!
//! Functions here send commands and check answers; they hold no state and never retry. A
//! refused PIN is returned to the caller at once, so the card's retry counter only moves
//! when the key layer above decides to present a PIN.

use super::Slot;
use super::pin::Pin;
use super::tlv;
use super::transport::{Command, Response, Transport, exchange, malformed};
use crate::HsmError;

/// The PIV application identifier (SP 800-73-4 Part 1 §2.2), with its version suffix.
pub const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// Algorithm reference for RSA-2048 (SP 800-78-4 Table 6-2).
const ALG_RSA_2048: u8 = 0x07;

/// The PIN's key reference (SP 800-73-4 Part 2 §3.2.1, Table 7 of Part 1).
const PIV_PIN: u8 = 0x80;

/// Bytes of an RSA-2048 signature.
pub const RSA_2048_LEN: usize = 256;

/// Where the card's PIN counter stands, read without spending a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinState {
    /// This connection has verified the PIN already.
    Verified,
    /// Not verified; this many tries remain before the PIN blocks.
    Retries(u8),
    /// No tries remain; the PUK must reset the PIN.
    Blocked,
}

/// SELECT the PIV application (SP 800-73-4 Part 2 §3.1.1). A card without it answers
/// `6A82`, reported as [`HsmError::NotFound`].
pub fn select(t: &mut (impl Transport + ?Sized)) -> Result<(), HsmError> {
    let command = Command {
        name: "SELECT PIV",
        ins: 0xA4,
        p1: 0x04,
        p2: 0x00,
        data: &PIV_AID,
        expects_data: true,
    };
    let answer = exchange(t, &command)?;
    match answer.sw {
        0x9000 => Ok(()),
        0x6A82 => Err(HsmError::NotFound {
            device: t.reader().to_owned(),
            what: "PIV application".into(),
        }),
        sw => Err(card_error(t, &command, sw)),
    }
}

/// VERIFY with no data (SP 800-73-4 Part 2 §3.2.1): the PIN's state, no try spent.
pub fn pin_state(t: &mut (impl Transport + ?Sized)) -> Result<PinState, HsmError> {
    let command = verify_command(&[]);
    let answer = exchange(t, &command)?;
    match answer.sw {
        0x9000 => Ok(PinState::Verified),
        0x63C0 | 0x6983 => Ok(PinState::Blocked),
        sw if sw & 0xFFF0 == 0x63C0 => Ok(PinState::Retries((sw & 0x0F) as u8)),
        sw => Err(card_error(t, &command, sw)),
    }
}

/// VERIFY the PIN (SP 800-73-4 Part 2 §3.2.1). A refusal comes back as
/// [`HsmError::WrongPin`] or [`HsmError::PinBlocked`]; it is never retried here.
pub fn verify_pin(t: &mut (impl Transport + ?Sized), pin: &Pin) -> Result<(), HsmError> {
    let command = verify_command(pin.padded());
    let answer = exchange(t, &command)?;
    match answer.sw {
        0x9000 => Ok(()),
        0x63C0 | 0x6983 => Err(HsmError::PinBlocked {
            device: t.reader().to_owned(),
        }),
        sw if sw & 0xFFF0 == 0x63C0 => Err(HsmError::WrongPin {
            device: t.reader().to_owned(),
            retries_left: (sw & 0x0F) as u8,
        }),
        sw => Err(card_error(t, &command, sw)),
    }
}

/// GENERAL AUTHENTICATE with the slot's RSA-2048 key over a block the host has already
/// padded (SP 800-73-4 Part 2 §3.2.4, SP 800-78-4 §3): the card performs the raw private
/// key operation and returns the 256-byte result.
pub fn sign_rsa_2048(
    t: &mut (impl Transport + ?Sized),
    slot: Slot,
    block: &[u8; RSA_2048_LEN],
) -> Result<Vec<u8>, HsmError> {
    // Dynamic Authentication Template: empty response (82) and the challenge (81).
    let mut inner = vec![0x82, 0x00];
    tlv::write(&mut inner, 0x81, block);
    let mut template = Vec::with_capacity(inner.len() + 4);
    tlv::write(&mut template, 0x7C, &inner);

    let command = Command {
        name: "GENERAL AUTHENTICATE",
        ins: 0x87,
        p1: ALG_RSA_2048,
        p2: slot.key_reference(),
        data: &template,
        expects_data: true,
    };
    let answer = exchange(t, &command)?;
    match answer.sw {
        0x9000 => signature_from(t, &command, &answer),
        0x6A80 | 0x6A86 | 0x6A88 | 0x6985 => Err(HsmError::NotFound {
            device: t.reader().to_owned(),
            what: format!("RSA-2048 key in slot {slot}"),
        }),
        sw => Err(card_error(t, &command, sw)),
    }
}

/// GET DATA for the slot's certificate object (SP 800-73-4 Part 2 §3.1.2),
/// returning the DER certificate inside it.
pub fn read_certificate(
    t: &mut (impl Transport + ?Sized),
    slot: Slot,
) -> Result<Vec<u8>, HsmError> {
    let tag = slot.certificate_object();
    let mut request = Vec::with_capacity(5);
    tlv::write(&mut request, 0x5C, &tag);
    let command = Command {
        name: "GET DATA",
        ins: 0xCB,
        p1: 0x3F,
        p2: 0xFF,
        data: &request,
        expects_data: true,
    };
    let answer = exchange(t, &command)?;
    match answer.sw {
        0x9000 => certificate_from(t, &command, slot, &answer),
        0x6A82 => Err(HsmError::NotFound {
            device: t.reader().to_owned(),
            what: format!("certificate in slot {slot}"),
        }),
        sw => Err(card_error(t, &command, sw)),
    }
}

fn verify_command(data: &[u8]) -> Command<'_> {
    Command {
        name: "VERIFY",
        ins: 0x20,
        p1: 0x00,
        p2: PIV_PIN,
        data,
        expects_data: false,
    }
}

fn card_error(t: &(impl Transport + ?Sized), command: &Command<'_>, sw: u16) -> HsmError {
    HsmError::Card {
        reader: t.reader().to_owned(),
        command: command.name,
        sw,
    }
}

/// `7C { 82 signature }` (SP 800-73-4 Part 2 Table 7).
fn signature_from(
    t: &(impl Transport + ?Sized),
    command: &Command<'_>,
    answer: &Response,
) -> Result<Vec<u8>, HsmError> {
    let bad = |detail: String| malformed(t, command, &detail);
    let template = tlv::expect(&answer.data, 0x7C).map_err(bad)?;
    let signature = tlv::expect(template, 0x82).map_err(bad)?;
    if signature.len() != RSA_2048_LEN {
        return Err(bad(format!(
            "a signature of {} bytes, not {RSA_2048_LEN}",
            signature.len()
        )));
    }
    Ok(signature.to_vec())
}

/// `53 { 70 certificate, 71 CertInfo, FE LRC }` (SP 800-73-4 Part 1 Appendix A, the
/// X.509 Certificate containers).
fn certificate_from(
    t: &(impl Transport + ?Sized),
    command: &Command<'_>,
    slot: Slot,
    answer: &Response,
) -> Result<Vec<u8>, HsmError> {
    let bad = |detail: String| malformed(t, command, &detail);
    let object = tlv::expect(&answer.data, 0x53).map_err(bad)?;
    let fields = tlv::parse_all(object).map_err(bad)?;

    let compressed = fields
        .iter()
        .find(|f| f.tag == 0x71)
        .is_some_and(|info| info.value.first().is_some_and(|flag| flag & 0x01 != 0));
    if compressed {
        return Err(HsmError::NotFound {
            device: t.reader().to_owned(),
            what: format!(
                "uncompressed certificate in slot {slot} (the card holds a gzip-compressed \
                 one; write it again uncompressed)"
            ),
        });
    }
    match fields.iter().find(|f| f.tag == 0x70) {
        Some(cert) if !cert.value.is_empty() => Ok(cert.value.to_vec()),
        _ => Err(HsmError::NotFound {
            device: t.reader().to_owned(),
            what: format!("certificate in slot {slot}"),
        }),
    }
}
