//! The `vouch-loadtest` command: flags in, a report out, and the appliance it started always
//! stopped. Exit status 64 means the command line was wrong, 1 that the run failed or any
//! sign-in failed, 130 that it was interrupted.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use vouch_loadtest::cli::{Command, MemoryPlan, PreparePlan, RawCli, RunPlan};
use vouch_loadtest::flow::Factor;
use vouch_loadtest::report::write_json;
use vouch_loadtest::session::Session;
use vouch_loadtest::stand::{Stand, free_loopback_port};
use vouch_loadtest::{bound, memory, run};

const EX_USAGE: u8 = 64;
const INTERRUPTED: u8 = 130;

enum Outcome {
    Clean,
    Errors,
    Interrupted,
}

fn main() -> ExitCode {
    let command = match parse() {
        Ok(command) => command,
        Err(code) => return code,
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vouch-loadtest: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Errors) => ExitCode::FAILURE,
        Ok(Outcome::Interrupted) => ExitCode::from(INTERRUPTED),
        Err(e) => {
            eprintln!("vouch-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The checked command, or the exit code for help, version or a usage error.
fn parse() -> Result<Command, ExitCode> {
    let raw = RawCli::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EX_USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })?;
    raw.command.check().map_err(|e| {
        eprintln!("vouch-loadtest: {e}");
        ExitCode::from(EX_USAGE)
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOADTEST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn execute(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Prepare(plan) => prepare(&plan).map(|()| Outcome::Clean),
        Command::Bound { secs, json, factor } => {
            let measure = move || bound::measure(secs, factor);
            let report = tokio::task::spawn_blocking(measure).await??;
            publish(&report.text(), json.as_deref(), &report)?;
            Ok(Outcome::Clean)
        }
        Command::Run(plan) => load_run(plan).await,
        Command::Memory(plan) => memory_run(plan).await,
    }
}

fn prepare(plan: &PreparePlan) -> anyhow::Result<()> {
    let appliance = std::net::SocketAddr::from(([127, 0, 0, 1], plan.port));
    let entra = match plan.entra_port {
        Some(port) => std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        None => free_loopback_port()?,
    };
    let cards = std::net::SocketAddr::from(([127, 0, 0, 1], plan.card_port));
    let stand = Stand::prepare(&plan.dir, plan.users, [appliance, cards, entra])?;
    println!(
        "Prepared {} users and as many key holders in {}.\nStart the appliance with:\n\n  \
         vouch serve --config {}\n\nthen run, for example:\n\n  \
         vouch-loadtest run --target https://{} --dir {} --pid $(pgrep -n vouch) --rate 100\n\n\
         (or --factor mobile-pki, smart-card or fido for the other factors)\n",
        stand.users.len(),
        stand.dir.display(),
        stand.config_path().display(),
        appliance,
        stand.dir.display(),
    );
    Ok(())
}

async fn load_run(plan: RunPlan) -> anyhow::Result<Outcome> {
    eprintln!("measuring the crypto bound on one core, then on every core at once…");
    let factor = plan.factor;
    let measure = move || bound::measure(std::time::Duration::from_secs(1), factor);
    let bound = tokio::task::spawn_blocking(measure).await??;
    let session = Arc::new(Session::open(&plan.common, plan.http1, plan.factor).await?);
    let measured = run::run(&plan, session.clone(), &bound);
    let Some(report) = until_interrupted(&session, measured).await else {
        return Ok(Outcome::Interrupted);
    };
    let report = report?;
    publish(&report.text(), plan.common.json.as_deref(), &report)?;
    Ok(if report.errors_total == 0 {
        Outcome::Clean
    } else {
        Outcome::Errors
    })
}

/// Prints a report's text and writes it as JSON when asked to.
fn publish(
    text: &str,
    json: Option<&std::path::Path>,
    report: &impl serde::Serialize,
) -> anyhow::Result<()> {
    print!("{text}");
    if let Some(path) = json {
        write_json(path, report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs `measured` until it ends or Ctrl-C, then closes the session (stopping an appliance
/// the tool started); `None` when interrupted.
async fn until_interrupted<T>(session: &Session, measured: impl Future<Output = T>) -> Option<T> {
    let outcome = tokio::select! {
        report = measured => Some(report),
        _ = tokio::signal::ctrl_c() => None,
    };
    session.close().await;
    if outcome.is_none() {
        eprintln!("interrupted; the appliance was stopped");
    }
    outcome
}

async fn memory_run(plan: MemoryPlan) -> anyhow::Result<Outcome> {
    let session = Arc::new(Session::open(&plan.common, false, Factor::Otp).await?);
    let measured = memory::measure(&plan, session.clone());
    let Some(report) = until_interrupted(&session, measured).await else {
        return Ok(Outcome::Interrupted);
    };
    let report = report?;
    publish(&report.text(), plan.common.json.as_deref(), &report)?;
    let clean = report.sample_completed == report.sample && report.authorize_errors.is_empty();
    Ok(if clean {
        Outcome::Clean
    } else {
        Outcome::Errors
    })
}
