//! Hardware backends that hold vouch's token-signing key: PIV cards and tokens reached
//! through PC/SC, and PKCS#11 modules (network HSMs, SoftHSM).
//!
//! The interface is synchronous on purpose. A card or a module blocks for milliseconds per
//! signature, so the appliance calls it only from its own signer threads, never from the
//! async runtime. Each thread opens its own [`SigningSession`], which lets a PKCS#11 module
//! work on several signatures at once while a card, which can do one thing at a time, is
//! given one thread.

use std::path::PathBuf;

pub mod certificate;
pub mod pin;
pub mod piv;
pub mod pkcs11;
#[cfg(feature = "softhsm-fixture")]
pub mod softhsm;

/// A key in hardware that signs tokens, and the certificate published for it.
pub trait SigningKey: Send + Sync {
    /// Where the key lives, for logs and operator messages, e.g.
    /// `pkcs11 token "vouch" key "signing"` or `PIV slot 9c in "Virtual PCD 00 00"`.
    fn name(&self) -> &str;

    /// The DER certificate of the key, published in the JWKS `x5c`.
    fn certificate_der(&self) -> &[u8];

    /// Opens a session for one signer thread. Sessions are independent: a failed one is
    /// dropped and a new one opened when the device is back.
    fn session(&self) -> Result<Box<dyn SigningSession>, HsmError>;
}

/// One thread's handle on a key.
pub trait SigningSession: Send {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a JWS signing input (RS256, RFC 7518 §3.3).
    fn sign_rs256(&mut self, signing_input: &[u8]) -> Result<Vec<u8>, HsmError>;
}

/// Why a backend could not sign, with the device and the code it answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The PC/SC service or a reader failed; `code` is the PC/SC return code.
    #[error("PC/SC reader {reader:?}: {detail} (PC/SC code {code:#010x})")]
    Pcsc {
        reader: String,
        code: u32,
        detail: String,
    },
    /// The card answered a command with an error status word (ISO 7816-4 §5.6).
    #[error("card in {reader:?} answered {command} with status word {sw:04X}")]
    Card {
        reader: String,
        command: &'static str,
        sw: u16,
    },
    /// The card's answer to a command could not be understood (ISO 7816-4 §5, SP 800-73-4
    /// Part 2 §3): too short, wrong tags, lengths past the end.
    #[error("card in {reader:?} answered {command} with a malformed response: {detail}")]
    Malformed {
        reader: String,
        command: &'static str,
        detail: String,
    },
    /// The card signed, but the signature does not verify against the certificate read
    /// from the same slot: the certificate belongs to another key.
    #[error(
        "{device}: the signature does not verify against the slot's certificate; \
             write the certificate of this slot's key to the card"
    )]
    KeyMismatch { device: String },
    /// The PIN was refused; the card counts the try.
    #[error("{device}: the PIN was refused, {retries_left} tries left before the card locks")]
    WrongPin { device: String, retries_left: u8 },
    /// The PIN is blocked; only the PUK or the card's owner can unblock it.
    #[error("{device}: the PIN is blocked; unblock it with the PUK before vouch can sign")]
    PinBlocked { device: String },
    /// A PKCS#11 function returned an error value (PKCS#11 v2.40 §11).
    #[error("PKCS#11 {slot}: {function} returned {rv}")]
    Pkcs11 {
        slot: String,
        function: &'static str,
        rv: String,
    },
    /// The PKCS#11 module could not be loaded.
    #[error("PKCS#11 module {path:?} could not be loaded: {detail}")]
    ModuleMissing { path: PathBuf, detail: String },
    /// The device holds no key or certificate by the configured name.
    #[error("{device}: no {what} found; check the configured {what}")]
    NotFound { device: String, what: String },
    /// The PIN file is missing, unreadable or readable by others.
    #[error("PIN file {path:?}: {detail}")]
    PinFile { path: PathBuf, detail: String },
    /// A PKCS#11 token refused the PIN; vouch does not send it again until restarted.
    #[error(
        "{device}: the PIN was refused ({rv}; {retries}); correct the PIN file and restart \
         vouch, which will not try this PIN again"
    )]
    PinRefused {
        device: String,
        rv: String,
        retries: PinRetries,
    },
    /// The certificate for the key could not be read.
    #[error("{device}: certificate unusable: {detail}")]
    Certificate { device: String, detail: String },
    /// The certificate is for another key than the one that signs.
    #[error(
        "{device}: the certificate {subject:?} is not for this key (its public key differs); \
         store the key's own certificate"
    )]
    CertificateMismatch { device: String, subject: String },
    /// The device is out (card removed, module down); vouch retries by itself.
    #[error("{device} is unavailable: {detail}")]
    Unavailable { device: String, detail: String },
}

impl HsmError {
    /// Whether the device may come back by itself (card reinserted, token reconnected), so
    /// the signer should report it unavailable and retry rather than give up.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HsmError::Pcsc { .. } | HsmError::Unavailable { .. } | HsmError::Pkcs11 { .. }
        )
    }
}

/// What a device says of the user PIN's remaining tries. PKCS#11 tells only whether few are
/// left (v2.40 §5.7.2, `CKF_USER_PIN_COUNT_LOW`, `CKF_USER_PIN_FINAL_TRY`,
/// `CKF_USER_PIN_LOCKED`); a PIV card tells the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinRetries {
    /// No failed tries are reported.
    Unknown,
    /// The device counts tries and the count is low.
    Low,
    /// One more wrong PIN locks the device.
    FinalTry,
    /// The PIN is locked.
    Locked,
    /// A device that counts: this many tries are left.
    Left(u8),
}

impl PinRetries {
    /// From the PKCS#11 token flags, the most severe first.
    pub fn from_flags(locked: bool, final_try: bool, count_low: bool) -> PinRetries {
        match (locked, final_try, count_low) {
            (true, _, _) => PinRetries::Locked,
            (_, true, _) => PinRetries::FinalTry,
            (_, _, true) => PinRetries::Low,
            _ => PinRetries::Unknown,
        }
    }
}

impl std::fmt::Display for PinRetries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinRetries::Unknown => f.write_str("no failed tries reported"),
            PinRetries::Low => f.write_str("few tries left"),
            PinRetries::FinalTry => f.write_str("one try left before the PIN locks"),
            PinRetries::Locked => f.write_str("PIN locked"),
            PinRetries::Left(n) => write!(f, "{n} tries left"),
        }
    }
}
