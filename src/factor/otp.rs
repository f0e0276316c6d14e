//! Time-based one-time passwords: RFC 4226 HOTP under RFC 6238's clock.
//!
//! Codes are 6 to 8 digits over HMAC-SHA-1, SHA-256 or SHA-512 with a 30-second step, and
//! are accepted one step either side of now. A code is compared in constant time, and each
//! user's last accepted step is remembered so that the same code, or an older one, is never
//! accepted twice.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::{constant_time, hmac};
use serde::{Deserialize, Serialize};

pub const STEP_SECS: i64 = 30;
/// Steps accepted either side of the current one.
pub const WINDOW_STEPS: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Algorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Algorithm::Sha256 => hmac::HMAC_SHA256,
            Algorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// The seed length RFC 6238's reference vectors use for each hash.
    pub fn seed_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

/// The parameters a user's authenticator app was set up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    pub digits: u8,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
        }
    }
}

/// The dynamically truncated 31-bit value of RFC 4226 §5.3.
pub fn truncated(secret: &[u8], counter: u64, algorithm: Algorithm) -> u32 {
    let key = hmac::Key::new(algorithm.hmac(), secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bytes = [
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ];
    u32::from_be_bytes(bytes)
}

/// The HOTP code for `counter`, zero-padded to `digits`.
pub fn hotp(secret: &[u8], counter: u64, algorithm: Algorithm, digits: u8) -> String {
    let modulus = 10u32.pow(u32::from(digits.clamp(6, 8)));
    let code = truncated(secret, counter, algorithm) % modulus;
    format!("{code:0width$}", width = usize::from(digits.clamp(6, 8)))
}

/// The RFC 6238 time step of a Unix time.
pub fn step_at(unix_time: i64) -> i64 {
    unix_time.div_euclid(STEP_SECS)
}

pub fn totp(secret: &[u8], params: TotpParams, unix_time: i64) -> String {
    let step = u64::try_from(step_at(unix_time)).unwrap_or(0);
    hotp(secret, step, params.algorithm, params.digits)
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtpError {
    #[error("the code must be {digits} digits")]
    Format { digits: u8 },
    #[error("the code is wrong or expired")]
    Mismatch,
    #[error("the code was already used")]
    Replayed,
}

/// The step a code matches within the window, compared in constant time.
pub fn matching_step(
    secret: &[u8],
    params: TotpParams,
    code: &str,
    unix_time: i64,
) -> Result<i64, OtpError> {
    let well_formed =
        code.len() == usize::from(params.digits) && code.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(OtpError::Format {
            digits: params.digits,
        });
    }
    let now = step_at(unix_time);
    let mut found = None;
    for step in (now - WINDOW_STEPS)..=(now + WINDOW_STEPS) {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let expected = hotp(secret, counter, params.algorithm, params.digits);
        if constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok() {
            found = Some(step);
        }
    }
    found.ok_or(OtpError::Mismatch)
}

/// The last step accepted for each user, so that no code is accepted twice.
#[derive(Debug, Default)]
pub struct UsedSteps {
    last: Mutex<Spent>,
}

#[derive(Debug, Default)]
struct Spent {
    by_user: HashMap<String, i64>,
    /// How many users may be remembered before steps too old to matter are swept out; it
    /// doubles with what a sweep leaves, so a sweep costs O(1) a claim over time.
    sweep_at: usize,
}

/// The fewest users remembered before a sweep.
const SWEEP_AT: usize = 100_000;

impl UsedSteps {
    /// Steps spent before a restart, as the spent-code log kept them.
    pub fn restore(by_user: HashMap<String, i64>) -> UsedSteps {
        UsedSteps {
            last: Mutex::new(Spent {
                by_user,
                sweep_at: 0,
            }),
        }
    }

    /// Records `step` as used by `user` unless that step or a later one already was.
    pub fn claim(&self, user: &str, step: i64, now: i64) -> Result<(), OtpError> {
        let mut spent = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if spent.by_user.get(user).is_some_and(|&used| used >= step) {
            return Err(OtpError::Replayed);
        }
        if spent.by_user.len() >= spent.sweep_at.max(SWEEP_AT) {
            let oldest_live = step_at(now) - WINDOW_STEPS;
            spent.by_user.retain(|_, used| *used >= oldest_live);
            spent.sweep_at = spent.by_user.len() * 2;
        }
        spent.by_user.insert(user.to_owned(), step);
        Ok(())
    }
}

/// RFC 4648 base32 without padding, as authenticator apps read seeds.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let symbols = (chunk.len() * 8).div_ceil(5);
        for i in 0..symbols {
            let index = (bits >> (35 - 5 * i)) & 0x1f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Key URI an authenticator app scans to learn a seed.
pub fn otpauth_uri(issuer: &str, account: &str, seed: &[u8], params: TotpParams) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm={alg}\
&digits={digits}&period={STEP_SECS}",
        account = percent_encode(account),
        secret = base32(seed),
        alg = params.algorithm.name(),
        digits = params.digits,
    )
}

/// `text` as a QR code drawn with Unicode half blocks, for a terminal.
pub fn terminal_qr(text: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .map_err(|e| format!("cannot draw a QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn base32_matches_rfc4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn otpauth_uri_carries_seed_and_parameters_and_escapes_labels() {
        let params = TotpParams {
            algorithm: Algorithm::Sha256,
            digits: 8,
        };
        let uri = otpauth_uri("Contoso MFA", "a/b", b"foobar", params);
        assert_eq!(
            uri,
            "otpauth://totp/Contoso%20MFA:a%2Fb?secret=MZXW6YTBOI&issuer=Contoso%20MFA\
&algorithm=SHA256&digits=8&period=30"
        );
    }

    #[test]
    fn terminal_qr_draws_a_square_of_blocks() {
        let qr = terminal_qr("otpauth://totp/x:y?secret=MZXW6").expect("drawable");
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 10);
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count())
        );
    }

    #[test]
    fn codes_are_zero_padded_to_their_digit_count() {
        // RFC 6238 Appendix B, SHA-1 at 1111111109: 07081804.
        let p = TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 8,
        };
        assert_eq!(totp(SEED, p, 1_111_111_109), "07081804");
    }

    #[test]
    fn accepts_one_step_either_side_and_no_further() {
        let p = TotpParams::default();
        let now = 1_700_000_000;
        for offset in [-1, 0, 1] {
            let code = totp(SEED, p, now + offset * STEP_SECS);
            assert_eq!(
                matching_step(SEED, p, &code, now),
                Ok(step_at(now) + offset)
            );
        }
        for offset in [-2, 2] {
            let code = totp(SEED, p, now + offset * STEP_SECS);
            assert_eq!(matching_step(SEED, p, &code, now), Err(OtpError::Mismatch));
        }
    }

    #[test]
    fn refuses_codes_of_the_wrong_shape() {
        let p = TotpParams::default();
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            " 123456",
            "１２３４５６",
            "-12345",
        ] {
            assert_eq!(
                matching_step(SEED, p, bad, 0),
                Err(OtpError::Format { digits: 6 }),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_step_once_used_is_refused_as_are_older_ones() {
        let used = UsedSteps::default();
        assert_eq!(used.claim("u", 10, 300), Ok(()));
        assert_eq!(used.claim("u", 10, 300), Err(OtpError::Replayed));
        assert_eq!(used.claim("u", 9, 300), Err(OtpError::Replayed));
        assert_eq!(used.claim("other", 10, 300), Ok(()));
        assert_eq!(used.claim("u", 11, 330), Ok(()));
    }

    #[test]
    fn works_before_the_epoch_without_panicking() {
        let p = TotpParams::default();
        assert!(matching_step(SEED, p, "000000", -100).is_err());
    }
}
