//! The console's side of the admin socket: a thread that polls the appliance once a second
//! and carries out the operator's actions, and hands the UI a fresh [`Snapshot`] each time.
//!
//! When the socket is missing, refuses, or the appliance stops answering, the snapshot says
//! so with what would fix it, and the thread keeps trying, so the console reconnects by
//! itself when the appliance returns.

use std::io::{BufRead as _, BufReader, ErrorKind, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::snapshot::{Link, Snapshot};

/// How often the appliance is asked.
pub const POLL: Duration = Duration::from_secs(1);
/// How long one answer may take before the appliance counts as not answering.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// Something the operator asked the appliance to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    StageKey,
    PromoteKey,
    Reload,
    EnrolTotp {
        tid: String,
        oid: String,
        upn: Option<String>,
    },
    Revoke {
        tid: String,
        oid: String,
    },
    /// A one-time link through which the user enrols a security key.
    FidoLink {
        tid: String,
        oid: String,
        upn: Option<String>,
    },
    /// The user's security keys, listed in the message line.
    FidoKeys {
        tid: String,
        oid: String,
    },
    /// Removes every security key of the user.
    RevokeKeys {
        tid: String,
        oid: String,
    },
    /// Look enrolments up by a part of a tenant ID, object ID or UPN.
    Find(String),
}

impl Action {
    fn request(&self) -> Option<Value> {
        Some(match self {
            Action::StageKey => json!({"v": 1, "cmd": "stage_key"}),
            Action::PromoteKey => json!({"v": 1, "cmd": "promote_key"}),
            Action::Reload => json!({"v": 1, "cmd": "reload"}),
            Action::EnrolTotp { tid, oid, upn } => {
                json!({"v": 1, "cmd": "enrol_totp", "tid": tid, "oid": oid, "upn": upn})
            }
            Action::Revoke { tid, oid } => json!({"v": 1, "cmd": "revoke", "tid": tid, "oid": oid}),
            Action::FidoLink { tid, oid, upn } => {
                json!({"v": 1, "cmd": "fido_link", "tid": tid, "oid": oid, "upn": upn,
                       "ttl_secs": LINK_TTL_SECS})
            }
            Action::FidoKeys { tid, oid } => {
                json!({"v": 1, "cmd": "fido_keys", "tid": tid, "oid": oid})
            }
            Action::RevokeKeys { tid, oid } => {
                json!({"v": 1, "cmd": "revoke", "tid": tid, "oid": oid, "method": "fido"})
            }
            Action::Find(_) => return None,
        })
    }
}

/// Why a request got no answer.
#[derive(Debug)]
enum Failure {
    Unreachable(std::io::Error),
    Refused(String),
}

struct Connection {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Connection {
    fn open(path: &Path) -> Result<Connection, Failure> {
        let stream = UnixStream::connect(path).map_err(Failure::Unreachable)?;
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
            .map_err(Failure::Unreachable)?;
        let reader = BufReader::new(stream.try_clone().map_err(Failure::Unreachable)?);
        Ok(Connection {
            writer: stream,
            reader,
        })
    }

    /// Sends `request` and reads its answer: `Ok(data)`, or the appliance's error message.
    fn ask(&mut self, request: &Value) -> Result<Result<Value, String>, Failure> {
        let mut line = request.to_string();
        line.push('\n');
        let sent = self.writer.write_all(line.as_bytes());
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(0) => {
                let e = sent
                    .err()
                    .unwrap_or_else(|| ErrorKind::UnexpectedEof.into());
                return Err(Failure::Unreachable(e));
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::Unreachable(e)),
        }
        let answer: Value = serde_json::from_str(&answer).map_err(|e| {
            Failure::Unreachable(std::io::Error::other(format!("unreadable answer: {e}")))
        })?;
        if answer["ok"] == true {
            return Ok(Ok(answer["data"].clone()));
        }
        let message = answer["error"]["message"].as_str().unwrap_or("refused");
        if answer["error"]["code"] == "forbidden" {
            return Err(Failure::Refused(message.to_owned()));
        }
        Ok(Err(message.to_owned()))
    }
}

fn down(path: &Path, failure: &Failure) -> Link {
    let shown = path.display();
    let (reason, fix) = match failure {
        Failure::Unreachable(e)
            if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) =>
        {
            (
                format!("The appliance is not running: nothing answers at {shown}."),
                "Start it (systemctl start vouch, or vouch serve); the console reconnects by \
                 itself."
                    .to_owned(),
            )
        }
        Failure::Unreachable(e) if e.kind() == ErrorKind::PermissionDenied => (
            format!("This user may not open {shown}."),
            "Add the user to the socket's group ([admin] group), log in again, and restart \
             the console."
                .to_owned(),
        ),
        Failure::Unreachable(e) => (
            format!("The appliance stopped answering at {shown}: {e}."),
            "Check it with systemctl status vouch; the console keeps trying.".to_owned(),
        ),
        Failure::Refused(message) => (
            format!("The appliance refused this user: {message}"),
            "Ask for the user to be allowed in [admin], then restart the console.".to_owned(),
        ),
    };
    Link::Down { reason, fix }
}

/// The polling thread's state.
pub struct Poller {
    path: PathBuf,
    connection: Option<Connection>,
    snapshot: Snapshot,
    find: String,
}

impl Poller {
    pub fn new(path: PathBuf) -> Poller {
        let snapshot = Snapshot {
            socket: path.display().to_string(),
            ..Snapshot::default()
        };
        Poller {
            path,
            connection: None,
            snapshot,
            find: String::new(),
        }
    }

    /// Runs until the UI goes away: polls, applies actions, sends snapshots.
    pub fn run(mut self, actions: &mpsc::Receiver<Action>, snapshots: &mpsc::Sender<Snapshot>) {
        loop {
            self.poll();
            if snapshots.send(self.snapshot.clone()).is_err() {
                return;
            }
            match actions.recv_timeout(POLL) {
                Ok(action) => self.act(&action),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn ask(&mut self, request: &Value) -> Result<Result<Value, String>, Failure> {
        if self.connection.is_none() {
            self.connection = Some(Connection::open(&self.path)?);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err(Failure::Unreachable(ErrorKind::NotConnected.into()));
        };
        let answer = connection.ask(request);
        if answer.is_err() {
            self.connection = None;
        }
        answer
    }

    /// Asks for everything the views show.
    pub fn poll(&mut self) {
        let requests = [
            json!({"v": 1, "cmd": "status"}),
            json!({"v": 1, "cmd": "counters"}),
            json!({"v": 1, "cmd": "recent", "limit": 200}),
            json!({"v": 1, "cmd": "tenants"}),
            json!({"v": 1, "cmd": "keys"}),
            json!({"v": 1, "cmd": "enrolments", "find": self.find}),
            json!({"v": 1, "cmd": "trust_stores"}),
        ];
        let mut answers = Vec::with_capacity(requests.len());
        for request in &requests {
            match self.ask(request) {
                Ok(answer) => answers.push(answer.unwrap_or_default()),
                Err(failure) => {
                    tracing::debug!(error = ?failure, "appliance unreachable");
                    self.snapshot.link = down(&self.path, &failure);
                    return;
                }
            }
        }
        let s = &mut self.snapshot;
        s.link = Link::Up;
        let take = |i: usize, member: &str| {
            let value = &answers[i];
            if member.is_empty() {
                value.clone()
            } else {
                value[member].clone()
            }
        };
        s.status = serde_json::from_value(take(0, "")).unwrap_or_default();
        s.counters = serde_json::from_value(take(1, "")).unwrap_or_default();
        s.recent = serde_json::from_value(take(2, "recent")).unwrap_or_default();
        s.tenants = serde_json::from_value(take(3, "tenants")).unwrap_or_default();
        s.keys = serde_json::from_value(take(4, "")).unwrap_or_default();
        s.enrolments = serde_json::from_value(take(5, "enrolments")).unwrap_or_default();
        s.trust_stores = serde_json::from_value(take(6, "trust_stores")).unwrap_or_default();
    }

    /// Carries out `action` and keeps its outcome for the UI.
    pub fn act(&mut self, action: &Action) {
        if let Action::Find(find) = action {
            self.find.clone_from(find);
            return;
        }
        let Some(request) = action.request() else {
            return;
        };
        let message = match self.ask(&request) {
            Ok(Ok(data)) => describe(action, &data),
            Ok(Err(message)) => format!("Not done: {message}"),
            Err(failure) => {
                self.snapshot.link = down(&self.path, &failure);
                "Not done: the appliance could not be reached.".to_owned()
            }
        };
        tracing::info!(action = ?std::mem::discriminant(action), "operator action answered");
        self.snapshot.message = Some(message);
    }

    #[cfg(test)]
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

fn describe(action: &Action, data: &Value) -> String {
    let text = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
    match action {
        Action::StageKey => format!("Staged {}. {}.", text("staged_kid"), text("next_step")),
        Action::PromoteKey => format!(
            "Signing key is now {}. {}.",
            text("signing_kid"),
            text("next_step")
        ),
        Action::Reload => format!("Configuration reloaded: {}.", text("detail")),
        Action::EnrolTotp { oid, .. } => format!(
            "TOTP enrolled for {oid}. Give the user this URI (shown once): {}",
            text("otpauth_uri")
        ),
        Action::Revoke { oid, .. } => format!("TOTP revoked for {oid}."),
        Action::FidoLink { oid, .. } => format!(
            "Security-key link for {oid}, valid once for {} minutes (shown once): {}",
            LINK_TTL_SECS / 60,
            text("url")
        ),
        Action::FidoKeys { oid, .. } => keys_line(oid, &data["keys"]),
        Action::RevokeKeys { oid, .. } => format!("Security keys revoked for {oid}."),
        Action::Find(_) => String::new(),
    }
}

/// How long an enrolment link issued from the console stays valid.
const LINK_TTL_SECS: i64 = 15 * 60;

/// The user's keys on one line: name, model and creation date of each.
fn keys_line(oid: &str, keys: &Value) -> String {
    let keys = keys.as_array().map(Vec::as_slice).unwrap_or_default();
    if keys.is_empty() {
        return format!("{oid} has no security key.");
    }
    let described: Vec<String> = keys
        .iter()
        .map(|k| {
            let created = k["created"].as_i64().unwrap_or_default();
            format!(
                "{} (model {}, added {}, id {})",
                k["name"].as_str().unwrap_or("unnamed"),
                k["aaguid"].as_str().unwrap_or("?"),
                crate::snapshot::date(created),
                k["id"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    format!("Security keys of {oid}: {}", described.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_keys_read_as_one_line_and_odd_answers_do_not_break_it() {
        let keys = json!([
            {"id": "q1", "name": "Blue key", "aaguid": "cb69481e", "created": 1_796_342_399},
            {"id": 7, "created": "soon"},
        ]);
        let line = keys_line("o1", &keys);
        assert!(
            line.starts_with("Security keys of o1: Blue key (model cb69481e"),
            "{line}"
        );
        assert!(
            line.contains("added 2026-12-03, id q1") && line.contains("unnamed"),
            "{line}"
        );
        assert_eq!(keys_line("o1", &json!([])), "o1 has no security key.");
        assert_eq!(
            keys_line("o1", &json!("nonsense")),
            "o1 has no security key."
        );
    }

    #[test]
    fn a_missing_socket_says_the_appliance_is_not_running_and_how_to_start_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut poller = Poller::new(dir.path().join("admin.sock"));
        poller.poll();
        let Link::Down { reason, fix } = &poller.snapshot().link else {
            panic!("not down: {:?}", poller.snapshot().link);
        };
        assert!(reason.contains("not running"), "{reason}");
        assert!(
            fix.contains("vouch serve") && fix.contains("reconnects"),
            "{fix}"
        );
    }

    #[test]
    fn a_socket_that_answers_nothing_counts_as_down() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let closer = std::thread::spawn(move || drop(listener.accept()));
        let mut poller = Poller::new(path);
        poller.poll();
        closer.join().expect("joined");
        assert!(matches!(poller.snapshot().link, Link::Down { .. }));
    }
}
