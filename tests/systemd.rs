//! The appliance under systemd: the units pass systemd's own checks with a small exposure,
//! and the binary serves on sockets handed to it, tells systemd when it is ready and when it
//! stops, and pets the watchdog. `systemd-analyze` and `systemd-socket-activate` come from
//! Debian's `systemd` package; outside CI a machine without them skips these tests.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAX_EXPOSURE: f64 = 1.5;

fn tool(name: &str) -> Option<PathBuf> {
    let path = Path::new("/usr/bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is missing under CI; scripts/packages.txt must list systemd");
    }
    eprintln!("skipping: {name} is not installed");
    None
}

/// The project's units in a scratch folder, the service pointed at the built binary.
fn units() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let service = std::fs::read_to_string(source.join("vouch.service")).unwrap();
    let service = service.replace("/usr/local/bin/vouch", env!("CARGO_BIN_EXE_vouch"));
    std::fs::write(dir.path().join("vouch.service"), service).unwrap();
    std::fs::copy(source.join("vouch.socket"), dir.path().join("vouch.socket")).unwrap();
    dir
}

#[test]
fn the_units_verify_without_a_warning() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = units();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("vouch.service"))
        .arg(dir.path().join("vouch.socket"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_service_is_sandboxed_to_an_exposure_of_at_most_one_and_a_half() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = units();
    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(dir.path().join("vouch.service"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = stdout
        .lines()
        .find_map(|l| l.split("Overall exposure level for vouch.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|level| level.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {stdout}"));
    println!("vouch.service exposure: {exposure}");
    assert!(exposure <= MAX_EXPOSURE, "exposure {exposure}:\n{stdout}");
}

/// Reads the notifications sent to `socket` until one contains `wanted`.
fn wait_for(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(message.clone());
            if message.contains(wanted) {
                return;
            }
        }
    }
    panic!("no {wanted} notification; saw {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_activated_appliance_notifies_ready_serves_pets_the_watchdog_and_stops() {
    let Some(activate) = tool("systemd-socket-activate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(activate)
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()))
        .arg("--setenv=WATCHDOG_USEC=1000000")
        .args([env!("CARGO_BIN_EXE_vouch"), "serve"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the socket never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut seen = Vec::new();
    wait_for(&notify, "READY=1", &mut seen);

    let pem = std::fs::read(dir.path().join("vouch-state/tls/cert.pem")).unwrap();
    let browser = entra_sim::Browser::new(&format!("https://localhost:{port}"), &pem).unwrap();
    let page = browser.get("/.well-known/jwks.json").await.unwrap();
    assert_eq!(
        page.status, 200,
        "the appliance serves on the passed socket"
    );
    wait_for(&notify, "WATCHDOG=1", &mut seen);
    drop(browser);

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    wait_for(&notify, "STOPPING=1", &mut seen);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
