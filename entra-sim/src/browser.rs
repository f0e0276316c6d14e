//! The user's browser: an HTTPS client that keeps its connections, posts forms, and reads the
//! forms in the pages it gets back. Headers a browser sends on every request (its languages)
//! are set once with [`Browser::with_header`].

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("trust anchors: {0}")]
    Trust(String),
    #[error("request to {url}: {detail}")]
    Request { url: String, detail: String },
}

/// A page as the browser received it.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The first form on the page.
    pub fn form(&self) -> Option<Form> {
        Form::parse(&self.body)
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A form's action and its named inputs, values unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// Reads the first `<form>` of an HTML page: its `action` and every `<input>` with a name.
    pub fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |e| start + e);
        let form = &html[start..end];
        let open_end = form.find('>')?;
        let action = attribute(&form[..open_end], "action")?;
        let mut fields = Vec::new();
        let mut rest = &form[open_end..];
        while let Some(at) = rest.find("<input") {
            let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
            let tag = &rest[at..tag_end];
            if let Some(name) = attribute(tag, "name") {
                fields.push((name, attribute(tag, "value").unwrap_or_default()));
            }
            rest = &rest[tag_end..];
        }
        Some(Form { action, fields })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|(n, _)| n.as_str()).collect()
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// An HTTPS client for one origin, trusting only the certificates it is given.
#[derive(Clone)]
pub struct Browser {
    origin: String,
    headers: HeaderMap,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Browser {
    /// A browser for `origin` (`https://host:port`) that trusts the PEM certificates given.
    pub fn new(origin: &str, trusted_pem: &[u8]) -> Result<Browser, BrowserError> {
        Browser::build(origin, trusted_pem, None)
    }

    /// A browser that presents `chain` (leaf first), whose key is `key`, when a server asks
    /// for a client certificate: a smart card or a certificate in the browser's store.
    pub fn with_client_cert(
        origin: &str,
        trusted_pem: &[u8],
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Browser, BrowserError> {
        Browser::build(origin, trusted_pem, Some((chain, key)))
    }

    fn build(
        origin: &str,
        trusted_pem: &[u8],
        client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Result<Browser, BrowserError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(trusted_pem) {
            let cert = cert.map_err(|e| BrowserError::Trust(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| BrowserError::Trust(e.to_string()))?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BrowserError::Trust(e.to_string()))?
            .with_root_certificates(roots);
        let tls = match client {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| BrowserError::Trust(e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Browser {
            origin: origin.trim_end_matches('/').to_owned(),
            headers: HeaderMap::new(),
            client,
        })
    }

    /// The same browser, sending `name: value` with every request (`Accept-Language`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Browser {
        self.headers.insert(name, value);
        self
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub async fn get(&self, path: &str) -> Result<Page, BrowserError> {
        self.send(Method::GET, path, None, Bytes::new()).await
    }

    /// Posts `fields` form-encoded, as a browser submits a form.
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Page, BrowserError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let form = "application/x-www-form-urlencoded";
        self.send(Method::POST, path, Some(form), Bytes::from(body))
            .await
    }

    /// Submits a form read from a page, with some fields added or replaced.
    pub async fn submit(
        &self,
        form: &Form,
        changes: &[(&str, &str)],
    ) -> Result<Page, BrowserError> {
        let mut fields: Vec<(&str, &str)> = form
            .fields
            .iter()
            .filter(|(n, _)| !changes.iter().any(|(c, _)| c == n))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        fields.extend_from_slice(changes);
        self.post_form(&form.action, &fields).await
    }

    /// Sends any request; for the hostile cases a browser would not send.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Page, BrowserError> {
        let url = format!("{}{path}", self.origin);
        let failed = |detail: String| BrowserError::Request {
            url: url.clone(),
            detail,
        };
        let mut request = Request::builder().method(method).uri(&url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        Ok(Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_action_and_unescaped_inputs_of_the_first_form() {
        let html = r#"<main><form method="post" action="https://e.example/x?a=1&amp;b=2">
<input type="hidden" name="id_token" value="a.b.c">
<input type="hidden" name="state" value="&quot;&lt;&amp;&#39;">
<button type="submit">Continue</button></form><form action="/other"></form></main>"#;
        let form = Form::parse(html).expect("form");
        assert_eq!(form.action, "https://e.example/x?a=1&b=2");
        assert_eq!(form.get("id_token"), Some("a.b.c"));
        assert_eq!(form.get("state"), Some("\"<&'"));
        assert_eq!(form.names(), vec!["id_token", "state"]);
    }

    #[test]
    fn a_page_without_a_form_has_none() {
        assert_eq!(Form::parse("<p>no form</p>"), None);
    }
}
