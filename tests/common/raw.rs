//! Raw HTTP/1.1 over TLS, for requests a browser would not send and for holding one
//! connection open across events.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What came back on a raw connection, and whether the appliance closed it.
pub struct Raw {
    pub text: String,
    pub closed: bool,
}

impl Raw {
    pub fn status(&self) -> Option<u16> {
        let line = self.text.lines().next()?;
        line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }
}

/// A TLS connection to `localhost` on `port` speaking HTTP/1.1, trusting `pem`.
pub async fn connect(port: u16, pem: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// Reads what the appliance sends within `wait`, noting whether it closed the connection.
pub async fn read_for(conn: &mut TlsStream<TcpStream>, wait: Duration) -> Raw {
    read(conn, wait, false).await
}

/// Reads one whole response, or what came within `wait`.
pub async fn read_response(conn: &mut TlsStream<TcpStream>, wait: Duration) -> Raw {
    read(conn, wait, true).await
}

async fn read(conn: &mut TlsStream<TcpStream>, wait: Duration, one_response: bool) -> Raw {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    let closed = loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => {
                bytes.extend_from_slice(&buf[..n]);
                if one_response && complete(&bytes) {
                    break false;
                }
            }
            Err(_) => break false,
        }
    };
    Raw {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        closed,
    }
}

/// Whether `bytes` hold a whole response with a `Content-Length` body.
fn complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")?
                .parse()
                .ok()
        })
        .is_some_and(|len: usize| body.len() >= len)
}
