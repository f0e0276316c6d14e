//! Trust stores: the roots and intermediates a tenant's certificates chain to, the rules for
//! them, and their revocation data.
//!
//! Rules:
//! - A store is built whole from its configuration; a root or intermediate that does not
//!   parse, or a CRL file that does not load, stops the start with the file named.
//! - A CRL whose issuer is a CA of the store must verify under that CA's key when it is
//!   loaded; otherwise it is refused with the reason, and the previous copy stays.
//! - CRLs from files and distribution points are reloaded on the store's schedule and the set
//!   is swapped whole; every change of revocation data clears the issuer-link cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, TrustAnchor};

use super::cache::{AnchorInfo, LinkCache};
use super::certificate::{CertificateFacts, read_certificate_file};
use super::config::{Amr, BindingRule, OcspPolicy, TenantScope, TrustStoreConfig};
use super::crl::{Crl, CrlSet, MAX_CRL_BYTES, SourceStatus};
use super::error::LoadError;
use super::fetch;
use super::ocsp::OcspCache;
use super::time::Timestamp;

/// Issuer links cached per store.
pub const LINK_CACHE_CAPACITY: usize = 4096;

/// One trust store, ready to verify.
#[derive(Debug)]
pub struct TrustStore {
    pub name: String,
    pub scope: TenantScope,
    pub amr: Amr,
    pub binding: BindingRule,
    pub ekus: Vec<Vec<u8>>,
    /// The sign-in flows that accept this store's certificates.
    pub methods: Vec<crate::factor::Method>,
    pub anchors: Vec<TrustAnchor<'static>>,
    pub anchor_infos: Vec<Arc<AnchorInfo>>,
    anchor_certs: Vec<CertificateDer<'static>>,
    pub intermediates: Vec<CertificateDer<'static>>,
    pub crl_grace_secs: i64,
    pub crl_refresh: Duration,
    pub ocsp_policy: OcspPolicy,
    pub ocsp_timeout: Duration,
    pub ocsp: OcspCache,
    pub cache: LinkCache,
    crl_files: Vec<std::path::PathBuf>,
    crl_urls: Vec<String>,
    crls: RwLock<Arc<CrlSet>>,
    enrolled: HashMap<[u8; 32], (String, String)>,
}

impl TrustStore {
    /// Reads the store's files. Distribution points are fetched by [`TrustStore::refresh`].
    pub fn load(config: &TrustStoreConfig) -> Result<TrustStore, LoadError> {
        let mut roots = Vec::new();
        for path in &config.roots {
            roots.extend(read_certificate_file(path)?);
        }
        let mut intermediates = Vec::new();
        for path in &config.intermediates {
            intermediates.extend(read_certificate_file(path)?);
        }
        let mut crls = Vec::new();
        for path in &config.crl_files {
            let name = path.display().to_string();
            let bytes = read_crl_file(path)?;
            crls.push((name, bytes));
        }
        TrustStore::build(config, roots, intermediates, crls)
    }

    /// Builds a store from certificates and CRLs in memory; `crls` are (source name, bytes).
    pub fn build(
        config: &TrustStoreConfig,
        roots: Vec<CertificateDer<'static>>,
        intermediates: Vec<CertificateDer<'static>>,
        crls: Vec<(String, Vec<u8>)>,
    ) -> Result<TrustStore, LoadError> {
        let mut anchors = Vec::with_capacity(roots.len());
        let mut anchor_infos = Vec::with_capacity(roots.len());
        for (i, root) in roots.iter().enumerate() {
            let fail = |detail: String| LoadError::Certificate {
                path: format!("trust store {} root {i}", config.name),
                detail,
            };
            let anchor = webpki::anchor_from_trusted_cert(root)
                .map_err(|e| fail(format!("not usable as a root: {e:?}")))?
                .to_owned();
            let facts = CertificateFacts::read(root).map_err(fail)?;
            let spki = webpki::spki_for_anchor(&anchor);
            super::certificate::check_key(spki.as_ref()).map_err(fail)?;
            anchor_infos.push(Arc::new(AnchorInfo {
                spki: webpki::spki_for_anchor(&anchor).as_ref().to_vec(),
                subject_text: facts.subject,
                may_sign_crls: facts.may_sign_crls,
                not_before: facts.not_before,
                not_after: facts.not_after,
            }));
            anchors.push(anchor);
        }
        for (i, cert) in intermediates.iter().enumerate() {
            webpki::EndEntityCert::try_from(cert).map_err(|e| LoadError::Certificate {
                path: format!("trust store {} intermediate {i}", config.name),
                detail: format!("does not parse: {e:?}"),
            })?;
        }
        let enrolled = config
            .enrolled
            .iter()
            .map(|e| (e.sha256, (e.tid.clone(), e.oid.clone())))
            .collect();
        let store = TrustStore {
            name: config.name.clone(),
            scope: config.scope.clone(),
            amr: config.amr,
            binding: config.binding,
            ekus: config.ekus.clone(),
            methods: config.methods.clone(),
            anchors,
            anchor_infos,
            anchor_certs: roots,
            intermediates,
            crl_grace_secs: config.crl_grace_secs,
            crl_refresh: Duration::from_secs(config.crl_refresh_secs),
            ocsp_policy: config.ocsp,
            ocsp_timeout: Duration::from_millis(config.ocsp_timeout_ms),
            ocsp: OcspCache::default(),
            cache: LinkCache::new(LINK_CACHE_CAPACITY),
            crl_files: config.crl_files.clone(),
            crl_urls: config.crl_urls.clone(),
            crls: RwLock::new(Arc::new(CrlSet::default())),
            enrolled,
        };
        let mut sources = Vec::new();
        for (name, bytes) in crls {
            let crl = store.accept_crl(&bytes, &name)?;
            sources.push(loaded(name, crl));
        }
        for url in &store.crl_urls {
            sources.push(not_loaded(url.clone(), "not fetched yet".into()));
        }
        store.swap_crls(CrlSet::new(sources));
        Ok(store)
    }

    /// Parses a CRL and, when a CA of this store issued it, checks its signature now.
    pub fn accept_crl(&self, bytes: &[u8], source: &str) -> Result<Crl, LoadError> {
        let crl = Crl::from_bytes(bytes, source)?;
        let candidates: Vec<(Vec<u8>, bool)> = self.ca_keys_named(crl.issuer()).collect();
        if candidates.is_empty() {
            return Ok(crl);
        }
        for (spki, may_sign) in candidates {
            if may_sign && crl.signed_by(&spki).is_ok() {
                return Ok(crl);
            }
        }
        Err(LoadError::Crl {
            source_name: source.to_owned(),
            detail: format!(
                "its signature does not verify under the key of {} (or that CA may not sign \
                 CRLs); fetch the CRL its CA published",
                crl.issuer_text
            ),
        })
    }

    /// (SPKI, may sign CRLs) of the store's CAs with this subject.
    fn ca_keys_named<'a>(
        &'a self,
        subject: &'a [u8],
    ) -> impl Iterator<Item = (Vec<u8>, bool)> + 'a {
        let roots = self
            .anchors
            .iter()
            .zip(&self.anchor_infos)
            .filter(move |(a, _)| a.subject.as_ref() == subject)
            .map(|(_, info)| (info.spki.clone(), info.may_sign_crls));
        let intermediates = self.intermediates.iter().filter_map(move |der| {
            let cert = webpki::EndEntityCert::try_from(der).ok()?;
            if cert.subject() != subject {
                return None;
            }
            let facts = CertificateFacts::read(der).ok()?;
            Some((
                cert.subject_public_key_info().as_ref().to_vec(),
                facts.may_sign_crls,
            ))
        });
        roots.chain(intermediates)
    }

    /// The CRLs in force.
    pub fn crls(&self) -> Arc<CrlSet> {
        self.crls.read().map(|c| c.clone()).unwrap_or_default()
    }

    fn swap_crls(&self, set: CrlSet) {
        if let Ok(mut current) = self.crls.write() {
            *current = Arc::new(set);
        }
        self.cache.clear();
    }

    /// Reloads CRL files and fetches distribution points; a source that fails keeps its
    /// previous CRL and records why.
    pub async fn refresh(&self) {
        let previous = self.crls();
        let mut sources = Vec::with_capacity(previous.sources.len());
        for path in &self.crl_files {
            let name = path.display().to_string();
            let result = read_crl_file(path).and_then(|bytes| self.accept_crl(&bytes, &name));
            sources.push(self.outcome(&previous, name, result));
        }
        for url in &self.crl_urls {
            let deadline = Duration::from_secs(30);
            let result = match fetch::get(url, MAX_CRL_BYTES, deadline).await {
                Ok(bytes) => self.accept_crl(&bytes, url),
                Err(detail) => Err(LoadError::Fetch {
                    url: url.clone(),
                    detail,
                }),
            };
            sources.push(self.outcome(&previous, url.clone(), result));
        }
        self.swap_crls(CrlSet::new(sources));
    }

    fn outcome(
        &self,
        previous: &CrlSet,
        name: String,
        result: Result<Crl, LoadError>,
    ) -> SourceStatus {
        match result {
            Ok(crl) => loaded(name, crl),
            Err(e) => {
                tracing::warn!(store = %self.name, source = %name, error = %e, "CRL not refreshed");
                let kept = previous.sources.iter().find(|s| s.source == name).cloned();
                let mut status = kept.unwrap_or_else(|| not_loaded(name, String::new()));
                status.last_error = Some(e.to_string());
                status
            }
        }
    }

    /// Whether the store serves sign-ins of this tenant.
    pub fn serves(&self, tid: &str) -> bool {
        match &self.scope {
            TenantScope::Shared => true,
            TenantScope::Tenants(list) => list.iter().any(|t| t.eq_ignore_ascii_case(tid)),
        }
    }

    /// The user a certificate with this SHA-256 fingerprint was enrolled for.
    pub fn enrolled_user(&self, sha256: &[u8; 32]) -> Option<(&str, &str)> {
        self.enrolled
            .get(sha256)
            .map(|(t, o)| (t.as_str(), o.as_str()))
    }

    /// Whether a certificate was enrolled for the user (`tid`, `oid`).
    pub fn has_enrolled_user(&self, tid: &str, oid: &str) -> bool {
        self.enrolled
            .values()
            .any(|(t, o)| t.eq_ignore_ascii_case(tid) && o.eq_ignore_ascii_case(oid))
    }

    /// The OCSP responder the certificate names (authority information access).
    pub fn ocsp_responder(&self, cert_der: &[u8]) -> Option<String> {
        let facts = CertificateFacts::read(cert_der).ok()?;
        facts
            .ocsp_responders
            .into_iter()
            .find(|u| u.starts_with("http://"))
    }

    /// The anchor whose key is `spki`, for delegated OCSP responders of a root.
    pub fn anchor_with_spki(&self, spki: &[u8]) -> Option<&TrustAnchor<'static>> {
        let index = self.anchor_infos.iter().position(|a| a.spki == spki)?;
        self.anchors.get(index)
    }

    pub fn root_certificates(&self) -> &[CertificateDer<'static>] {
        &self.anchor_certs
    }
}

fn read_crl_file(path: &std::path::Path) -> Result<Vec<u8>, LoadError> {
    let fail = |detail: String| LoadError::Read {
        path: path.display().to_string(),
        detail,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if size > MAX_CRL_BYTES as u64 {
        return Err(fail(format!(
            "{size} bytes is more than the {MAX_CRL_BYTES} read"
        )));
    }
    std::fs::read(path).map_err(|e| fail(e.to_string()))
}

fn loaded(source: String, crl: Crl) -> SourceStatus {
    SourceStatus {
        source,
        crl: Some(Arc::new(crl)),
        loaded_at: Some(Timestamp::now()),
        last_error: None,
    }
}

fn not_loaded(source: String, why: String) -> SourceStatus {
    SourceStatus {
        source,
        crl: None,
        loaded_at: None,
        last_error: (!why.is_empty()).then_some(why),
    }
}

/// Every configured store.
#[derive(Debug, Default)]
pub struct TrustStores {
    stores: Vec<Arc<TrustStore>>,
}

impl TrustStores {
    pub fn load(configs: &[TrustStoreConfig]) -> Result<TrustStores, LoadError> {
        let stores = configs
            .iter()
            .map(|c| TrustStore::load(c).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(TrustStores { stores })
    }

    pub fn from_stores(stores: Vec<Arc<TrustStore>>) -> TrustStores {
        TrustStores { stores }
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<TrustStore>> {
        self.stores.iter().find(|s| s.name == name)
    }

    /// The stores that serve a tenant, in configuration order.
    pub fn for_tenant<'a>(
        &'a self,
        tid: &'a str,
    ) -> impl Iterator<Item = &'a Arc<TrustStore>> + 'a {
        self.stores.iter().filter(move |s| s.serves(tid))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<TrustStore>> {
        self.stores.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }

    /// Refreshes every store now.
    pub async fn refresh(&self) {
        for store in &self.stores {
            store.refresh().await;
        }
    }

    /// Loads the stores and, inside a tokio runtime, starts their refresh: at once (so
    /// distribution points are fetched at start) and then on each store's schedule. A refresh
    /// task holds its store weakly and ends when the configuration that made it is replaced.
    pub fn load_and_refresh(configs: &[TrustStoreConfig]) -> Result<Arc<TrustStores>, LoadError> {
        let stores = Arc::new(TrustStores::load(configs)?);
        if tokio::runtime::Handle::try_current().is_ok() {
            for store in &stores.stores {
                tokio::spawn(refresh_while_alive(Arc::downgrade(store)));
            }
        }
        Ok(stores)
    }
}

async fn refresh_while_alive(store: std::sync::Weak<TrustStore>) {
    loop {
        let Some(live) = store.upgrade() else {
            return;
        };
        live.refresh().await;
        let wait = live.crl_refresh;
        drop(live);
        tokio::time::sleep(wait).await;
    }
}
