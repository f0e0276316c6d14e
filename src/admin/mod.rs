//! The admin socket: the appliance's only administrative interface.
//!
//! A Unix domain socket, `admin.sock` in `$RUNTIME_DIRECTORY` (else the state directory, or
//! `[admin] socket`), mode 0660, given `[admin] group` when set. Nothing administrative
//! listens on the network. Each connection's peer is checked by its kernel credentials
//! ([`peer`]); a peer that is not let in gets one refusal line and the connection closes.
//!
//! # Messages (version 1)
//!
//! Line-delimited JSON: the client sends one JSON object per line and gets one line back per
//! request, in order, on the same connection, which may carry many requests.
//!
//! ```text
//! → {"v":1,"cmd":"status"}
//! ← {"v":1,"ok":true,"data":{"version":"0.1.0","uptime_secs":12,...}}
//! → {"v":1,"cmd":"revoke","tid":"…","oid":"…"}
//! ← {"v":1,"ok":false,"error":{"code":"failed","message":"… has no totp enrolled"}}
//! ```
//!
//! Commands (`cmd`, with their members): `status`; `counters`; `recent` (`limit`, default
//! 50); `reload`; `log_level` (`filter`, a tracing filter such as `debug` or
//! `vouch=debug,info`); `keys`; `stage_key`; `promote_key`; `tenants`; `trust_stores`;
//! `enrolments` (`find`, a part of a tenant or object ID); `enrol_totp` (`tid`, `oid`,
//! `digits` 6–8, `algorithm` `SHA1`/`SHA256`/`SHA512`, `replace`); `revoke` (`tid`, `oid`,
//! `method` `totp` or `fido`, `credential` for one key); `fido_link` (`tid`, `oid`, `upn`,
//! `ttl_secs` 60–259200, default 900); `fido_keys` (`tid`, `oid`).
//! See [`proto::Request`] and [`commands`] for what each answers.
//!
//! Error codes: `malformed` (not UTF-8, not JSON, not an object, or cut short),
//! `too_large` (a line over 64 KiB), `version` (no `v` or another one), `unknown_command`
//! (an unknown `cmd` or member), `invalid` (bad arguments), `forbidden`, `busy`, `timeout`,
//! `failed`. After `too_large`, `malformed` for a cut-short line, `timeout`, `forbidden` and
//! `busy` the connection is closed; after the others it stays open.
//!
//! Rules: a request must arrive whole within [`MESSAGE_DEADLINE`] of the previous answer;
//! at most [`MAX_CONNECTIONS`] connections are served at once. Commands that change
//! something (`reload`, `log_level`, `stage_key`, `promote_key`, `enrol_totp`, `revoke`,
//! `fido_link`) are recorded on the audit trail with the operator's uid; reads are not,
//! since the console polls them every second. Answers carry no code, token or hint; `recent`
//! shortens `oid`. `enrol_totp` answers the new seed's otpauth:// URI once, and `fido_link`
//! the enrolment link, for the operator to hand over.

pub mod change;
pub mod client;
mod commands;
pub mod config;
pub mod fido;
pub mod peer;
pub mod proto;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::app::App;
use crate::audit::Event;
use peer::{Allowed, Credentials};
use proto::{MAX_MESSAGE_BYTES, Problem, ProblemCode, Response};

/// How long a client may take to send a whole request line.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(30);
/// Admin connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// Changes the process's log filter; the text is a tracing `EnvFilter` directive.
pub type LogControl = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// A reload asked for over the socket; the answer says what was applied or why not.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// What the commands work on.
pub struct Context {
    app: RwLock<Arc<App>>,
    reloads: mpsc::Sender<ReloadRequest>,
    log: Option<LogControl>,
    log_filter: Mutex<String>,
}

impl Context {
    fn app(&self) -> Arc<App> {
        self.app.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn log_filter(&self) -> String {
        self.log_filter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_log_filter(&self, filter: &str) -> Result<(), Problem> {
        let Some(log) = &self.log else {
            return Err(Problem::new(
                ProblemCode::Failed,
                "this process has no adjustable log filter",
            ));
        };
        log(filter).map_err(|e| {
            Problem::new(
                ProblemCode::Invalid,
                format!("{filter:?} is not a log filter ({e}); try info, debug or vouch=debug"),
            )
        })?;
        *self.log_filter.lock().unwrap_or_else(|p| p.into_inner()) = filter.to_owned();
        Ok(())
    }
}

/// The running admin socket.
pub struct AdminSocket {
    pub path: PathBuf,
    ctx: Arc<Context>,
    task: tokio::task::JoinHandle<()>,
}

impl AdminSocket {
    /// Binds the socket for `app` and serves it. Reloads asked for over it arrive on
    /// `reloads`; `log` changes the log filter, whose current value is `log_filter`.
    pub fn start(
        app: Arc<App>,
        reloads: mpsc::Sender<ReloadRequest>,
        log: Option<LogControl>,
        log_filter: &str,
    ) -> std::io::Result<AdminSocket> {
        let admin = &app.config.operations.admin;
        let path = admin.socket_path(&app.config.state_dir);
        let socket_gid = match &admin.group {
            Some(name) => Some(peer::group_id(name).ok_or_else(|| {
                std::io::Error::other(format!(
                    "[admin] group {name:?} does not exist; create it or change the setting"
                ))
            })?),
            None => None,
        };
        let listener = bind(&path, socket_gid)?;
        let allowed = Allowed::new(
            peer::own_uid(),
            &admin.allow_uids,
            &admin.allow_gids,
            socket_gid,
        );
        let ctx = Arc::new(Context {
            app: RwLock::new(app),
            reloads,
            log,
            log_filter: Mutex::new(log_filter.to_owned()),
        });
        let task = tokio::spawn(accept_loop(listener, ctx.clone(), Arc::new(allowed)));
        tracing::info!(path = %path.display(), "admin socket listening");
        Ok(AdminSocket { path, ctx, task })
    }

    /// Commands work on `app` from now on (after a reload).
    pub fn app_changed(&self, app: Arc<App>) {
        *self.ctx.app.write().unwrap_or_else(|p| p.into_inner()) = app;
    }

    /// Stops serving and removes the socket file.
    pub fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` (replacing a socket left by an earlier run) with mode 0660 and `gid`.
fn bind(path: &Path, gid: Option<u32>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    let context = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("admin socket {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(context)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(context)?,
        Ok(_) => {
            return Err(context(std::io::Error::other(
                "something other than a socket is in the way; remove it",
            )));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(context)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(context)?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(context)?;
    }
    Ok(listener)
}

async fn accept_loop(listener: UnixListener, ctx: Arc<Context>, allowed: Arc<Allowed>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (ctx, allowed) = (ctx.clone(), allowed.clone());
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(
                stream,
                Problem::new(ProblemCode::Busy, "too many admin connections; try again"),
            ));
            continue;
        };
        tokio::spawn(async move {
            serve(stream, &ctx, &allowed).await;
            drop(slot);
        });
    }
}

async fn refuse(mut stream: UnixStream, problem: Problem) {
    let line = Response::problem(problem).line();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&line)).await;
}

/// How reading one request ended.
enum Read {
    Line(Vec<u8>),
    Closed,
    /// Answer this, then close.
    Fatal(Problem),
}

async fn read_request(reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> Read {
    let mut line = Vec::new();
    let mut limited = (&mut *reader).take(MAX_MESSAGE_BYTES as u64);
    let limited = limited.read_until(b'\n', &mut line);
    match tokio::time::timeout(MESSAGE_DEADLINE, limited).await {
        Err(_) => Read::Fatal(Problem::new(
            ProblemCode::Timeout,
            format!(
                "no whole request within {} seconds; closing",
                MESSAGE_DEADLINE.as_secs()
            ),
        )),
        Ok(Err(e)) => Read::Fatal(Problem::new(ProblemCode::Malformed, e.to_string())),
        Ok(Ok(0)) => Read::Closed,
        Ok(Ok(_)) if line.ends_with(b"\n") => {
            line.pop();
            Read::Line(line)
        }
        Ok(Ok(n)) if n >= MAX_MESSAGE_BYTES => Read::Fatal(Problem::new(
            ProblemCode::TooLarge,
            format!("a request may be at most {MAX_MESSAGE_BYTES} bytes; closing"),
        )),
        Ok(Ok(_)) => Read::Fatal(Problem::new(
            ProblemCode::Malformed,
            "the request was cut short (no newline before the end); closing",
        )),
    }
}

async fn serve(stream: UnixStream, ctx: &Context, allowed: &Allowed) {
    let peer = match Credentials::of(&stream) {
        Ok(peer) => peer,
        Err(e) => {
            tracing::debug!(error = %e, "admin peer credentials unreadable");
            return;
        }
    };
    if !allowed.permits(&peer) {
        tracing::warn!(uid = peer.uid, gid = peer.gid, "admin connection refused");
        refuse(
            stream,
            Problem::new(ProblemCode::Forbidden, allowed.refusal(&peer)),
        )
        .await;
        return;
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let (response, close) = match read_request(&mut reader).await {
            Read::Closed => return,
            Read::Fatal(problem) => {
                tracing::debug!(uid = peer.uid, code = ?problem.code, "admin connection closed");
                (Response::problem(problem), true)
            }
            Read::Line(line) => (answer(ctx, &line, peer.uid).await, false),
        };
        let line = response.line();
        let sent = tokio::time::timeout(MESSAGE_DEADLINE, write.write_all(&line)).await;
        if close || !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

async fn answer(ctx: &Context, line: &[u8], uid: u32) -> Response {
    let request = match proto::parse(line) {
        Ok(request) => request,
        Err(problem) => {
            tracing::debug!(uid, code = ?problem.code, "admin request refused");
            return Response::problem(problem);
        }
    };
    let (name, audited) = (request.name(), request.changes_state());
    let outcome = commands::run(ctx, request, uid).await;
    if audited {
        let event = Event::Admin {
            uid,
            command: name.to_owned(),
            ok: outcome.is_ok(),
        };
        ctx.app().oversight.audit.note(event);
    }
    match outcome {
        Ok(data) => Response::ok(data),
        Err(problem) => Response::problem(problem),
    }
}
