//! A small HTTP/1.1 client for CRL distribution points and OCSP responders.
//!
//! Both are plain `http://` by design (RFC 5280 §4.2.1.13, RFC 6960 Appendix A): what they
//! serve is signed and checked on arrival. Every fetch has a deadline and a size limit, and a
//! non-200 answer is an error naming the status.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;

/// Fetches `url` with GET.
pub async fn get(url: &str, max_bytes: usize, deadline: Duration) -> Result<Vec<u8>, String> {
    exchange(url, Method::GET, None, max_bytes, deadline).await
}

/// POSTs `body` of `content_type` to `url` (RFC 6960 §A.1.1 for OCSP).
pub async fn post(
    url: &str,
    content_type: &'static str,
    body: Vec<u8>,
    max_bytes: usize,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let body = Some((content_type, body));
    exchange(url, Method::POST, body, max_bytes, deadline).await
}

async fn exchange(
    url: &str,
    method: Method,
    body: Option<(&'static str, Vec<u8>)>,
    max_bytes: usize,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    match tokio::time::timeout(deadline, exchange_now(url, method, body, max_bytes)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", deadline.as_millis())),
    }
}

async fn exchange_now(
    url: &str,
    method: Method,
    body: Option<(&'static str, Vec<u8>)>,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_owned())?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs are fetched".into());
    }
    let host = uri
        .host()
        .ok_or("no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });

    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, authority);
    let payload = match body {
        Some((content_type, bytes)) => {
            request = request.header(header::CONTENT_TYPE, content_type);
            Bytes::from(bytes)
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(payload))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("answered HTTP {}", response.status()));
    }
    let collected = Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|e| format!("reading the body (limit {max_bytes} bytes): {e}"))?;
    Ok(collected.to_bytes().to_vec())
}
