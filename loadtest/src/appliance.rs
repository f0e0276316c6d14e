//! The appliance as a child process: started from the stand's configuration on a loopback
//! port, watched until it answers, and always stopped before the tool exits.
//!
//! Stopping sends SIGTERM (through `kill(1)`, since the workspace forbids `unsafe`) and waits
//! for the appliance's graceful shutdown; past [`STOP_GRACE`] the child is killed. The child
//! is also killed if the tool drops it on any other path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::client::Agent;

/// How long the appliance has to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it has to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplianceError {
    #[error(
        "cannot start {vouch}: {detail}; build it with `cargo build --release -p vouch` or \
         name it with --vouch PATH"
    )]
    Spawn { vouch: PathBuf, detail: String },
    #[error("the appliance exited during start ({status}); its log {log} ends:\n{tail}")]
    Exited {
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("the appliance did not answer within {} s; see {log}", START_TIMEOUT.as_secs())]
    NoAnswer { log: PathBuf },
}

/// A running appliance started by the tool.
pub struct Appliance {
    child: Child,
    pub pid: u32,
    log: PathBuf,
}

impl Appliance {
    /// Starts `vouch serve --config CONFIG`, its output going to `log`.
    pub fn spawn(vouch: &Path, config: &Path, log: &Path) -> Result<Appliance, ApplianceError> {
        let spawn_err = |detail: String| ApplianceError::Spawn {
            vouch: vouch.to_owned(),
            detail,
        };
        let out =
            std::fs::File::create(log).map_err(|e| spawn_err(format!("{}: {e}", log.display())))?;
        let err = out.try_clone().map_err(|e| spawn_err(e.to_string()))?;
        let child = Command::new(vouch)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("VOUCH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_err(e.to_string()))?;
        let pid = child
            .id()
            .ok_or_else(|| spawn_err("it exited at once".into()))?;
        tracing::info!(pid, vouch = %vouch.display(), "appliance started");
        Ok(Appliance {
            child,
            pid,
            log: log.to_owned(),
        })
    }

    /// Waits until the appliance serves its discovery document.
    pub async fn wait_ready(&mut self, agent: &Agent) -> Result<(), ApplianceError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let browser = agent.browser();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ApplianceError::Exited {
                    status: status.to_string(),
                    log: self.log.clone(),
                    tail: log_tail(&self.log),
                });
            }
            let answer = browser.get("/.well-known/openid-configuration").await;
            if answer.is_ok_and(|page| page.status == http::StatusCode::OK) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ApplianceError::NoAnswer {
            log: self.log.clone(),
        })
    }

    /// Stops the appliance: SIGTERM, then SIGKILL if it outlives the grace period.
    pub async fn stop(mut self) {
        let term = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if term.is_ok_and(|s| s.success())
            && let Ok(Ok(status)) = tokio::time::timeout(STOP_GRACE, self.child.wait()).await
        {
            tracing::info!(pid = self.pid, %status, "appliance stopped");
            return;
        }
        tracing::warn!(
            pid = self.pid,
            "appliance did not stop on SIGTERM; killing it"
        );
        let _ = self.child.kill().await;
    }
}

/// The last lines of the appliance's log, for a failed start.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
