//! Prometheus metrics scraped over loopback after real sign-ins, and the exposition parsed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};

use common::*;
use vouch::factor::otp::TotpParams;

/// GET `path` from `addr` over plain HTTP/1.1; the status and body.
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_owned())
}

/// Samples by `name{labels}` as written, from the text exposition format.
fn parse(exposition: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in exposition.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("a number in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name:?}"
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_ins_steps_handshakes_and_key_refreshes_are_scraped_over_loopback() {
    let handle = vouch::oversight::metrics::install().expect("recorder");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, _task) = vouch::oversight::metrics::serve(listener, handle, || ()).unwrap();

    let stand = Stand::start().await;
    let params = TotpParams::default();
    let seed = stand.enroll(params);
    let page = stand.authorize_default().await;
    let done = stand.submit_code(&page, &stand.code(&seed, params)).await;
    assert!(answer(&done).get("id_token").is_some());
    let refused = stand.authorize(&[("scope", "openid".into())]).await;
    assert_refused(&refused, 400);

    let (status, body) = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let samples = parse(&body);
    let sample = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("{series}\n{body}"))
    };
    assert_eq!(
        sample(r#"vouch_signins_total{outcome="token",amr="otp"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"vouch_signins_total{outcome="bad_request",amr="none"}"#),
        1.0
    );
    for step in ["hint", "factor", "signing"] {
        assert_eq!(
            sample(&format!(r#"vouch_step_seconds_count{{step="{step}"}}"#)),
            1.0
        );
    }
    assert!(sample(r#"vouch_tls_handshakes_total{outcome="ok"}"#) >= 1.0);
    let refreshed = format!(r#"vouch_entra_key_refreshes_total{{tenant="{TENANT}",outcome="ok"}}"#);
    assert!(sample(&refreshed) >= 1.0);
    assert_eq!(sample("vouch_signer_in_flight"), 0.0);

    let (status, _) = tokio::task::spawn_blocking(move || get(addr, "/other"))
        .await
        .unwrap();
    assert_eq!(status, 404);
    stand.shutdown().await;
}
