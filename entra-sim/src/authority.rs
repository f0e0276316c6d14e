//! The hint-signing side of Entra: a CA, an HTTPS server on loopback, and RSA keys.
//!
//! The server answers the two documents an EAM provider reads, per tenant:
//! `/{tid}/v2.0/.well-known/openid-configuration` and `/{tid}/discovery/v2.0/keys` (also
//! `/common/discovery/v2.0/keys`). Its certificate is issued by the simulator's own CA, whose
//! PEM the appliance is told to trust for this authority only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("making test keys and certificates: {0}")]
    Crypto(String),
    #[error("binding the simulator's listener: {0}")]
    Io(#[from] std::io::Error),
}

fn crypto(e: impl std::fmt::Display) -> SimError {
    SimError::Crypto(e.to_string())
}

/// How the key endpoints misbehave, when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer every key or discovery request with this HTTP status.
    Status(u16),
    /// Answer 200 with a body that is not JSON.
    Garbage,
}

/// One hint-signing key, published or not.
pub struct SigningKey {
    pub kid: String,
    key: RsaKeyPair,
    certificate_der: Vec<u8>,
}

impl SigningKey {
    /// A fresh RSA-2048 key with a self-signed certificate; `kid` is its `x5t`, as Entra's are.
    pub fn generate() -> Result<SigningKey, SimError> {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(crypto)?;
        let pkcs8 = key.as_der().map_err(crypto)?.as_ref().to_vec();
        let der = PrivatePkcs8KeyDer::from(pkcs8.clone());
        let rc_key =
            KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_RSA_SHA256).map_err(crypto)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "accounts.accesscontrol.windows.net");
        let cert = params.self_signed(&rc_key).map_err(crypto)?;
        SigningKey::from_parts(&pkcs8, cert.der().to_vec())
    }

    /// A key saved earlier: its PKCS#8 document and its certificate.
    pub fn from_parts(pkcs8: &[u8], certificate_der: Vec<u8>) -> Result<SigningKey, SimError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(crypto)?;
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &certificate_der,
        );
        Ok(SigningKey {
            kid: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            key,
            certificate_der,
        })
    }

    /// The key's PKCS#8 document and its certificate, to be saved and given to
    /// [`SigningKey::from_parts`] later.
    pub fn to_parts(&self) -> Result<(Vec<u8>, Vec<u8>), SimError> {
        let pkcs8 = self.key.as_der().map_err(crypto)?.as_ref().to_vec();
        Ok((pkcs8, self.certificate_der.clone()))
    }

    /// Signs `signing_input` with RS256.
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, signing_input, &mut sig)
            .unwrap_or_else(|_| unreachable!("RSA signing with a valid key does not fail"));
        sig
    }

    /// The key as Entra publishes it in a JWKS.
    pub fn jwk(&self, issuer: &str) -> Value {
        let public = self.key.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            "x5c": [STANDARD.encode(&self.certificate_der)],
            "issuer": issuer,
        })
    }
}

/// Signs a compact JWS over any header and payload, for hints both good and hostile.
pub fn compact(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

struct Shared {
    origin: String,
    published: Mutex<Vec<Arc<SigningKey>>>,
    failure: Mutex<Option<Failure>>,
    key_fetches: AtomicU64,
}

/// A running stand-in for an Entra cloud host.
pub struct Authority {
    /// `https://127.0.0.1:PORT`: what the appliance's `test_authority.url` names.
    pub origin: String,
    pub addr: SocketAddr,
    /// The CA that issued the server's certificate, PEM.
    pub ca_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Authority {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Authority {
    /// Starts the authority on a free loopback port with one published signing key.
    pub async fn start() -> Result<Authority, SimError> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Authority::start_with(loopback, Identity::generate()?).await
    }

    /// Starts the authority on a loopback address with an identity made earlier, so that an
    /// appliance configured to trust it finds the same CA and keys after a restart.
    pub async fn start_with(listen: SocketAddr, identity: Identity) -> Result<Authority, SimError> {
        if !listen.ip().is_loopback() {
            let why = format!("{listen} is not a loopback address");
            return Err(SimError::Io(std::io::Error::other(why)));
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let tls = server_config(&identity)?;
        let origin = format!("https://{addr}");
        let shared = Arc::new(Shared {
            origin: origin.clone(),
            published: Mutex::new(vec![Arc::new(identity.signing)]),
            failure: Mutex::new(None),
            key_fetches: AtomicU64::new(0),
        });
        let task = tokio::spawn(serve(listener, TlsAcceptor::from(tls), shared.clone()));
        Ok(Authority {
            origin,
            addr,
            ca_pem: identity.ca_pem,
            shared,
            task,
        })
    }

    /// The `iss` of this authority's hints for `tid`.
    pub fn issuer(&self, tid: &str) -> String {
        format!("{}/{tid}/v2.0", self.origin)
    }

    /// The key that signs new hints: the last one published.
    pub fn current_key(&self) -> Arc<SigningKey> {
        let keys = lock(&self.shared.published);
        keys.last()
            .cloned()
            .unwrap_or_else(|| unreachable!("a key is always published"))
    }

    /// Publishes a new key beside the old ones; new hints are signed with it.
    pub fn rotate(&self) -> Result<Arc<SigningKey>, SimError> {
        let key = Arc::new(SigningKey::generate()?);
        lock(&self.shared.published).push(key.clone());
        Ok(key)
    }

    /// Stops publishing every key but the newest.
    pub fn retire_old_keys(&self) {
        let mut keys = lock(&self.shared.published);
        let newest = keys.len() - 1;
        keys.drain(..newest);
    }

    pub fn fail(&self, failure: Option<Failure>) {
        *lock(&self.shared.failure) = failure;
    }

    /// How many times the key document was requested.
    pub fn key_fetches(&self) -> u64 {
        self.shared.key_fetches.load(Ordering::SeqCst)
    }

    /// The claims of a fresh hint for the user, shaped like Microsoft's example.
    pub fn hint_claims(&self, tid: &str, oid: &str, sub: &str, aud: &str) -> Value {
        let now = crate::unix_now();
        json!({
            "ver": "2.0",
            "iss": self.issuer(tid),
            "sub": sub,
            "aud": aud,
            "exp": now - 1,
            "iat": now,
            "nbf": now,
            "name": "Test User 2",
            "preferred_username": "testuser2@contoso.com",
            "oid": oid,
            "tid": tid,
        })
    }

    /// The header of a hint signed by `key`.
    pub fn hint_header(key: &SigningKey) -> Value {
        json!({"typ": "JWT", "alg": "RS256", "kid": key.kid})
    }

    /// A hint with these claims, signed by the current key.
    pub fn hint(&self, claims: &Value) -> String {
        let key = self.current_key();
        compact(&key, &Self::hint_header(&key), claims)
    }

    /// The default hint for Microsoft's example user of the example tenant.
    pub fn default_hint(&self) -> String {
        let claims = self.hint_claims(
            crate::TENANT,
            crate::USER_OID,
            crate::USER_SUB,
            crate::APP_ID,
        );
        self.hint(&claims)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What an authority is known by across restarts: the CA an appliance is told to trust, the
/// server certificate it issued for 127.0.0.1 and localhost, and the hint-signing key.
pub struct Identity {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub signing: SigningKey,
}

impl Identity {
    /// A new CA, server certificate and signing key.
    pub fn generate() -> Result<Identity, SimError> {
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "entra-sim test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(crypto)?)
            .map_err(crypto)?;

        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let params = CertificateParams::new(names).map_err(crypto)?;
        let key = KeyPair::generate().map_err(crypto)?;
        let cert = params.signed_by(&key, &ca).map_err(crypto)?;
        Ok(Identity {
            ca_pem: ca.pem(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
            signing: SigningKey::generate()?,
        })
    }
}

fn server_config(identity: &Identity) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let chain = CertificateDer::pem_slice_iter(identity.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(crypto)?;
    let key_der =
        PrivateKeyDer::from_pem_slice(identity.server_key_pem.as_bytes()).map_err(crypto)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(crypto)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(crypto)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&shared, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn answer<B>(shared: &Shared, req: &Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let mut parts = path.trim_start_matches('/').split('/');
    let tenant = parts.next().unwrap_or_default().to_owned();
    let rest: Vec<&str> = parts.collect();
    let document = match rest.as_slice() {
        ["discovery", "v2.0", "keys"] => {
            shared.key_fetches.fetch_add(1, Ordering::SeqCst);
            Some(jwks(shared, &tenant))
        }
        ["v2.0", ".well-known", "openid-configuration"] => Some(discovery(shared, &tenant)),
        _ => None,
    };
    let Some(document) = document else {
        return respond(StatusCode::NOT_FOUND, Bytes::from_static(b"{}"));
    };
    match *lock(&shared.failure) {
        Some(Failure::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            respond(
                status,
                Bytes::from_static(b"{\"error\":\"temporarily_unavailable\"}"),
            )
        }
        Some(Failure::Garbage) => respond(StatusCode::OK, Bytes::from_static(b"<html>oops")),
        None => respond(StatusCode::OK, Bytes::from(document.to_string())),
    }
}

fn jwks(shared: &Shared, tenant: &str) -> Value {
    let issuer = format!("{}/{tenant}/v2.0", shared.origin);
    let keys: Vec<Value> = lock(&shared.published)
        .iter()
        .map(|k| k.jwk(&issuer))
        .collect();
    json!({ "keys": keys })
}

fn discovery(shared: &Shared, tenant: &str) -> Value {
    let origin = &shared.origin;
    json!({
        "issuer": format!("{origin}/{tenant}/v2.0"),
        "authorization_endpoint": format!("{origin}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{origin}/{tenant}/oauth2/v2.0/token"),
        "jwks_uri": format!("{origin}/{tenant}/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "EU",
    })
}

fn respond(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}
