//! vouch-loadtest: plays Microsoft Entra ID and many browsers against a vouch appliance on
//! this machine, checks every answer as Entra would, and reports throughput, failures and
//! latency percentiles.
//!
//! The parts follow a run: [`cli`] turns flags into a plan, [`stand`] prepares the directory
//! the appliance runs from, [`appliance`] starts and stops it, [`session`] brings up the
//! tool's Entra and browsers, [`schedule`] decides who signs in when, [`flow`] makes one
//! sign-in (with [`certs`] for the phone and smart-card factors, [`waiting`] for the
//! phone's page and [`keys`] for security keys), [`run`] and
//! [`memory`] drive the load, and [`report`] tells what happened. [`bound`] measures the
//! crypto-only bound a run is compared with.

pub mod appliance;
pub mod bound;
pub mod certs;
pub mod cli;
pub mod client;
pub mod flow;
pub mod hints;
pub mod keys;
pub mod loopback;
pub mod memory;
pub mod procstat;
pub mod report;
pub mod run;
pub mod schedule;
pub mod session;
pub mod stand;
pub mod users;
pub mod waiting;

use std::path::{Path, PathBuf};

/// A problem with the stand directory or a file in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StandError {
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("{path} is damaged ({detail}); prepare a new stand in an empty directory")]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "{dir} holds no stand; write one with `vouch-loadtest prepare --dir {dir}` and start \
         vouch with the configuration it prints"
    )]
    Missing { dir: PathBuf },
    #[error("{dir} already holds a stand; use it with --dir, or prepare in another directory")]
    Exists { dir: PathBuf },
}

impl StandError {
    pub fn io(path: &Path, e: impl std::fmt::Display) -> StandError {
        StandError::Io {
            path: path.to_owned(),
            detail: e.to_string(),
        }
    }

    pub fn damaged(path: &Path, e: impl std::fmt::Display) -> StandError {
        StandError::Damaged {
            path: path.to_owned(),
            detail: e.to_string(),
        }
    }
}
