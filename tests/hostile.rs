//! Hostile traffic at the connection and HTTP level: smuggling shapes, floods, slow clients,
//! greedy clients and overload. Each gets a clear 4xx or a closed connection, the appliance
//! stays healthy for the next client, and no token is issued.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::raw::{self, Raw, read_for};
use common::*;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use vouch::factor::otp::TotpParams;

fn port(stand: &Stand) -> u16 {
    let origin = stand.browser.origin();
    origin.rsplit(':').next().unwrap().parse().unwrap()
}

async fn connect(stand: &Stand) -> std::io::Result<TlsStream<TcpStream>> {
    let pem = std::fs::read(stand.state_dir().join("tls/cert.pem")).unwrap();
    raw::connect(port(stand), &pem).await
}

/// Sends `request` as raw bytes on a new connection and reads the answer.
async fn exchange(stand: &Stand, request: &[u8]) -> Raw {
    let mut conn = connect(stand).await.expect("TLS connection");
    conn.write_all(request).await.expect("request sent");
    read_for(&mut conn, Duration::from_secs(3)).await
}

async fn assert_healthy(stand: &Stand) {
    let page = stand
        .browser
        .get("/.well-known/openid-configuration")
        .await
        .expect("the appliance still answers");
    assert_eq!(page.status, 200);
}

fn assert_no_token(raw: &Raw) {
    assert!(!raw.text.contains("id_token\" value"), "{}", raw.text);
    assert!(!raw.text.contains("eyJ"), "{}", raw.text);
}

#[tokio::test]
async fn smuggling_shapes_are_refused_with_400() {
    let stand = Stand::start().await;
    let cases: [&[u8]; 3] = [
        b"POST /eam/authorize HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 5\r\nContent-Length: 7\r\n\r\na=1&b=2",
        b"POST /eam/authorize HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /eam/authorize HTTP/1.1\r\nHost: localhost\r\n\
          Transfer-Encoding: gzip, chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    ];
    for request in cases {
        let raw = exchange(&stand, request).await;
        assert_eq!(raw.status(), Some(400), "{}", raw.text);
        assert!(
            raw.closed,
            "the connection is not reused after a smuggling shape"
        );
        assert_no_token(&raw);
    }
    assert_healthy(&stand).await;
}

#[tokio::test]
async fn header_floods_and_oversized_headers_are_refused() {
    let stand = Stand::start().await;
    let mut flood = String::from("GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..200 {
        flood.push_str(&format!("X-Flood-{i}: {i}\r\n"));
    }
    flood.push_str("\r\n");
    let huge = format!(
        "GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    for request in [flood, huge] {
        let raw = exchange(&stand, request.as_bytes()).await;
        assert_eq!(raw.status(), Some(431), "{}", raw.text);
        assert!(raw.closed);
    }
    assert_healthy(&stand).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let stand = Stand::start_with("[limits]\nheader_timeout_secs = 1", "").await;
    let mut conn = connect(&stand).await.expect("TLS connection");
    let started = Instant::now();
    conn.write_all(b"POST /eam/authorize HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let raw = read_for(&mut conn, Duration::from_secs(8)).await;
    assert!(raw.closed, "a slow-headers client keeps its connection");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_no_token(&raw);
    assert_healthy(&stand).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_gets_408() {
    let stand = Stand::start_with("[limits]\nbody_timeout_secs = 1", "").await;
    let mut conn = connect(&stand).await.expect("TLS connection");
    conn.write_all(
        b"POST /eam/authorize HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nscope=",
    )
    .await
    .unwrap();
    let raw = read_for(&mut conn, Duration::from_secs(8)).await;
    assert_eq!(raw.status(), Some(408), "{}", raw.text);
    assert_no_token(&raw);
    assert_healthy(&stand).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let extra = "[limits]\nidle_timeout_secs = 1\nheader_timeout_secs = 30";
    let stand = Stand::start_with(extra, "").await;
    let mut conn = connect(&stand).await.expect("TLS connection");
    conn.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let raw = read_for(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(raw.status(), Some(200), "{}", raw.text);
    assert!(raw.closed, "an idle connection stays open");
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_and_room_returns_when_one_ends() {
    let stand = Stand::start_with("[limits]\nmax_connections = 16", "").await;
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(
            connect(&stand)
                .await
                .expect("a connection within the limit"),
        );
    }
    let refused = match connect(&stand).await {
        Err(_) => true,
        Ok(mut conn) => read_for(&mut conn, Duration::from_secs(2)).await.closed,
    };
    assert!(refused, "a seventeenth connection was served");

    let mut first = held.remove(0);
    first.shutdown().await.unwrap();
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = stand.browser.get("/.well-known/jwks.json").await;
        if page.is_ok_and(|p| p.status == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no room after a connection ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_endpoint_answers_every_method_with_a_clear_status_and_no_token() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let paths = [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/eam/authorize",
        "/eam/otp",
        "/nothing-here",
        "/eam/authorize/../otp",
    ];
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
    ];
    for path in paths {
        for method in methods {
            let method = http::Method::from_bytes(method.as_bytes()).unwrap();
            let page = stand
                .browser
                .send(method.clone(), path, None, bytes::Bytes::new())
                .await
                .expect("answered");
            let status = page.status.as_u16();
            assert!(
                matches!(status, 200 | 400 | 404 | 405 | 415),
                "{method} {path}: {status}"
            );
            assert!(!page.body.contains("name=\"id_token\""));
        }
    }
    assert_healthy(&stand).await;
}

#[tokio::test]
async fn malformed_encodings_and_deeply_nested_claims_are_refused() {
    let stand = Stand::start().await;
    stand.enroll(TotpParams::default());
    let hint = stand.entra.default_hint();
    let form = |claims: &str| {
        let fields = Stand::entra_form(&hint);
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().filter(|(k, _)| *k != "claims"))
            .append_pair("claims", claims)
            .finish()
            .into_bytes()
    };
    let nested = format!("{}{}", "[".repeat(8_000), "]".repeat(8_000));
    let deep_object = format!("{}1{}", "{\"id_token\":".repeat(1_200), "}".repeat(1_200));
    let bodies: Vec<Vec<u8>> = vec![
        b"redirect_uri=%ff%fe&scope=openid".to_vec(),
        b"scope=%zz&response_type=id_token".to_vec(),
        vec![0xff, 0xfe, b'=', 0x80],
        b"scope=openid&scope".to_vec(),
        form(&nested),
        form(&deep_object),
    ];
    let ct = Some("application/x-www-form-urlencoded");
    for body in bodies {
        let page = stand
            .browser
            .send(http::Method::POST, "/eam/authorize", ct, body.into())
            .await
            .expect("answered");
        assert_refused(&page, 400);
    }
    assert_healthy(&stand).await;
}

#[tokio::test]
async fn past_capacity_new_sign_ins_get_503_and_open_ones_temporarily_unavailable() {
    let gate = Gate::shut();
    let _open_at_end = gate.opener();
    let stand = Stand::gated("[signer]\nmax_in_flight = 1", gate.clone()).await;
    let seed = stand.enroll(TotpParams::default());
    let first = stand.authorize_default().await;
    let second = stand.authorize_default().await;
    let code = stand.code(&seed, TotpParams::default());

    let signing = {
        let (browser, form) = (stand.browser.clone(), first.form().unwrap());
        tokio::spawn(async move {
            let fields = [("code", code.as_str()), ("action", "verify")];
            browser.submit(&form, &fields).await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stand.app.signer.is_saturated() {
        assert!(
            Instant::now() < deadline,
            "the first sign-in never reached the signer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let shed = stand.authorize_default().await;
    assert_refused(&shed, 503);
    assert_eq!(shed.header(http::header::RETRY_AFTER), Some("2"));
    let late = stand.submit_code(&second, "000000").await;
    assert_posted_error(&late, "temporarily_unavailable");
    let again = stand.submit_code(&second, "000000").await;
    assert_refused(&again, 400);

    gate.open();
    let done = signing.await.unwrap().expect("answered");
    let form = answer(&done);
    let rp = stand.relying_party().await;
    rp.validate(form.get("id_token").expect("token"), &expected())
        .expect("Entra accepts the token signed once the signer had room");
}
