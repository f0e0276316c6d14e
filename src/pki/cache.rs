//! A bounded cache of verified issuer links, so that a user certificate from a known issuing
//! CA costs one signature check instead of one per link up to the root.
//!
//! Rules:
//! - An entry is made only from a path webpki has fully validated, and stands for the CAs of
//!   that path from the leaf's issuer up to the trust anchor.
//! - On a hit, webpki still validates the leaf (signature, validity, key usage, name
//!   constraints of its issuer), with the leaf's issuer as the anchor; the cached CAs are only
//!   trusted for the time window in which all of them are valid.
//! - Paths in which a CA above the issuer, or the anchor, carries name constraints are never
//!   cached: webpki applies those to the leaf and an anchor made of the issuer would not.
//! - The cache is cleared whenever the store's trust or revocation data changes, and holds at
//!   most [`LinkCache::capacity`] links; past that the oldest go first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, TrustAnchor};

use super::time::Timestamp;

/// A CA certificate on a verified path, with what revocation checking reads from it.
#[derive(Debug)]
pub struct PathCa {
    pub der: CertificateDer<'static>,
    pub serial: Vec<u8>,
    /// The issuer Name's DER contents.
    pub issuer: Vec<u8>,
    /// The whole SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    pub subject_text: String,
    pub may_sign_crls: bool,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub has_name_constraints: bool,
}

/// A trust anchor of a store, with what revocation checking reads from its certificate.
#[derive(Debug)]
pub struct AnchorInfo {
    pub spki: Vec<u8>,
    pub subject_text: String,
    pub may_sign_crls: bool,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// A verified link from a leaf's issuer to a trust anchor.
#[derive(Debug)]
pub struct CachedLink {
    /// The leaf's issuer, made into an anchor for webpki.
    pub anchor: TrustAnchor<'static>,
    /// The CAs from the leaf's issuer upward, anchor excluded.
    pub cas: Arc<[PathCa]>,
    pub root: Arc<AnchorInfo>,
    pub valid_from: Timestamp,
    pub valid_until: Timestamp,
}

impl CachedLink {
    pub fn valid_at(&self, at: Timestamp) -> bool {
        self.valid_from <= at && at <= self.valid_until
    }
}

#[derive(Debug, Default)]
struct Entries {
    by_issuer: HashMap<Vec<u8>, Vec<Arc<CachedLink>>>,
    order: VecDeque<Vec<u8>>,
    len: usize,
}

/// Issuer links keyed by the issuing CA's subject Name.
#[derive(Debug)]
pub struct LinkCache {
    capacity: usize,
    entries: RwLock<Entries>,
}

impl LinkCache {
    pub fn new(capacity: usize) -> LinkCache {
        LinkCache {
            capacity,
            entries: RwLock::new(Entries::default()),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Links whose issuing CA has this subject (a leaf's issuer Name contents).
    pub fn candidates(&self, issuer: &[u8]) -> Vec<Arc<CachedLink>> {
        let Ok(entries) = self.entries.read() else {
            return Vec::new();
        };
        entries.by_issuer.get(issuer).cloned().unwrap_or_default()
    }

    pub fn insert(&self, issuer: Vec<u8>, link: CachedLink) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        let same = |l: &Arc<CachedLink>| l.cas[0].der == link.cas[0].der;
        if entries
            .by_issuer
            .get(&issuer)
            .is_some_and(|v| v.iter().any(same))
        {
            return;
        }
        while entries.len >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            let Entries { by_issuer, len, .. } = &mut *entries;
            if let Some(links) = by_issuer.get_mut(&oldest) {
                if !links.is_empty() {
                    links.remove(0);
                    *len -= 1;
                }
                if links.is_empty() {
                    by_issuer.remove(&oldest);
                }
            }
        }
        entries.order.push_back(issuer.clone());
        entries
            .by_issuer
            .entry(issuer)
            .or_default()
            .push(Arc::new(link));
        entries.len += 1;
    }

    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            *entries = Entries::default();
        }
    }
}
