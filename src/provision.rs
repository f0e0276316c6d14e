//! The state directory: what vouch creates on first start and loads on every start.
//!
//! ```text
//! STATE_DIR/
//!   tls/cert.pem, tls/key.pem          self-signed for localhost, unless config names files
//!   signing/key.pk8, signing/cert.pem  RSA-2048 token-signing key and its certificate
//!   signing/next/                      a staged key: published, not yet signing
//!   signing/retired-UNIXTIME/          keys that signed before the last promotion
//!   signing/ring.json                  the key ring: each key's place and schedule
//!   signing/key-UNIXTIME/              keys staged through the key ring
//!   store.key, credentials.json        the embedded credential store
//! ```
//!
//! Directories are created 0700 and secrets 0600. Nothing that exists is overwritten.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::signer::SoftwareSigner;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ProvisionError + '_ {
    move |e| ProvisionError::Io {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

fn invalid(path: &Path, detail: impl ToString) -> ProvisionError {
    ProvisionError::Invalid {
        path: path.to_owned(),
        detail: detail.to_string(),
    }
}

pub fn ensure_dir(path: &Path) -> Result<(), ProvisionError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io(path))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ProvisionError> {
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(path))
}

/// The TLS server settings: the configured files, or a self-signed pair made on first start.
pub fn tls_config(
    state_dir: &Path,
    files: Option<&(PathBuf, PathBuf)>,
) -> Result<Arc<rustls::ServerConfig>, ProvisionError> {
    let (cert_path, key_path) = match files {
        Some((c, k)) => (c.clone(), k.clone()),
        None => {
            let dir = state_dir.join("tls");
            ensure_dir(&dir)?;
            let paths = (dir.join("cert.pem"), dir.join("key.pem"));
            if !paths.0.exists() {
                make_localhost_certificate(&paths.0, &paths.1)?;
                tracing::info!(
                    path = %paths.0.display(),
                    "created a self-signed TLS certificate for localhost",
                );
            }
            paths
        }
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| invalid(&cert_path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&cert_path, e))?;
    if certs.is_empty() {
        return Err(invalid(&cert_path, "holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| invalid(&key_path, e))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&cert_path, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&key_path, format!("does not match the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn make_localhost_certificate(cert: &Path, key: &Path) -> Result<(), ProvisionError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params = CertificateParams::new(names).map_err(|e| invalid(cert, e))?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "vouch localhost");
    // A key left without its certificate (the certificate deleted to have it renewed, or a
    // crash between the two writes) is kept and given a new certificate.
    let key_pair = match std::fs::read_to_string(key) {
        Ok(pem) => KeyPair::from_pem(&pem).map_err(|e| {
            invalid(
                key,
                format!("{e}; delete it to have a new key and certificate made"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let made = KeyPair::generate().map_err(|e| invalid(key, e))?;
            write_new(key, made.serialize_pem().as_bytes(), 0o600)?;
            made
        }
        Err(e) => return Err(io(key)(e)),
    };
    let made = params
        .self_signed(&key_pair)
        .map_err(|e| invalid(cert, e))?;
    write_new(cert, made.pem().as_bytes(), 0o644)
}

/// The software token signer, with its key made on first start.
pub fn software_signer(state_dir: &Path) -> Result<SoftwareSigner, ProvisionError> {
    let dir = state_dir.join("signing");
    ensure_dir(&dir)?;
    let key_path = dir.join("key.pk8");
    let cert_path = dir.join("cert.pem");
    if !key_path.exists() {
        make_signing_key(&key_path, &cert_path)?;
        tracing::info!(path = %key_path.display(), "created an RSA-2048 token-signing key");
    }
    load_signer(&key_path, &cert_path)
}

/// Creates a key in `signing/next/`, the staged-key folder of state directories made before
/// the key ring: a ring made for the first time takes the key found there as its next key.
/// Fails if one is there already.
pub fn stage_signing_key(state_dir: &Path) -> Result<SoftwareSigner, ProvisionError> {
    let dir = state_dir.join("signing").join("next");
    ensure_dir(&dir)?;
    let key_path = dir.join("key.pk8");
    if key_path.exists() {
        return Err(invalid(
            &key_path,
            "a key is already staged; promote it first",
        ));
    }
    make_signing_key(&key_path, &dir.join("cert.pem"))?;
    load_signer(&key_path, &dir.join("cert.pem"))
}

/// The software signer whose key and certificate are in `dir`.
pub fn software_signer_in(dir: &Path) -> Result<SoftwareSigner, ProvisionError> {
    load_signer(&dir.join("key.pk8"), &dir.join("cert.pem"))
}

/// Creates a new software key in `STATE_DIR/signing/NAME`, for the key ring to stage.
pub fn new_software_key(state_dir: &Path, name: &str) -> Result<SoftwareSigner, ProvisionError> {
    let dir = state_dir.join("signing").join(name);
    if dir.exists() {
        return Err(invalid(&dir, "already exists; nothing was overwritten"));
    }
    ensure_dir(&dir)?;
    make_signing_key(&dir.join("key.pk8"), &dir.join("cert.pem"))?;
    software_signer_in(&dir)
}

fn load_signer(key_path: &Path, cert_path: &Path) -> Result<SoftwareSigner, ProvisionError> {
    let pkcs8 = fs::read(key_path).map_err(io(key_path))?;
    let cert = CertificateDer::from_pem_file(cert_path).map_err(|e| invalid(cert_path, e))?;
    SoftwareSigner::new(&pkcs8, cert.to_vec()).map_err(|e| invalid(key_path, e))
}

fn make_signing_key(key_path: &Path, cert_path: &Path) -> Result<(), ProvisionError> {
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| invalid(key_path, e))?;
    let pkcs8 = rsa.as_der().map_err(|e| invalid(key_path, e))?;
    let pkcs8 = pkcs8.as_ref().to_vec();
    let key_der = PrivatePkcs8KeyDer::from(pkcs8.clone());
    let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&key_der, &PKCS_RSA_SHA256)
        .map_err(|e| invalid(key_path, e))?;

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "vouch token signing");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3 * 365);
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| invalid(cert_path, e))?;

    write_new(key_path, &pkcs8, 0o600)?;
    write_new(cert_path, cert.pem().as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_files(state: &Path) -> (PathBuf, PathBuf) {
        let dir = state.join("tls");
        (dir.join("cert.pem"), dir.join("key.pem"))
    }

    #[test]
    fn a_key_left_without_its_certificate_gets_a_new_certificate_for_the_same_key() {
        let state = tempfile::tempdir().expect("tempdir");
        tls_config(state.path(), None).expect("first start");
        let (cert, key) = tls_files(state.path());
        let key_before = std::fs::read(&key).expect("key");
        std::fs::remove_file(&cert).expect("remove cert");

        tls_config(state.path(), None).expect("start with the key alone");

        assert_eq!(std::fs::read(&key).expect("key"), key_before);
        assert!(cert.exists());
    }

    #[test]
    fn a_damaged_key_without_a_certificate_is_named_with_the_fix() {
        let state = tempfile::tempdir().expect("tempdir");
        let (_, key) = tls_files(state.path());
        ensure_dir(key.parent().expect("parent")).expect("tls dir");
        std::fs::write(&key, "not a key").expect("write");

        let err = tls_config(state.path(), None).unwrap_err().to_string();

        assert!(err.contains("key.pem"), "{err}");
        assert!(err.contains("delete it"), "{err}");
    }
}
