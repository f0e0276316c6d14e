//! Prometheus metrics: their names, the calls that move them, and the listener that serves
//! them.
//!
//! The listener is plain HTTP on its own address (`[metrics] listen`), off unless configured;
//! the address operators are expected to give is loopback (`127.0.0.1:9464`), scraped by a
//! local agent. `GET /metrics` answers the text exposition format; anything else is 404.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vouch_signins_total` | counter | `outcome` (see below), `amr` |
//! | `vouch_step_seconds` | histogram | `step` (`hint`, `factor`, `signing`) |
//! | `vouch_signer_in_flight` | gauge | |
//! | `vouch_signer_errors_total` | counter | `kind` (`busy`, `backend`) |
//! | `vouch_entra_key_refreshes_total` | counter | `tenant`, `outcome` (`ok`, `failed`) |
//! | `vouch_tls_handshakes_total` | counter | `outcome` (`ok`, `failed`) |
//! | `vouch_audit_failures_total` | counter | |
//! | `vouch_crl_age_seconds` | gauge | `store`, `source`: time since the CRL's thisUpdate |
//! | `vouch_crl_fresh` | gauge | `store`, `source`: 1 when the source can decide revocation |
//!
//! A sign-in's `outcome` is `token`, `access_denied`, `temporarily_unavailable` or
//! `bad_request`. The CRL gauges are set again every five seconds from the trust stores.
//!
//! Without an installed recorder (no `[metrics] listen`), each call is a check of a global
//! and returns.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

use super::Step;

/// Histogram buckets for step latencies, in seconds: 50 µs to 5 s.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

pub fn signin(outcome: &str, amr: Option<&str>) {
    let labels = [
        ("outcome", outcome.to_owned()),
        ("amr", amr.unwrap_or("none").to_owned()),
    ];
    metrics::counter!("vouch_signins_total", &labels).increment(1);
}

pub fn step(step: Step, took: Duration) {
    metrics::histogram!("vouch_step_seconds", "step" => step.name()).record(took.as_secs_f64());
}

pub fn signer_in_flight(n: usize) {
    metrics::gauge!("vouch_signer_in_flight").set(n as f64);
}

pub fn signer_error(kind: &'static str) {
    metrics::counter!("vouch_signer_errors_total", "kind" => kind).increment(1);
}

pub fn entra_refresh(tenant: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    let labels = [
        ("tenant", tenant.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!("vouch_entra_key_refreshes_total", &labels).increment(1);
}

pub fn tls_handshake(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!("vouch_tls_handshakes_total", "outcome" => outcome).increment(1);
}

pub fn audit_failed() {
    metrics::counter!("vouch_audit_failures_total").increment(1);
}

/// Sets each CRL source's age and freshness at `now`.
pub fn crl_sources(stores: &crate::pki::TrustStores, now: crate::pki::Timestamp) {
    use crate::pki::crl::SourceState;
    for store in stores.iter() {
        for source in &store.crls().sources {
            let labels = [
                ("store", store.name.clone()),
                ("source", source.source.clone()),
            ];
            if let Some(crl) = &source.crl {
                let age = (now.0 - crl.this_update.0) as f64;
                metrics::gauge!("vouch_crl_age_seconds", &labels).set(age);
            }
            let fresh = source.state(now, store.crl_grace_secs) == SourceState::Fresh;
            metrics::gauge!("vouch_crl_fresh", &labels).set(if fresh { 1.0 } else { 0.0 });
        }
    }
}

/// `[metrics]` in the configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    listen: Option<SocketAddr>,
}

/// Where metrics are served; `None` keeps them off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    pub fn from_raw(raw: RawMetrics) -> MetricsConfig {
        MetricsConfig { listen: raw.listen }
    }
}

/// Installs the process-wide Prometheus recorder; the handle renders the exposition.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("metrics recorder: {e}"))
}

/// Serves `GET /metrics` on `listener` until the task is dropped; returns the address.
/// `gauges` runs every five seconds, from the first, to set gauges read off shared state.
pub fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    gauges: impl Fn() + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let upkeep = handle.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    gauges();
                    upkeep.run_upkeep();
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(answer(stream, handle.clone()));
                    }
                    Err(e) => tracing::debug!(error = %e, "metrics accept failed"),
                },
            }
        }
    });
    tracing::info!(%addr, "metrics listening");
    Ok((addr, task))
}

async fn answer(stream: tokio::net::TcpStream, handle: PrometheusHandle) {
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let handle = handle.clone();
        async move {
            let page = if req.uri().path() == "/metrics" {
                let mut res = Response::new(Full::new(Bytes::from(handle.render())));
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                res
            } else {
                let mut res = Response::new(Full::new(Bytes::from_static(b"not found\n")));
                *res.status_mut() = StatusCode::NOT_FOUND;
                res
            };
            Ok::<_, std::convert::Infallible>(page)
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = tokio::time::timeout(Duration::from_secs(30), served).await {
        tracing::debug!(error = %e, "metrics connection timed out");
    }
}
