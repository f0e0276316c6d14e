//! `vouch-console`: the operator console of a vouch appliance.
//!
//! It talks to the appliance only through the local admin socket, polling it once a second
//! on a thread of its own ([`client`]); the UI thread draws the latest snapshot ([`ui`]) and
//! answers keys ([`app`]). The terminal is restored on exit, on error and on panic. Logs go
//! to a file (`--log`), never to the screen; they hold no seed or URI.

mod app;
mod client;
mod snapshot;
mod ui;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use ratatui::crossterm::event::{self, Event};

use app::App;
use snapshot::Snapshot;

#[derive(Parser)]
#[command(
    name = "vouch-console",
    version,
    about = "Operator console for the vouch appliance"
)]
struct Args {
    /// The appliance's admin socket; by default `admin.sock` in $RUNTIME_DIRECTORY, else
    /// /run/vouch.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Where the console logs; by default vouch-console.log in $XDG_STATE_HOME (or
    /// ~/.local/state), else the temporary folder.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

fn default_socket() -> PathBuf {
    let runtime = std::env::var_os("RUNTIME_DIRECTORY").map(PathBuf::from);
    runtime
        .unwrap_or_else(|| PathBuf::from("/run/vouch"))
        .join("admin.sock")
}

fn default_log() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .filter(|d| std::fs::create_dir_all(d).is_ok())
        .unwrap_or_else(std::env::temp_dir);
    state.join("vouch-console.log")
}

fn init_logging(path: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the log file {}: {e}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCH_CONSOLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .init();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(&args.log.unwrap_or_else(default_log))?;
    let socket = args.socket.unwrap_or_else(default_socket);
    tracing::info!(socket = %socket.display(), "console starting");

    let (actions, action_queue) = mpsc::channel();
    let (snapshot_sink, snapshots) = mpsc::channel();
    let poller = client::Poller::new(socket);
    std::thread::Builder::new()
        .name("admin-poller".into())
        .spawn(move || poller.run(&action_queue, &snapshot_sink))?;

    let mut terminal = ratatui::try_init()?;
    let outcome = run(&mut terminal, &actions, &snapshots);
    ratatui::restore();
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "console stopped on an error");
    }
    tracing::info!("console stopped");
    outcome
}

/// Draws and answers keys until the operator quits.
fn run(
    terminal: &mut ratatui::DefaultTerminal,
    actions: &mpsc::Sender<client::Action>,
    snapshots: &mpsc::Receiver<Snapshot>,
) -> anyhow::Result<()> {
    let mut app = App::default();
    let mut snapshot = Snapshot::default();
    let mut dirty = true;
    while !app.quit {
        while let Ok(next) = snapshots.try_recv() {
            dirty |= next != snapshot;
            snapshot = next;
        }
        if dirty {
            terminal.draw(|frame| ui::render(frame, &app, &snapshot))?;
            dirty = false;
        }
        if !event::poll(Duration::from_millis(100))? {
            continue;
        }
        match event::read()? {
            Event::Key(key) => {
                if let Some(action) = app.handle_event(key, &snapshot) {
                    let _ = actions.send(action);
                }
                dirty = true;
            }
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
    Ok(())
}
