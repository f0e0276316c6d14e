//! Where a device's PIN comes from: a file only the service can read, or a systemd
//! credential (`LoadCredential=`, read from `$CREDENTIALS_DIRECTORY`).
//!
//! Never the command line, the environment or a log line: those are visible to other users
//! of the machine (`/proc/PID/cmdline`, `/proc/PID/environ`) or outlive the process. A PIN
//! file that its group or others could read is refused, not used, because the PIN guards the
//! key Entra trusts.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::HsmError;

/// The longest PIN accepted; PKCS#11 tokens and PIV cards use far fewer bytes.
const MAX_PIN_BYTES: usize = 256;

/// Where to read a PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file of mode 0600 or 0400 holding the PIN, one trailing newline allowed.
    File(PathBuf),
    /// A systemd credential by name: `$CREDENTIALS_DIRECTORY/NAME`.
    Credential(String),
}

impl PinSource {
    /// Reads the PIN, refusing files that others could read.
    pub fn read(&self) -> Result<SecretString, HsmError> {
        let path = self.path()?;
        read_pin_file(&path)
    }

    /// The file the PIN is read from.
    pub fn path(&self) -> Result<PathBuf, HsmError> {
        match self {
            PinSource::File(path) => Ok(path.clone()),
            PinSource::Credential(name) => {
                let refused = |detail: &str| HsmError::PinFile {
                    path: PathBuf::from(format!("$CREDENTIALS_DIRECTORY/{name}")),
                    detail: detail.to_owned(),
                };
                if !is_credential_name(name) {
                    return Err(refused(
                        "a credential name is one file name: letters, digits, '.', '-', '_'",
                    ));
                }
                let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
                    return Err(refused(
                        "CREDENTIALS_DIRECTORY is not set; run vouch under systemd with \
                         LoadCredential=NAME:/path/to/pin, or configure a pin_file",
                    ));
                };
                Ok(Path::new(&dir).join(name))
            }
        }
    }
}

fn is_credential_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn read_pin_file(path: &Path) -> Result<SecretString, HsmError> {
    let refused = |detail: String| HsmError::PinFile {
        path: path.to_owned(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| refused(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(refused("is not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refused(format!(
            "is readable or writable by its group or others (mode {mode:04o}); \
             run `chmod 600` on it so that only the service can read the PIN"
        )));
    }
    if meta.len() > MAX_PIN_BYTES as u64 + 2 {
        return Err(refused(format!(
            "is {} bytes; a PIN file holds only the PIN",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| refused(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| refused("is not UTF-8 text".into()))?;
    let pin = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if pin.is_empty() {
        return Err(refused("is empty; write the PIN into it".into()));
    }
    if pin.contains(['\n', '\r', '\0']) {
        return Err(refused(
            "holds more than one line; write only the PIN".into(),
        ));
    }
    Ok(SecretString::from(pin.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn pin_file(dir: &Path, bytes: &[u8], mode: u32) -> PathBuf {
        let path = dir.join("pin");
        std::fs::write(&path, bytes).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vouch-pin-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn an_owner_only_pin_file_is_read_without_its_newline() {
        let dir = tempdir();
        let path = pin_file(&dir, b"123456\n", 0o600);
        let pin = PinSource::File(path).read().expect("pin");
        assert_eq!(pin.expose_secret(), "123456");
    }

    #[test]
    fn a_pin_file_others_can_read_is_refused_and_the_fix_is_named() {
        let dir = tempdir();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            let path = pin_file(&dir, b"123456", mode);
            let err = PinSource::File(path).read().unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{mode:o}: {err}");
            assert!(!err.contains("123456"), "the PIN is never in a message");
        }
    }

    #[test]
    fn empty_multiline_binary_and_missing_pin_files_are_refused() {
        let dir = tempdir();
        for bytes in [&b""[..], b"\n", b"1234\n5678", b"\xff\xfe", &[b'1'; 600]] {
            let path = pin_file(&dir, bytes, 0o600);
            assert!(PinSource::File(path).read().is_err(), "{bytes:?}");
        }
        let missing = PinSource::File(dir.join("absent")).read().unwrap_err();
        assert!(matches!(missing, HsmError::PinFile { .. }));
        let directory = PinSource::File(dir.clone()).read().unwrap_err();
        assert!(
            directory.to_string().contains("regular file"),
            "{directory}"
        );
    }

    #[test]
    fn credential_names_that_leave_the_credentials_directory_are_refused() {
        for name in ["", "..", ".", "../pin", "a/b", "pin\n"] {
            let err = PinSource::Credential(name.into()).path().unwrap_err();
            assert!(
                err.to_string().contains("credential name"),
                "{name:?}: {err}"
            );
        }
    }
}
