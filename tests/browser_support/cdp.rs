//! A small client of the Chrome DevTools Protocol: it starts Debian's Chromium headless with
//! a fresh profile, attaches to one tab, sends commands and waits for events.
//!
//! Commands and events travel over one websocket. Every event that arrives while a command
//! waits for its answer is kept, so a test can wait for an event that came early. Every
//! wait has a deadline; a browser that hangs fails the test instead of stalling it.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any one command or awaited event may take.
const DEADLINE: Duration = Duration::from_secs(30);

pub struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    events: VecDeque<Value>,
}

impl Chromium {
    /// Starts the browser with the flags the test environment needs, plus `extra`, and
    /// attaches to a new blank tab.
    pub fn launch(extra: &[String]) -> Chromium {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let url = devtools_url(&mut child);
        let socket = connect(&url);
        let mut browser = Chromium {
            child,
            _profile: profile,
            socket,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
        };
        let target = browser.send(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].clone();
        let attach = json!({ "targetId": target_id, "flatten": true });
        let attached = browser.send(None, "Target.attachToTarget", attach);
        browser.session = attached["sessionId"].as_str().expect("session").to_owned();
        browser
    }

    /// Sends a command to the tab and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    /// Sends a command to the tab; its result, or the error the browser answered.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let session = self.session.clone();
        self.exchange(Some(&session), method, params)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.exchange(session, method, params) {
            Ok(result) => result,
            Err(error) => panic!("{method} failed: {error}"),
        }
    }

    fn exchange(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("command sent");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let message = self.receive(deadline, method);
            if message["id"] == id {
                return match message.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(message["result"].clone()),
                };
            }
            self.events.push_back(message);
        }
    }

    /// Forgets the events received so far.
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Waits for the next event named `method`, which may already have arrived.
    pub fn event(&mut self, method: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            let event = self.events.remove(i).expect("event");
            return event["params"].clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let message = self.receive(deadline, method);
            if message["method"] == method {
                return message["params"].clone();
            }
            self.events.push_back(message);
        }
    }

    fn receive(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        loop {
            assert!(
                Instant::now() < deadline,
                "no answer to {waiting_for} in time"
            );
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => panic!("DevTools connection failed while waiting for {waiting_for}: {e}"),
            }
        }
    }

    /// Whether an expression is true in the tab's current document; false while a
    /// navigation has destroyed the document it was sent to.
    pub fn holds(&mut self, expression: &str) -> bool {
        let params = json!({ "expression": expression, "returnByValue": true });
        match self.try_call("Runtime.evaluate", params) {
            Ok(result) => result["result"]["value"] == true,
            Err(_) => false,
        }
    }

    /// Evaluates a JavaScript expression in the tab and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let params = json!({ "expression": expression, "returnByValue": true });
        let result = self.call("Runtime.evaluate", params);
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the DevTools address Chromium prints on stderr, then keeps draining stderr so the
/// browser never blocks on a full pipe.
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(at) = line.find("ws://") {
                let _ = tx.send(line[at..].trim().to_owned());
                sent = true;
            }
        }
    });
    rx.recv_timeout(DEADLINE)
        .expect("chromium prints its DevTools address")
}

fn connect(url: &str) -> WebSocket<TcpStream> {
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("host");
    let stream = TcpStream::connect(host).expect("DevTools port");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let (socket, _) = tungstenite::client(url, stream).expect("websocket handshake");
    socket
}
