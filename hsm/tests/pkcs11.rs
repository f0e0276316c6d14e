//! The PKCS#11 backend against SoftHSM2 tokens each test makes for itself.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;

use aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256;
use vouch_hsm::certificate::CertificateInfo;
use vouch_hsm::pin::PinSource;
use vouch_hsm::pkcs11::{KeyRef, Pkcs11Config, Pkcs11Token};
use vouch_hsm::softhsm::TestToken;
use vouch_hsm::{HsmError, PinRetries, SigningKey as _};

fn token() -> (tempfile::TempDir, TestToken) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = TestToken::create(dir.path()).expect("SoftHSM token");
    (dir, token)
}

fn verifies(certificate: &[u8], input: &[u8], signature: &[u8]) -> bool {
    let info = CertificateInfo::from_der(certificate).expect("certificate");
    let rsa = aws_lc_rs::signature::RsaPublicKeyComponents {
        n: &info.modulus,
        e: &info.exponent,
    };
    rsa.verify(&RSA_PKCS1_2048_8192_SHA256, input, signature)
        .is_ok()
}

#[test]
fn a_key_named_by_label_or_id_signs_rs256_that_its_certificate_verifies() {
    let (_dir, t) = token();
    let cert = t.add_key("signing", &[0x01], true).expect("key");
    let token = Pkcs11Token::open(&t.config()).expect("token");
    for by in [KeyRef::Label("signing".into()), KeyRef::Id(vec![0x01])] {
        let key = token.key(&by, None).expect("key");
        assert_eq!(key.certificate_der(), cert.as_slice());
        assert!(key.name().contains(&t.label), "{}", key.name());
        let mut session = key.session().expect("session");
        let signature = session.sign_rs256(b"header.payload").expect("signature");
        assert!(verifies(&cert, b"header.payload", &signature));
        assert!(!verifies(&cert, b"header.payloaD", &signature));
    }
}

#[test]
fn several_sessions_sign_at_once_from_their_own_threads() {
    let (_dir, t) = token();
    let cert = t.add_key("signing", &[0x02], true).expect("key");
    let token = Pkcs11Token::open(&t.config()).expect("token");
    let key = std::sync::Arc::new(token.key(&KeyRef::Id(vec![0x02]), None).expect("key"));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let key = key.clone();
            std::thread::spawn(move || {
                let mut session = key.session().expect("session");
                let input = format!("h.{i}");
                (
                    input.clone(),
                    session.sign_rs256(input.as_bytes()).expect("sign"),
                )
            })
        })
        .collect();
    for t in threads {
        let (input, signature) = t.join().expect("joined");
        assert!(verifies(&cert, input.as_bytes(), &signature));
    }
}

#[test]
fn a_wrong_pin_is_refused_with_the_return_value_and_is_not_retryable() {
    let (dir, t) = token();
    t.add_key("signing", &[0x01], true).expect("key");
    let wrong = dir.path().join("wrong.pin");
    std::fs::write(&wrong, "999999\n").expect("pin file");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // Another session of the process is logged in already; log it out so the PIN is checked.
    t.log_out_everyone().expect("logout");
    let config = Pkcs11Config {
        pin: PinSource::File(wrong),
        ..t.config()
    };
    let err = Pkcs11Token::open(&config).expect_err("refused");
    let HsmError::PinRefused { rv, .. } = &err else {
        panic!("not a PIN refusal: {err}");
    };
    assert_eq!(rv, "CKR_PIN_INCORRECT");
    let message = err.to_string();
    assert!(
        message.contains("PIN file") && message.contains(&t.label),
        "{message}"
    );
    assert!(!message.contains("999999"), "the PIN is never in a message");
    assert!(!err.is_transient(), "a refused PIN is not retried");
}

#[test]
fn a_pin_file_others_can_read_is_refused_before_the_token_sees_it() {
    let (_dir, t) = token();
    std::fs::set_permissions(&t.pin_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Pkcs11Token::open(&t.config()).expect_err("refused");
    assert!(matches!(err, HsmError::PinFile { .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn a_token_that_is_not_there_names_the_tokens_that_are() {
    let (_dir, t) = token();
    let config = Pkcs11Config {
        token: "no-such-token".into(),
        ..t.config()
    };
    let err = Pkcs11Token::open(&config).expect_err("refused");
    assert!(matches!(err, HsmError::NotFound { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("no-such-token") && message.contains(&t.label),
        "{message}"
    );
}

#[test]
fn a_missing_module_is_named_by_its_path() {
    let (_dir, t) = token();
    let config = Pkcs11Config {
        module: "/opt/nowhere/libpkcs11-absent.so".into(),
        ..t.config()
    };
    let err = Pkcs11Token::open(&config).expect_err("refused");
    assert!(matches!(err, HsmError::ModuleMissing { .. }), "{err}");
    assert!(err.to_string().contains("/opt/nowhere/libpkcs11-absent.so"));
}

#[test]
fn a_key_without_a_certificate_needs_a_certificate_file_for_that_key() {
    let (dir, t) = token();
    let own = t.add_key("bare", &[0x03], false).expect("key");
    let other = t.add_key("other", &[0x04], false).expect("key");
    let token = Pkcs11Token::open(&t.config()).expect("token");
    let bare = KeyRef::Label("bare".into());

    let err = token.key(&bare, None).expect_err("no certificate");
    assert!(matches!(err, HsmError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    let pem = |name: &str, der: &[u8]| {
        let path = dir.path().join(name);
        let text = rcgen_pem(der);
        std::fs::write(&path, text).expect("pem");
        path
    };
    let wrong = pem("other.pem", &other);
    let err = token.key(&bare, Some(&wrong)).expect_err("mismatch");
    assert!(matches!(err, HsmError::CertificateMismatch { .. }), "{err}");

    let right = pem("own.pem", &own);
    let key = token
        .key(&bare, Some(&right))
        .expect("key with its certificate");
    assert_eq!(key.certificate_der(), own.as_slice());

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("pem");
    let err = token.key(&bare, Some(&garbage)).expect_err("garbage");
    assert!(matches!(err, HsmError::Certificate { .. }), "{err}");
}

#[test]
fn a_certificate_on_the_token_for_another_key_is_refused() {
    let (_dir, t) = token();
    let other = t.add_key("other", &[0x05], false).expect("key");
    t.add_key("signing", &[0x06], false).expect("key");
    t.store_certificate(&KeyRef::Id(vec![0x06]), "signing", &other)
        .expect("store");
    let token = Pkcs11Token::open(&t.config()).expect("token");
    let err = token
        .key(&KeyRef::Id(vec![0x06]), None)
        .expect_err("mismatch");
    assert!(matches!(err, HsmError::CertificateMismatch { .. }), "{err}");
}

#[test]
fn a_key_that_is_not_on_the_token_is_named_in_the_error() {
    let (_dir, t) = token();
    let token = Pkcs11Token::open(&t.config()).expect("token");
    let err = token
        .key(&KeyRef::Label("absent".into()), None)
        .expect_err("absent");
    assert!(err.to_string().contains("label \"absent\""), "{err}");
}

#[test]
fn a_session_logged_out_under_it_fails_transiently_and_a_new_one_signs() {
    let (_dir, t) = token();
    let cert = t.add_key("signing", &[0x07], true).expect("key");
    let token = Pkcs11Token::open(&t.config()).expect("token");
    let key = token.key(&KeyRef::Id(vec![0x07]), None).expect("key");
    let mut session = key.session().expect("session");
    t.log_out_everyone().expect("logout");
    let err = session.sign_rs256(b"a.b").expect_err("logged out");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("C_Sign returned CKR_"), "{err}");
    let mut again = key.session().expect("new session");
    let signature = again.sign_rs256(b"a.b").expect("signature");
    assert!(verifies(&cert, b"a.b", &signature));
}

#[test]
fn status_names_the_token_and_reports_no_failed_pin_tries() {
    let (_dir, t) = token();
    let token = Pkcs11Token::open(&t.config()).expect("token");
    let status = token.status().expect("status");
    assert_eq!(status.label, t.label);
    assert_eq!(status.module, t.module);
    assert!(status.library.contains("SoftHSM"), "{}", status.library);
    assert_eq!(status.pin, PinRetries::Unknown);
}

fn rcgen_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}
