//! `vouch admin`: send one request to the admin socket and print the answer.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The request, one JSON object, e.g. '{"v":1,"cmd":"status"}'.
    request: String,
    /// The admin socket; by default the one the configuration names.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// TOML configuration file; embedded defaults when omitted.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Sends the request and prints the answer line; `Ok(ok)` tells whether the appliance
/// carried it out, `Err` is a bad configuration (exit 64).
pub fn run(args: AdminArgs) -> Result<bool, String> {
    let socket = match args.socket {
        Some(path) => path,
        None => {
            let config = match &args.config {
                Some(path) => crate::config::Config::load(path).map_err(|e| e.to_string())?,
                None => crate::config::Config::embedded(),
            };
            config.operations.admin.socket_path(&config.state_dir)
        }
    };
    match request(&socket, &args.request) {
        Ok(answer) => {
            println!("{answer}");
            let value: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            Ok(value["ok"] == true)
        }
        Err(e) => {
            eprintln!("vouch: {e}");
            Ok(false)
        }
    }
}

/// One request and its answer line over the socket at `path`.
pub fn request(path: &std::path::Path, request: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the admin socket {}: {e}; is vouch running, and may this user use \
             it (its group)?",
            path.display()
        )
    })?;
    let timeout = Some(Duration::from_secs(35));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let mut line = request.trim_end_matches('\n').to_owned();
    line.push('\n');
    // A refusal is sent before the request is read, and the socket may close under the
    // write: the answer is read either way.
    let sent = stream.write_all(line.as_bytes());
    let mut answer = String::new();
    let read = BufReader::new(stream).read_line(&mut answer);
    match (sent, read) {
        (_, Ok(n)) if n > 0 => Ok(answer.trim_end().to_owned()),
        (Err(e), _) => Err(format!("sending to {}: {e}", path.display())),
        (Ok(()), Err(e)) => Err(format!("reading from {}: {e}", path.display())),
        (Ok(()), Ok(_)) => Err(format!("{} closed without an answer", path.display())),
    }
}
