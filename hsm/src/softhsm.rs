//! SoftHSM2 tokens made on the fly, for tests and benchmarks (feature `softhsm-fixture`).
//!
//! SoftHSM reads its configuration once, when the process first initialises the module, from
//! `$SOFTHSM2_CONF`. The workspace's `.cargo/config.toml` points that at
//! `target/softhsm/softhsm2.conf`; the first token made creates the file and its token
//! folder. Every [`TestToken`] is a new token with a label of its own in that folder, so
//! tests running at once never share a token, key or PIN state.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use rcgen::{CertificateParams, DistinguishedName, DnType, PublicKeyData, SignatureAlgorithm};
use secrecy::SecretString;

use crate::pin::PinSource;
use crate::pkcs11::{KeyRef, Pkcs11Config, module};

pub const USER_PIN: &str = "246810";
const SO_PIN: &str = "12345678";

/// Where Debian and others install SoftHSM2's module.
pub const MODULE_PATHS: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
];

/// The installed SoftHSM2 module, if any.
pub fn module_path() -> Option<PathBuf> {
    MODULE_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A token of its own, logged in with [`USER_PIN`], whose PIN file is in `dir`.
pub struct TestToken {
    pub module: PathBuf,
    pub label: String,
    pub pin_file: PathBuf,
    session: Session,
}

impl TestToken {
    /// Initialises a new token; `dir` receives its PIN file (mode 0600).
    pub fn create(dir: &Path) -> Result<TestToken, String> {
        let module_path =
            module_path().ok_or("SoftHSM2 is not installed (apt install softhsm2)")?;
        ensure_conf()?;
        let context = module(&module_path).map_err(|e| e.to_string())?;
        // Two tests must not take the same free slot.
        static CREATING: Mutex<()> = Mutex::new(());
        let _creating = CREATING.lock().unwrap_or_else(|p| p.into_inner());
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let label = format!(
            "t{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let slot = context
            .get_slots_with_token()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|s| {
                context
                    .get_token_info(*s)
                    .is_ok_and(|t| !t.token_initialized())
            })
            .ok_or("SoftHSM offers no free slot")?;
        let so_pin = SecretString::from(SO_PIN);
        context
            .init_token(slot, &so_pin, &label)
            .map_err(|e| format!("C_InitToken: {e}"))?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| format!("C_OpenSession: {e}"))?;
        session
            .login(UserType::So, Some(&so_pin))
            .map_err(|e| format!("C_Login SO: {e}"))?;
        session
            .init_pin(&SecretString::from(USER_PIN))
            .map_err(|e| format!("C_InitPIN: {e}"))?;
        session.logout().map_err(|e| e.to_string())?;
        session
            .login(UserType::User, Some(&SecretString::from(USER_PIN)))
            .map_err(|e| format!("C_Login: {e}"))?;

        let pin_file = dir.join(format!("{label}.pin"));
        write_owner_only(&pin_file, USER_PIN.as_bytes())?;
        Ok(TestToken {
            module: module_path,
            label,
            pin_file,
            session,
        })
    }

    /// The configuration that reaches this token with its PIN file.
    pub fn config(&self) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token: self.label.clone(),
            pin: PinSource::File(self.pin_file.clone()),
        }
    }

    /// Generates an RSA-2048 key pair with this label and id; with `certificate`, also stores
    /// a self-signed certificate for it made with the key itself. Returns the certificate.
    pub fn add_key(&self, label: &str, id: &[u8], certificate: bool) -> Result<Vec<u8>, String> {
        let common = [
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let mut public = common.to_vec();
        public.extend([
            Attribute::Verify(true),
            Attribute::ModulusBits(2048.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ]);
        let mut private = common.to_vec();
        private.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ]);
        let (public, private) = self
            .session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
            .map_err(|e| format!("C_GenerateKeyPair: {e}"))?;
        let der = self.self_signed(public, private, label)?;
        if certificate {
            self.store_certificate(&KeyRef::Id(id.to_vec()), label, &der)?;
        }
        Ok(der)
    }

    /// Stores a DER certificate under this id and label.
    pub fn store_certificate(&self, id: &KeyRef, label: &str, der: &[u8]) -> Result<(), String> {
        let KeyRef::Id(id) = id else {
            return Err("store certificates by id".into());
        };
        use x509_parser::prelude::{FromDer as _, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let template = [
            Attribute::Subject(cert.subject().as_raw().to_vec()),
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
            Attribute::Value(der.to_vec()),
        ];
        self.session
            .create_object(&template)
            .map(drop)
            .map_err(|e| format!("C_CreateObject: {e}"))
    }

    /// Logs this token out for every session of the process, as a token reset would.
    pub fn log_out_everyone(&self) -> Result<(), String> {
        self.session.logout().map_err(|e| e.to_string())
    }

    fn self_signed(
        &self,
        public: ObjectHandle,
        private: ObjectHandle,
        label: &str,
    ) -> Result<Vec<u8>, String> {
        let attrs = self
            .session
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(|e| e.to_string())?;
        let (mut n, mut e) = (Vec::new(), Vec::new());
        for attr in attrs {
            match attr {
                Attribute::Modulus(v) => n = v,
                Attribute::PublicExponent(v) => e = v,
                _ => {}
            }
        }
        let key = TokenKey {
            session: &self.session,
            private,
            pkcs1: rsa_public_key_der(&n, &e),
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("vouch test {label}"));
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(cert.der().to_vec())
    }
}

/// The token's key as rcgen signs with it.
struct TokenKey<'a> {
    session: &'a Session,
    private: ObjectHandle,
    pkcs1: Vec<u8>,
}

impl PublicKeyData for TokenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.pkcs1
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for TokenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.session
            .sign(&Mechanism::Sha256RsaPkcs, self.private, msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let mut value = bytes.to_vec();
        if value.first().is_none_or(|b| b & 0x80 != 0) {
            value.insert(0, 0);
        }
        tlv(0x02, &value)
    }
    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = value.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(value);
        out
    }
    let mut body = integer(n);
    body.extend(integer(e));
    tlv(0x30, &body)
}

/// Writes SoftHSM's configuration where `$SOFTHSM2_CONF` names it, if it is not there yet.
fn ensure_conf() -> Result<(), String> {
    let conf = std::env::var_os("SOFTHSM2_CONF")
        .map(PathBuf::from)
        .ok_or("SOFTHSM2_CONF is not set; the workspace's .cargo/config.toml sets it")?;
    // Threads of one test process would otherwise share the temporary file below.
    static WRITING: Mutex<()> = Mutex::new(());
    let _writing = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    if conf.is_file() {
        return Ok(());
    }
    let dir = conf.parent().unwrap_or(Path::new("."));
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    let tmp = conf.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &conf).map_err(|e| format!("{}: {e}", conf.display()))
}

fn write_owner_only(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes).map_err(|e| e.to_string())
}
