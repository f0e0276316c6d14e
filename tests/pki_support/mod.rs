//! A test PKI made with rcgen: roots, intermediates, user certificates, CRLs and OCSP answers,
//! plus loopback servers that hand out CRLs and OCSP answers.
//!
//! Certificates are valid from 2020 to 2040 unless a test says otherwise; tests verify at
//! [`AT`], a fixed instant inside that window.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod flows;
pub mod phone;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, OtherNameValue, RevokedCertParams, SanType, SerialNumber, SigningKey as _,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use vouch::pki::config::{Amr, BindingRule, OcspPolicy, TenantScope, TrustStoreConfig};
use vouch::pki::{ExpectedUser, Timestamp, TrustStore};

pub const TENANT: &str = "00000000-0000-0000-0000-0000000000e1";
pub const OID: &str = "00000000-0000-0000-0000-0000000000a1";
pub const UPN: &str = "ada@contoso.example";

/// 2026-06-01T00:00:00Z.
pub const AT: Timestamp = Timestamp(1_780_272_000);

pub fn user() -> ExpectedUser<'static> {
    ExpectedUser {
        tid: TENANT,
        oid: OID,
        upn: Some(UPN),
    }
}

pub fn date(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.0).unwrap()
}

/// A CA: its certificate, and the key and parameters that sign with it.
pub struct Ca {
    pub cert: CertificateDer<'static>,
    pub issuer: Issuer<'static, KeyPair>,
    key_der: Vec<u8>,
}

/// A CA certificate's parameters: may sign certificates and CRLs, valid 2020 to 2040.
pub fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date(Timestamp(1_577_836_800));
    params.not_after = date(Timestamp(2_208_988_800));
    params
}

impl Ca {
    pub fn root(name: &str) -> Ca {
        Ca::root_with(ca_params(name))
    }

    /// A root valid only until `not_after`.
    pub fn root_until(name: &str, not_after: Timestamp) -> Ca {
        let mut params = ca_params(name);
        params.not_after = date(not_after);
        Ca::root_with(params)
    }

    fn root_with(params: CertificateParams) -> Ca {
        let key = KeyPair::generate().unwrap();
        let key_der = key.serialize_der();
        let cert = params.self_signed(&key).unwrap().der().clone();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
            key_der,
        }
    }

    pub fn intermediate(&self, name: &str) -> Ca {
        self.sub_ca(ca_params(name))
    }

    pub fn sub_ca(&self, params: CertificateParams) -> Ca {
        let key = KeyPair::generate().unwrap();
        let key_der = key.serialize_der();
        let cert = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        Ca {
            cert,
            issuer: Issuer::new(params, key),
            key_der,
        }
    }

    pub fn key(&self) -> KeyPair {
        KeyPair::try_from(self.key_der.as_slice()).unwrap()
    }

    pub fn spki(&self) -> Vec<u8> {
        let cert = webpki::EndEntityCert::try_from(&self.cert).unwrap();
        cert.subject_public_key_info().as_ref().to_vec()
    }

    /// A user certificate with `upn` in the UPN otherName and as an RFC 822 name.
    pub fn user_cert(&self, upn: &str, serial: u64) -> CertificateDer<'static> {
        self.issue(Leaf::new(upn, serial))
    }

    pub fn issue(&self, leaf: Leaf) -> CertificateDer<'static> {
        self.issue_keyed(leaf).0
    }

    /// A certificate and its P-256 key, for a client that must prove it holds the key.
    pub fn issue_keyed(&self, leaf: Leaf) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        (self.issue_for(leaf, &key), key)
    }

    /// A certificate for a public key made elsewhere.
    pub fn issue_for(
        &self,
        leaf: Leaf,
        key: &impl rcgen::PublicKeyData,
    ) -> CertificateDer<'static> {
        leaf.params
            .signed_by(key, &self.issuer)
            .unwrap()
            .der()
            .clone()
    }

    /// A CRL listing `revoked` serials, valid from `this_update` to `next_update`.
    pub fn crl(&self, revoked: &[u64], this_update: Timestamp, next_update: Timestamp) -> Vec<u8> {
        let revoked_certs = revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: date(Timestamp(1_767_225_600)),
                reason_code: None,
                invalidity_date: None,
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: date(this_update),
            next_update: date(next_update),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().der().to_vec()
    }

    /// A fresh CRL around [`AT`].
    pub fn fresh_crl(&self, revoked: &[u64]) -> Vec<u8> {
        self.crl(revoked, AT.plus(-3600), AT.plus(86_400))
    }
}

/// A delegated OCSP responder's parameters: an end entity for id-kp-OCSPSigning.
pub fn responder_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    params.not_before = date(Timestamp(1_577_836_800));
    params.not_after = date(Timestamp(2_208_988_800));
    params
}

/// Parameters of a user certificate, adjustable by tests.
pub struct Leaf {
    pub params: CertificateParams,
}

impl Leaf {
    pub fn new(upn: &str, serial: u64) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, upn);
        params.serial_number = Some(SerialNumber::from(serial));
        params.subject_alt_names = vec![
            SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String(upn.to_owned()),
            )),
            SanType::Rfc822Name(upn.try_into().unwrap()),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = date(Timestamp(1_577_836_800));
        params.not_after = date(Timestamp(2_208_988_800));
        Leaf { params }
    }

    pub fn valid(mut self, from: Timestamp, until: Timestamp) -> Leaf {
        self.params.not_before = date(from);
        self.params.not_after = date(until);
        self
    }

    pub fn ekus(mut self, ekus: Vec<ExtendedKeyUsagePurpose>) -> Leaf {
        self.params.extended_key_usages = ekus;
        self
    }

    pub fn crl_dp(mut self, uri: &str) -> Leaf {
        self.params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![uri.to_owned()],
        }];
        self
    }

    /// Authority information access naming an OCSP responder (RFC 5280 §4.2.2.1).
    pub fn ocsp(mut self, uri: &str) -> Leaf {
        let ocsp_method = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]);
        let location = tlv(0x86, uri.as_bytes());
        let description = tlv(0x30, &[ocsp_method, location].concat());
        let aia = tlv(0x30, &description);
        let ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia);
        self.params.custom_extensions.push(ext);
        self
    }
}

/// DER of one element, written here independently of vouch's own encoder.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = contents.len();
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend([0x81, n as u8]),
        0x100..=0xffff => out.extend([0x82, (n >> 8) as u8, n as u8]),
        _ => out.extend([0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(contents);
    out
}

fn generalized(t: Timestamp) -> Vec<u8> {
    let d = date(t);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        d.year(),
        d.month() as u8,
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    );
    tlv(0x18, text.as_bytes())
}

/// The status an OCSP answer gives.
#[derive(Clone, Copy)]
pub enum Status {
    Good,
    Revoked(Timestamp),
    Unknown,
}

/// An OCSP answer for the certificate with `serial` issued by `issuer`, signed by `signer`
/// (the issuer's key, or a delegated responder's), optionally carrying `responder_cert`.
pub struct OcspAnswer<'a> {
    pub issuer: &'a Ca,
    pub serial: u64,
    pub status: Status,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
    pub nonce: Option<Vec<u8>>,
}

impl OcspAnswer<'_> {
    pub fn good(issuer: &Ca, serial: u64) -> OcspAnswer<'_> {
        OcspAnswer {
            issuer,
            serial,
            status: Status::Good,
            this_update: AT.plus(-60),
            next_update: Some(AT.plus(3600)),
            nonce: None,
        }
    }

    fn cert_id(&self) -> Vec<u8> {
        let sha1 = |b: &[u8]| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
                .as_ref()
                .to_vec()
        };
        let cert = webpki::EndEntityCert::try_from(&self.issuer.cert).unwrap();
        let name = tlv(0x30, cert.subject());
        let spki = cert.subject_public_key_info();
        // The key bits: skip the SPKI header, the algorithm and the BIT STRING's unused-bits byte.
        let (_, spki_contents) = split(spki.as_ref());
        let (alg_len, _) = split(spki_contents);
        let after_alg = &spki_contents[alg_len..];
        let (_, bits) = split(after_alg);
        let key = &bits[1..];
        let alg = tlv(
            0x30,
            &[tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]), vec![0x05, 0x00]].concat(),
        );
        let bytes = self.serial.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
        let mut serial = bytes[skip..].to_vec();
        if serial[0] & 0x80 != 0 {
            serial.insert(0, 0);
        }
        let serial = tlv(0x02, &serial);
        tlv(
            0x30,
            &[alg, tlv(0x04, &sha1(&name)), tlv(0x04, &sha1(key)), serial].concat(),
        )
    }

    /// The whole OCSPResponse, signed with `signer`.
    pub fn sign(&self, signer: &KeyPair, responder_cert: Option<&CertificateDer<'_>>) -> Vec<u8> {
        let status = match self.status {
            Status::Good => vec![0x80, 0x00],
            Status::Revoked(at) => tlv(0xa1, &generalized(at)),
            Status::Unknown => vec![0x82, 0x00],
        };
        let mut single = [self.cert_id(), status, generalized(self.this_update)].concat();
        if let Some(next) = self.next_update {
            single.extend(tlv(0xa0, &generalized(next)));
        }
        let responder_id = tlv(0xa2, &tlv(0x04, &[7u8; 20]));
        let mut data = [
            responder_id,
            generalized(self.this_update),
            tlv(0x30, &tlv(0x30, &single)),
        ]
        .concat();
        if let Some(nonce) = &self.nonce {
            let ext = tlv(
                0x30,
                &[
                    tlv(
                        0x06,
                        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02],
                    ),
                    tlv(0x04, &tlv(0x04, nonce)),
                ]
                .concat(),
            );
            data.extend(tlv(0xa1, &tlv(0x30, &ext)));
        }
        let tbs = tlv(0x30, &data);
        let signature = signer.sign(&tbs).unwrap();
        let alg = tlv(
            0x30,
            &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
        );
        let mut basic = [tbs, alg, tlv(0x03, &[&[0u8][..], &signature].concat())].concat();
        if let Some(cert) = responder_cert {
            basic.extend(tlv(0xa0, &tlv(0x30, cert.as_ref())));
        }
        let basic = tlv(0x30, &basic);
        let kind = tlv(
            0x06,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01],
        );
        let bytes = tlv(0x30, &[kind, tlv(0x04, &basic)].concat());
        tlv(0x30, &[vec![0x0a, 0x01, 0x00], tlv(0xa0, &bytes)].concat())
    }
}

/// (header length, contents) of the DER element at the start of `der`.
fn split(der: &[u8]) -> (usize, &[u8]) {
    let (len, header) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (der[2] as usize, 3),
        0x82 => (((der[2] as usize) << 8) | der[3] as usize, 4),
        _ => panic!("long DER in a test key"),
    };
    (header + len, &der[header..header + len])
}

/// A store configuration over the given files, with CRL checking off unless CRLs are given.
pub fn config(name: &str, binding: BindingRule) -> TrustStoreConfig {
    TrustStoreConfig {
        name: name.to_owned(),
        scope: TenantScope::Tenants(vec![TENANT.to_owned()]),
        roots: Vec::new(),
        intermediates: Vec::new(),
        ekus: vec![vouch::pki::config::EKU_CLIENT_AUTH.to_vec()],
        binding,
        amr: Amr::Sc,
        crl_files: Vec::new(),
        crl_urls: Vec::new(),
        crl_refresh_secs: 3600,
        crl_grace_secs: 0,
        ocsp: OcspPolicy::Off,
        ocsp_timeout_ms: 2000,
        enrolled: Vec::new(),
        methods: vec![vouch::factor::Method::SmartCard],
    }
}

/// A store trusting `root`, with CRLs given as (name, DER).
pub fn store(root: &Ca, config: &TrustStoreConfig, crls: Vec<(String, Vec<u8>)>) -> TrustStore {
    TrustStore::build(config, vec![root.cert.clone()], Vec::new(), crls).unwrap()
}

/// A loopback HTTP server answering every request with what `body` currently holds.
pub struct Loopback {
    pub addr: SocketAddr,
    pub body: Arc<Mutex<(u16, Vec<u8>)>>,
    pub hits: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Loopback {
    pub async fn start(body: Vec<u8>) -> Loopback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new((200u16, body)));
        let hits = Arc::new(Mutex::new(0usize));
        let (served, counted) = (shared.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (served, counted) = (served.clone(), counted.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        let (status, body) = served.lock().unwrap().clone();
                        *counted.lock().unwrap() += 1;
                        async move {
                            let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Loopback {
            addr,
            body: shared,
            hits,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, status: u16, body: Vec<u8>) {
        *self.body.lock().unwrap() = (status, body);
    }

    pub fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes `bytes` to `name` in `dir` and returns the path.
pub fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
