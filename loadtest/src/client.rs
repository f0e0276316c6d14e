//! The browsers: HTTPS clients for the appliance's origin, each with its own connections.
//!
//! A [`Browser`] keeps its connection between requests, as a real browser does; a run that
//! asks for a new connection per sign-in gives each sign-in a new browser. TLS session
//! resumption is off, so every new connection costs the appliance a full handshake. Nagle's
//! algorithm is off, as in browsers, so that small writes are not held for delayed ACKs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Longest any one request may take before it counts as timed out.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest page read from the appliance.
const MAX_PAGE: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("the appliance's certificate {detail}")]
    Trust { detail: String },
    #[error("no answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    #[error("request failed: {detail}")]
    Request { detail: String },
    #[error("the page is larger than {MAX_PAGE} bytes or not UTF-8")]
    Page,
}

/// A page as a browser received it.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub body: String,
}

/// What every browser of a run shares: the origin and the TLS settings.
#[derive(Clone)]
pub struct Agent {
    origin: Arc<str>,
    roots: Arc<rustls::RootCertStore>,
    http1_only: bool,
    connector: HttpsConnector<HttpConnector>,
}

/// A client certificate chain (leaf first) and its key, as a smart card presents them.
pub type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

impl Agent {
    /// An agent for `origin` that trusts only the PEM certificates in `trusted_pem`.
    pub fn new(origin: &str, trusted_pem: &[u8], http1_only: bool) -> Result<Agent, ClientError> {
        let trust = |detail: String| ClientError::Trust { detail };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(trusted_pem) {
            let cert = cert.map_err(|e| trust(format!("cannot be read: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| trust(format!("is not usable: {e}")))?;
        }
        if roots.is_empty() {
            return Err(trust("file holds no PEM certificate".into()));
        }
        Agent::build(origin, Arc::new(roots), http1_only, None)
    }

    /// An agent for `origin`, trusting what this one trusts, that presents `identity` when
    /// the server asks for a client certificate.
    pub fn with_client_cert(
        &self,
        origin: &str,
        identity: ClientIdentity,
    ) -> Result<Agent, ClientError> {
        Agent::build(origin, self.roots.clone(), self.http1_only, Some(identity))
    }

    fn build(
        origin: &str,
        roots: Arc<rustls::RootCertStore>,
        http1_only: bool,
        identity: Option<ClientIdentity>,
    ) -> Result<Agent, ClientError> {
        let trust = |detail: String| ClientError::Trust { detail };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| trust(e.to_string()))?
            .with_root_certificates(roots.clone());
        let mut tls = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| trust(format!("client certificate: {e}")))?,
        };
        tls.resumption = rustls::client::Resumption::disabled();
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only();
        let connector = if http1_only {
            builder.enable_http1().wrap_connector(tcp)
        } else {
            builder.enable_http1().enable_http2().wrap_connector(tcp)
        };
        Ok(Agent {
            origin: origin.trim_end_matches('/').into(),
            roots,
            http1_only,
            connector,
        })
    }

    /// The origin the agent's browsers talk to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A new browser: no connection yet, and none shared with any other browser.
    pub fn browser(&self) -> Browser {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(self.connector.clone());
        Browser {
            origin: self.origin.clone(),
            client,
        }
    }
}

pub struct Browser {
    origin: Arc<str>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Result<Page, ClientError> {
        self.send(Method::GET, path, None, Bytes::new()).await
    }

    /// Posts `fields` form-encoded, as a browser submits a form.
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Page, ClientError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let form = Some("application/x-www-form-urlencoded");
        self.send(Method::POST, path, form, Bytes::from(body)).await
    }

    /// Posts `json`, as the phone app posts its answer.
    pub async fn post_json(&self, path: &str, json: String) -> Result<Page, ClientError> {
        let kind = Some("application/json");
        self.send(Method::POST, path, kind, Bytes::from(json)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<Page, ClientError> {
        let failed = |e: &dyn std::fmt::Display| ClientError::Request {
            detail: e.to_string(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.origin));
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let request = request.body(Full::new(body)).map_err(|e| failed(&e))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| failed(&e))?;
            let status = response.status();
            let limited = http_body_util::Limited::new(response.into_body(), MAX_PAGE);
            let bytes = limited.collect().await.map_err(|_| ClientError::Page)?;
            let body =
                String::from_utf8(bytes.to_bytes().to_vec()).map_err(|_| ClientError::Page)?;
            Ok(Page { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout)?
    }
}
