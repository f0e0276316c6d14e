//! The places the token-signing keys live, as `[[signer.backend]]` names them.
//!
//! A backend is a key store plus the number of signer threads it gets. Every backend of an
//! appliance holds the same keys (two tokens with one key, say) and they sign side by side.
//! The software backend keeps keys in the state directory and is the default; a device
//! backend reaches keys through [`vouch_hsm`]. A new kind of device is one [`Device`] variant
//! and one arm in [`BackendConfig::open`] that returns its [`KeyStore`].
//!
//! ```toml
//! [[signer.backend]]
//! kind = "pkcs11"
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token = "vouch"             # the token's label; slot ids move
//! key_label = "signing"       # or key_id = "01" (hex)
//! pin_file = "/etc/vouch/hsm.pin"   # mode 0600, or pin_credential = "hsm-pin" (systemd)
//! # certificate = "signing.pem"     # when the token holds no certificate for the key
//! workers = 4                 # sessions, one per signer thread
//!
//! [[signer.backend]]
//! kind = "piv"                # a PIV card or token through pcscd (feature `pcsc`)
//! reader = "Yubico YubiKey"   # the reader's name or its start; the first PIV card if unset
//! slot = "9c"                 # the key's slot; its certificate is read from the card
//! pin_file = "/etc/vouch/piv.pin"
//! workers = 1                 # a card signs one signature at a time
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use vouch_hsm::pin::PinSource;
use vouch_hsm::pkcs11::{KeyRef, Pkcs11Config, Pkcs11Token};
use vouch_hsm::{HsmError, SigningKey, SigningSession};

use super::keyring::{DEFAULT_OVERLAP_SECS, KeyLocation, RingError};
use super::{PublishedKey, SignError, TokenSigner};
use crate::provision::{self, ProvisionError};

/// `[[signer.backend]]` as written in the configuration.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawBackend {
    Software {
        workers: Option<usize>,
    },
    Pkcs11 {
        module: PathBuf,
        token: String,
        key_label: Option<String>,
        key_id: Option<String>,
        pin_file: Option<PathBuf>,
        pin_credential: Option<String>,
        certificate: Option<PathBuf>,
        workers: Option<usize>,
    },
    Piv {
        reader: Option<String>,
        slot: Option<String>,
        pin_file: Option<PathBuf>,
        pin_credential: Option<String>,
        workers: Option<usize>,
    },
}

/// The checked signer backends and rotation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    pub backends: Vec<BackendConfig>,
    /// How long a key is published before it signs and after it stops.
    pub overlap_secs: i64,
}

/// One backend: where its keys are and how many threads sign with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub device: Device,
    pub workers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// RSA keys in `STATE_DIR/signing`.
    Software,
    /// A PKCS#11 token; `key` is the first key of a new key ring.
    Pkcs11 {
        config: Pkcs11Config,
        key: KeyRef,
        certificate: Option<PathBuf>,
    },
    /// A PIV card; `config.slot` holds the first key of a new key ring.
    Piv { config: vouch_hsm::piv::PivConfig },
}

impl Signing {
    /// Checks `[signer]`'s backends and overlap; `workers` is the `[signer]` default. Errors
    /// name the key under `signer` and what would be valid.
    pub fn from_raw(
        raw: Option<Vec<RawBackend>>,
        overlap_hours: Option<u64>,
        workers: usize,
        resolve: &dyn Fn(PathBuf) -> PathBuf,
    ) -> Result<Signing, (String, String)> {
        let overlap_hours = overlap_hours.unwrap_or(DEFAULT_OVERLAP_SECS as u64 / 3600);
        if !(1..=24 * 30).contains(&overlap_hours) {
            return Err((
                "rotation_overlap_hours".into(),
                "must be 1 to 720; Entra caches the JWKS for up to 48 hours".into(),
            ));
        }
        let raw = raw.unwrap_or_default();
        if raw.is_empty() {
            return Ok(Signing {
                backends: vec![BackendConfig {
                    device: Device::Software,
                    workers,
                }],
                overlap_secs: overlap_hours as i64 * 3600,
            });
        }
        let mut backends = Vec::with_capacity(raw.len());
        for (i, b) in raw.into_iter().enumerate() {
            let backend = check_backend(b, workers, resolve)
                .map_err(|(k, p)| (format!("backend[{i}].{k}"), p))?;
            backends.push(backend);
        }
        let software = backends.iter().filter(|b| b.device == Device::Software);
        if software.count() > 0 && backends.len() > 1 {
            return Err((
                "backend".into(),
                "a software backend cannot be listed with others: a key is either in the \
                 state directory or on devices"
                    .into(),
            ));
        }
        Ok(Signing {
            backends,
            overlap_secs: overlap_hours as i64 * 3600,
        })
    }
}

fn check_backend(
    raw: RawBackend,
    default_workers: usize,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<BackendConfig, (&'static str, String)> {
    let workers = |w: Option<usize>| {
        let w = w.unwrap_or(default_workers);
        if (1..=256).contains(&w) {
            Ok(w)
        } else {
            Err(("workers", "must be 1 to 256".to_owned()))
        }
    };
    match raw {
        RawBackend::Software { workers: w } => Ok(BackendConfig {
            device: Device::Software,
            workers: workers(w)?,
        }),
        RawBackend::Pkcs11 {
            module,
            token,
            key_label,
            key_id,
            pin_file,
            pin_credential,
            certificate,
            workers: w,
        } => {
            if token.is_empty() || token.len() > 32 {
                return Err((
                    "token",
                    "give the token's label (1 to 32 characters, PKCS#11 CK_TOKEN_INFO)".into(),
                ));
            }
            let key = key_ref(key_label, key_id)?;
            let pin = pin_source(pin_file, pin_credential, resolve)?;
            Ok(BackendConfig {
                device: Device::Pkcs11 {
                    config: Pkcs11Config {
                        module: resolve(module),
                        token,
                        pin,
                    },
                    key,
                    certificate: certificate.map(resolve),
                },
                workers: workers(w)?,
            })
        }
        RawBackend::Piv {
            reader,
            slot,
            pin_file,
            pin_credential,
            workers: w,
        } => {
            if !cfg!(feature = "pcsc") {
                return Err((
                    "kind",
                    "\"piv\" needs a vouch built with PC/SC support: cargo build --release \
                     --features pcsc (it links libpcsclite; Debian: libpcsclite-dev)"
                        .into(),
                ));
            }
            if reader
                .as_deref()
                .is_some_and(|r| r.is_empty() || r.len() > 200)
            {
                return Err(("reader", "give the reader's name or its start".into()));
            }
            let slot = match slot {
                Some(s) => s.parse().map_err(|e| ("slot", e))?,
                None => vouch_hsm::piv::Slot::default(),
            };
            // The PIV backend takes a credential as a bare name, which it looks up in
            // systemd's $CREDENTIALS_DIRECTORY when the key is opened.
            let pin_file = match pin_source(pin_file, pin_credential, resolve)? {
                PinSource::File(path) => path,
                PinSource::Credential(name) => PathBuf::from(name),
            };
            Ok(BackendConfig {
                device: Device::Piv {
                    config: vouch_hsm::piv::PivConfig {
                        reader,
                        slot,
                        pin_file,
                    },
                },
                workers: workers(w.or(Some(1)))?,
            })
        }
    }
}

/// Where the PIN comes from: exactly one of a file or a systemd credential.
fn pin_source(
    file: Option<PathBuf>,
    credential: Option<String>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<PinSource, (&'static str, String)> {
    match (file, credential) {
        (Some(f), None) => Ok(PinSource::File(resolve(f))),
        (None, Some(c)) if !c.is_empty() && !c.contains('/') => Ok(PinSource::Credential(c)),
        _ => Err((
            "pin_file",
            "give exactly one of pin_file (mode 0600) or pin_credential (a systemd \
             LoadCredential= name); never the PIN itself"
                .into(),
        )),
    }
}

/// A key by exactly one of its label or its hex id.
pub fn key_ref(
    label: Option<String>,
    id: Option<String>,
) -> Result<KeyRef, (&'static str, String)> {
    match (label, id) {
        (Some(l), None) if !l.is_empty() => Ok(KeyRef::Label(l)),
        (None, Some(id)) => parse_hex(&id).map(KeyRef::Id).ok_or((
            "key_id",
            format!("{id:?} is not hex bytes such as \"01\" or \"a0b1\""),
        )),
        _ => Err((
            "key_label",
            "give exactly one of key_label or key_id".into(),
        )),
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_start_matches("0x");
    if text.is_empty() || !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the key set could not be opened or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    #[error(transparent)]
    Device(#[from] HsmError),
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("{backend} holds no {location}: {detail}")]
    WrongPlace {
        backend: String,
        location: String,
        detail: String,
    },
    #[error(
        "{location} on {backend} is key {found}, but the key ring published it as {expected}; \
         put the original key back or stage the new one with `vouch keys stage`"
    )]
    KeyChanged {
        backend: String,
        location: String,
        expected: String,
        found: String,
    },
    #[error("the key ring has no key that signs now; stage one with `vouch keys stage`")]
    NoActiveKey,
}

/// Where keys are loaded from: the state directory or a device.
pub trait KeyStore: Send + Sync {
    /// The store as operators name it, e.g. `pkcs11 token "vouch" in slot 3`.
    fn name(&self) -> String;

    /// The key the configuration names, which starts a new key ring.
    fn configured_key(&self) -> KeyLocation;

    /// The key at `location`, ready to open sessions on.
    fn key(&self, location: &KeyLocation) -> Result<Arc<dyn SigningKey>, KeySetError>;

    /// The certificate (DER) of the key at `location`. A store that can read it without
    /// unlocking the key does, so that looking at a key spends no PIN try.
    fn certificate_der(&self, location: &KeyLocation) -> Result<Vec<u8>, KeySetError> {
        self.key(location).map(|k| k.certificate_der().to_vec())
    }

    /// What `vouch hsm status` shows of the store, as label and value lines.
    fn status(&self) -> Vec<(&'static str, String)>;
}

impl BackendConfig {
    /// Opens the store: for a device, loads its module and logs in.
    pub fn open(&self, state_dir: &Path) -> Result<Arc<dyn KeyStore>, KeySetError> {
        match &self.device {
            Device::Software => Ok(Arc::new(SoftwareStore {
                state_dir: state_dir.to_owned(),
            })),
            Device::Pkcs11 {
                config,
                key,
                certificate,
            } => Ok(Arc::new(Pkcs11Store {
                token: Pkcs11Token::open(config)?,
                key: key.clone(),
                certificate: certificate.clone(),
            })),
            Device::Piv { config } => open_piv(config),
        }
    }
}

#[cfg(feature = "pcsc")]
fn open_piv(config: &vouch_hsm::piv::PivConfig) -> Result<Arc<dyn KeyStore>, KeySetError> {
    Ok(Arc::new(PivStore {
        config: config.clone(),
    }))
}

#[cfg(not(feature = "pcsc"))]
fn open_piv(config: &vouch_hsm::piv::PivConfig) -> Result<Arc<dyn KeyStore>, KeySetError> {
    Err(KeySetError::Device(HsmError::Unavailable {
        device: format!("PIV slot {}", config.slot),
        detail: "this vouch was built without PC/SC support (feature pcsc)".into(),
    }))
}

/// Keys in the slots of one PIV card, reached through pcscd. Each key is opened when the
/// ring names it: that reads the slot's certificate and checks the PIN once.
#[cfg(feature = "pcsc")]
struct PivStore {
    config: vouch_hsm::piv::PivConfig,
}

#[cfg(feature = "pcsc")]
impl PivStore {
    /// The slot a ring entry names: a PIV key is its slot, written as the key's id.
    fn slot(&self, location: &KeyLocation) -> Result<vouch_hsm::piv::Slot, KeySetError> {
        let wrong = |detail: &str| KeySetError::WrongPlace {
            backend: self.name(),
            location: location.to_string(),
            detail: detail.into(),
        };
        let KeyLocation::Device {
            label: None,
            id: Some(slot),
            certificate: None,
        } = location
        else {
            return Err(wrong(
                "a PIV key is named by its slot alone (stage it with `vouch keys stage --id \
                 9d`); the card holds its certificate",
            ));
        };
        slot.parse().map_err(|e: String| wrong(&e))
    }
}

#[cfg(feature = "pcsc")]
impl KeyStore for PivStore {
    fn name(&self) -> String {
        match &self.config.reader {
            Some(reader) => format!("PIV card in {reader:?}"),
            None => "PIV card in the first reader that holds one".into(),
        }
    }

    fn configured_key(&self) -> KeyLocation {
        KeyLocation::Device {
            label: None,
            id: Some(self.config.slot.to_string()),
            certificate: None,
        }
    }

    fn key(&self, location: &KeyLocation) -> Result<Arc<dyn SigningKey>, KeySetError> {
        let config = vouch_hsm::piv::PivConfig {
            slot: self.slot(location)?,
            ..self.config.clone()
        };
        Ok(Arc::new(vouch_hsm::piv::PivKey::open(config)?))
    }

    fn certificate_der(&self, location: &KeyLocation) -> Result<Vec<u8>, KeySetError> {
        use vouch_hsm::piv::{Connector as _, PcscConnector, card};
        let slot = self.slot(location)?;
        let mut transport = PcscConnector::new(self.config.reader.clone()).connect()?;
        card::select(&mut *transport)?;
        Ok(card::read_certificate(&mut *transport, slot)?)
    }

    fn status(&self) -> Vec<(&'static str, String)> {
        match vouch_hsm::piv::status(&self.config) {
            Ok(status) => status
                .to_string()
                .lines()
                .map(|line| ("pc/sc", line.trim().to_owned()))
                .collect(),
            Err(e) => vec![("pc/sc", format!("status unavailable: {e}"))],
        }
    }
}

/// Keys in `STATE_DIR/signing`.
struct SoftwareStore {
    state_dir: PathBuf,
}

impl KeyStore for SoftwareStore {
    fn name(&self) -> String {
        format!(
            "software keys in {}",
            self.state_dir.join("signing").display()
        )
    }

    fn configured_key(&self) -> KeyLocation {
        KeyLocation::Software { dir: String::new() }
    }

    fn key(&self, location: &KeyLocation) -> Result<Arc<dyn SigningKey>, KeySetError> {
        let KeyLocation::Software { dir } = location else {
            return Err(self.wrong_place(location));
        };
        let signer = if dir.is_empty() {
            provision::software_signer(&self.state_dir)?
        } else {
            provision::software_signer_in(&self.state_dir.join("signing").join(dir))?
        };
        Ok(Arc::new(SignerKey::new(
            Arc::new(signer),
            location.to_string(),
        )))
    }

    fn status(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

impl SoftwareStore {
    fn wrong_place(&self, location: &KeyLocation) -> KeySetError {
        KeySetError::WrongPlace {
            backend: self.name(),
            location: location.to_string(),
            detail: "the key ring names a device key but the signer is software; configure \
                     the device as a [[signer.backend]]"
                .into(),
        }
    }
}

/// Keys on one PKCS#11 token.
struct Pkcs11Store {
    token: Pkcs11Token,
    key: KeyRef,
    certificate: Option<PathBuf>,
}

impl KeyStore for Pkcs11Store {
    fn name(&self) -> String {
        format!("pkcs11 {}", self.token.describe())
    }

    fn configured_key(&self) -> KeyLocation {
        let (label, id) = match &self.key {
            KeyRef::Label(l) => (Some(l.clone()), None),
            KeyRef::Id(id) => (None, Some(hex(id))),
        };
        KeyLocation::Device {
            label,
            id,
            certificate: self.certificate.clone(),
        }
    }

    fn key(&self, location: &KeyLocation) -> Result<Arc<dyn SigningKey>, KeySetError> {
        let KeyLocation::Device {
            label,
            id,
            certificate,
        } = location
        else {
            return Err(KeySetError::WrongPlace {
                backend: self.name(),
                location: location.to_string(),
                detail: "the key ring names a software key but the signer is a device; \
                         stage a device key with `vouch keys stage --label` or `--id`"
                    .into(),
            });
        };
        let key =
            key_ref(label.clone(), id.clone()).map_err(|(_, detail)| KeySetError::WrongPlace {
                backend: self.name(),
                location: location.to_string(),
                detail,
            })?;
        let key = self.token.key(&key, certificate.as_deref())?;
        Ok(Arc::new(key))
    }

    fn status(&self) -> Vec<(&'static str, String)> {
        match self.token.status() {
            Ok(s) => vec![
                ("module", format!("{} ({})", s.module.display(), s.library)),
                (
                    "token",
                    format!("{:?} {} {}", s.label, s.manufacturer, s.model),
                ),
                ("serial", s.serial),
                ("slot", s.slot.to_string()),
                ("user PIN", s.pin.to_string()),
            ],
            Err(e) => vec![("token", format!("status unavailable: {e}"))],
        }
    }
}

/// A [`TokenSigner`] as a [`SigningKey`]: its sessions share the signer, which is safe to
/// call from any thread.
pub struct SignerKey {
    signer: Arc<dyn TokenSigner>,
    name: String,
}

impl SignerKey {
    pub fn new(signer: Arc<dyn TokenSigner>, name: String) -> SignerKey {
        SignerKey { signer, name }
    }

    pub fn published(&self) -> &PublishedKey {
        self.signer.published()
    }
}

impl SigningKey for SignerKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn certificate_der(&self) -> &[u8] {
        &self.signer.published().certificate_der
    }

    fn session(&self) -> Result<Box<dyn SigningSession>, HsmError> {
        Ok(Box::new(SignerSession(self.signer.clone())))
    }
}

struct SignerSession(Arc<dyn TokenSigner>);

impl SigningSession for SignerSession {
    fn sign_rs256(&mut self, signing_input: &[u8]) -> Result<Vec<u8>, HsmError> {
        self.0.sign(signing_input).map_err(|e| {
            let (device, detail) = match e {
                SignError::Backend { kid, detail } => (kid, detail),
                other => (self.0.published().kid.clone(), other.to_string()),
            };
            HsmError::Unavailable { device, detail }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Signing, (String, String)> {
        #[derive(Deserialize)]
        struct Raw {
            backend: Option<Vec<RawBackend>>,
            rotation_overlap_hours: Option<u64>,
        }
        let raw: Raw = toml::from_str(text).map_err(|e| ("(toml)".into(), e.to_string()))?;
        let resolve = |p: PathBuf| Path::new("/etc/vouch").join(p);
        Signing::from_raw(raw.backend, raw.rotation_overlap_hours, 2, &resolve)
    }

    const PKCS11: &str = r#"
        [[backend]]
        kind = "pkcs11"
        module = "/usr/lib/softhsm/libsofthsm2.so"
        token = "vouch"
        key_id = "0a1B"
        pin_file = "hsm.pin"
    "#;

    #[test]
    fn a_piv_backend_defaults_to_slot_9c_and_one_worker_or_names_the_missing_build_feature() {
        let parsed = parse(
            r#"
            [[backend]]
            kind = "piv"
            pin_credential = "piv-pin"
        "#,
        );
        if cfg!(feature = "pcsc") {
            let s = parsed.expect("valid");
            let Device::Piv { config } = &s.backends[0].device else {
                panic!("not a PIV backend: {s:?}");
            };
            assert_eq!(config.slot.to_string(), "9c");
            assert_eq!(config.reader, None);
            assert_eq!(config.pin_file, PathBuf::from("piv-pin"));
            assert_eq!(s.backends[0].workers, 1);
        } else {
            let (key, problem) = parsed.expect_err("refused");
            assert_eq!(key, "backend[0].kind");
            assert!(problem.contains("--features pcsc"), "{problem}");
        }
    }

    #[test]
    fn no_backend_is_the_software_signer_with_the_default_workers_and_two_days_overlap() {
        let s = parse("").expect("valid");
        assert_eq!(
            s.backends,
            [BackendConfig {
                device: Device::Software,
                workers: 2
            }]
        );
        assert_eq!(s.overlap_secs, 48 * 3600);
    }

    #[test]
    fn a_pkcs11_backend_reads_its_key_id_as_hex_and_its_pin_file_from_the_config_folder() {
        let s = parse(PKCS11).expect("valid");
        let Device::Pkcs11 { config, key, .. } = &s.backends[0].device else {
            panic!("not pkcs11");
        };
        assert_eq!(key, &KeyRef::Id(vec![0x0a, 0x1b]));
        assert_eq!(config.pin, PinSource::File("/etc/vouch/hsm.pin".into()));
        assert_eq!(config.token, "vouch");
    }

    #[test]
    fn hostile_and_incomplete_backends_name_the_key_and_the_fix() {
        let cases = [
            (
                PKCS11.replace("key_id = \"0a1B\"", ""),
                "backend[0].key_label",
            ),
            (
                PKCS11.replace("key_id = \"0a1B\"", "key_id = \"01\"\nkey_label = \"k\""),
                "backend[0].key_label",
            ),
            (PKCS11.replace("0a1B", "xyz"), "backend[0].key_id"),
            (PKCS11.replace("0a1B", "abc"), "backend[0].key_id"),
            (
                PKCS11.replace("pin_file = \"hsm.pin\"", ""),
                "backend[0].pin_file",
            ),
            (
                PKCS11.replace(
                    "pin_file = \"hsm.pin\"",
                    "pin_file = \"a\"\npin_credential = \"b\"",
                ),
                "backend[0].pin_file",
            ),
            (
                PKCS11.replace("token = \"vouch\"", "token = \"\""),
                "backend[0].token",
            ),
            (
                PKCS11.replace("vouch\"", &format!("{}\"", "x".repeat(40))),
                "backend[0].token",
            ),
            (format!("{PKCS11}workers = 0"), "backend[0].workers"),
            (
                format!("{PKCS11}[[backend]]\nkind = \"software\""),
                "backend",
            ),
            (
                "rotation_overlap_hours = 0".into(),
                "rotation_overlap_hours",
            ),
        ];
        for (text, key) in cases {
            let (k, problem) = parse(&text).expect_err(&text);
            assert_eq!(k, key, "{text}: {problem}");
            assert!(!problem.is_empty());
        }
        for text in [
            "[[backend]]\nkind = \"floppy\"",
            "[[backend]]\nkind = \"software\"\nmodule = \"x\"",
            &format!("{PKCS11}pin = \"123456\""),
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
