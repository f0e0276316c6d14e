//! Working under systemd: sockets it hands over, the state it is told, and its watchdog.
//!
//! With socket activation (`vouch.socket`) systemd holds the listening sockets, so a restart
//! or an upgrade of the appliance refuses no connection: they wait in the socket's backlog
//! until the new process accepts them. `Type=notify` lets systemd know when the appliance
//! really serves and when it is stopping. The watchdog is petted only while the event loop
//! runs and the signer answers, so a wedged appliance is restarted instead of left hanging.
//! Outside systemd each of these is a no-op.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::app::App;
use crate::signer::SignError;

/// The TCP listeners systemd passed in (`LISTEN_FDS`), in the order of the socket unit.
///
/// Call it before any thread starts: it clears the variables that name the sockets, so that
/// no child inherits them.
pub fn inherited_listeners() -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::with_capacity(fds.len());
    for i in 0..fds.len() {
        let Some(listener) = fds.take_tcp_listener(i)? else {
            return Err(std::io::Error::other(format!(
                "socket {i} passed by systemd is not a TCP listener; use ListenStream= in \
                 vouch.socket"
            )));
        };
        listener.set_nonblocking(true)?;
        listeners.push(listener);
    }
    Ok(listeners)
}

fn notify(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "could not tell systemd the appliance's state");
    }
}

/// Tells systemd the appliance serves.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the appliance is reloading its configuration; [`ready`] says when it is done.
pub fn reloading() {
    let mut state = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        state.push(now);
    }
    notify(&state);
}

/// Tells systemd the appliance is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Pets systemd's watchdog at half its period while the appliance is healthy, if systemd
/// asked for a watchdog. Runs until the process ends.
pub async fn run_watchdog(app: Arc<App>) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval(period / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tick.tick().await;
        let now_healthy = signer_answers(&app, period / 4).await;
        if now_healthy {
            notify(&[NotifyState::Watchdog]);
        } else if healthy {
            tracing::error!("the signer does not answer; no longer petting systemd's watchdog");
        }
        healthy = now_healthy;
    }
}

/// Whether a test signature comes back in time. A signer too busy to take it is working,
/// and one that signed a token within the period needs no test: on a slow card the
/// watchdog then costs no signature while sign-ins flow.
async fn signer_answers(app: &App, within: Duration) -> bool {
    if app.signer.is_available() && app.signer.signed_within(within * 2) {
        return true;
    }
    let probe = app.signer.sign("watchdog.probe".to_owned());
    match tokio::time::timeout(within, probe).await {
        Ok(Ok(_)) | Ok(Err(SignError::Busy { .. })) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "watchdog test signature failed");
            false
        }
        Err(_) => false,
    }
}
