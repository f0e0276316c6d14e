//! The PIV backend: a signing key held in a PIV card or token (NIST SP 800-73-4), reached
//! through PC/SC.
//!
//! The card does the raw RSA-2048 operation in its slot (9c, the digital signature key, by
//! default); the host hashes the JWS signing input, builds the PKCS#1 v1.5 block, and
//! checks every signature against the certificate read from the same slot before it is
//! used.
//!
//! Rules the backend keeps:
//! - The PIN comes from a file only the service can read, or from a systemd credential
//!   ([`pin`]); it is never logged and is wiped when the session holding it ends.
//! - A PIN the card refused is never presented again by vouch: every later session fails
//!   with the same error, without touching the card, until the PIN file's content changes
//!   or the key is opened anew (restart or reload). vouch alone can therefore never block
//!   the card.
//! - A removed card, a reset or a stopped reader is [`HsmError::Unavailable`]: the signer
//!   drops the session, and the next [`SigningKey::session`] reconnects, selects the
//!   application and verifies the PIN again, so signing resumes once the card is back.
//!
//! [`transport`] moves APDUs; [`card`] speaks the PIV commands over any transport, so tests
//! run them against the emulated card in-process or a hostile fake, and the PC/SC
//! transport (feature `pcsc`) is the only part that needs pcscd.
//!
//! [`SigningKey::session`]: crate::SigningKey::session

pub mod card;
mod cert;
mod key;
#[cfg(feature = "pcsc")]
mod pcsc;
pub mod pin;
mod status;
mod tlv;
pub mod transport;

use std::fmt;
use std::path::PathBuf;

pub use card::PinState;
pub use cert::CertificateSummary;
pub use key::{Connector, PivKey, pkcs1_sha256_block};
#[cfg(feature = "pcsc")]
pub use pcsc::{PcscConnector, PcscTransport};
#[cfg(feature = "pcsc")]
pub use status::status;
pub use status::{CardStatus, PivStatus, ReaderStatus, probe};

/// Where the PIV key is and how to unlock it: the `[signer]` entry with `kind = "piv"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivConfig {
    /// The reader's name, or the start of it; without it, the first reader that holds a
    /// card with a PIV application.
    #[serde(default)]
    pub reader: Option<String>,
    /// The key's slot, `9c` unless set.
    #[serde(default)]
    pub slot: Slot,
    /// The file holding the PIN: an absolute path, or a name inside systemd's
    /// `$CREDENTIALS_DIRECTORY`. It must not be readable by group or others.
    pub pin_file: PathBuf,
}

/// A PIV key slot (SP 800-73-4 Part 1 Table 4b): 9a, 9c, 9d, 9e, or a retired key
/// management slot 82 to 95.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Slot(u8);

impl Slot {
    /// The digital signature key, which vouch uses unless told otherwise.
    pub const SIGNATURE: Slot = Slot(0x9C);

    /// The key reference sent as P2 of GENERAL AUTHENTICATE.
    pub fn key_reference(self) -> u8 {
        self.0
    }

    /// The BER-TLV tag of the slot's certificate object (SP 800-73-4 Part 1 Table 3).
    pub fn certificate_object(self) -> [u8; 3] {
        let last = match self.0 {
            0x9A => 0x05,
            0x9C => 0x0A,
            0x9D => 0x0B,
            0x9E => 0x01,
            // Retired key management 82..95 map to 5FC10D..5FC120.
            retired => retired - 0x82 + 0x0D,
        };
        [0x5F, 0xC1, last]
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot::SIGNATURE
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

impl std::str::FromStr for Slot {
    type Err = String;

    fn from_str(s: &str) -> Result<Slot, String> {
        let hex = s.trim_start_matches("0x");
        let byte = u8::from_str_radix(hex, 16)
            .ok()
            .filter(|b| matches!(b, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95));
        match byte {
            Some(b) if hex.len() == 2 => Ok(Slot(b)),
            _ => Err(format!(
                "PIV slot {s:?} is not a key slot; use 9a, 9c, 9d, 9e or 82 to 95"
            )),
        }
    }
}

impl TryFrom<String> for Slot {
    type Error = String;

    fn try_from(s: String) -> Result<Slot, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_their_certificate_objects() {
        let object = |s: &str| s.parse::<Slot>().unwrap().certificate_object();
        assert_eq!(object("9c"), [0x5F, 0xC1, 0x0A]);
        assert_eq!(object("9A"), [0x5F, 0xC1, 0x05]);
        assert_eq!(object("9d"), [0x5F, 0xC1, 0x0B]);
        assert_eq!(object("9e"), [0x5F, 0xC1, 0x01]);
        assert_eq!(object("82"), [0x5F, 0xC1, 0x0D]);
        assert_eq!(object("95"), [0x5F, 0xC1, 0x20]);
    }

    #[test]
    fn non_key_slots_are_refused_with_the_valid_ones_named() {
        for bad in ["9b", "80", "96", "", "9", "09c", "zz", "0x"] {
            let err = bad.parse::<Slot>().unwrap_err();
            assert!(err.contains("use 9a, 9c"), "{bad}: {err}");
        }
    }
}
