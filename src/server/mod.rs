//! TLS listeners and the connection loop.
//!
//! Each accepted connection completes its TLS handshake on its own task and is then served by
//! hyper, HTTP/1.1 or HTTP/2 as ALPN decided. Every phase has a deadline (handshake, headers,
//! body, idleness) and the number of open connections is capped, so slow or greedy clients
//! cannot hold the appliance. Shutdown stops accepting at once, lets open connections finish
//! their requests, and gives up after the grace period.
//!
//! With `[server] client_cert_listen` set, a second listener asks for a client certificate
//! (see [`client_cert`]) and hands the presented chain to each request as a [`ClientChain`].
//! It shares the connection limits, reloads and shutdown of the main listeners.

mod activity;
pub mod client_cert;

pub use client_cert::ClientChain;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::app::{App, Peer};
use crate::config::Limits;
use activity::{Activity, Tracked};

/// How often an open connection is checked for idleness.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Which TLS settings a listener's connections are accepted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    ClientCert,
}

/// A running server: its bound addresses and the switch that stops it.
pub struct Server {
    pub addrs: Vec<SocketAddr>,
    /// Where the client-certificate listener is bound, when configured.
    pub client_cert_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds every address and starts serving on the current runtime.
    pub async fn start(
        app: Arc<App>,
        tls: Arc<rustls::ServerConfig>,
        addrs: &[SocketAddr],
    ) -> std::io::Result<Server> {
        let mut listeners = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?;
            listeners.push(listener);
        }
        Server::serve(app, tls, listeners)
    }

    /// Serves on listeners bound elsewhere, such as sockets handed over by systemd.
    pub fn serve(
        app: Arc<App>,
        tls: Arc<rustls::ServerConfig>,
        listeners: Vec<TcpListener>,
    ) -> std::io::Result<Server> {
        let bound = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<std::io::Result<Vec<_>>>()?;
        let client_cert = client_cert_listener(&app)?;
        let client_cert_addr = client_cert.as_ref().map(|l| l.local_addr()).transpose()?;
        let client_acceptor = match &client_cert {
            Some(_) => Some(client_cert_acceptor(&tls, &app)?),
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let grace = Duration::from_secs(app.config.shutdown_grace_secs);
        let shared = Arc::new(Shared {
            acceptor: RwLock::new(TlsAcceptor::from(tls)),
            client_acceptor: RwLock::new(client_acceptor),
            http: http_builder(&app.config.limits),
            slots: Arc::new(Semaphore::new(app.config.limits.max_connections)),
            limits: app.config.limits.clone(),
            app: RwLock::new(app),
        });
        let serving = shared.clone();
        let done = tokio::spawn(async move {
            let shared = serving;
            let mut loops = tokio::task::JoinSet::new();
            let kinds = listeners.into_iter().map(|l| (l, Kind::Main));
            for (listener, kind) in kinds.chain(client_cert.map(|l| (l, Kind::ClientCert))) {
                let listening = Listening {
                    shared: shared.clone(),
                    kind,
                    stopped: stopped.clone(),
                    grace,
                };
                loops.spawn(accept_loop(listener, listening));
            }
            while loops.join_next().await.is_some() {}
        });
        for addr in &bound {
            tracing::info!(%addr, "listening");
        }
        if let Some(addr) = client_cert_addr {
            tracing::info!(%addr, "listening for client certificates");
        }
        Ok(Server {
            addrs: bound,
            client_cert_addr,
            shared,
            stop,
            done,
        })
    }

    /// Serves new requests with `app` and new handshakes with `tls`. Open connections stay
    /// open; requests already being answered finish with the app they started with.
    pub fn reload(&self, app: Arc<App>, tls: Arc<rustls::ServerConfig>) {
        if self.client_cert_addr.is_some() {
            match client_cert_acceptor(&tls, &app) {
                Ok(acceptor) => {
                    let mut current = self
                        .shared
                        .client_acceptor
                        .write()
                        .unwrap_or_else(|p| p.into_inner());
                    *current = Some(acceptor);
                }
                Err(e) => tracing::warn!(error = %e, "client-certificate TLS settings kept"),
            }
        }
        *self.shared.app.write().unwrap_or_else(|p| p.into_inner()) = app;
        *self
            .shared
            .acceptor
            .write()
            .unwrap_or_else(|p| p.into_inner()) = TlsAcceptor::from(tls);
    }

    /// The app new requests are answered with.
    pub fn app(&self) -> Arc<App> {
        self.shared.current_app()
    }

    /// Stops accepting, waits for open connections within the grace period, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }
}

/// What every connection of every listener shares.
struct Shared {
    app: RwLock<Arc<App>>,
    acceptor: RwLock<TlsAcceptor>,
    /// The client-certificate listener's, when there is one.
    client_acceptor: RwLock<Option<TlsAcceptor>>,
    http: auto::Builder<TokioExecutor>,
    limits: Limits,
    /// One permit per open connection.
    slots: Arc<Semaphore>,
}

impl Shared {
    fn current_app(&self) -> Arc<App> {
        self.app.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn current_acceptor(&self, kind: Kind) -> Option<TlsAcceptor> {
        match kind {
            Kind::Main => Some(
                self.acceptor
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            ),
            Kind::ClientCert => self
                .client_acceptor
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Binds `[server] client_cert_listen`, when set.
fn client_cert_listener(app: &App) -> std::io::Result<Option<TcpListener>> {
    let Some(listener) = &app.config.client_cert else {
        return Ok(None);
    };
    let addr = listener.listen;
    let bound = std::net::TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    bound.set_nonblocking(true)?;
    TcpListener::from_std(bound).map(Some)
}

fn client_cert_acceptor(tls: &rustls::ServerConfig, app: &App) -> std::io::Result<TlsAcceptor> {
    client_cert::tls_config(tls, &app.trust_stores)
        .map(TlsAcceptor::from)
        .map_err(|e| std::io::Error::other(format!("client-certificate TLS settings: {e}")))
}

/// What one listener's loop needs.
struct Listening {
    shared: Arc<Shared>,
    kind: Kind,
    stopped: watch::Receiver<bool>,
    grace: Duration,
}

async fn accept_loop(listener: TcpListener, listening: Listening) {
    let Listening {
        shared,
        kind,
        mut stopped,
        grace,
    } = listening;
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Running out of file descriptors must not spin the loop.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let Ok(slot) = shared.slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection refused: at the connection limit");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(acceptor) = shared.current_acceptor(kind) else {
                return;
            };
            let handshake = acceptor.accept(tcp);
            let done = tokio::time::timeout(shared.limits.handshake_timeout, handshake).await;
            crate::oversight::metrics::tls_handshake(matches!(done, Ok(Ok(_))));
            let tls = match done {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let chain = (kind == Kind::ClientCert).then(|| presented_chain(&tls));
            let activity = Activity::new();
            let service = {
                let (shared, activity) = (shared.clone(), activity.clone());
                service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    let (app, working) = (shared.current_app(), activity.request());
                    req.extensions_mut().insert(Peer(peer));
                    if let Some(chain) = &chain {
                        req.extensions_mut().insert(chain.clone());
                    }
                    async move {
                        let page = app.handle(req).await;
                        drop(working);
                        Ok::<_, std::convert::Infallible>(page)
                    }
                })
            };
            let stream = TokioIo::new(Tracked::new(tls, activity.clone()));
            let conn = shared.http.serve_connection(stream, service).into_owned();
            serve_until_idle(watcher.watch(conn), &activity, &shared.limits, peer, slot).await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("listener closed; its connections finished"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "connections still open after the grace period; closing them"
            );
        }
    }
}

/// The chain the client presented in the handshake, leaf first.
fn presented_chain(tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> ClientChain {
    let certificates = tls.get_ref().1.peer_certificates().unwrap_or_default();
    ClientChain(Arc::new(certificates.to_vec()))
}

/// The HTTP/1.1 and HTTP/2 settings every connection is served with.
fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(64);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_pending_accept_reset_streams(32)
        .keep_alive_interval(limits.idle_timeout / 2)
        .keep_alive_timeout(limits.header_timeout);
    builder
}

/// Drives a connection to its end, closing it once it has been idle for too long.
async fn serve_until_idle<F, E>(
    conn: F,
    activity: &Activity,
    limits: &Limits,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
) where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(IDLE_CHECK);
    loop {
        tokio::select! {
            ended = &mut conn => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = tick.tick() => {
                if activity.idle_for() >= limits.idle_timeout {
                    tracing::debug!(%peer, "closing an idle connection");
                    break;
                }
            }
        }
    }
    drop(slot);
}
