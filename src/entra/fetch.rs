//! A small HTTPS GET client for Entra's key documents.
//!
//! It talks only to the host it is given (the pinned cloud host or a configured test
//! authority), over rustls, with a deadline for the whole exchange and a cap on the body.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub const MAX_BODY: usize = 256 * 1024;
pub const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("{url} is not an https URL with a host")]
    BadUrl { url: String },
    #[error("connecting to {host}: {detail}")]
    Connect { host: String, detail: String },
    #[error("TLS with {host}: {detail}")]
    Tls { host: String, detail: String },
    #[error("HTTP exchange with {host}: {detail}")]
    Http { host: String, detail: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("{url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
}

/// The TLS settings for one authority: the public web roots, or a lab CA.
pub fn client_config(extra_ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match extra_ca_pem {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("CA file is not PEM: {e}"))?;
            if certs.is_empty() {
                return Err("CA file holds no certificate".into());
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("CA certificate refused: {e}"))?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// GETs `url` (`https://host[:port]/path`) and returns the body of a 200 answer.
pub async fn get(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Bytes, FetchError> {
    let secs = DEADLINE.as_secs();
    tokio::time::timeout(DEADLINE, get_inner(url, tls))
        .await
        .unwrap_or_else(|_| {
            Err(FetchError::Timeout {
                url: url.to_owned(),
                secs,
            })
        })
}

async fn get_inner(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Bytes, FetchError> {
    let (host, port, path) = split_url(url)?;
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| FetchError::Connect {
            host: host.to_owned(),
            detail: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);

    let name = ServerName::try_from(host.to_owned()).map_err(|_| FetchError::BadUrl {
        url: url.to_owned(),
    })?;
    let stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| FetchError::Tls {
            host: host.to_owned(),
            detail: e.to_string(),
        })?;

    let http_err = |e: hyper::Error| FetchError::Http {
        host: host.to_owned(),
        detail: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_err)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });

    let authority = if port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(
            http::header::USER_AGENT,
            concat!("vouch/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|_| FetchError::BadUrl {
            url: url.to_owned(),
        })?;
    let response = sender.send_request(request).await.map_err(http_err)?;

    let status = response.status().as_u16();
    if status != 200 {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let body = Limited::new(response.into_body(), MAX_BODY).collect().await;
    body.map(|b| b.to_bytes())
        .map_err(|_| FetchError::TooLarge {
            url: url.to_owned(),
            max: MAX_BODY,
        })
}

fn split_url(url: &str) -> Result<(&str, u16, &str), FetchError> {
    let bad = || FetchError::BadUrl {
        url: url.to_owned(),
    };
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_port_and_path() {
        assert_eq!(
            split_url("https://login.microsoftonline.com/t/discovery/v2.0/keys").expect("ok"),
            ("login.microsoftonline.com", 443, "/t/discovery/v2.0/keys")
        );
        assert_eq!(
            split_url("https://127.0.0.1:9443/k").expect("ok"),
            ("127.0.0.1", 9443, "/k")
        );
        assert_eq!(
            split_url("https://[::1]:9443/k").expect("ok"),
            ("::1", 9443, "/k")
        );
    }

    #[test]
    fn refuses_urls_that_are_not_https_with_a_host() {
        for bad in [
            "http://a/b",
            "https://",
            "https://:443/",
            "https://a:x/",
            "ftp://a",
        ] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_a_ca_file_with_no_certificate() {
        assert!(client_config(Some(b"hello")).is_err());
        assert!(client_config(None).is_ok());
    }
}
