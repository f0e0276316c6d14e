//! Setting a card up the way an operator would before giving it to vouch, with the same
//! APDUs a host tool sends (SP 800-73-4 Part 2 §3.2): authenticate with the management key,
//! generate an RSA-2048 key in a slot, write a certificate for it, change the PIN.
//!
//! The certificate is issued by a throwaway test CA (ECDSA P-256, made with rcgen) for the
//! public key the card returned, so the private key never leaves the card.

use des::TdesEde3;
use des::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PKCS_RSA_SHA256, PublicKeyData, SignatureAlgorithm, date_time_ymd,
};

use crate::SimCard;

/// The PIN a new card starts with.
pub const DEFAULT_PIN: &str = "123456";

/// The 3DES management key a new card starts with (SP 800-73-4 leaves it to the issuer;
/// this is the value every PIV tool assumes).
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// Key reference of the card management key, and algorithm 3DES (SP 800-78-4 Table 6-1).
const MANAGEMENT_KEY: u8 = 0x9B;
const ALG_3DES: u8 = 0x03;
const ALG_RSA_2048: u8 = 0x07;

/// The signing slot vouch uses by default.
const SLOT_9C: u8 = 0x9C;

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error("the card answered {step} with status word {sw:04X}")]
    Card { step: &'static str, sw: u16 },
    #[error("the card's answer to {step} is malformed")]
    Malformed { step: &'static str },
    #[error("the certificate could not be made: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// What a provisioned card holds, for tests to check against.
pub struct Provisioned {
    /// The DER certificate written to slot 9c.
    pub certificate_der: Vec<u8>,
    /// The test CA's DER certificate.
    pub ca_certificate_der: Vec<u8>,
    /// The PKCS#1 `RSAPublicKey` the card generated.
    pub rsa_public_key: Vec<u8>,
}

/// The certificate object of a slot (SP 800-73-4 Part 1 Table 3) for the slots tests use.
pub fn certificate_object(slot: u8) -> [u8; 3] {
    match slot {
        0x9A => [0x5F, 0xC1, 0x05],
        0x9D => [0x5F, 0xC1, 0x0B],
        0x9E => [0x5F, 0xC1, 0x01],
        _ => [0x5F, 0xC1, 0x0A],
    }
}

impl SimCard {
    /// Generates an RSA-2048 key in slot 9c, writes a certificate for it issued by a new
    /// test CA, and changes the PIN from the default to `pin`.
    pub fn provision(&self, pin: &str) -> Result<Provisioned, SimError> {
        self.select()?;
        self.authenticate_management()?;
        let rsa_public_key = self.generate_rsa(SLOT_9C)?;
        let (certificate_der, ca_certificate_der) = issue(&rsa_public_key)?;
        self.write_certificate(SLOT_9C, &certificate_der)?;
        self.change_pin(DEFAULT_PIN, pin)?;
        Ok(Provisioned {
            certificate_der,
            ca_certificate_der,
            rsa_public_key,
        })
    }

    /// Generates another RSA-2048 key in `slot` (9a, 9d or 9e), writes a certificate for it
    /// issued by a new test CA, and returns that certificate (DER).
    pub fn add_key(&self, slot: u8) -> Result<Vec<u8>, SimError> {
        self.select()?;
        self.authenticate_management()?;
        let rsa_public_key = self.generate_rsa(slot)?;
        let (certificate_der, _) = issue(&rsa_public_key)?;
        self.write_certificate(slot, &certificate_der)?;
        Ok(certificate_der)
    }

    /// Writes `der` as the slot's certificate (PUT DATA, SP 800-73-4 Part 2 §3.3.1),
    /// uncompressed, after authenticating with the default management key.
    pub fn write_certificate(&self, slot: u8, der: &[u8]) -> Result<(), SimError> {
        self.select()?;
        self.authenticate_management()?;
        let mut object = Vec::with_capacity(der.len() + 8);
        tlv(&mut object, &[0x70], der);
        tlv(&mut object, &[0x71], &[0x00]);
        tlv(&mut object, &[0xFE], &[]);
        let mut data = Vec::with_capacity(object.len() + 10);
        tlv(&mut data, &[0x5C], &certificate_object(slot));
        tlv(&mut data, &[0x53], &object);
        self.command("PUT DATA", [0xDB, 0x3F, 0xFF], &data)?;
        Ok(())
    }

    /// Sends a command, chaining data over 255 bytes and reading every `61xx` page; the
    /// answer's data on `9000`.
    pub fn command(
        &self,
        step: &'static str,
        header: [u8; 3],
        data: &[u8],
    ) -> Result<Vec<u8>, SimError> {
        let [ins, p1, p2] = header;
        let parts: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(255).collect()
        };
        let mut answer = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let cla = if i + 1 < parts.len() { 0x10 } else { 0x00 };
            let mut apdu = vec![cla, ins, p1, p2];
            if !part.is_empty() {
                apdu.push(part.len() as u8);
                apdu.extend_from_slice(part);
            }
            apdu.push(0x00);
            answer = self.transmit(&apdu);
        }
        let mut data = Vec::new();
        loop {
            let Some(split) = answer.len().checked_sub(2) else {
                return Err(SimError::Malformed { step });
            };
            let sw = u16::from_be_bytes([answer[split], answer[split + 1]]);
            data.extend_from_slice(&answer[..split]);
            match sw {
                0x9000 => return Ok(data),
                sw if sw >> 8 == 0x61 => answer = self.transmit(&[0, 0xC0, 0, 0, sw as u8]),
                sw => return Err(SimError::Card { step, sw }),
            }
        }
    }

    fn select(&self) -> Result<(), SimError> {
        self.command(
            "SELECT",
            [0xA4, 0x04, 0x00],
            &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0],
        )?;
        Ok(())
    }

    /// Card management key authentication by challenge and response (GENERAL
    /// AUTHENTICATE, SP 800-73-4 Part 2 §3.2.4): the card sends a challenge, the host
    /// returns it encrypted.
    fn authenticate_management(&self) -> Result<(), SimError> {
        let step = "GENERAL AUTHENTICATE (management key)";
        let header = [0x87, ALG_3DES, MANAGEMENT_KEY];
        let answer = self.command(step, header, &[0x7C, 0x02, 0x81, 0x00])?;
        let challenge = match answer.as_slice() {
            [0x7C, 0x0A, 0x81, 0x08, challenge @ ..] if challenge.len() == 8 => challenge,
            _ => return Err(SimError::Malformed { step }),
        };
        let cipher = TdesEde3::new_from_slice(&DEFAULT_MANAGEMENT_KEY)
            .map_err(|_| SimError::Malformed { step })?;
        let mut block = GenericArray::clone_from_slice(challenge);
        cipher.encrypt_block(&mut block);
        let mut response = vec![0x7C, 0x0A, 0x82, 0x08];
        response.extend_from_slice(&block);
        self.command(step, header, &response)?;
        Ok(())
    }

    /// GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 Part 2 §3.3.2): returns the PKCS#1
    /// `RSAPublicKey` built from the modulus (81) and exponent (82) the card answers.
    fn generate_rsa(&self, slot: u8) -> Result<Vec<u8>, SimError> {
        let step = "GENERATE ASYMMETRIC KEY PAIR";
        let answer = self.command(
            step,
            [0x47, 0x00, slot],
            &[0xAC, 0x03, 0x80, 0x01, ALG_RSA_2048],
        )?;
        let malformed = SimError::Malformed { step };
        let Some(body) = answer.strip_prefix(&[0x7F, 0x49]) else {
            return Err(malformed);
        };
        let (inner, _) = split_tlv_value(body).ok_or(SimError::Malformed { step })?;
        let (modulus, rest) = field(inner, 0x81).ok_or(SimError::Malformed { step })?;
        let (exponent, _) = field(rest, 0x82).ok_or(malformed)?;

        let mut integers = Vec::with_capacity(modulus.len() + exponent.len() + 8);
        der_integer(&mut integers, modulus);
        der_integer(&mut integers, exponent);
        let mut key = Vec::with_capacity(integers.len() + 4);
        tlv(&mut key, &[0x30], &integers);
        Ok(key)
    }

    /// CHANGE REFERENCE DATA for the PIN (SP 800-73-4 Part 2 §3.2.2).
    fn change_pin(&self, old: &str, new: &str) -> Result<(), SimError> {
        let mut data = padded(old).to_vec();
        data.extend_from_slice(&padded(new));
        self.command("CHANGE REFERENCE DATA", [0x24, 0x00, 0x80], &data)?;
        Ok(())
    }
}

/// A PIN padded with `FF` to 8 bytes.
fn padded(pin: &str) -> [u8; 8] {
    let mut out = [0xFF; 8];
    for (slot, byte) in out.iter_mut().zip(pin.bytes()) {
        *slot = byte;
    }
    out
}

/// The card's public key, as rcgen places it in a certificate.
struct CardKey(Vec<u8>);

impl PublicKeyData for CardKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

/// A certificate for the card's key issued by a new test CA: (leaf, CA), both DER.
fn issue(rsa_public_key: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SimError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = name("vouch test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_der = ca.self_signed(&ca_key)?.der().to_vec();
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(Vec::<String>::new())?;
    leaf.distinguished_name = name("vouch token signing (emulated PIV card)");
    leaf.not_before = date_time_ymd(2025, 1, 1);
    leaf.not_after = date_time_ymd(2035, 1, 1);
    let leaf_der = leaf
        .signed_by(&CardKey(rsa_public_key.to_vec()), &issuer)?
        .der()
        .to_vec();
    Ok((leaf_der, ca_der))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Appends a BER-TLV with a definite length (ISO 7816-4 §8.1, X.690 §8.1.3).
fn tlv(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    let len = value.len();
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend([0x81, len as u8]),
        _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(value);
}

/// A DER INTEGER for an unsigned big-endian magnitude (X.690 §8.3).
fn der_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = match magnitude.iter().position(|b| *b != 0) {
        Some(first) => &magnitude[first..],
        None => &[0][..],
    };
    let mut value = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        value.push(0);
    }
    value.extend_from_slice(trimmed);
    tlv(out, &[0x02], &value);
}

/// Splits a length and its value off `input`: (value, rest).
fn split_tlv_value(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = match input {
        [len @ 0..=0x7F, rest @ ..] => (usize::from(*len), rest),
        [0x81, len, rest @ ..] => (usize::from(*len), rest),
        [0x82, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        _ => return None,
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The value of a one-byte-tag TLV at the start of `input`, and what follows it.
fn field(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match input.split_first() {
        Some((first, rest)) if *first == tag => split_tlv_value(rest),
        _ => None,
    }
}
