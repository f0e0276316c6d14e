//! The users' certificates for the mobile-PKI and smart-card factors: for each, a CA the
//! stand keeps, and for each user a P-256 key with a certificate naming the user's UPN, as
//! an enrolment service would issue to a phone or write to a card.
//!
//! Each CA's certificate is the root of one of the stand's `[[trust_store]]`s; its key stays
//! in the stand (mode 0600) so that runs against an appliance started by hand issue
//! certificates the appliance trusts. rcgen cannot read a CA back from its certificate
//! without an X.509 parser, so the CA is rebuilt from its key and the fixed parameters it was
//! made with, which give the same subject and key identifier.
//!
//! Certificates are made before the measured load ([`CertBook::make_ahead`]): key generation
//! and issuance are the enrolment's cost, not the sign-in's.

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
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use vouch::factor::Method;
use vouch::pki::config::{EKU_CLIENT_AUTH, TenantScope};
use vouch::pki::{Amr, BindingRule, OcspPolicy, TrustStoreConfig};

use crate::StandError;
use crate::client::{Agent, ClientIdentity};
use crate::users::Users;

/// The Microsoft UPN otherName, 1.3.6.1.4.1.311.20.2.3.
const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];
/// The name of the stand's trust store for phones.
pub const PHONE_STORE: &str = "loadtest-phones";
/// The name of the stand's trust store for smart cards.
pub const CARD_STORE: &str = "loadtest-cards";

/// What a CA's certificates go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Phone,
    Card,
}

impl Kind {
    fn ca_name(self) -> &'static str {
        match self {
            Kind::Phone => "vouch-loadtest phone CA",
            Kind::Card => "vouch-loadtest smart-card CA",
        }
    }
}
/// The algorithm name the app sends for a P-256 signature as r‖s.
pub const ALGORITHM: &str = "ES256";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    #[error("making a key or certificate: {0}")]
    Issue(String),
    #[error("the user's key cannot sign")]
    Sign,
    #[error("a phone is not presented in a TLS handshake")]
    NoAgent,
}

fn issue_error(e: impl std::fmt::Display) -> CertError {
    CertError::Issue(e.to_string())
}

/// One of the stand's CAs: it certifies every user's phone or card key.
pub struct UserCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's self-signed certificate, DER.
    pub cert: CertificateDer<'static>,
}

impl UserCa {
    /// A new CA of `kind` with a new P-256 key.
    pub fn generate(kind: Kind) -> Result<UserCa, CertError> {
        let key = KeyPair::generate().map_err(issue_error)?;
        UserCa::from_key(kind, key)
    }

    /// The CA of `kind` whose key is `key_pem`, as [`UserCa::key_pem`] wrote it.
    pub fn from_key_pem(kind: Kind, key_pem: &str) -> Result<UserCa, CertError> {
        UserCa::from_key(kind, KeyPair::from_pem(key_pem).map_err(issue_error)?)
    }

    fn from_key(kind: Kind, key: KeyPair) -> Result<UserCa, CertError> {
        let params = ca_params(kind)?;
        let cert = params.self_signed(&key).map_err(issue_error)?.der().clone();
        Ok(UserCa {
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

    /// Reads the CA of `kind` saved at `path` (`phones/ca.key` or `cards/ca.key`).
    pub fn load(kind: Kind, path: &Path) -> Result<UserCa, StandError> {
        let text = std::fs::read_to_string(path).map_err(|e| StandError::io(path, e))?;
        UserCa::from_key_pem(kind, &text).map_err(|e| StandError::damaged(path, e))
    }

    /// A certificate for `upn`: a new P-256 key and its certificate with serial `serial`.
    pub fn issue(&self, upn: &str, serial: u64) -> Result<UserCert, CertError> {
        let key = KeyPair::generate().map_err(issue_error)?;
        let cert = leaf_params(upn, serial)?
            .signed_by(&key, &self.issuer)
            .map_err(issue_error)?
            .der()
            .clone();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.serialized_der())
                .map_err(issue_error)?;
        Ok(UserCert {
            cert_b64: STANDARD.encode(cert.as_ref()),
            cert,
            key: signer,
            pkcs8: key.serialized_der().to_vec(),
        })
    }
}

/// A CA that may sign certificates, valid 2020 to 2050.
fn ca_params(kind: Kind) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(issue_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, kind.ca_name());
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2050, 1, 1);
    Ok(params)
}

/// A client-authentication certificate naming `upn` in the UPN otherName.
fn leaf_params(upn: &str, serial: u64) -> Result<CertificateParams, CertError> {
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

/// One user's phone or card: its key and the certificate the stand's CA issued for it.
pub struct UserCert {
    pub cert: CertificateDer<'static>,
    cert_b64: String,
    key: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl UserCert {
    /// The certificate and key as a browser presents them in a TLS handshake.
    pub fn identity(&self) -> ClientIdentity {
        let key = PrivatePkcs8KeyDer::from(self.pkcs8.clone());
        (vec![self.cert.clone()], key.into())
    }

    /// The ES256 signature (r‖s) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CertError> {
        let signature = self
            .key
            .sign(&SystemRandom::new(), message)
            .map_err(|_| CertError::Sign)?;
        Ok(signature.as_ref().to_vec())
    }

    /// The app's JSON answer to a challenge: the leaf alone (the CA is the store's root), the
    /// algorithm, and the signature over the challenge's bytes.
    pub fn answer(&self, challenge_id: &str, challenge: &[u8]) -> Result<String, CertError> {
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

/// Every user's phone or card, made once; for cards, with the browser settings that present
/// it to the smart-card listener.
pub struct CertBook {
    ca: UserCa,
    users: Arc<Users>,
    certs: Vec<OnceLock<Result<Issued, CertError>>>,
    /// The agent for the smart-card listener each card's agent is made from; none for phones.
    card_agent: Option<Agent>,
}

struct Issued {
    cert: UserCert,
    agent: Option<Agent>,
}

impl CertBook {
    /// A book of phones.
    pub fn new(ca: UserCa, users: Arc<Users>) -> CertBook {
        let certs = (0..users.len()).map(|_| OnceLock::new()).collect();
        CertBook {
            ca,
            users,
            certs,
            card_agent: None,
        }
    }

    /// A book of cards, each presented by an agent made from `agent` (which names the
    /// smart-card listener's origin and what the browsers trust).
    pub fn cards(ca: UserCa, users: Arc<Users>, agent: Agent) -> CertBook {
        CertBook {
            card_agent: Some(agent),
            ..CertBook::new(ca, users)
        }
    }

    /// User `index`'s phone or card, issued now if it has none yet.
    pub fn get(&self, index: usize) -> Result<&UserCert, &CertError> {
        self.issued(index).map(|issued| &issued.cert)
    }

    /// The agent that presents user `index`'s card; an error for a book of phones.
    pub fn card_agent(&self, index: usize) -> Result<&Agent, &CertError> {
        static PHONES: CertError = CertError::NoAgent;
        self.issued(index)
            .and_then(|issued| issued.agent.as_ref().ok_or(&PHONES))
    }

    fn issued(&self, index: usize) -> Result<&Issued, &CertError> {
        let index = index % self.certs.len().max(1);
        let user = self.users.get(index);
        let serial = index as u64 + 1;
        let issue = || {
            let cert = self.ca.issue(&user.upn, serial)?;
            let agent = match &self.card_agent {
                Some(base) => Some(
                    base.with_client_cert(base.origin(), cert.identity())
                        .map_err(issue_error)?,
                ),
                None => None,
            };
            Ok(Issued { cert, agent })
        };
        self.certs[index].get_or_init(issue).as_ref()
    }

    /// Issues every user's certificate on every core; the first failure, if any.
    pub fn make_ahead(self: &Arc<Self>) -> Result<(), CertError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let count = self.certs.len();
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
            Some(e) => Err(CertError::Issue(e.to_string())),
            None => Ok(()),
        }
    }
}

/// A trust store the stand's `vouch.toml` describes, for a CA given in memory: the tenant's
/// phones (granting `hwk`) or cards (granting `sc`), bound by UPN, with no revocation source.
pub fn store_config(kind: Kind, tenant: &str) -> TrustStoreConfig {
    let (name, amr, method) = match kind {
        Kind::Phone => (PHONE_STORE, Amr::Hwk, Method::MobilePki),
        Kind::Card => (CARD_STORE, Amr::Sc, Method::SmartCard),
    };
    TrustStoreConfig {
        name: name.to_owned(),
        scope: TenantScope::Tenants(vec![tenant.to_owned()]),
        roots: Vec::new(),
        intermediates: Vec::new(),
        ekus: vec![EKU_CLIENT_AUTH.to_vec()],
        binding: BindingRule::Upn,
        amr,
        crl_files: Vec::new(),
        crl_urls: Vec::new(),
        crl_refresh_secs: 3600,
        crl_grace_secs: 0,
        ocsp: OcspPolicy::Off,
        ocsp_timeout_ms: 2000,
        enrolled: Vec::new(),
        methods: vec![method],
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
        let ca = UserCa::generate(Kind::Phone).unwrap();
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
        let ca = UserCa::generate(Kind::Phone).unwrap();
        let again = UserCa::from_key_pem(Kind::Phone, &ca.key_pem()).unwrap();
        let upn = "user1@loadtest.example";
        let phone = again.issue(upn, 2).unwrap();

        let config = store_config(Kind::Phone, entra_sim::TENANT);
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
        assert!(UserCa::from_key_pem(Kind::Phone, "not a key").is_err());
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
            UserCa::load(Kind::Phone, &path),
            Err(StandError::Damaged { .. })
        ));
        let missing = UserCa::load(Kind::Phone, &dir.path().join("none.key"));
        assert!(matches!(missing, Err(StandError::Io { .. })));
    }
}
