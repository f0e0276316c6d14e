//! The command line: raw flags as clap reads them, then checked into a [`Command`] the rest of
//! the tool trusts.
//!
//! Every problem found here is a usage error (exit 64) whose message says what to change.
//! A `--target` must be a loopback address ([`crate::loopback`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::flow::Factor;
use crate::loopback::loopback_target;
use crate::schedule::Ramp;

/// Users needed per sign-in per second: a user completes at most one sign-in per 30-s TOTP
/// step, plus room for sign-ins still in flight when the step turns.
pub const USERS_PER_RATE: f64 = 35.0;
const DEFAULT_CLOSED_USERS: usize = 40_000;
const DEFAULT_MEMORY_USERS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub(crate) fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

#[derive(Parser, Debug)]
#[command(
    name = "vouch-loadtest",
    version,
    about = "Plays Entra and many browsers against a vouch appliance on this machine"
)]
pub struct RawCli {
    #[command(subcommand)]
    pub command: RawCommand,
}

#[derive(Subcommand, Debug)]
pub enum RawCommand {
    /// Run sign-ins against an appliance and report throughput, errors and latencies.
    Run(RawRun),
    /// Write a stand (config, Entra identity, enrolled users and key holders, phone and card
    /// CAs) for an appliance started by hand.
    Prepare(RawPrepare),
    /// Measure the crypto of one sign-in on one core, with no I/O.
    Bound(RawBound),
    /// Hold many sign-ins open and report the appliance's memory per pending sign-in.
    Memory(RawMemory),
}

#[derive(Args, Debug)]
pub struct RawAppliance {
    /// The vouch binary the tool starts and stops itself.
    #[arg(long, value_name = "PATH", default_value = "target/release/vouch")]
    pub vouch: PathBuf,
    /// An appliance started by hand, https://127.0.0.1:PORT; needs a stand from `prepare`.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// The process id of the --target appliance, for its CPU and memory use.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// The stand directory; a fresh temporary one when the tool starts vouch itself.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Enrolled users to sign in with.
    #[arg(long, value_name = "N")]
    pub users: Option<usize>,
    /// Where to write the report as JSON (the text report goes to stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RawRun {
    #[command(flatten)]
    pub appliance: RawAppliance,
    /// Closed loop: this many virtual users, each starting a sign-in when its last ends.
    #[arg(long, value_name = "N")]
    pub users_concurrent: Option<usize>,
    /// Open loop: sign-ins started per second, whatever the appliance's answers.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Open loop: start at this rate and rise linearly to --rate over --ramp-secs.
    #[arg(long, value_name = "R0", requires = "rate")]
    pub ramp_from: Option<f64>,
    #[arg(long, value_name = "S", requires = "ramp_from")]
    pub ramp_secs: Option<f64>,
    /// Seconds of measured load.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub duration: f64,
    /// Open a new TLS connection (full handshake) for every sign-in.
    #[arg(long)]
    pub new_connection_per_signin: bool,
    /// Speak HTTP/1.1 only instead of offering h2 first, as browsers do.
    #[arg(long)]
    pub http1: bool,
    /// Open loop: most sign-ins in flight at once; later ones wait, and their wait counts.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_in_flight: usize,
    /// The second factor the users prove: a TOTP code, a phone's signed challenge, a smart
    /// card presented in a TLS handshake, or a security key's assertion.
    #[arg(long, value_enum, default_value_t = Factor::Otp)]
    pub factor: Factor,
}

#[derive(Args, Debug)]
pub struct RawPrepare {
    /// Directory to write the stand into; must not hold one already.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CLOSED_USERS)]
    pub users: usize,
    /// The loopback port the appliance will listen on.
    #[arg(long, value_name = "PORT", default_value_t = 8443)]
    pub port: u16,
    /// The loopback port the tool's Entra listens on during runs; a free one when omitted.
    #[arg(long, value_name = "PORT")]
    pub entra_port: Option<u16>,
    /// The loopback port of the appliance's smart-card listener; the one after --port when
    /// omitted.
    #[arg(long, value_name = "PORT")]
    pub card_port: Option<u16>,
}

#[derive(Args, Debug)]
pub struct RawBound {
    /// Seconds to measure for.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub secs: f64,
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The second factor whose crypto is measured.
    #[arg(long, value_enum, default_value_t = Factor::Otp)]
    pub factor: Factor,
}

#[derive(Args, Debug)]
pub struct RawMemory {
    #[command(flatten)]
    pub appliance: RawAppliance,
    /// Sign-ins to hold open.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub pending: usize,
    /// Pending sign-ins completed afterwards to show they were still open.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub sample: usize,
    /// Authorize requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub concurrency: usize,
}

/// Where the appliance under load comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appliance {
    /// The tool starts this binary on a free loopback port and stops it at the end.
    Spawn { vouch: PathBuf },
    /// An appliance already running at this loopback address.
    Target { addr: SocketAddr, pid: Option<u32> },
}

#[derive(Debug, Clone)]
pub struct Common {
    pub appliance: Appliance,
    pub dir: Option<PathBuf>,
    pub users: usize,
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    Closed { concurrent: usize },
    Open { ramp: Ramp, max_in_flight: usize },
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub common: Common,
    pub load: Load,
    pub duration: Duration,
    pub new_connection: bool,
    pub http1: bool,
    pub factor: Factor,
}

#[derive(Debug, Clone)]
pub struct MemoryPlan {
    pub common: Common,
    pub pending: usize,
    pub sample: usize,
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct PreparePlan {
    pub dir: PathBuf,
    pub users: usize,
    pub port: u16,
    pub card_port: u16,
    pub entra_port: Option<u16>,
}

#[derive(Debug, Clone)]
pub enum Command {
    Run(RunPlan),
    Prepare(PreparePlan),
    Bound {
        secs: Duration,
        json: Option<PathBuf>,
        factor: Factor,
    },
    Memory(MemoryPlan),
}

impl RawCommand {
    pub fn check(self) -> Result<Command, UsageError> {
        match self {
            RawCommand::Run(raw) => raw.check().map(Command::Run),
            RawCommand::Prepare(raw) => raw.check().map(Command::Prepare),
            RawCommand::Bound(raw) => {
                let secs = seconds("--secs", raw.secs, 0.1, 600.0)?;
                Ok(Command::Bound {
                    secs,
                    json: raw.json,
                    factor: raw.factor,
                })
            }
            RawCommand::Memory(raw) => raw.check().map(Command::Memory),
        }
    }
}

impl RawRun {
    fn check(self) -> Result<RunPlan, UsageError> {
        let load = self.load()?;
        let users = match (self.appliance.users, load) {
            (Some(users), _) => users,
            (None, Load::Open { ramp, .. }) => users_for_rate(ramp.peak()),
            (None, Load::Closed { .. }) => DEFAULT_CLOSED_USERS,
        };
        let common = self.appliance.check(users)?;
        if let Load::Closed { concurrent } = load
            && concurrent > common.users
        {
            return Err(usage(format!(
                "--users-concurrent {concurrent} needs at least as many users; give --users \
                 {concurrent} or more"
            )));
        }
        Ok(RunPlan {
            common,
            load,
            duration: seconds("--duration", self.duration, 1.0, 24.0 * 3600.0)?,
            new_connection: self.new_connection_per_signin,
            http1: self.http1,
            factor: self.factor,
        })
    }

    fn load(&self) -> Result<Load, UsageError> {
        match (self.users_concurrent, self.rate) {
            (Some(_), Some(_)) => Err(usage(
                "give either --users-concurrent N (closed loop) or --rate R (open loop), not both",
            )),
            (None, None) => Ok(Load::Closed { concurrent: 16 }),
            (Some(n), None) if !(1..=100_000).contains(&n) => {
                Err(usage("--users-concurrent must be 1 to 100000"))
            }
            (Some(concurrent), None) => Ok(Load::Closed { concurrent }),
            (None, Some(rate)) => {
                let ramp = self.ramp(rate)?;
                if !(1..=1_000_000).contains(&self.max_in_flight) {
                    return Err(usage("--max-in-flight must be 1 to 1000000"));
                }
                Ok(Load::Open {
                    ramp,
                    max_in_flight: self.max_in_flight,
                })
            }
        }
    }

    fn ramp(&self, rate: f64) -> Result<Ramp, UsageError> {
        let rate = per_second("--rate", rate)?;
        let Some(from) = self.ramp_from else {
            return Ok(Ramp::steady(rate));
        };
        let from = per_second("--ramp-from", from)?;
        let Some(secs) = self.ramp_secs else {
            return Err(usage(
                "--ramp-from needs --ramp-secs S, the seconds the ramp lasts",
            ));
        };
        let secs = seconds("--ramp-secs", secs, 0.1, 24.0 * 3600.0)?;
        Ok(Ramp::new(from, rate, secs))
    }
}

impl RawAppliance {
    fn check(self, users: usize) -> Result<Common, UsageError> {
        if !(1..=1_000_000).contains(&users) {
            return Err(usage("--users must be 1 to 1000000"));
        }
        let appliance = match self.target {
            Some(url) => {
                let addr = loopback_target(&url)?;
                if self.dir.is_none() {
                    return Err(usage(
                        "--target needs --dir DIR, the stand written by `vouch-loadtest prepare \
                         --dir DIR` that the appliance was started with",
                    ));
                }
                Appliance::Target {
                    addr,
                    pid: self.pid,
                }
            }
            None if self.pid.is_some() => {
                return Err(usage(
                    "--pid goes with --target; without it the tool knows its child",
                ));
            }
            None => Appliance::Spawn { vouch: self.vouch },
        };
        Ok(Common {
            appliance,
            dir: self.dir,
            users,
            json: self.json,
        })
    }
}

impl RawPrepare {
    fn check(self) -> Result<PreparePlan, UsageError> {
        if !(1..=1_000_000).contains(&self.users) {
            return Err(usage("--users must be 1 to 1000000"));
        }
        if self.port == 0 || self.entra_port == Some(0) || self.card_port == Some(0) {
            return Err(usage(
                "ports must be 1 to 65535; omit --entra-port for a free one",
            ));
        }
        let Some(card_port) = self.card_port.or(self.port.checked_add(1)) else {
            return Err(usage("--port 65535 leaves no next port; give --card-port"));
        };
        if card_port == self.port || Some(card_port) == self.entra_port {
            return Err(usage(
                "the appliance, smart-card and Entra ports must differ",
            ));
        }
        Ok(PreparePlan {
            dir: self.dir,
            users: self.users,
            port: self.port,
            card_port,
            entra_port: self.entra_port,
        })
    }
}

impl RawMemory {
    fn check(self) -> Result<MemoryPlan, UsageError> {
        let users = self.appliance.users.unwrap_or(DEFAULT_MEMORY_USERS);
        let common = self.appliance.check(users)?;
        if matches!(common.appliance, Appliance::Target { pid: None, .. }) {
            return Err(usage(
                "memory mode reads the appliance's RSS: give --pid PID",
            ));
        }
        if !(1..=10_000_000).contains(&self.pending) {
            return Err(usage("--pending must be 1 to 10000000"));
        }
        if self.sample > common.users || self.sample > self.pending {
            return Err(usage(format!(
                "--sample {} needs as many users and pending sign-ins (one code per user); \
                 give --users {} or a smaller --sample",
                self.sample, self.sample
            )));
        }
        if !(1..=4096).contains(&self.concurrency) {
            return Err(usage("--concurrency must be 1 to 4096"));
        }
        Ok(MemoryPlan {
            common,
            pending: self.pending,
            sample: self.sample,
            concurrency: self.concurrency,
        })
    }
}

/// Users a rate needs so that none signs in twice within a TOTP step.
pub fn users_for_rate(rate: f64) -> usize {
    (rate * USERS_PER_RATE).ceil().max(1.0) as usize
}

fn per_second(flag: &str, rate: f64) -> Result<f64, UsageError> {
    if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
        return Err(usage(format!(
            "{flag} must be a rate above 0 and at most 1000000 per second"
        )));
    }
    Ok(rate)
}

fn seconds(flag: &str, secs: f64, min: f64, max: f64) -> Result<Duration, UsageError> {
    if !(secs.is_finite() && (min..=max).contains(&secs)) {
        return Err(usage(format!("{flag} must be {min} to {max} seconds")));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        let mut argv = vec!["vouch-loadtest"];
        argv.extend_from_slice(args);
        let raw = RawCli::try_parse_from(argv).map_err(|e| UsageError(e.to_string()))?;
        raw.command.check()
    }

    #[test]
    fn an_open_loop_without_users_gets_enough_for_its_peak_rate() {
        let Command::Run(plan) = parse(&[
            "run",
            "--rate",
            "100",
            "--ramp-from",
            "10",
            "--ramp-secs",
            "5",
        ])
        .unwrap() else {
            panic!("a run");
        };
        assert_eq!(plan.common.users, 3500);
        assert!(matches!(plan.load, Load::Open { .. }));
    }

    #[test]
    fn the_factor_is_otp_unless_another_is_asked_for() {
        let factor = |args: &[&str]| match parse(args).unwrap() {
            Command::Run(plan) => plan.factor,
            Command::Bound { factor, .. } => factor,
            _ => panic!("a run or a bound"),
        };
        assert_eq!(factor(&["run"]), Factor::Otp);
        assert_eq!(
            factor(&["run", "--factor", "mobile-pki"]),
            Factor::MobilePki
        );
        assert_eq!(factor(&["bound", "--factor", "otp"]), Factor::Otp);
        assert_eq!(
            factor(&["bound", "--factor", "mobile-pki"]),
            Factor::MobilePki
        );
        assert_eq!(factor(&["run", "--factor", "fido"]), Factor::Fido);
        assert_eq!(
            factor(&["run", "--factor", "smart-card"]),
            Factor::SmartCard
        );
        assert_eq!(factor(&["bound", "--factor", "fido"]), Factor::Fido);
    }

    #[test]
    fn the_smart_card_listener_takes_the_port_after_the_appliances_unless_told() {
        let card_port = |args: &[&str]| match parse(args).unwrap() {
            Command::Prepare(plan) => plan.card_port,
            _ => panic!("a prepare"),
        };
        assert_eq!(
            card_port(&["prepare", "--dir", "d", "--port", "9443"]),
            9444
        );
        assert_eq!(
            card_port(&["prepare", "--dir", "d", "--card-port", "7000"]),
            7000
        );
    }

    #[test]
    fn contradictory_or_out_of_range_flags_are_usage_errors() {
        for args in [
            &["run", "--rate", "10", "--users-concurrent", "4"][..],
            &["run", "--rate", "0"],
            &["run", "--rate", "NaN"],
            &["run", "--duration", "0"],
            &["run", "--users-concurrent", "10", "--users", "5"],
            &["run", "--ramp-from", "5", "--ramp-secs", "3"],
            &["run", "--rate", "5", "--ramp-from", "1"],
            &["run", "--target", "https://127.0.0.1:8443"],
            &["run", "--pid", "1"],
            &["memory", "--target", "https://127.0.0.1:1", "--dir", "d"],
            &["memory", "--users", "10"],
            &["run", "--factor", "sms"],
            &["bound", "--factor", ""],
            &["prepare", "--dir", "d", "--port", "65535"],
            &[
                "prepare",
                "--dir",
                "d",
                "--port",
                "8443",
                "--card-port",
                "8443",
            ],
            &[
                "prepare",
                "--dir",
                "d",
                "--card-port",
                "9000",
                "--entra-port",
                "9000",
            ],
            &["prepare", "--dir", "d", "--card-port", "0"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
