//! Helpers for the PIV tests: the emulated card reached in-process, PIN files, and
//! checking a signature against a certificate.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use vouch_hsm::HsmError;
use vouch_hsm::piv::transport::{ExclusiveWork, Transport};
use vouch_hsm::piv::{Connector, PivConfig, Slot};
use vouch_piv_sim::SimCard;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The PIN the tests provision their cards with.
pub const PIN: &str = "246810";

/// The emulated card, reached without pcscd; `present` plays the reader's card switch.
#[derive(Clone)]
pub struct InProcess {
    pub card: Arc<SimCard>,
    pub present: Arc<AtomicBool>,
    /// VERIFY commands that carried a PIN, i.e. tries presented to the card.
    pub pins_presented: Arc<AtomicUsize>,
}

impl InProcess {
    pub fn provisioned() -> (InProcess, vouch_piv_sim::Provisioned) {
        let card = SimCard::start();
        let provisioned = card.provision(PIN).unwrap();
        let link = InProcess {
            card: Arc::new(card),
            present: Arc::new(AtomicBool::new(true)),
            pins_presented: Arc::new(AtomicUsize::new(0)),
        };
        (link, provisioned)
    }

    pub fn pins_presented(&self) -> usize {
        self.pins_presented.load(Ordering::SeqCst)
    }
}

impl Transport for InProcess {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, HsmError> {
        if !self.present.load(Ordering::SeqCst) {
            return Err(HsmError::Unavailable {
                device: "in-process card".into(),
                detail: "removed".into(),
            });
        }
        if apdu.starts_with(&[0x00, 0x20, 0x00, 0x80]) && apdu.len() > 5 {
            self.pins_presented.fetch_add(1, Ordering::SeqCst);
        }
        Ok(self.card.transmit(apdu))
    }

    fn reader(&self) -> &str {
        "in-process card"
    }

    fn exclusive(&mut self, work: &mut ExclusiveWork<'_>) -> Result<Vec<u8>, HsmError> {
        work(self)
    }
}

impl Connector for InProcess {
    fn connect(&self) -> Result<Box<dyn Transport>, HsmError> {
        if !self.present.load(Ordering::SeqCst) {
            return Err(HsmError::Unavailable {
                device: "in-process card".into(),
                detail: "no card".into(),
            });
        }
        Ok(Box::new(self.clone()))
    }
}

/// A PIN file holding `pin` with `mode`, in a new directory.
pub fn pin_file(pin: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("piv-pin");
    write_pin(&path, pin, mode);
    (dir, path)
}

pub fn write_pin(path: &Path, pin: &str, mode: u32) {
    std::fs::write(path, format!("{pin}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn config(reader: Option<&str>, pin_file: &Path) -> PivConfig {
    PivConfig {
        reader: reader.map(str::to_owned),
        slot: Slot::SIGNATURE,
        pin_file: pin_file.to_owned(),
    }
}

/// Checks an RS256 signature against the RSA key of a DER certificate.
pub fn verify_rs256(certificate_der: &[u8], message: &[u8], signature: &[u8]) {
    let (_, cert) = X509Certificate::from_der(certificate_der).unwrap();
    let key = &cert.public_key().subject_public_key.data;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
        .verify(message, signature)
        .expect("the signature verifies against the certificate");
}
