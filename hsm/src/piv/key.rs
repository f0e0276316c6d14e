//! [`PivKey`]: the [`SigningKey`] of a PIV slot, and its sessions.
//!
//! Each session holds its own connection to the card and the PIN, and presents the PIN
//! before every signature inside one exclusive transaction: slot 9c's key may only be used
//! right after a VERIFY (the digital signature key's "PIN Always" access rule, SP 800-73-4
//! Part 1), and other slots accept it too.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::card::{self, RSA_2048_LEN};
use super::cert;
use super::pin::{self, Pin};
use super::transport::Transport;
use super::{PivConfig, Slot};
use crate::{HsmError, SigningKey, SigningSession};

/// Opens connections to the card a key lives on: PC/SC in service, the emulated card or a
/// fake in tests.
pub trait Connector: Send + Sync {
    fn connect(&self) -> Result<Box<dyn Transport>, HsmError>;
}

/// An RSA-2048 key in a PIV slot, with the certificate read from the same slot.
pub struct PivKey {
    name: String,
    certificate: Vec<u8>,
    shared: Arc<Shared>,
}

/// What every session of one key shares.
struct Shared {
    name: String,
    slot: Slot,
    pin_file: PathBuf,
    rsa_public_key: Vec<u8>,
    connector: Box<dyn Connector>,
    /// The PIN the card last refused (its digest) and the error it gave. While the PIN file
    /// still holds that PIN, vouch does not present it again.
    refused: Mutex<Option<([u8; 32], HsmError)>>,
}

impl PivKey {
    /// Opens the key through PC/SC: finds the reader, reads the slot's certificate and
    /// verifies the PIN once, so a wrong PIN or a missing key stops the start.
    #[cfg(feature = "pcsc")]
    pub fn open(config: PivConfig) -> Result<PivKey, HsmError> {
        let connector = super::PcscConnector::new(config.reader.clone());
        PivKey::open_with(config, Box::new(connector))
    }

    /// Opens the key on the card `connector` reaches.
    pub fn open_with(config: PivConfig, connector: Box<dyn Connector>) -> Result<PivKey, HsmError> {
        let pin_file = pin::resolve(&config.pin_file)?;
        let mut transport = connector.connect()?;
        let name = format!("PIV slot {} in {:?}", config.slot, transport.reader());
        card::select(&mut *transport)?;
        let certificate = card::read_certificate(&mut *transport, config.slot)?;
        let parsed = cert::parse(&name, &certificate)?;
        drop(transport);

        let shared = Arc::new(Shared {
            name: name.clone(),
            slot: config.slot,
            pin_file,
            rsa_public_key: parsed.rsa_public_key,
            connector,
            refused: Mutex::new(None),
        });
        let key = PivKey {
            name,
            certificate,
            shared,
        };
        key.session()?;
        tracing::info!(key = %key.name, subject = %parsed.summary.subject, "PIV key opened");
        Ok(key)
    }
}

impl SigningKey for PivKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    fn session(&self) -> Result<Box<dyn SigningSession>, HsmError> {
        let pin = self.shared.load_pin()?;
        let mut transport = self.shared.connector.connect()?;
        card::select(&mut *transport)?;
        let verified = card::verify_pin(&mut *transport, &pin);
        self.shared.note_refusal(&pin, verified)?;
        Ok(Box::new(PivSession {
            transport,
            pin,
            shared: Arc::clone(&self.shared),
        }))
    }
}

impl Shared {
    /// Reads the PIN file, and refuses at once a PIN the card has refused before.
    fn load_pin(&self) -> Result<Pin, HsmError> {
        let pin = pin::read(&self.pin_file)?;
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match &*refused {
            Some((fingerprint, error)) if *fingerprint == pin.fingerprint() => {
                tracing::debug!(key = %self.name, "not presenting a PIN the card refused");
                Err(error.clone())
            }
            _ => Ok(pin),
        }
    }

    /// Remembers a PIN the card refused, so it is never presented again.
    fn note_refusal<T>(&self, pin: &Pin, result: Result<T, HsmError>) -> Result<T, HsmError> {
        if let Err(error @ (HsmError::WrongPin { .. } | HsmError::PinBlocked { .. })) = &result {
            tracing::warn!(
                key = %self.name,
                %error,
                "PIN refused; vouch will not present it again until the PIN file changes"
            );
            let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
            *refused = Some((pin.fingerprint(), error.clone()));
        }
        result
    }
}

/// One signer thread's connection to the card.
struct PivSession {
    transport: Box<dyn Transport>,
    pin: Pin,
    shared: Arc<Shared>,
}

impl SigningSession for PivSession {
    fn sign_rs256(&mut self, signing_input: &[u8]) -> Result<Vec<u8>, HsmError> {
        let block = pkcs1_sha256_block(signing_input);
        let (pin, slot) = (&self.pin, self.shared.slot);
        let signed = self.transport.exclusive(&mut |t| {
            card::verify_pin(t, pin)?;
            card::sign_rsa_2048(t, slot, &block)
        });
        let signature = self.shared.note_refusal(pin, signed)?;

        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.shared.rsa_public_key)
            .verify(signing_input, &signature)
            .map_err(|_| HsmError::KeyMismatch {
                device: self.shared.name.clone(),
            })?;
        Ok(signature)
    }
}

/// EMSA-PKCS1-v1_5 encoding of SHA-256(`message`) for a 2048-bit modulus (RFC 8017 §9.2):
/// `00 01 FF… 00 DigestInfo`.
pub fn pkcs1_sha256_block(message: &[u8]) -> [u8; RSA_2048_LEN] {
    /// DER of `DigestInfo { sha256, NULL }` up to the hash (RFC 8017 §9.2 note 1).
    const SHA256_DIGEST_INFO: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let hash = digest::digest(&digest::SHA256, message);
    let mut block = [0xFF; RSA_2048_LEN];
    let tail = SHA256_DIGEST_INFO.len() + hash.as_ref().len();
    block[0] = 0x00;
    block[1] = 0x01;
    block[RSA_2048_LEN - tail - 1] = 0x00;
    block[RSA_2048_LEN - tail..RSA_2048_LEN - hash.as_ref().len()]
        .copy_from_slice(&SHA256_DIGEST_INFO);
    block[RSA_2048_LEN - hash.as_ref().len()..].copy_from_slice(hash.as_ref());
    block
}
