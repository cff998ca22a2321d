//! The daemon as a system service: what it tells systemd over the notify protocol (heard here
//! on a socket of the test's own, as systemd would hear it), and the unit file in
//! `contrib/systemd/` as `systemd-analyze verify` reads it.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_microscoped");

/// The longest the test waits for any one notification: a bound, never an expectation.
const WAIT: Duration = Duration::from_secs(60);

/// A child process that is killed if the test ends before it does.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next notification, as its `KEY=value` lines.
fn next(socket: &UnixDatagram, heard: &[Vec<String>]) -> Vec<String> {
    let mut buf = vec![0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification within {WAIT:?} ({e}); heard {heard:#?}"));
    String::from_utf8(buf[..n].to_vec())
        .expect("notifications are text")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A gRPC health check of the whole server at `addr`, once, without retrying.
fn health_check(addr: &str) -> Result<i32, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use tonic_health::pb::health_client::HealthClient;
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad address: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut client = HealthClient::new(channel);
        let reply = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|e| format!("health check refused: {e}"))?;
        Ok(reply.into_inner().status)
    })
}

#[test]
fn tells_systemd_it_is_ready_once_it_serves_then_alive_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut child = Killed(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            // The demo instrument's data root is relative: keep it in the temporary folder.
            .current_dir(dir.path())
            .env("NOTIFY_SOCKET", &path)
            // A short watchdog, so keep-alives come every half second.
            .env("WATCHDOG_USEC", "1000000")
            .env_remove("WATCHDOG_PID")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut heard: Vec<Vec<String>> = Vec::new();

    // Statuses while it starts, then READY=1 with the status that says where it serves.
    let status = loop {
        let message = next(&socket, &heard);
        assert!(
            !message.iter().any(|l| l == "WATCHDOG=1"),
            "a keep-alive before READY=1: {heard:#?} {message:?}"
        );
        let ready = message.iter().any(|l| l == "READY=1");
        let status = message
            .iter()
            .find_map(|l| l.strip_prefix("STATUS="))
            .map(str::to_owned);
        heard.push(message);
        if ready {
            break status.expect("READY=1 comes with a STATUS=");
        }
    };
    assert!(
        heard.len() > 1,
        "no status while starting, before READY=1: {heard:#?}"
    );
    let addr = status
        .strip_prefix("serving gRPC on ")
        .unwrap_or_else(|| panic!("READY=1 status {status:?}"));
    // Ready means serving: the first call, made at once and not retried, is answered.
    assert_eq!(
        health_check(addr),
        Ok(tonic_health::pb::health_check_response::ServingStatus::Serving as i32),
        "{heard:#?}"
    );

    // Keep-alives, at least two, while it runs.
    let mut alive = 0;
    while alive < 2 {
        let message = next(&socket, &heard);
        alive += message.iter().filter(|l| *l == "WATCHDOG=1").count();
        heard.push(message);
    }

    // SIGTERM: STOPPING=1, then the orderly shutdown and exit 0.
    assert!(Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    loop {
        let message = next(&socket, &heard);
        let stopping = message.iter().any(|l| l == "STOPPING=1");
        heard.push(message);
        if stopping {
            break;
        }
    }
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit status {status:?}; heard {heard:#?}");
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/microscoped.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        // scripts/test.sh installs it (Debian package `systemd`); a bare `cargo test` on a
        // machine without it has nothing to verify with.
        eprintln!("systemd-analyze is not installed: the unit file is not verified");
        return;
    }
    // Verify checks that ExecStart's program exists: point it at the binary just built, and
    // leave every other line as shipped.
    let shipped = "ExecStart=/usr/local/bin/microscoped ";
    assert!(text.contains(shipped), "the unit runs {shipped:?}");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("microscoped.service");
    std::fs::write(&copy, text.replace(shipped, &format!("ExecStart={BIN} "))).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    // An unknown or misspelt key is only a warning for systemd: any line is a failure here.
    assert!(
        o.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        o.status
    );
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=microscoped",
        "SupplementaryGroups=dialout",
        "ProtectSystem=strict",
        "ReadWritePaths=/srv/microscoped",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(key)),
            "the unit has no {key}"
        );
    }
}
