//! The card PIN: read from a file only the service may read, or from a systemd credential,
//! held padded to the card's 8 bytes (SP 800-73-4 Part 2 §2.4.3) and wiped when dropped.
//!
//! Rules: the PIN never comes from the command line or the environment, never appears in a
//! log or an error, and a file that its group or others may read is refused, since anyone
//! who can read it can sign as vouch.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::HsmError;

/// PIV PINs are 6 to 8 characters (SP 800-73-4 Part 2 §2.4.3).
const MIN_LEN: usize = 6;
const MAX_LEN: usize = 8;

/// A PIN as sent to the card: its characters, then `FF` up to 8 bytes.
pub struct Pin(Zeroizing<[u8; MAX_LEN]>);

impl Pin {
    /// Checks and pads a PIN given as bytes.
    pub fn new(pin: &[u8]) -> Result<Pin, String> {
        if !(MIN_LEN..=MAX_LEN).contains(&pin.len()) {
            return Err(format!(
                "the PIN must be {MIN_LEN} to {MAX_LEN} characters, the file holds {}",
                pin.len()
            ));
        }
        if !pin.iter().all(|b| b.is_ascii_graphic()) {
            return Err("the PIN may hold only printable ASCII characters".into());
        }
        let mut padded = Zeroizing::new([0xFF; MAX_LEN]);
        padded[..pin.len()].copy_from_slice(pin);
        Ok(Pin(padded))
    }

    pub(crate) fn padded(&self) -> &[u8] {
        &self.0[..]
    }

    /// A digest that tells two PINs apart without keeping the PIN, used to remember a
    /// refused one.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.padded());
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(..)")
    }
}

/// Where the PIN file is: an absolute path as given, a relative one inside systemd's
/// `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).
pub fn resolve(configured: &Path) -> Result<PathBuf, HsmError> {
    if configured.is_absolute() {
        return Ok(configured.to_owned());
    }
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => Ok(Path::new(&dir).join(configured)),
        None => Err(HsmError::PinFile {
            path: configured.to_owned(),
            detail: "a relative PIN file names a systemd credential, but \
                     CREDENTIALS_DIRECTORY is not set; give an absolute path or load the \
                     credential with LoadCredential="
                .into(),
        }),
    }
}

/// Reads the PIN from `path`, refusing a file its group or others may read.
pub fn read(path: &Path) -> Result<Pin, HsmError> {
    let fail = |detail: String| HsmError::PinFile {
        path: path.to_owned(),
        detail,
    };
    let mut file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot read its metadata: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "mode {:04o} lets others read the PIN; run chmod 0400 and chown it to the \
             service user (uid {})",
            mode & 0o7777,
            meta.uid()
        )));
    }

    let mut raw = Zeroizing::new(Vec::with_capacity(MAX_LEN + 2));
    (&mut file)
        .take(64)
        .read_to_end(&mut raw)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    Pin::new(trim_line_end(&raw)).map_err(fail)
}

fn trim_line_end(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn pin_file(contents: &[u8], mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn a_pin_is_padded_with_ff_to_eight_bytes() {
        let (_dir, path) = pin_file(b"123456\n", 0o400);
        let pin = read(&path).unwrap();
        assert_eq!(pin.padded(), b"123456\xFF\xFF");
    }

    #[test]
    fn a_pin_file_others_can_read_is_refused_without_showing_the_pin() {
        for mode in [0o440, 0o404, 0o644, 0o600 | 0o020] {
            let (_dir, path) = pin_file(b"123456", mode);
            let err = read(&path).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("chmod 0400"), "{text}");
            assert!(!text.contains("123456"), "{text}");
        }
    }

    #[test]
    fn malformed_pins_are_refused_without_showing_them() {
        for bad in [
            &b"12345"[..],
            b"123456789",
            b"12 456",
            b"\xFF\xFF\xFF\xFF\xFF\xFF",
            b"",
        ] {
            let (_dir, path) = pin_file(bad, 0o600);
            let err = read(&path).unwrap_err();
            assert!(matches!(err, HsmError::PinFile { .. }), "{err}");
        }
    }

    #[test]
    fn a_missing_pin_file_names_the_path() {
        let err = read(Path::new("/nonexistent/vouch/pin")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/vouch/pin"), "{err}");
    }

    #[test]
    fn the_debug_form_hides_the_pin() {
        let pin = Pin::new(b"987654").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(..)");
    }
}
