//! OCSP (RFC 6960) for the leaf certificate: the request, the checks on the answer, and a
//! cache of answers kept until their `nextUpdate`.
//!
//! Rules:
//! - The request names one certificate by a SHA-1 CertID (RFC 5019 §2.1.1, what responders
//!   are required to support) and carries a fresh nonce (RFC 8954).
//! - The answer must be `successful`, a basic response, signed by the issuing CA's key or by a
//!   responder certificate that the CA issued for id-kp-OCSPSigning (RFC 6960 §4.2.2.2),
//!   answer for exactly the CertID asked, echo the nonce when it carries one, and have
//!   `thisUpdate` not in the future and `nextUpdate`, when present, not in the past.
//! - An answer without `nextUpdate` is kept for [`NO_NEXT_UPDATE_SECS`] only.
//! - A responder that failed is not asked again for the same certificate for
//!   [`RETRY_AFTER_SECS`], so a dead responder does not slow every sign-in.
//!
//! No OCSP crate among those kept offers verification over aws-lc-rs, so the DER here is
//! written and read by hand with the few helpers in [`super::signed`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, TrustAnchor};
use webpki::{EndEntityCert, KeyUsage};

use super::crl::sha256;
use super::signed::{self, BIT_STRING, SEQUENCE, expect, read_tlv};
use super::time::{Timestamp, generalized_time};

/// How long an answer without `nextUpdate` is used.
pub const NO_NEXT_UPDATE_SECS: i64 = 300;
/// How long a responder that failed is left alone for the same certificate.
pub const RETRY_AFTER_SECS: i64 = 30;
/// Tolerated clock difference with the responder for `thisUpdate`.
const SKEW_SECS: i64 = 300;
/// The largest response read.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Answers kept at most.
const CAPACITY: usize = 100_000;

/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1.
const OID_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nonce, 1.3.6.1.5.5.7.48.1.2.
const OID_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
/// id-sha1, 1.3.14.3.2.26.
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-kp-OCSPSigning, 1.3.6.1.5.5.7.3.9.
const EKU_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];

/// Which certificate an answer is about: its issuer's key and its serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OcspKey {
    issuer_spki: [u8; 32],
    serial: Vec<u8>,
}

impl OcspKey {
    pub fn new(issuer_spki: &[u8], serial: &[u8]) -> OcspKey {
        OcspKey {
            issuer_spki: sha256(issuer_spki),
            serial: serial.to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    Revoked {
        at: Timestamp,
        reason: Option<String>,
    },
    Unknown,
}

/// A verified answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    pub status: OcspStatus,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
    pub responder: String,
    pub fetched_at: Timestamp,
}

impl OcspAnswer {
    /// Until when the answer is used.
    pub fn good_until(&self) -> Timestamp {
        self.next_update
            .unwrap_or_else(|| self.fetched_at.plus(NO_NEXT_UPDATE_SECS))
    }
}

/// Answers and recent failures, by certificate.
#[derive(Debug, Default)]
pub struct OcspCache {
    answers: RwLock<HashMap<OcspKey, Arc<OcspAnswer>>>,
    failures: RwLock<HashMap<OcspKey, (Timestamp, String)>>,
}

impl OcspCache {
    pub fn fresh(&self, key: &OcspKey, at: Timestamp) -> Option<Arc<OcspAnswer>> {
        let answers = self.answers.read().ok()?;
        let answer = answers.get(key)?;
        (answer.this_update.plus(-SKEW_SECS) <= at && at <= answer.good_until())
            .then(|| answer.clone())
    }

    pub fn store(&self, key: OcspKey, answer: OcspAnswer) {
        if let Ok(mut failures) = self.failures.write() {
            failures.remove(&key);
        }
        if let Ok(mut answers) = self.answers.write() {
            if answers.len() >= CAPACITY {
                answers.clear();
            }
            answers.insert(key, Arc::new(answer));
        }
    }

    pub fn record_failure(&self, key: OcspKey, at: Timestamp, detail: String) {
        if let Ok(mut failures) = self.failures.write() {
            if failures.len() >= CAPACITY {
                failures.clear();
            }
            failures.insert(key, (at, detail));
        }
    }

    pub fn failed_recently(&self, key: &OcspKey, at: Timestamp) -> bool {
        let Ok(failures) = self.failures.read() else {
            return false;
        };
        failures
            .get(key)
            .is_some_and(|(when, _)| at >= *when && at.0 - when.0 < RETRY_AFTER_SECS)
    }

    pub fn last_error(&self, key: &OcspKey) -> Option<String> {
        self.failures.read().ok()?.get(key).map(|(_, e)| e.clone())
    }

    /// (answers, failures) held, for `vouch crl status`.
    pub fn counts(&self) -> (usize, usize) {
        let answers = self.answers.read().map_or(0, |a| a.len());
        let failures = self.failures.read().map_or(0, |f| f.len());
        (answers, failures)
    }

    pub fn clear(&self) {
        if let Ok(mut a) = self.answers.write() {
            a.clear();
        }
        if let Ok(mut f) = self.failures.write() {
            f.clear();
        }
    }
}

/// What the request asked, to hold the answer to.
#[derive(Debug, Clone)]
pub struct Request {
    pub der: Vec<u8>,
    cert_id: Vec<u8>,
    nonce: [u8; 16],
}

impl Request {
    /// The request for the certificate with `serial`, issued by the CA named `issuer_name`
    /// (the Name's DER contents) with key `issuer_spki`.
    pub fn new(issuer_name: &[u8], issuer_spki: &[u8], serial: &[u8]) -> Option<Request> {
        let cert_id = cert_id(issuer_name, issuer_spki, serial)?;
        let mut nonce = [0u8; 16];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let nonce_ext = tlv(
            SEQUENCE,
            &[tlv(0x06, OID_NONCE), tlv(0x04, &tlv(0x04, &nonce))].concat(),
        );
        let request = tlv(SEQUENCE, &cert_id);
        let tbs = tlv(
            SEQUENCE,
            &[
                tlv(SEQUENCE, &request),
                tlv(0xa2, &tlv(SEQUENCE, &nonce_ext)),
            ]
            .concat(),
        );
        Some(Request {
            der: tlv(SEQUENCE, &tbs),
            cert_id,
            nonce,
        })
    }
}

/// CertID (RFC 6960 §4.1.1) with SHA-1, as its encoded contents.
fn cert_id(issuer_name: &[u8], issuer_spki: &[u8], serial: &[u8]) -> Option<Vec<u8>> {
    let sha1 = |b: &[u8]| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
            .as_ref()
            .to_vec()
    };
    let (spki, _) = expect(issuer_spki, SEQUENCE)?;
    let (_, rest) = expect(spki.contents, SEQUENCE)?;
    let (key_bits, _) = expect(rest, BIT_STRING)?;
    let key = signed::bit_string_bytes(key_bits.contents)?;
    let algorithm = tlv(SEQUENCE, &[tlv(0x06, OID_SHA1), vec![0x05, 0x00]].concat());
    Some(
        [
            algorithm,
            tlv(0x04, &sha1(&tlv(SEQUENCE, issuer_name))),
            tlv(0x04, &sha1(key)),
            tlv(0x02, serial),
        ]
        .concat(),
    )
}

/// DER of one element.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// The CA that issued the certificate asked about.
pub struct Issuer<'a> {
    pub spki: &'a [u8],
    pub anchor: &'a TrustAnchor<'a>,
}

/// Reads and checks an answer to `request`.
pub fn read_response(
    der: &[u8],
    request: &Request,
    issuer: &Issuer<'_>,
    responder: &str,
    at: Timestamp,
) -> Result<OcspAnswer, String> {
    if der.len() > MAX_RESPONSE_BYTES {
        return Err(format!("response of {} bytes is too large", der.len()));
    }
    let bad = |what: &str| format!("malformed response: {what}");
    let (outer, trailing) = expect(der, SEQUENCE).ok_or_else(|| bad("not a SEQUENCE"))?;
    if !trailing.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let (status, rest) = expect(outer.contents, 0x0a).ok_or_else(|| bad("no responseStatus"))?;
    if status.contents != [0] {
        return Err(format!(
            "responder answered status {:?} (RFC 6960 §4.2.1)",
            status.contents
        ));
    }
    let (bytes, _) = expect(rest, 0xa0).ok_or_else(|| bad("no responseBytes"))?;
    let (bytes, _) = expect(bytes.contents, SEQUENCE).ok_or_else(|| bad("responseBytes"))?;
    let (kind, rest) = expect(bytes.contents, 0x06).ok_or_else(|| bad("responseType"))?;
    if kind.contents != OID_BASIC {
        return Err("not a basic OCSP response".into());
    }
    let (basic, _) = expect(rest, 0x04).ok_or_else(|| bad("response OCTET STRING"))?;
    let basic = Basic::split(basic.contents).ok_or_else(|| bad("BasicOCSPResponse"))?;
    basic.check_signature(issuer, at)?;
    basic.read_single(request, responder, at)
}

/// BasicOCSPResponse (RFC 6960 §4.2.1) split into its parts.
struct Basic<'a> {
    tbs: &'a [u8],
    tbs_contents: &'a [u8],
    algorithm: &'a [u8],
    signature: &'a [u8],
    certs: Vec<&'a [u8]>,
}

impl<'a> Basic<'a> {
    fn split(contents: &'a [u8]) -> Option<Basic<'a>> {
        let (seq, _) = expect(contents, SEQUENCE)?;
        let (tbs, rest) = expect(seq.contents, SEQUENCE)?;
        let (algorithm, rest) = expect(rest, SEQUENCE)?;
        let (signature, rest) = expect(rest, BIT_STRING)?;
        let mut certs = Vec::new();
        if !rest.is_empty() {
            let (wrapper, rest) = expect(rest, 0xa0)?;
            if !rest.is_empty() {
                return None;
            }
            let (list, _) = expect(wrapper.contents, SEQUENCE)?;
            let mut items = list.contents;
            while !items.is_empty() {
                let (cert, next) = expect(items, SEQUENCE)?;
                certs.push(cert.whole);
                items = next;
                if certs.len() > 4 {
                    return None;
                }
            }
        }
        Some(Basic {
            tbs: tbs.whole,
            tbs_contents: tbs.contents,
            algorithm: algorithm.contents,
            signature: signed::bit_string_bytes(signature.contents)?,
            certs,
        })
    }

    /// Signed by the issuer's key, or by a responder certificate the issuer delegated.
    fn check_signature(&self, issuer: &Issuer<'_>, at: Timestamp) -> Result<(), String> {
        if signed::verify(issuer.spki, self.algorithm, self.tbs, self.signature).is_ok() {
            return Ok(());
        }
        for cert in &self.certs {
            let der = CertificateDer::from(*cert);
            let Ok(responder) = EndEntityCert::try_from(&der) else {
                continue;
            };
            let delegated = responder.verify_for_usage(
                signed::algorithms(),
                std::slice::from_ref(issuer.anchor),
                &[],
                at.to_unix(),
                KeyUsage::required(EKU_OCSP_SIGNING),
                None,
                None,
            );
            if delegated.is_err() {
                continue;
            }
            let spki = responder.subject_public_key_info();
            if signed::verify(spki.as_ref(), self.algorithm, self.tbs, self.signature).is_ok() {
                return Ok(());
            }
        }
        Err(
            "the response is signed neither by the issuing CA nor by a responder it delegated"
                .into(),
        )
    }

    fn read_single(
        &self,
        request: &Request,
        responder: &str,
        at: Timestamp,
    ) -> Result<OcspAnswer, String> {
        let bad = |what: &str| format!("malformed ResponseData: {what}");
        let mut rest = self.tbs_contents;
        if let Some((version, next)) = read_tlv(rest)
            && version.tag == 0xa0
        {
            rest = next;
        }
        let (id, rest) = read_tlv(rest).ok_or_else(|| bad("responderID"))?;
        if id.tag != 0xa1 && id.tag != 0xa2 {
            return Err(bad("responderID"));
        }
        let (_, rest) = expect(rest, 0x18).ok_or_else(|| bad("producedAt"))?;
        let (responses, rest) = expect(rest, SEQUENCE).ok_or_else(|| bad("responses"))?;
        check_nonce(rest, &request.nonce)?;

        let mut items = responses.contents;
        while !items.is_empty() {
            let (single, next) = expect(items, SEQUENCE).ok_or_else(|| bad("SingleResponse"))?;
            items = next;
            let (id, rest) = expect(single.contents, SEQUENCE).ok_or_else(|| bad("certID"))?;
            if id.contents != request.cert_id.as_slice() {
                continue;
            }
            return single_answer(rest, responder, at);
        }
        Err("the response does not answer for the certificate asked about".into())
    }
}

fn single_answer(rest: &[u8], responder: &str, at: Timestamp) -> Result<OcspAnswer, String> {
    let bad = |what: &str| format!("malformed SingleResponse: {what}");
    let (status, rest) = read_tlv(rest).ok_or_else(|| bad("certStatus"))?;
    let status = match status.tag {
        0x80 => OcspStatus::Good,
        0xa1 => revoked_info(status.contents).ok_or_else(|| bad("RevokedInfo"))?,
        0x82 => OcspStatus::Unknown,
        _ => return Err(bad("certStatus")),
    };
    let (this_update, rest) = expect(rest, 0x18).ok_or_else(|| bad("thisUpdate"))?;
    let this_update = generalized_time(this_update.contents).ok_or_else(|| bad("thisUpdate"))?;
    let next_update = match read_tlv(rest) {
        Some((wrapper, _)) if wrapper.tag == 0xa0 => {
            let (time, _) = expect(wrapper.contents, 0x18).ok_or_else(|| bad("nextUpdate"))?;
            Some(generalized_time(time.contents).ok_or_else(|| bad("nextUpdate"))?)
        }
        _ => None,
    };
    if this_update.plus(-SKEW_SECS) > at {
        return Err(format!("thisUpdate {this_update} is in the future"));
    }
    if let Some(next) = next_update
        && next < at
    {
        return Err(format!("the answer expired at its nextUpdate {next}"));
    }
    Ok(OcspAnswer {
        status,
        this_update,
        next_update,
        responder: responder.to_owned(),
        fetched_at: at,
    })
}

fn revoked_info(contents: &[u8]) -> Option<OcspStatus> {
    let (time, rest) = expect(contents, 0x18)?;
    let at = generalized_time(time.contents)?;
    let reason = match read_tlv(rest) {
        Some((wrapper, _)) if wrapper.tag == 0xa0 => {
            let (code, _) = expect(wrapper.contents, 0x0a)?;
            Some(format!(
                "reason code {}",
                code.contents.first().copied().unwrap_or_default()
            ))
        }
        _ => None,
    };
    Some(OcspStatus::Revoked { at, reason })
}

/// The response's nonce, when it carries one, must be the request's (RFC 8954 §2.1).
fn check_nonce(extensions: &[u8], nonce: &[u8]) -> Result<(), String> {
    let Some((wrapper, _)) = read_tlv(extensions) else {
        return Ok(());
    };
    if wrapper.tag != 0xa1 {
        return Ok(());
    }
    let bad = || "malformed responseExtensions".to_owned();
    let (list, _) = expect(wrapper.contents, SEQUENCE).ok_or_else(bad)?;
    let mut items = list.contents;
    while !items.is_empty() {
        let (ext, next) = expect(items, SEQUENCE).ok_or_else(bad)?;
        items = next;
        let (oid, rest) = expect(ext.contents, 0x06).ok_or_else(bad)?;
        if oid.contents != OID_NONCE {
            continue;
        }
        let (value, _) = expect(rest, 0x04).ok_or_else(bad)?;
        let echoed = match expect(value.contents, 0x04) {
            Some((inner, _)) => inner.contents,
            None => value.contents,
        };
        if echoed != nonce {
            return Err("the response's nonce is not the request's (a replayed answer?)".into());
        }
    }
    Ok(())
}
