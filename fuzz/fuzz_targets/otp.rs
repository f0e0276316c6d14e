//! The check of a user's one-time code, `factor::otp::matching_step`, on arbitrary codes at
//! arbitrary times, for each hash and length a user may be enrolled with.
//!
//! An input is a little-endian Unix time (8 bytes), a byte choosing the hash and the number of
//! digits, and the code as typed. Checks that nothing panics, that a code of the wrong shape is
//! refused as such, and that a code accepted is the HOTP value of a step at most one step from
//! the current one.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use vouch::factor::otp::{self, Algorithm, OtpError, TotpParams, WINDOW_STEPS};

/// RFC 6238 Appendix B's seeds: the ASCII digits repeated to the hash's length.
const SEED: &[u8; 64] = b"1234567890123456789012345678901234567890123456789012345678901234";

fuzz_target!(|data: &[u8]| {
    let Some((time, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((choice, code)) = rest.split_first() else {
        return;
    };
    let Ok(code) = std::str::from_utf8(code) else {
        return;
    };
    let unix_time = i64::from_le_bytes(*time);
    let algorithm =
        [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][usize::from(choice % 3)];
    let params = TotpParams {
        algorithm,
        digits: 6 + (choice / 3) % 3,
    };
    let seed = &SEED[..algorithm.seed_len()];

    let well_formed =
        code.len() == usize::from(params.digits) && code.bytes().all(|b| b.is_ascii_digit());
    match otp::matching_step(seed, params, code, unix_time) {
        Ok(step) => {
            assert!(well_formed);
            assert!((step - otp::step_at(unix_time)).abs() <= WINDOW_STEPS);
            let counter = u64::try_from(step).expect("an accepted step is not negative");
            assert_eq!(otp::hotp(seed, counter, algorithm, params.digits), code);
        }
        Err(OtpError::Format { digits }) => {
            assert!(!well_formed);
            assert_eq!(digits, params.digits);
        }
        Err(OtpError::Mismatch) => assert!(well_formed),
        Err(other) => panic!("matching a code does not track use, yet refused it: {other}"),
    }
});
