//! Starts what operators reach a serving appliance through: the admin socket, the metrics
//! listener (when configured), and the trail's start record.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::admin::{AdminSocket, LogControl, ReloadRequest};
use crate::app::App;
use crate::audit::Event;

/// The running operator interfaces of a serving appliance.
pub struct Operated {
    admin: AdminSocket,
    metrics: Option<tokio::task::JoinHandle<()>>,
    app: Arc<std::sync::Mutex<Arc<App>>>,
}

/// Opens the admin socket and the metrics listener for `app`, and records the start.
pub async fn operate(
    app: &Arc<App>,
    reloads: mpsc::Sender<ReloadRequest>,
    log: (LogControl, String),
) -> Result<Operated, String> {
    let (control, filter) = log;
    let start = Event::Start {
        version: env!("CARGO_PKG_VERSION").into(),
        signing_kid: app.signer.published().kid.clone(),
    };
    app.oversight
        .audit
        .record(start)
        .await
        .map_err(|e| format!("audit trail: {e}"))?;
    let admin = AdminSocket::start(app.clone(), reloads, Some(control), &filter)
        .map_err(|e| e.to_string())?;
    let current = Arc::new(std::sync::Mutex::new(app.clone()));
    let metrics = match app.config.operations.metrics.listen {
        Some(addr) => {
            let handle = super::metrics::install()?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("metrics: cannot listen on {addr}: {e}"))?;
            let shared = current.clone();
            let gauges = move || {
                let app = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let now = crate::pki::Timestamp(app.clock.now());
                super::metrics::crl_sources(&app.trust_stores, now);
            };
            let (_, task) =
                super::metrics::serve(listener, handle, gauges).map_err(|e| e.to_string())?;
            Some(task)
        }
        None => None,
    };
    Ok(Operated {
        admin,
        metrics,
        app: current,
    })
}

impl Operated {
    pub fn app_changed(&self, app: Arc<App>) {
        self.admin.app_changed(app.clone());
        *self.app.lock().unwrap_or_else(|p| p.into_inner()) = app;
    }

    /// Tells the admin client that asked for a reload how it went, or, for SIGHUP, puts it
    /// on the trail (the admin command records its own, with the operator's uid).
    pub fn reloaded(&self, asked: Option<ReloadRequest>, outcome: Result<String, String>) {
        match asked {
            Some(reply) => {
                let _ = reply.send(outcome);
            }
            None => {
                let (applied, detail) = match outcome {
                    Ok(source) => (true, source),
                    Err(why) => (false, why),
                };
                let app = self.app.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let event = Event::Reload {
                    applied,
                    detail,
                    uid: None,
                };
                app.oversight.audit.note(event);
            }
        }
    }

    pub fn stop(self) {
        self.admin.stop();
        if let Some(task) = self.metrics {
            task.abort();
        }
    }
}
