//! The users' phones for the mobile-PKI factor: a CA the stand keeps, and for each user a
//! P-256 key with a certificate naming the user's UPN, as an enrolment service would issue.
//!
//! The CA's certificate is a root of the stand's `[[trust_store]]`; its key stays in the
//! stand (mode 0600) so that runs against an appliance started by hand issue certificates the
//! appliance trusts. rcgen cannot read a CA back from its certificate without an X.509
//! parser, so the CA is rebuilt from its key and the fixed parameters it was made with, which
//! give the same subject and key identifier.
//!
//! Phones are made before the measured load ([`PhoneBook::make_ahead`]): key generation and
//! issuance are the enrolment's cost, not the sign-in's.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, OtherNameValue, SanType, SerialNumber, date_time_ymd,
};
use rustls::pki_types::CertificateDer;

use vouch::factor::Method;
use vouch::pki::config::{EKU_CLIENT_AUTH, TenantScope};
use vouch::pki::{Amr, BindingRule, OcspPolicy, TrustStoreConfig};

use crate::StandError;
use crate::users::Users;

/// The Microsoft UPN otherName, 1.3.6.1.4.1.311.20.2.3.
const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];
const CA_NAME: &str = "vouch-loadtest phone CA";
/// The name of the stand's trust store.
pub const STORE_NAME: &str = "loadtest-phones";
/// The algorithm name the app sends for a P-256 signature as r‖s.
pub const ALGORITHM: &str = "ES256";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    #[error("making a key or certificate: {0}")]
    Issue(String),
    #[error("the phone's key cannot sign")]
    Sign,
}

fn issue_error(e: impl std::fmt::Display) -> PhoneError {
    PhoneError::Issue(e.to_string())
}

/// The stand's phone CA: it certifies every user's phone key.
pub struct PhoneCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's self-signed certificate, DER.
    pub cert: CertificateDer<'static>,
}

impl PhoneCa {
    /// A new CA with a new P-256 key.
    pub fn generate() -> Result<PhoneCa, PhoneError> {
        let key = KeyPair::generate().map_err(issue_error)?;
        PhoneCa::from_key(key)
    }

    /// The CA whose key is `key_pem`, as [`PhoneCa::key_pem`] wrote it.
    pub fn from_key_pem(key_pem: &str) -> Result<PhoneCa, PhoneError> {
        PhoneCa::from_key(KeyPair::from_pem(key_pem).map_err(issue_error)?)
    }

    fn from_key(key: KeyPair) -> Result<PhoneCa, PhoneError> {
        let params = ca_params()?;
        let cert = params.self_signed(&key).map_err(issue_error)?.der().clone();
        Ok(PhoneCa {
            issuer: Issuer::new(params, key),
            cert,
        })
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    pub fn cert_pem(&self) -> String {
        let text = STANDARD.encode(self.cert.as_ref());
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    /// Reads the CA saved in a stand's `phones/ca.key`.
    pub fn load(path: &Path) -> Result<PhoneCa, StandError> {
        let text = std::fs::read_to_string(path).map_err(|e| StandError::io(path, e))?;
        PhoneCa::from_key_pem(&text).map_err(|e| StandError::damaged(path, e))
    }

    /// A phone for `upn`: a new P-256 key and its certificate with serial `serial`.
    pub fn issue(&self, upn: &str, serial: u64) -> Result<Phone, PhoneError> {
        let key = KeyPair::generate().map_err(issue_error)?;
        let cert = leaf_params(upn, serial)?
            .signed_by(&key, &self.issuer)
            .map_err(issue_error)?
            .der()
            .clone();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.serialized_der())
                .map_err(issue_error)?;
        Ok(Phone {
            cert_b64: STANDARD.encode(cert.as_ref()),
            cert,
            key: signer,
        })
    }
}

/// A CA that may sign certificates, valid 2020 to 2050.
fn ca_params() -> Result<CertificateParams, PhoneError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(issue_error)?;
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2050, 1, 1);
    Ok(params)
}

/// A client-authentication certificate naming `upn` in the UPN otherName.
fn leaf_params(upn: &str, serial: u64) -> Result<CertificateParams, PhoneError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(issue_error)?;
    params.distinguished_name.push(DnType::CommonName, upn);
    params.serial_number = Some(SerialNumber::from(serial));
    params.subject_alt_names = vec![SanType::OtherName((
        UPN_OID.to_vec(),
        OtherNameValue::Utf8String(upn.to_owned()),
    ))];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2050, 1, 1);
    Ok(params)
}

/// One user's phone: its key and the certificate the stand's CA issued for it.
pub struct Phone {
    pub cert: CertificateDer<'static>,
    cert_b64: String,
    key: EcdsaKeyPair,
}

impl Phone {
    /// The ES256 signature (r‖s) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PhoneError> {
        let signature = self
            .key
            .sign(&SystemRandom::new(), message)
            .map_err(|_| PhoneError::Sign)?;
        Ok(signature.as_ref().to_vec())
    }

    /// The app's JSON answer to a challenge: the leaf alone (the CA is the store's root), the
    /// algorithm, and the signature over the challenge's bytes.
    pub fn answer(&self, challenge_id: &str, challenge: &[u8]) -> Result<String, PhoneError> {
        let signature = STANDARD.encode(self.sign(challenge)?);
        let body = serde_json::json!({
            "challenge_id": challenge_id,
            "certificates": [self.cert_b64],
            "algorithm": ALGORITHM,
            "signature": signature,
        });
        Ok(body.to_string())
    }
}

/// Every user's phone, made once.
pub struct PhoneBook {
    ca: PhoneCa,
    users: Arc<Users>,
    phones: Vec<OnceLock<Result<Phone, PhoneError>>>,
}

impl PhoneBook {
    pub fn new(ca: PhoneCa, users: Arc<Users>) -> PhoneBook {
        let phones = (0..users.len()).map(|_| OnceLock::new()).collect();
        PhoneBook { ca, users, phones }
    }

    /// User `index`'s phone, issued now if it has none yet.
    pub fn get(&self, index: usize) -> Result<&Phone, &PhoneError> {
        let index = index % self.phones.len().max(1);
        let user = self.users.get(index);
        let serial = index as u64 + 1;
        self.phones[index]
            .get_or_init(|| self.ca.issue(&user.upn, serial))
            .as_ref()
    }

    /// Issues every user's phone on every core; the first failure, if any.
    pub fn make_ahead(self: &Arc<Self>) -> Result<(), PhoneError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let count = self.phones.len();
        std::thread::scope(|scope| {
            for first in 0..threads {
                scope.spawn(move || {
                    for i in (first..count).step_by(threads) {
                        let _ = self.get(i);
                    }
                });
            }
        });
        match (0..count).find_map(|i| self.get(i).err()) {
            Some(e) => Err(PhoneError::Issue(e.to_string())),
            None => Ok(()),
        }
    }
}

/// The trust store the stand's `vouch.toml` describes, for a CA given in memory: the
/// tenant's phones, bound by UPN, granting `hwk`, with no revocation source.
pub fn store_config(tenant: &str) -> TrustStoreConfig {
    TrustStoreConfig {
        name: STORE_NAME.to_owned(),
        scope: TenantScope::Tenants(vec![tenant.to_owned()]),
        roots: Vec::new(),
        intermediates: Vec::new(),
        ekus: vec![EKU_CLIENT_AUTH.to_vec()],
        binding: BindingRule::Upn,
        amr: Amr::Hwk,
        crl_files: Vec::new(),
        crl_urls: Vec::new(),
        crl_refresh_secs: 3600,
        crl_grace_secs: 0,
        ocsp: OcspPolicy::Off,
        ocsp_timeout_ms: 2000,
        enrolled: Vec::new(),
        methods: vec![Method::MobilePki],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use vouch::pki::challenge::{ChallengeAlgorithm, verify_challenge};
    use vouch::pki::{ExpectedUser, Timestamp, TrustStore, verify_client_offline};

    #[test]
    fn a_phone_answer_is_the_json_the_appliance_reads_and_its_signature_verifies() {
        let ca = PhoneCa::generate().unwrap();
        let phone = ca.issue("user7@loadtest.example", 8).unwrap();
        let challenge = [7u8; 32];
        let body = phone.answer("abc", &challenge).unwrap();

        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            fields,
            ["algorithm", "certificates", "challenge_id", "signature"]
        );
        assert_eq!(json["challenge_id"], "abc");
        assert_eq!(json["algorithm"], ALGORITHM);
        let der = STANDARD
            .decode(json["certificates"][0].as_str().unwrap())
            .unwrap();
        assert_eq!(der, phone.cert.as_ref());
        let signature = STANDARD
            .decode(json["signature"].as_str().unwrap())
            .unwrap();

        let leaf = webpki::EndEntityCert::try_from(&phone.cert).unwrap();
        let spki = leaf.subject_public_key_info();
        let es256 = ChallengeAlgorithm::from_name(ALGORITHM).unwrap();
        verify_challenge(spki.as_ref(), es256, &challenge, &signature).unwrap();
        let other = verify_challenge(spki.as_ref(), es256, &[8u8; 32], &signature);
        assert!(other.is_err());
    }

    #[test]
    fn a_ca_read_back_from_its_key_issues_certificates_the_appliance_binds_to_the_user() {
        let ca = PhoneCa::generate().unwrap();
        let again = PhoneCa::from_key_pem(&ca.key_pem()).unwrap();
        let upn = "user1@loadtest.example";
        let phone = again.issue(upn, 2).unwrap();

        let config = store_config(entra_sim::TENANT);
        let store = TrustStore::build(&config, vec![ca.cert.clone()], vec![], vec![]).unwrap();
        let mut user = ExpectedUser {
            tid: entra_sim::TENANT,
            oid: entra_sim::USER_OID,
            upn: Some(upn),
        };
        let at = Timestamp(entra_sim::unix_now());
        let chain = [phone.cert.clone()];
        let verified = verify_client_offline(&store, &chain, at, &user).unwrap();
        assert_eq!(verified.amr.as_str(), "hwk");
        user.upn = Some("user2@loadtest.example");
        assert!(verify_client_offline(&store, &chain, at, &user).is_err());
        assert!(PhoneCa::from_key_pem("not a key").is_err());
    }

    #[test]
    fn a_damaged_or_missing_ca_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(matches!(
            PhoneCa::load(&path),
            Err(StandError::Damaged { .. })
        ));
        let missing = PhoneCa::load(&dir.path().join("none.key"));
        assert!(matches!(missing, Err(StandError::Io { .. })));
    }
}
