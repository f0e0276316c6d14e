//! PKCS#11 modules (network HSMs, SoftHSM) through the `cryptoki` crate.
//!
//! The module is loaded at run time (dlopen), so vouch builds and runs without it and fails
//! at start with the module's path when it is missing. A module is loaded and initialised
//! once per process (PKCS#11 v2.40 §5.4: `C_Initialize` is called once per application) and
//! kept for the life of the process; every key on it shares that context.
//!
//! Rules:
//! - The token is chosen by label, never by slot id: SoftHSM and some HSMs renumber slots.
//! - Each signer thread opens its own session (§5.6), so a module signs on as many threads as
//!   it has cores or connections; handles are looked up per session.
//! - The PIN is read once at start from a file or a systemd credential. A PIN the token
//!   refuses is remembered and never sent again, so the appliance's own retries cannot lock
//!   the token; fixing the PIN takes a restart.
//! - Signatures are `CKM_SHA256_RSA_PKCS` (RSASSA-PKCS1-v1_5 with SHA-256, RS256).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use crate::certificate::CertificateInfo;
use crate::pin::PinSource;
use crate::{HsmError, PinRetries, SigningKey, SigningSession};

/// Where a token lives and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// The module's shared library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token, PKCS#11 §3.2 `CK_TOKEN_INFO`).
    pub token: String,
    pub pin: PinSource,
}

/// A key on a token, by its `CKA_LABEL` or its `CKA_ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyRef {
    Label(String),
    Id(Vec<u8>),
}

impl KeyRef {
    fn attribute(&self) -> Attribute {
        match self {
            KeyRef::Label(label) => Attribute::Label(label.as_bytes().to_vec()),
            KeyRef::Id(id) => Attribute::Id(id.clone()),
        }
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Label(label) => write!(f, "label {label:?}"),
            KeyRef::Id(id) => {
                f.write_str("id ")?;
                id.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// An RSA modulus and public exponent, big-endian.
type RsaNumbers = (Vec<u8>, Vec<u8>);

/// A token found and logged in to once, from which keys are taken.
#[derive(Clone)]
pub struct Pkcs11Token {
    inner: Arc<Token>,
}

struct Token {
    module: PathBuf,
    context: Pkcs11,
    slot: Slot,
    label: String,
    pin: SecretString,
    /// The PIN refusal, once the token has refused it; no further login is tried.
    refused: Mutex<Option<HsmError>>,
}

/// What `vouch hsm status` shows of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    pub module: PathBuf,
    pub library: String,
    pub slot: u64,
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub pin: PinRetries,
}

impl Pkcs11Token {
    /// Loads the module, finds the token by label, reads the PIN and logs in once to check it.
    pub fn open(config: &Pkcs11Config) -> Result<Pkcs11Token, HsmError> {
        let context = module(&config.module)?;
        let slot = find_token(&context, &config.module, &config.token)?;
        let token = Token {
            module: config.module.clone(),
            context,
            slot,
            label: config.token.clone(),
            pin: config.pin.read()?,
            refused: Mutex::new(None),
        };
        token.logged_in()?;
        Ok(Pkcs11Token {
            inner: Arc::new(token),
        })
    }

    /// `token "LABEL" in slot N`, as messages name it.
    pub fn describe(&self) -> String {
        self.inner.describe()
    }

    /// The key by label or id, with its certificate from the token or, when the token holds
    /// none, from `certificate_file`. The certificate must be for the key.
    pub fn key(
        &self,
        key: &KeyRef,
        certificate_file: Option<&Path>,
    ) -> Result<Pkcs11Key, HsmError> {
        let token = &self.inner;
        let session = token.logged_in()?;
        let handle = token.find_one(&session, ObjectClass::PRIVATE_KEY, key, "private key")?;
        let (modulus, exponent) = token.public_numbers(&session, handle, key)?;
        let name = format!("pkcs11 {} key {key}", token.describe());
        let certificate = match token.certificate_on_token(&session, handle, key)? {
            Some(der) => {
                CertificateInfo::from_der(&der).map_err(|detail| HsmError::Certificate {
                    device: name.clone(),
                    detail: format!("the token's certificate: {detail}"),
                })?
            }
            None => match certificate_file {
                Some(path) => CertificateInfo::from_pem_file(path).map_err(|detail| {
                    HsmError::Certificate {
                        device: name.clone(),
                        detail: format!("{}: {detail}", path.display()),
                    }
                })?,
                None => {
                    return Err(HsmError::NotFound {
                        device: name,
                        what: "certificate (store one on the token with the key's id or \
                               label, or configure a certificate file)"
                            .into(),
                    });
                }
            },
        };
        if !certificate.matches(&modulus, &exponent) {
            return Err(HsmError::CertificateMismatch {
                device: name,
                subject: certificate.subject,
            });
        }
        Ok(Pkcs11Key {
            token: token.clone(),
            key: key.clone(),
            name,
            certificate,
        })
    }

    /// The token's identity and PIN state as the module reports them.
    pub fn status(&self) -> Result<TokenStatus, HsmError> {
        let token = &self.inner;
        let library = token
            .context
            .get_library_info()
            .map_err(|e| token.error("C_GetInfo", e))?;
        let info = token
            .context
            .get_token_info(token.slot)
            .map_err(|e| token.error("C_GetTokenInfo", e))?;
        Ok(TokenStatus {
            module: token.module.clone(),
            library: format!(
                "{} {} {}",
                library.manufacturer_id(),
                library.library_description(),
                library.library_version()
            ),
            slot: token.slot.id(),
            label: info.label().to_owned(),
            manufacturer: info.manufacturer_id().to_owned(),
            model: info.model().to_owned(),
            serial: info.serial_number().to_owned(),
            pin: PinRetries::from_flags(
                info.user_pin_locked(),
                info.user_pin_final_try(),
                info.user_pin_count_low(),
            ),
        })
    }
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A private key on a token with the certificate published for it.
pub struct Pkcs11Key {
    token: Arc<Token>,
    key: KeyRef,
    name: String,
    certificate: CertificateInfo,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Pkcs11Key {
    pub fn certificate(&self) -> &CertificateInfo {
        &self.certificate
    }
}

impl SigningKey for Pkcs11Key {
    fn name(&self) -> &str {
        &self.name
    }

    fn certificate_der(&self) -> &[u8] {
        &self.certificate.der
    }

    fn session(&self) -> Result<Box<dyn SigningSession>, HsmError> {
        let session = self.token.logged_in()?;
        let key =
            self.token
                .find_one(&session, ObjectClass::PRIVATE_KEY, &self.key, "private key")?;
        Ok(Box::new(Pkcs11Session {
            token: self.token.clone(),
            session,
            key,
        }))
    }
}

struct Pkcs11Session {
    token: Arc<Token>,
    session: Session,
    key: ObjectHandle,
}

impl SigningSession for Pkcs11Session {
    fn sign_rs256(&mut self, signing_input: &[u8]) -> Result<Vec<u8>, HsmError> {
        self.session
            .sign(&Mechanism::Sha256RsaPkcs, self.key, signing_input)
            .map_err(|e| self.token.error("C_Sign", e))
    }
}

impl Token {
    fn describe(&self) -> String {
        format!("token {:?} in slot {}", self.label, self.slot.id())
    }

    /// A new session, logged in unless another session of this process already is.
    fn logged_in(&self) -> Result<Session, HsmError> {
        let session = self
            .context
            .open_ro_session(self.slot)
            .map_err(|e| self.error("C_OpenSession", e))?;
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &*refused {
            return Err(e.clone());
        }
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => {
                let e = self.error("C_Login", e);
                if matches!(e, HsmError::PinRefused { .. } | HsmError::PinBlocked { .. }) {
                    *refused = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    fn find_one(
        &self,
        session: &Session,
        class: ObjectClass,
        key: &KeyRef,
        what: &str,
    ) -> Result<ObjectHandle, HsmError> {
        let template = [Attribute::Class(class), key.attribute()];
        let found = session
            .find_objects(&template)
            .map_err(|e| self.error("C_FindObjects", e))?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(HsmError::NotFound {
                device: format!("pkcs11 {}", self.describe()),
                what: format!("{what} with {key}"),
            }),
            many => Err(HsmError::NotFound {
                device: format!("pkcs11 {}", self.describe()),
                what: format!(
                    "single {what} with {key} ({} match; name the key by id instead)",
                    many.len()
                ),
            }),
        }
    }

    /// The RSA modulus and exponent, from the private key or else from its public key.
    fn public_numbers(
        &self,
        session: &Session,
        private: ObjectHandle,
        key: &KeyRef,
    ) -> Result<RsaNumbers, HsmError> {
        let numbers = |handle| -> Result<Option<RsaNumbers>, HsmError> {
            let wanted = [
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ];
            let attrs = session
                .get_attributes(handle, &wanted)
                .map_err(|e| self.error("C_GetAttributeValue", e))?;
            let (mut n, mut e, mut rsa) = (None, None, None);
            for attr in attrs {
                match attr {
                    Attribute::KeyType(t) => rsa = Some(t == KeyType::RSA),
                    Attribute::Modulus(v) if !v.is_empty() => n = Some(v),
                    Attribute::PublicExponent(v) if !v.is_empty() => e = Some(v),
                    _ => {}
                }
            }
            if rsa == Some(false) {
                return Err(HsmError::NotFound {
                    device: format!("pkcs11 {}", self.describe()),
                    what: format!("RSA key with {key} (the key found is not RSA)"),
                });
            }
            Ok(n.zip(e))
        };
        if let Some(found) = numbers(private)? {
            return Ok(found);
        }
        let public = self.find_one(session, ObjectClass::PUBLIC_KEY, key, "public key")?;
        numbers(public)?.ok_or_else(|| HsmError::NotFound {
            device: format!("pkcs11 {}", self.describe()),
            what: format!("RSA modulus and exponent of the key with {key}"),
        })
    }

    /// The DER certificate stored with the key: by the configured label or id, else by the
    /// private key's `CKA_ID` (how most tools pair a key with its certificate).
    fn certificate_on_token(
        &self,
        session: &Session,
        private: ObjectHandle,
        key: &KeyRef,
    ) -> Result<Option<Vec<u8>>, HsmError> {
        let mut refs = vec![key.clone()];
        let id = session
            .get_attributes(private, &[AttributeType::Id])
            .map_err(|e| self.error("C_GetAttributeValue", e))?;
        if let Some(Attribute::Id(id)) = id.into_iter().next()
            && !id.is_empty()
        {
            refs.push(KeyRef::Id(id));
        }
        for r in refs {
            let template = [Attribute::Class(ObjectClass::CERTIFICATE), r.attribute()];
            let found = session
                .find_objects(&template)
                .map_err(|e| self.error("C_FindObjects", e))?;
            if let Some(handle) = found.first() {
                let value = session
                    .get_attributes(*handle, &[AttributeType::Value])
                    .map_err(|e| self.error("C_GetAttributeValue", e))?;
                if let Some(Attribute::Value(der)) = value.into_iter().next() {
                    return Ok(Some(der));
                }
            }
        }
        Ok(None)
    }

    fn error(&self, function: &'static str, e: CkError) -> HsmError {
        let device = format!("pkcs11 {}", self.describe());
        match e {
            CkError::Pkcs11(rv, _) => match rv {
                RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinExpired => {
                    let pin = self
                        .context
                        .get_token_info(self.slot)
                        .map(|i| {
                            PinRetries::from_flags(
                                i.user_pin_locked(),
                                i.user_pin_final_try(),
                                i.user_pin_count_low(),
                            )
                        })
                        .unwrap_or(PinRetries::Unknown);
                    HsmError::PinRefused {
                        device,
                        rv: ckr_name(&rv),
                        retries: pin,
                    }
                }
                RvError::PinLocked => HsmError::PinBlocked { device },
                rv => HsmError::Pkcs11 {
                    slot: self.describe(),
                    function,
                    rv: ckr_name(&rv),
                },
            },
            other => HsmError::Pkcs11 {
                slot: self.describe(),
                function,
                rv: other.to_string(),
            },
        }
    }
}

/// The module's context, loaded and initialised on first use and kept for the process.
pub(crate) fn module(path: &Path) -> Result<Pkcs11, HsmError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let modules = MODULES.get_or_init(Mutex::default);
    let mut modules = modules.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(context) = modules.get(path) {
        return Ok(context.clone());
    }
    let missing = |detail: String| HsmError::ModuleMissing {
        path: path.to_owned(),
        detail,
    };
    if !path.is_file() {
        return Err(missing(
            "no such file; install the module or correct the module path".into(),
        ));
    }
    let context = Pkcs11::new(path).map_err(|e| missing(e.to_string()))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(missing(format!("C_Initialize failed: {e}"))),
    }
    modules.insert(path.to_owned(), context.clone());
    Ok(context)
}

fn find_token(context: &Pkcs11, module: &Path, label: &str) -> Result<Slot, HsmError> {
    let slots = context
        .get_slots_with_token()
        .map_err(|e| HsmError::Pkcs11 {
            slot: format!("module {}", module.display()),
            function: "C_GetSlotList",
            rv: error_name(&e),
        })?;
    let mut seen = Vec::new();
    for slot in slots {
        let Ok(info) = context.get_token_info(slot) else {
            continue;
        };
        if info.label() == label {
            return Ok(slot);
        }
        if info.token_initialized() {
            seen.push(format!("{:?}", info.label()));
        }
    }
    let seen = if seen.is_empty() {
        "the module shows no initialised token".to_owned()
    } else {
        format!("tokens present: {}", seen.join(", "))
    };
    Err(HsmError::NotFound {
        device: format!("pkcs11 module {}", module.display()),
        what: format!("token labelled {label:?} ({seen})"),
    })
}

fn error_name(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, _) => ckr_name(rv),
        other => other.to_string(),
    }
}

/// `CKR_PIN_INCORRECT` for [`RvError::PinIncorrect`]: the name the PKCS#11 specification and
/// every module's documentation use.
pub fn ckr_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED {code:#x}"),
        RvError::UnknownErrorCode(code) => format!("CKR {code:#x}"),
        rv => {
            let camel = format!("{rv:?}");
            let mut name = String::from("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_are_named_as_the_specification_names_them() {
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(&RvError::DeviceRemoved), "CKR_DEVICE_REMOVED");
        assert_eq!(ckr_name(&RvError::UnknownErrorCode(0x1234)), "CKR 0x1234");
    }

    #[test]
    fn a_missing_module_is_named_by_its_path() {
        let path = Path::new("/nonexistent/libvouch-missing-pkcs11.so");
        let err = module(path).expect_err("refused");
        assert!(matches!(err, HsmError::ModuleMissing { .. }));
        assert!(
            err.to_string()
                .contains("/nonexistent/libvouch-missing-pkcs11.so")
        );
    }

    #[test]
    fn a_file_that_is_not_a_module_is_refused_as_missing() {
        let err = module(Path::new("/etc/hostname")).expect_err("refused");
        assert!(matches!(err, HsmError::ModuleMissing { .. }), "{err}");
    }

    #[test]
    fn key_references_print_as_an_operator_wrote_them() {
        assert_eq!(KeyRef::Id(vec![0x01, 0xab]).to_string(), "id 01ab");
        assert_eq!(KeyRef::Label("k".into()).to_string(), "label \"k\"");
    }
}
