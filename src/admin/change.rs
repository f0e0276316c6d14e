//! How a command-line change (an enrolment, a revocation, a key staged or promoted) reaches
//! the state and the audit trail.
//!
//! While the appliance runs it holds the trail's writer lock, and the change goes through
//! its admin socket: the appliance makes it, records it with the operator's uid, and answers.
//! When no process holds the lock, the command line takes it, makes the change itself and
//! records it the same way before it exits. Either way every change is on the trail, and only
//! one process ever appends to it.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use serde_json::Value;

use crate::audit::{AuditError, AuditLog, Event};
use crate::config::Config;

/// Where a change is made.
pub enum Route {
    /// No appliance runs on this state: the change is made here and recorded in `log` as
    /// the operator `uid`.
    Here { log: AuditLog, uid: u32 },
    /// The appliance runs: the change is asked of it over its admin socket.
    Appliance { socket: PathBuf },
}

/// Finds out whether the appliance of `config` is running, by its hold on the trail.
pub fn route(config: &Config) -> Result<Route, String> {
    let audit = &config.operations.audit;
    let dir = audit.dir_in(&config.state_dir);
    match AuditLog::open(&dir, audit.max_file_bytes) {
        Ok(log) => Ok(Route::Here {
            log,
            uid: own_uid(),
        }),
        Err(AuditError::InUse { .. }) => Ok(Route::Appliance {
            socket: config.operations.admin.socket_path(&config.state_dir),
        }),
        Err(e) => Err(e.to_string()),
    }
}

/// Records a change made here, once it is on disk.
pub fn record(log: &AuditLog, event: Event) -> Result<(), String> {
    let kind = event.kind();
    log.record_blocking(event)
        .map_err(|e| format!("done, but its {kind} record could not be written: {e}"))
}

/// Asks the running appliance to make a change; its answer's `data`, or why it refused.
pub fn ask(socket: &std::path::Path, request: &Value) -> Result<Value, String> {
    let answer = super::client::request(socket, &request.to_string())?;
    let answer: Value = serde_json::from_str(&answer)
        .map_err(|e| format!("the appliance's answer is not JSON: {e}"))?;
    if answer["ok"] == true {
        return Ok(answer["data"].clone());
    }
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or("no reason given");
    Err(format!("the running appliance refused: {message}"))
}

/// The user this process runs as: the owner of its `/proc` entry.
fn own_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}
