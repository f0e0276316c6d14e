//! Entra's hint-signing keys, fetched and cached per tenant.
//!
//! Microsoft's rollover guidance (protocol reference §4.6) sets the rules: keys are fetched
//! per tenant from the tenant's cloud host, refreshed hourly, refreshed on an unknown `kid` at
//! most once every five minutes, and the last good set is kept when a refresh fails. Keys are
//! parsed once per fetch so that checking a hint costs one RSA verify.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::fetch::{self, FetchError};
use crate::config::Tenant;
use crate::jose::b64url_decode;
use crate::jose::hint::EntraKey;

/// Least time between refreshes caused by an unknown `kid`.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(300);
/// Least time between attempts while a tenant has no keys at all.
pub const OUTAGE_RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// How often every tenant's keys are refreshed in the background.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
const MAX_KEYS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("no signing keys for tenant {tenant}: {detail}")]
    Unavailable { tenant: String, detail: String },
    #[error("tenant {tenant} publishes no key {kid}")]
    UnknownKid { tenant: String, kid: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("key document is not a JWKS: {detail}")]
    Malformed { detail: String },
    #[error("key document holds no usable RSA signing key")]
    Empty,
}

/// One fetched key document, its keys parsed.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<EntraKey>,
    pub fetched_at: Instant,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

/// The members of a JWK (RFC 7517 §4) that decide whether it may verify hints.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(rename = "use", default)]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    kid: String,
    n: String,
    e: String,
}

impl KeySet {
    /// Parses a JWKS, keeping RSA signing keys with a `kid`. A `kid` listed twice is dropped
    /// altogether rather than guessed between.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, KeySetError> {
        let jwks: Jwks = serde_json::from_slice(json).map_err(|e| KeySetError::Malformed {
            detail: e.to_string(),
        })?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for jwk in &jwks.keys {
            if let Some(kid) = jwk.get("kid").and_then(|k| k.as_str()) {
                *seen.entry(kid.to_owned()).or_default() += 1;
            }
        }
        let keys: Vec<EntraKey> = jwks
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter(|jwk| seen.get(&jwk.kid) == Some(&1))
            .filter_map(parse_jwk)
            .take(MAX_KEYS)
            .collect();
        if keys.is_empty() {
            return Err(KeySetError::Empty);
        }
        Ok(KeySet {
            keys,
            fetched_at: Instant::now(),
        })
    }

    pub fn get(&self, kid: &str) -> Option<&EntraKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// An RSA key usable for RS256 signatures: not marked for encryption (`use`, `key_ops`)
/// nor for another algorithm. Entra's keys often carry no `alg` at all.
fn parse_jwk(jwk: Jwk) -> Option<EntraKey> {
    let signs = jwk.use_.as_deref().is_none_or(|u| u == "sig");
    let verifies = jwk
        .key_ops
        .as_ref()
        .is_none_or(|ops| ops.iter().any(|op| op == "verify"));
    let rs256 = jwk.alg.as_deref().is_none_or(|alg| alg == "RS256");
    if jwk.kty != "RSA" || !signs || !verifies || !rs256 {
        return None;
    }
    let n = b64url_decode(&jwk.n, "n").ok()?;
    let e = b64url_decode(&jwk.e, "e").ok()?;
    EntraKey::from_components(jwk.kid, &n, &e)
}

/// The key cache of one tenant.
struct TenantKeys {
    url: String,
    tls: Arc<rustls::ClientConfig>,
    current: RwLock<Option<Arc<KeySet>>>,
    last_attempt: Mutex<Option<Instant>>,
    last_kid_refresh: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    refresh: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

/// Every onboarded tenant's key cache.
pub struct EntraKeys {
    tenants: HashMap<String, TenantKeys>,
}

/// A snapshot of one tenant's cache for status displays.
#[derive(Debug, Clone)]
pub struct KeyCacheStatus {
    pub tenant: String,
    pub keys: usize,
    pub age: Option<Duration>,
    pub fetches: u64,
    pub last_error: Option<String>,
}

impl EntraKeys {
    pub fn new(tenants: &[Tenant]) -> Result<EntraKeys, String> {
        let mut map = HashMap::new();
        for t in tenants {
            let ca = match &t.test_authority {
                Some(a) => Some(std::fs::read(&a.ca_file).map_err(|e| {
                    format!("tenant {}: reading {}: {e}", t.id, a.ca_file.display())
                })?),
                None => None,
            };
            let tls =
                fetch::client_config(ca.as_deref()).map_err(|e| format!("tenant {}: {e}", t.id))?;
            let keys = TenantKeys {
                url: format!("{}/{}/discovery/v2.0/keys", t.authority(), t.id),
                tls,
                current: RwLock::new(None),
                last_attempt: Mutex::new(None),
                last_kid_refresh: Mutex::new(None),
                last_error: Mutex::new(None),
                refresh: tokio::sync::Mutex::new(()),
                fetches: Default::default(),
            };
            map.insert(t.id.clone(), keys);
        }
        Ok(EntraKeys { tenants: map })
    }

    /// The key set that holds `kid` for `tenant`, refreshing once within the rules if the
    /// cached set lacks it.
    pub async fn key_set(&self, tenant: &str, kid: &str) -> Result<Arc<KeySet>, KeyError> {
        let unavailable = |detail: String| KeyError::Unavailable {
            tenant: tenant.into(),
            detail,
        };
        let Some(tk) = self.tenants.get(tenant) else {
            return Err(unavailable("tenant is not onboarded".into()));
        };
        if let Some(set) = tk.current()
            && set.get(kid).is_some()
        {
            return Ok(set);
        }

        let throttled = match tk.current() {
            Some(_) => within(&tk.last_kid_refresh, UNKNOWN_KID_INTERVAL),
            None => within(&tk.last_attempt, OUTAGE_RETRY_INTERVAL),
        };
        if throttled {
            // A refresh may be in flight: wait for it rather than start another.
            let _guard = tk.refresh.lock().await;
        } else {
            *lock(&tk.last_kid_refresh) = Some(Instant::now());
            self.refresh_tenant(tenant, tk).await;
        }

        match tk.current() {
            Some(set) if set.get(kid).is_some() => Ok(set),
            Some(_) => Err(KeyError::UnknownKid {
                tenant: tenant.into(),
                kid: kid.into(),
            }),
            None => Err(unavailable(
                tk.last_error().unwrap_or_else(|| "not fetched".into()),
            )),
        }
    }

    /// Refreshes every tenant now; failures keep the last good set.
    pub async fn refresh_all(&self) {
        for (id, tk) in &self.tenants {
            self.refresh_tenant(id, tk).await;
        }
    }

    /// Runs forever: hourly refreshes, and quicker retries for tenants without keys.
    pub async fn run_refresher(self: Arc<Self>) {
        loop {
            tokio::time::sleep(OUTAGE_RETRY_INTERVAL).await;
            for (id, tk) in &self.tenants {
                let due = match tk.current() {
                    Some(set) => set.fetched_at.elapsed() >= REFRESH_INTERVAL,
                    None => !within(&tk.last_attempt, OUTAGE_RETRY_INTERVAL),
                };
                if due {
                    self.refresh_tenant(id, tk).await;
                }
            }
        }
    }

    async fn refresh_tenant(&self, id: &str, tk: &TenantKeys) {
        let Ok(_guard) = tk.refresh.try_lock() else {
            let _wait = tk.refresh.lock().await;
            return;
        };
        *lock(&tk.last_attempt) = Some(Instant::now());
        tk.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        let result = match fetch::get(&tk.url, tk.tls.clone()).await {
            Ok(body) => KeySet::from_jwks(&body),
            Err(e) => Err(KeySetError::Fetch(e)),
        };
        crate::oversight::metrics::entra_refresh(id, result.is_ok());
        match result {
            Ok(set) => {
                tracing::info!(
                    tenant = id,
                    keys = set.len(),
                    "Entra signing keys refreshed"
                );
                *write(&tk.current) = Some(Arc::new(set));
                *lock(&tk.last_error) = None;
            }
            Err(e) => {
                let kept = tk.current().map(|s| s.len()).unwrap_or(0);
                tracing::warn!(
                    tenant = id,
                    error = %e,
                    kept_keys = kept,
                    "Entra key refresh failed",
                );
                *lock(&tk.last_error) = Some(e.to_string());
            }
        }
    }

    pub fn status(&self) -> Vec<KeyCacheStatus> {
        let mut out: Vec<KeyCacheStatus> = self
            .tenants
            .iter()
            .map(|(id, tk)| {
                let current = tk.current();
                KeyCacheStatus {
                    tenant: id.clone(),
                    keys: current.as_ref().map(|s| s.len()).unwrap_or(0),
                    age: current.map(|s| s.fetched_at.elapsed()),
                    fetches: tk.fetches.load(std::sync::atomic::Ordering::Relaxed),
                    last_error: tk.last_error(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        out
    }
}

impl TenantKeys {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }
}

fn within(at: &Mutex<Option<Instant>>, interval: Duration) -> bool {
    lock(at).is_some_and(|at| at.elapsed() < interval)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;

    fn jwk(kid: &str) -> serde_json::Value {
        let key = KeyPair::generate(KeySize::Rsa2048).expect("keygen");
        let public = key.public_key();
        let enc = |b: &[u8]| crate::jose::b64url_encode(b);
        serde_json::json!({
            "kty": "RSA", "use": "sig", "kid": kid,
            "n": enc(public.modulus().big_endian_without_leading_zero()),
            "e": enc(public.exponent().big_endian_without_leading_zero()),
        })
    }

    #[test]
    fn keeps_rsa_signing_keys_by_kid() {
        let doc = serde_json::json!({"keys": [jwk("a"), jwk("b")]});
        let set = KeySet::from_jwks(doc.to_string().as_bytes()).expect("valid");
        assert_eq!(set.len(), 2);
        assert!(set.get("a").is_some() && set.get("c").is_none());
    }

    #[test]
    fn drops_keys_whose_kid_is_listed_twice() {
        let doc = serde_json::json!({"keys": [jwk("a"), jwk("a"), jwk("b")]});
        let set = KeySet::from_jwks(doc.to_string().as_bytes()).expect("valid");
        assert!(set.get("a").is_none());
        assert!(set.get("b").is_some());
    }

    #[test]
    fn skips_encryption_keys_small_keys_and_other_types() {
        let mut enc = jwk("enc");
        enc["use"] = "enc".into();
        let ec =
            serde_json::json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"});
        let small = serde_json::json!({"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"});
        let no_kid = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        let doc = serde_json::json!({"keys": [enc, ec, small, no_kid]});
        let err = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap_err();
        assert_eq!(err, KeySetError::Empty);
    }

    #[test]
    fn skips_keys_marked_for_another_algorithm_or_operation_and_keeps_the_rest() {
        let mut ps = jwk("ps");
        ps["alg"] = "PS256".into();
        let mut wraps = jwk("wrap");
        wraps["key_ops"] = serde_json::json!(["encrypt", "wrapKey"]);
        let mut rs = jwk("rs");
        rs["alg"] = "RS256".into();
        rs["key_ops"] = serde_json::json!(["verify"]);
        let odd = serde_json::json!({"kty": 5, "kid": "odd"});
        let doc = serde_json::json!({"keys": [ps, wraps, odd, rs, jwk("plain")]});
        let set = KeySet::from_jwks(doc.to_string().as_bytes()).expect("valid");
        assert_eq!(set.len(), 2);
        assert!(set.get("rs").is_some() && set.get("plain").is_some());
    }

    #[test]
    fn refuses_documents_that_are_not_jwks() {
        for bad in ["", "[]", "{\"keys\": 1}", "\u{0}"] {
            let err = KeySet::from_jwks(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, KeySetError::Malformed { .. }), "{bad}");
        }
    }
}
