//! The appliance's shared state and its router.
//!
//! One [`App`] serves every connection. It owns the parts each request touches (Entra's keys,
//! the signer pool, the credential store, the transaction seal and the OTP guards) and the
//! discovery and JWKS documents, which are rendered once at start because they change only
//! when the appliance restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::admission::{Admission, Stage};
use crate::config::Config;
use crate::eam::i18n::{Lang, Text, text};
use crate::eam::pages::{self, Page};
use crate::eam::transaction::Transactions;
use crate::entra::keys::EntraKeys;
use crate::factor::limiter::FactorLimits;
use crate::factor::otp::UsedSteps;
use crate::factor::spent::SpentJournal;
use crate::provision::{self, ProvisionError};
use crate::signer::{PublishedKey, SignerPool};
use crate::store::{CredentialStore, FidoCounters, StoreError};

/// What a shed sign-in is told to wait before trying again.
const RETRY_AFTER_SECS: u32 = 2;

/// Wall-clock seconds, with an offset that labs and tests may move forward.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        wall + self.offset.load(Ordering::Relaxed)
    }

    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("credential store: {0}")]
    Store(#[from] StoreError),
    #[error("Entra keys: {0}")]
    Keys(String),
    #[error("trust store: {0}")]
    TrustStore(#[from] crate::pki::LoadError),
    #[error("token signer: {0}")]
    Signer(#[from] crate::signer::backend::KeySetError),
    #[error("spent-code log in {dir}: {detail}")]
    SpentCodes {
        dir: std::path::PathBuf,
        detail: String,
    },
    #[error("security-key counter log in {dir}: {detail}")]
    FidoCounters {
        dir: std::path::PathBuf,
        detail: String,
    },
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// Why a new configuration was not applied; the running one stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    #[error("{0} changed; restart vouch to apply that")]
    NeedsRestart(String),
    #[error("Entra keys: {0}")]
    Keys(String),
    #[error("trust store: {0}")]
    TrustStore(String),
}

fn limiter_for(config: &Config) -> FactorLimits {
    FactorLimits::new(
        config.otp_max_failures,
        config.otp_lockout_secs,
        config.limits.max_failures_per_source,
    )
}

/// The address a request came from, as the connection loop saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

impl Peer {
    /// The source that attempt limits count against: the IPv4 address, or the IPv6 /64 a
    /// single client can hop around in. Requests with no peer share one source.
    pub fn source_of<B>(req: &Request<B>) -> String {
        use std::net::IpAddr;
        match req
            .extensions()
            .get::<Peer>()
            .map(|p| p.0.ip().to_canonical())
        {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            None => "-".to_owned(),
        }
    }
}

/// The paths the appliance answers, under the issuer's path.
#[derive(Debug, Clone)]
pub struct Routes {
    pub discovery: String,
    pub jwks: String,
    pub authorize: String,
    pub method: String,
    pub otp: String,
    /// Served on the client-certificate listener (smart-card sign-in).
    pub smart_card: String,
    /// The waiting page's "Continue", its long poll, and the phone app's API.
    pub mobile: String,
    pub mobile_wait: String,
    pub mobile_respond: String,
    pub fido: String,
    /// The page an enrolment link opens, and where it posts the new credential.
    pub enrol: String,
}

impl Routes {
    fn new(issuer: &str) -> Routes {
        let after_scheme = issuer.strip_prefix("https://").unwrap_or(issuer);
        let base = after_scheme
            .find('/')
            .map(|i| &after_scheme[i..])
            .unwrap_or("");
        Routes {
            discovery: format!("{base}/.well-known/openid-configuration"),
            jwks: format!("{base}/.well-known/jwks.json"),
            authorize: format!("{base}/eam/authorize"),
            method: format!("{base}/eam/method"),
            otp: format!("{base}/eam/otp"),
            smart_card: format!("{base}/eam/smartcard"),
            mobile: format!("{base}/eam/mobile"),
            mobile_wait: format!("{base}/eam/mobile/wait"),
            mobile_respond: format!("{base}/eam/mobile/respond"),
            fido: format!("{base}/eam/fido"),
            enrol: format!("{base}/eam/enrol"),
        }
    }
}

/// The appliance as one configuration sees it. The state that outlives a configuration
/// (signer, store, transactions, spent codes, clock) is shared with the app that a reload
/// makes from this one.
pub struct App {
    pub config: Config,
    pub routes: Routes,
    pub clock: Arc<Clock>,
    pub keys: Arc<EntraKeys>,
    pub signer: SignerPool,
    pub store: Arc<CredentialStore>,
    pub transactions: Arc<Transactions>,
    /// Phone challenges waiting for an answer (mobile-PKI sign-in).
    pub challenges: Arc<crate::eam::challenges::Challenges>,
    /// One-time security-key enrolment links.
    pub links: Arc<crate::eam::links::EnrolLinks>,
    pub used_steps: Arc<UsedSteps>,
    pub spent: Arc<SpentJournal>,
    /// Security keys' signature counters as sign-ins move them.
    pub fido_counters: Arc<FidoCounters>,
    pub limiter: Arc<FactorLimits>,
    pub admission: Arc<Admission>,
    /// Certificate trust stores, loaded with the configuration; CRLs refresh in the background.
    pub trust_stores: Arc<crate::pki::TrustStores>,
    /// The audit trail, counters and recent sign-ins operators see.
    pub oversight: Arc<crate::oversight::Oversight>,
    discovery: Bytes,
}

impl App {
    /// Prepares the state directory (creating what a first start needs) and loads it.
    pub fn new(config: Config) -> Result<App, StartError> {
        provision::ensure_dir(&config.state_dir)?;
        let signer = crate::signer::open(&config, Arc::new(Clock::default()))?;
        App::with_signer(config, signer, &[])
    }

    /// Builds the app around a signer made elsewhere; the JWKS carries the signer's keys
    /// and then those of `published` it lacks. The app reads the signer's clock.
    pub fn with_signer(
        config: Config,
        signer: SignerPool,
        published: &[PublishedKey],
    ) -> Result<App, StartError> {
        let store = Arc::new(CredentialStore::open(&config.state_dir)?);
        let clock = signer.clock();
        signer.publish_also(published);
        let (spent, used) = SpentJournal::open(&config.state_dir, clock.now()).map_err(|e| {
            StartError::SpentCodes {
                dir: config.state_dir.clone(),
                detail: e.to_string(),
            }
        })?;
        let fido_counters =
            FidoCounters::open(&config.state_dir).map_err(|e| StartError::FidoCounters {
                dir: config.state_dir.clone(),
                detail: e.to_string(),
            })?;
        let keys = EntraKeys::new(&config.tenants).map_err(StartError::Keys)?;
        let oversight = crate::oversight::Oversight::open(&config.operations, &config.state_dir)?;
        let routes = Routes::new(&config.issuer);
        let discovery = Bytes::from(discovery_document(&config.issuer, &routes));
        let trust_stores = crate::pki::TrustStores::load_and_refresh(&config.trust_stores)?;
        Ok(App {
            trust_stores,
            limiter: Arc::new(limiter_for(&config)),
            admission: Arc::new(Admission::new(config.limits.max_signins_in_flight)),
            routes,
            clock,
            keys: Arc::new(keys),
            signer,
            store,
            transactions: Arc::default(),
            challenges: Arc::default(),
            links: Arc::new(crate::eam::links::EnrolLinks::new(&config.state_dir)),
            used_steps: Arc::new(UsedSteps::restore(used)),
            spent: Arc::new(spent),
            fido_counters: Arc::new(fido_counters),
            oversight: Arc::new(oversight),
            discovery,
            config,
        })
    }

    /// The app for a new configuration, sharing this one's state. What only a restart can
    /// change (listeners, state directory, signer) is named in the error; attempt counts and
    /// lockouts carry over unless their limits changed.
    pub fn reconfigure(&self, config: Config) -> Result<App, ReloadError> {
        let old = &self.config;
        let needs_restart = [
            ("server.listen", old.listen != config.listen),
            (
                "server.client_cert_listen",
                old.client_cert.as_ref().map(|c| c.listen)
                    != config.client_cert.as_ref().map(|c| c.listen),
            ),
            ("server.state_dir", old.state_dir != config.state_dir),
            ("signer", old.signer != config.signer),
            ("signer.backend", old.signing != config.signing),
            (
                "signer.workers",
                old.signer_workers != config.signer_workers,
            ),
            (
                "signer.max_in_flight",
                old.signer_max_in_flight != config.signer_max_in_flight,
            ),
            (
                "limits (connections)",
                !old.limits.same_connections(&config.limits),
            ),
            (
                "audit, admin or metrics",
                old.operations != config.operations,
            ),
        ];
        let changed: Vec<&str> = needs_restart.iter().filter(|c| c.1).map(|c| c.0).collect();
        if !changed.is_empty() {
            return Err(ReloadError::NeedsRestart(changed.join(", ")));
        }
        let keys = EntraKeys::new(&config.tenants).map_err(ReloadError::Keys)?;
        let limiter = if limiter_for(old) == limiter_for(&config) {
            self.limiter.clone()
        } else {
            Arc::new(limiter_for(&config))
        };
        let admission = if old.limits.max_signins_in_flight == config.limits.max_signins_in_flight {
            self.admission.clone()
        } else {
            Arc::new(Admission::new(config.limits.max_signins_in_flight))
        };
        let routes = Routes::new(&config.issuer);
        let trust_stores = crate::pki::TrustStores::load_and_refresh(&config.trust_stores)
            .map_err(|e| ReloadError::TrustStore(e.to_string()))?;
        Ok(App {
            trust_stores,
            discovery: Bytes::from(discovery_document(&config.issuer, &routes)),
            routes,
            keys: Arc::new(keys),
            limiter,
            admission,
            clock: self.clock.clone(),
            signer: self.signer.clone(),
            store: self.store.clone(),
            transactions: self.transactions.clone(),
            challenges: self.challenges.clone(),
            links: self.links.clone(),
            used_steps: self.used_steps.clone(),
            spent: self.spent.clone(),
            fido_counters: self.fido_counters.clone(),
            oversight: self.oversight.clone(),
            config,
        })
    }

    /// Answers one request. A `HEAD` gets the headers `GET` would, with no body: hyper's
    /// HTTP/2 server would otherwise send the body and break the stream.
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Page
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let head = req.method() == Method::HEAD;
        let mut page = self.route(req).await;
        if head {
            *page.body_mut() = Full::new(Bytes::new());
        }
        page
    }

    async fn route<B>(self: Arc<Self>, req: Request<B>) -> Page
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path();
        let method = req.method().clone();
        let route = &self.routes;
        if path == route.discovery {
            return match method {
                Method::GET | Method::HEAD => json(self.discovery.clone(), "max-age=3600"),
                _ => not_allowed(&req, "GET"),
            };
        }
        if path == route.jwks {
            return match method {
                Method::GET | Method::HEAD => json(self.signer.jwks(), "max-age=3600"),
                _ => not_allowed(&req, "GET"),
            };
        }
        if path == route.authorize {
            return match method {
                Method::POST => {
                    let fill = self.signer.fill();
                    let Some(_ticket) = self.admission.admit(Stage::New, fill) else {
                        tracing::debug!(in_flight = self.admission.in_flight(), "sign-in shed");
                        return pages::busy(Lang::of(&req), RETRY_AFTER_SECS);
                    };
                    crate::eam::authorize::post(&self, req).await
                }
                Method::GET | Method::HEAD => pages::authorize_probe(),
                _ => not_allowed(&req, "GET, POST"),
            };
        }
        if path == route.method {
            return match method {
                Method::POST => crate::eam::method::post(&self, req).await,
                _ => not_allowed(&req, "POST"),
            };
        }
        if path == route.otp {
            return match method {
                Method::POST => crate::eam::otp::post(&self, req).await,
                _ => not_allowed(&req, "POST"),
            };
        }
        if path == route.mobile {
            return match method {
                Method::POST => crate::eam::mobile::post(&self, req).await,
                _ => not_allowed(&req, "POST"),
            };
        }
        if path == route.mobile_wait {
            return match method {
                Method::POST => crate::eam::mobile::wait(&self, req).await,
                _ => not_allowed(&req, "POST"),
            };
        }
        if path == route.mobile_respond {
            return match method {
                Method::POST => crate::eam::mobile_api::respond(&self, req).await,
                _ => not_allowed(&req, "POST"),
            };
        }
        if path == route.smart_card {
            return match method {
                Method::POST => crate::eam::smart_card::post(&self, req).await,
                _ => not_allowed(&req, "POST"),
            };
        }
        if path == route.fido {
            return match method {
                Method::POST => crate::eam::fido::post(&self, req).await,
                _ => not_allowed(&req, "POST"),
            };
        }
        if path == route.enrol {
            return match method {
                Method::GET | Method::HEAD => crate::eam::enrol::get(&self, req),
                Method::POST => crate::eam::enrol::post(&self, req).await,
                _ => not_allowed(&req, "GET, POST"),
            };
        }
        let lang = Lang::of(&req);
        let (title, message) = (text(lang, Text::NotFoundTitle), text(lang, Text::NotFound));
        pages::problem_in(lang, StatusCode::NOT_FOUND, title, message)
    }
}

fn json(body: Bytes, cache: &'static str) -> Page {
    let mut res = Response::new(Full::new(body.clone()));
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

fn not_allowed<B>(req: &Request<B>, allow: &'static str) -> Page {
    let lang = Lang::of(req);
    let (title, message) = (
        text(lang, Text::NotAllowedTitle),
        text(lang, Text::NotAllowed),
    );
    let mut page = pages::problem_in(lang, StatusCode::METHOD_NOT_ALLOWED, title, message);
    page.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    page
}

/// OpenID Connect Discovery metadata with every field Entra requires.
pub fn discovery_document(issuer: &str, routes: &Routes) -> Vec<u8> {
    let origin = issuer_origin(issuer);
    let doc = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{origin}{}", routes.authorize),
        "jwks_uri": format!("{origin}{}", routes.jwks),
        "scopes_supported": ["openid"],
        "response_types_supported": ["id_token"],
        "response_modes_supported": ["form_post"],
        "grant_types_supported": ["implicit"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": true,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "acr", "amr"],
    });
    doc.to_string().into_bytes()
}

/// The origin (`https://host[:port]`) of an HTTPS URL such as the issuer: the URL up to its
/// path.
pub(crate) fn issuer_origin(issuer: &str) -> &str {
    let after_scheme = issuer.strip_prefix("https://").unwrap_or(issuer);
    match after_scheme.find('/') {
        Some(i) => &issuer[..issuer.len() - after_scheme.len() + i],
        None => issuer,
    }
}

/// The JWKS (RFC 7517) of the published signing keys.
pub fn jwks_document(keys: &[PublishedKey]) -> Vec<u8> {
    use base64::Engine as _;
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": k.kid,
                "x5t": k.kid,
                "n": crate::jose::b64url_encode(&k.n),
                "e": crate::jose::b64url_encode(&k.e),
                "x5c": [base64::engine::general_purpose::STANDARD.encode(&k.certificate_der)],
            })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_endpoints_follow_the_issuer_path() {
        let routes = Routes::new("https://mfa.example.com:8443/t/contoso");
        assert_eq!(
            routes.discovery,
            "/t/contoso/.well-known/openid-configuration"
        );
        let doc: serde_json::Value = serde_json::from_slice(&discovery_document(
            "https://mfa.example.com:8443/t/contoso",
            &routes,
        ))
        .expect("json");
        assert_eq!(doc["issuer"], "https://mfa.example.com:8443/t/contoso");
        assert_eq!(
            doc["authorization_endpoint"],
            "https://mfa.example.com:8443/t/contoso/eam/authorize"
        );
        assert_eq!(
            doc["jwks_uri"],
            "https://mfa.example.com:8443/t/contoso/.well-known/jwks.json"
        );
    }

    #[test]
    fn a_host_only_issuer_serves_at_the_root() {
        let routes = Routes::new("https://localhost:8443");
        assert_eq!(routes.authorize, "/eam/authorize");
        assert_eq!(
            issuer_origin("https://localhost:8443"),
            "https://localhost:8443"
        );
    }

    #[test]
    fn jwks_keys_carry_every_field_entra_reads() {
        let key = PublishedKey::new(b"cert".to_vec(), vec![0xc1; 256], vec![1, 0, 1]);
        let doc: serde_json::Value =
            serde_json::from_slice(&jwks_document(&[key.clone(), key])).expect("json");
        let first = &doc["keys"][0];
        for field in ["kty", "use", "kid", "x5t", "n", "e", "x5c"] {
            assert!(!first[field].is_null(), "{field} missing");
        }
        assert_eq!(first["e"], "AQAB");
        assert_eq!(first["x5c"][0], "Y2VydA==");
        assert_eq!(first["kid"], first["x5t"]);
        assert_eq!(doc["keys"].as_array().map(Vec::len), Some(2));
    }
}
