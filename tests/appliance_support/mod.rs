//! `vouch serve` in a child process with an admin socket, for the tests that administer a
//! running appliance.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use entra_sim::{APP_ID, Authority, CLIENT_ID, TENANT};
use serde_json::Value;

/// `vouch serve` in a child process with its own state and admin socket.
pub struct Appliance {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub entra: Authority,
}

pub fn config_text(entra: &Authority, dir: &Path, extra: &str) -> String {
    format!(
        r#"
        [server]
        listen = ["127.0.0.1:0"]
        state_dir = "state"

        [admin]
        socket = "{socket}"

        {extra}

        [[tenant]]
        id = "{TENANT}"
        app_id = "{APP_ID}"
        client_id = "{CLIENT_ID}"

        [tenant.test_authority]
        url = "{origin}"
        ca_file = "entra-ca.pem"
        "#,
        socket = dir.join("run").join("admin.sock").display(),
        origin = entra.origin,
    )
}

impl Appliance {
    pub async fn start() -> Appliance {
        Appliance::start_with(|_| String::new()).await
    }

    /// Starts with more configuration: `setup` writes what it needs into the folder and
    /// returns the text to add.
    pub async fn start_with(setup: impl FnOnce(&Path) -> String) -> Appliance {
        let entra = Authority::start().await.expect("Entra simulator");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("entra-ca.pem"), &entra.ca_pem).expect("CA");
        let config = dir.path().join("vouch.toml");
        let extra = setup(dir.path());
        std::fs::write(&config, config_text(&entra, dir.path(), &extra)).expect("config");
        let socket = dir.path().join("run").join("admin.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("serve")
            .arg("-c")
            .arg(&config)
            .env("VOUCH_LOG", "error")
            .spawn()
            .expect("vouch serve");
        let appliance = Appliance {
            child,
            dir,
            socket,
            config,
            entra,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut appliance = appliance;
        while UnixStream::connect(&appliance.socket).is_err() {
            let config = std::fs::read_to_string(&appliance.config).unwrap_or_default();
            let exited = appliance.child.try_wait().expect("child state");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the admin socket never opened (vouch: {exited:?}); configuration:\n{config}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        appliance
    }

    pub fn connect(&self) -> Connection {
        let stream = UnixStream::connect(&self.socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Connection {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            stream,
        }
    }

    pub fn ask(&self, request: Value) -> Value {
        self.connect().ask(request)
    }

    pub fn audit_text(&self) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join("state")
                .join("audit")
                .join("audit-000001.jsonl"),
        )
        .expect("audit trail")
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Connection {
    pub stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Connection {
    pub fn send_raw(&mut self, bytes: &[u8]) -> Value {
        self.stream.write_all(bytes).expect("send");
        self.answer()
    }

    pub fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("an answer line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    pub fn ask(&mut self, request: Value) -> Value {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        self.send_raw(&line)
    }

    /// Whether the server closed the connection: nothing more comes (a reset counts, since
    /// the server may close with this client's bytes unread).
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        !matches!(self.reader.read_to_end(&mut rest), Ok(n) if n > 0)
    }
}

pub fn error_code(answer: &Value) -> &str {
    assert_eq!(answer["v"], 1, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    answer["error"]["code"].as_str().expect("a code")
}
