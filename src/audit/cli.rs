//! `vouch audit`: the operator's commands on the audit trail.

use std::path::PathBuf;

use clap::Subcommand;

use super::verify::{VerifyError, verify};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk every file of the trail and name the first record where the chain breaks.
    /// Exit status 0 when the chain is whole, 1 when it is not.
    Verify {
        /// The trail's folder; by default the one the configuration names.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// TOML configuration file; embedded defaults when omitted.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs `command`; `Err` carries the message for a bad configuration (exit 64).
pub fn run(command: AuditCommand) -> Result<bool, String> {
    let AuditCommand::Verify { dir, config } = command;
    let dir = match dir {
        Some(dir) => dir,
        None => {
            let config = match config {
                Some(path) => crate::config::Config::load(&path).map_err(|e| e.to_string())?,
                None => crate::config::Config::embedded(),
            };
            config.operations.audit.dir_in(&config.state_dir)
        }
    };
    match verify(&dir) {
        Ok(v) => {
            let head = v.head.seq.map_or("none".into(), |s| s.to_string());
            println!(
                "audit trail in {}: {} records in {} files, chain whole; head record {head} {}",
                dir.display(),
                v.records,
                v.files,
                v.head.hash
            );
            Ok(true)
        }
        Err(VerifyError::Bad(bad)) => {
            println!("audit trail in {}: first bad record", dir.display());
            println!("{bad}");
            Ok(false)
        }
        Err(e) => {
            println!("{e}");
            Ok(false)
        }
    }
}
