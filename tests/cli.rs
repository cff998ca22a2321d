//! The `microscoped` binary as a technician uses it: `check`, `serve` in its own process, the
//! client subcommands against it, and an orderly stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_microscoped");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("microscoped runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_demo_and_names_file_line_and_key_in_a_broken_config() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let o = run(&["check", demo.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("valid") && out.contains("Laser488") && out.contains("sim.camera"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("unknown key", "[instrument]\nname = \"x\"\n\n[devices.Cam]\ndriver = \"sim.camera\"\nexposure = 5\n", ":6:", "devices.Cam.exposure"),
        ("unknown driver", "[instrument]\nname = \"x\"\n[devices.Cam]\ndriver = \"acme\"\n", ":4:", "devices.Cam.driver"),
        ("wrong type", "[instrument]\nname = \"x\"\n[devices.Z]\ndriver = \"sim.stage\"\nspeed_um_s = \"fast\"\n", ":5:", "devices.Z.speed_um_s"),
        ("out of range", "[instrument]\nname = \"x\"\n[devices.L]\ndriver = \"sim.laser\"\nmax_power_mw = -1.0\n", ":5:", "devices.L.max_power_mw"),
        ("duplicate device", "[instrument]\nname = \"x\"\n[devices.L]\ndriver = \"sim.laser\"\n[devices.L]\ndriver = \"sim.laser\"\n", ":5:", "key `devices.L`"),
        ("missing setting", "[server]\nlisten = \"127.0.0.1:1\"\n", ":1:", "key `instrument`"),
        ("metrics address", "[instrument]\nname = \"x\"\n[metrics]\nlisten = \"localhost\"\n", ":4:", "key `metrics.listen`"),
    ];
    for (what, body, line, key) in cases {
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, body).unwrap();
        let o = run(&["check", path.to_str().unwrap()]);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{what}: accepted");
        assert!(
            err.contains(&format!("broken.toml{line}")),
            "{what}: no file:line in {err}"
        );
        assert!(err.contains(key), "{what}: no key in {err}");
    }
    let o = run(&["check", "/nonexistent/instrument.toml"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("cannot read the config"));
}

#[test]
fn check_places_an_encoding_error_and_says_where_the_missing_users_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    // A Latin-1 "µ" (0xB5) in a comment on line 3, column 5.
    std::fs::write(&path, b"[instrument]\nname = \"x\"\n# 5 \xB5m per pixel\n").unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(!o.status.success(), "accepted");
    assert!(
        err.contains("broken.toml:3:5:") && err.contains("0xB5") && err.contains("UTF-8"),
        "{err}"
    );
    assert_eq!(
        serve_refusal(&path),
        error_line(&o),
        "serve and check differ"
    );

    // No users and no [server]: the place is after the last line, with the section to add.
    std::fs::write(&path, "[instrument]\nname = \"x\"\n").unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(!o.status.success(), "accepted");
    assert!(
        err.contains("broken.toml:3:1: key `users`")
            && err.contains("[users.alice]")
            && err.contains(
                "at the end of the file:\n\n  [server]\n  anonymous_loopback_admin = true"
            ),
        "{err}"
    );
    assert_eq!(
        serve_refusal(&path),
        error_line(&o),
        "serve and check differ"
    );

    // A [server] table without the setting: the place is that table, on its line.
    std::fs::write(
        &path,
        "[instrument]\nname = \"x\"\n\n[server]\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(!o.status.success(), "accepted");
    assert!(
        err.contains("broken.toml:4:")
            && err.contains("key `server.anonymous_loopback_admin`")
            && err.contains("in this [server] table:\n\n  anonymous_loopback_admin = true"),
        "{err}"
    );
    assert_eq!(
        serve_refusal(&path),
        error_line(&o),
        "serve and check differ"
    );
}

/// A child's stderr, line by line as it comes, read on a thread of its own.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}

/// The daemon in its own process on a free loopback port.
struct Served {
    child: Child,
    addr: String,
    log: mpsc::Receiver<String>,
}

impl Served {
    fn start() -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        Self::spawn(cmd)
    }

    /// The daemon on a config file, under a shell prefix (e.g. resource limits).
    fn with_config(config: &Path, shell_prefix: &str) -> Self {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(format!(
            "{shell_prefix} exec '{BIN}' serve --listen 127.0.0.1:0 --config '{}'",
            config.display()
        ));
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let log = stderr_lines(&mut child);
        let addr = loop {
            let line = log
                .recv_timeout(Duration::from_secs(30))
                .expect("daemon logs that it serves");
            if let Some(rest) = line.split("addr=").nth(1) {
                if line.contains("serving") {
                    break rest.split_whitespace().next().unwrap().to_owned();
                }
            }
        };
        Self { child, addr, log }
    }

    fn cli(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--addr", &self.addr]);
        run(&all)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn client_subcommands_against_a_served_daemon_then_sigterm() {
    let d = Served::start();
    let o = d.cli(&["devices"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("FilterWheel") && out.contains("ok"), "{out}");

    let o = d.cli(&["set", "Laser488", "on", "true"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = d.cli(&["set", "FilterWheel", "label", "GFP"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = d.cli(&["get", "Laser488", "on"]);
    assert_eq!(text(&o).0.trim(), "true");

    let o = d.cli(&["move", "XY", "250", "-125.5"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("250.000, -125.500"), "{out}");
    let o = d.cli(&["move", "Z", "--relative", "-5"]);
    assert!(text(&o).0.contains("95.000"), "{:?}", text(&o));
    // Back into focus for the snaps below.
    assert!(d.cli(&["move", "Z", "100"]).status.success());

    // Mistakes: a clear message and a non-zero exit.
    let o = d.cli(&["set", "Laser488", "power_setpoint_mw", "900"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("0..=100 mW") && text(&o).1.contains("INVALID_ARGUMENT"),
        "{:?}",
        text(&o)
    );
    let o = d.cli(&["set", "Laser488", "on", "perhaps"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not a bool"));
    let o = d.cli(&["move", "XY", "1e9", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let o = d.cli(&["get", "Nothing", "x"]);
    assert!(text(&o).1.contains("NOT_FOUND"));

    // Snap to a raw TIFF and to a PNG preview, both read back by independent decoders.
    let dir = tempfile::tempdir().unwrap();
    let tiff_path = dir.path().join("snap.tiff");
    let o = d.cli(&[
        "snap",
        "-o",
        tiff_path.to_str().unwrap(),
        "--exposure",
        "20",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let mut dec = tiff::decoder::Decoder::new(std::fs::File::open(&tiff_path).unwrap()).unwrap();
    assert_eq!(dec.dimensions().unwrap(), (512, 512));
    let tiff::decoder::DecodingResult::U16(px) = dec.read_image().unwrap() else {
        panic!("expected 16-bit pixels");
    };
    assert!(
        *px.iter().max().unwrap() > 1000,
        "beads visible with 488 + GFP"
    );
    let png_path = dir.path().join("snap.png");
    let o = d.cli(&["snap", "-o", png_path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let png = image::open(&png_path).unwrap().to_luma8();
    assert_eq!(png.dimensions(), (512, 512));
    assert_eq!(
        *png.iter().max().unwrap(),
        255,
        "auto-contrast uses the full range"
    );
    let o = d.cli(&["snap", "-o", dir.path().join("snap.bmp").to_str().unwrap()]);
    assert!(text(&o).1.contains(".tiff") && !o.status.success());

    // SIGTERM: stop taking requests, lasers off, stages stopped, exit 0.
    let pid = d.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut d = d;
    let status = d.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let lines: Vec<String> = d.log.try_iter().collect();
    for device in ["Laser488", "XY", "Z", "Shutter"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("device in safe state")
                    && l.contains(&format!("device={device}"))),
            "{device} not made safe: {lines:#?}"
        );
    }
    assert!(lines.iter().any(|l| l.contains("shutdown complete")));
}

#[test]
fn sigterm_right_after_serving_still_stops_in_order() {
    // The signal handlers must be in place before the daemon says it serves: a service manager
    // (or a test) that stops it at once must get the orderly shutdown, not a kill. The window
    // was small, so a few tries.
    for _ in 0..5 {
        let mut d = Served::start();
        let pid = d.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = d.child.wait().unwrap();
        assert!(status.success(), "exit status {status:?}");
        let lines: Vec<String> = d.log.iter().collect();
        assert!(
            lines.iter().any(|l| l.contains("shutdown complete")),
            "{lines:#?}"
        );
    }
}

#[test]
fn client_without_a_daemon_says_how_to_start_one() {
    let o = run(&["devices", "--addr", "127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).1.contains("microscoped serve"), "{:?}", text(&o));
}

/// A small ramp-pattern camera with datasets under `root`.
fn ramp_config(dir: &Path, root: &Path) -> std::path::PathBuf {
    let path = dir.join("instrument.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[instrument]
name = "cli-acq"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{}"
ring_mb = 4

[devices.Camera]
driver = "sim.camera"
width = 256
height = 256
bit_depth = 16
exposure_ms = 5.0
readout_ms = 1.0
pattern = "ramp"
"#,
            root.display()
        ),
    )
    .unwrap();
    path
}

fn tiff_planes(path: &Path) -> (usize, String) {
    use tiff::decoder::Decoder;
    use tiff::tags::Tag;
    let mut dec = Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    let xml = dec.get_tag_ascii_string(Tag::ImageDescription).unwrap();
    let mut n = 0;
    loop {
        dec.read_image().unwrap();
        n += 1;
        if !dec.more_images() {
            return (n, xml);
        }
        dec.next_image().unwrap();
    }
}

#[test]
fn acquire_prints_the_file_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let d = Served::with_config(&ramp_config(dir.path(), &root), "");
    let o = d.cli(&["acquire", "--frames", "20", "--name", "cli-burst"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let path = root
        .join("local")
        .join("cli-burst")
        .join("cli-burst.ome.tiff");
    assert!(out.contains(path.to_str().unwrap()), "{out}");
    assert!(
        out.contains("finished: received 20 written 20 dropped 0"),
        "{out}"
    );
    assert_eq!(tiff_planes(&path).0, 20);

    let o = d.cli(&["acquire", "--frames", "5", "--name", "cli-burst"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("ALREADY_EXISTS"), "{:?}", text(&o));
    let o = d.cli(&["acquire", "--frames", "5", "--name", "../up"]);
    assert!(text(&o).1.contains("INVALID_ARGUMENT"), "{:?}", text(&o));
    let o = d.cli(&["acquire", "--frames", "0"]);
    assert!(text(&o).1.contains("at least 1"), "{:?}", text(&o));
}

/// The demo instrument with its datasets under `root`, as a config file in `dir`.
fn demo_config(dir: &Path, root: &Path) -> std::path::PathBuf {
    let config = dir.join("demo.toml");
    std::fs::write(
        &config,
        microscoped::config::DEMO_CONFIG.replace(
            "data_root = \"data\"",
            &format!("data_root = \"{}\"", root.display()),
        ),
    )
    .unwrap();
    config
}

/// Runs `args` against `d` until its output contains `want` (bounded); returns that output.
fn cli_until(d: &Served, args: &[&str], want: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let out = text(&d.cli(args)).0;
        if out.contains(want) {
            return out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{args:?} never said {want:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Plane `index` of a TIFF as the `tiff` crate reads it.
fn tiff_plane(path: &Path, index: usize) -> Vec<u16> {
    use tiff::decoder::{Decoder, DecodingResult};
    let mut dec = Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    for _ in 0..index {
        dec.next_image().unwrap();
    }
    let DecodingResult::U16(px) = dec.read_image().unwrap() else {
        panic!("expected 16-bit pixels");
    };
    px
}

#[test]
fn acquisitions_a_script_started_are_listed_paused_resumed_watched_stopped_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let config = demo_config(dir.path(), &root);
    let d = Served::with_config(&config, "");
    let plan = dir.path().join("long.yaml");
    std::fs::write(
        &plan,
        "axis_order: tcz\nchannels:\n  - {config: DAPI, exposure: 5}\n  - {config: GFP, exposure: 5}\nz_plan: {range: 2, step: 1}\ntime_plan: {interval: 0.5, loops: 1000}\n",
    )
    .unwrap();
    // Someone else's run: another process started it and follows it.
    let script = Command::new(BIN)
        .args([
            "acquire",
            plan.to_str().unwrap(),
            "--name",
            "scripted",
            "--addr",
            &d.addr,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = cli_until(&d, &["acquisitions"], "local/scripted");
    let line = out.lines().find(|l| l.contains("local/scripted")).unwrap();
    let id = line.split_whitespace().next().unwrap().to_owned();
    assert!(
        line.contains("running") && line.contains("images"),
        "{line}"
    );

    let o = d.cli(&["pause", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("paused"), "{:?}", text(&o));
    cli_until(&d, &["acquisitions"], "paused");
    let o = d.cli(&["resume", &id]);
    assert!(text(&o).0.contains("running"), "{:?}", text(&o));

    // Watching: no terminal here, so one line per update; the axes the plan does not use
    // (p, g) are left out, the others show where it stands of their size.
    let watch = Command::new(BIN)
        .args(["watch", &id, "--addr", &d.addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cli_until(&d, &["acquisitions"], "t 2/1000");

    // One plane back, by (t, c, z) and by index, as the file holds it.
    let tiff = dir.path().join("plane.tiff");
    let o = d.cli(&[
        "read",
        &id,
        "--t",
        "0",
        "--c",
        "1",
        "--z",
        "2",
        "-o",
        tiff.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("t=0 c=1 z=2"), "{:?}", text(&o));
    let file = root.join("local/scripted/scripted.ome.tiff");
    // tcz: z innermost, then c.
    assert_eq!(tiff_plane(&tiff, 0), tiff_plane(&file, 5));
    let o = d.cli(&["read", &id, "--plane", "3", "-o", tiff.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(tiff_plane(&tiff, 0), tiff_plane(&file, 3));
    let o = d.cli(&["read", &id, "--position", "1", "-o", tiff.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("INVALID_ARGUMENT") && text(&o).1.contains("no position 1"),
        "{:?}",
        text(&o)
    );

    let o = d.cli(&["stop", &id]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("stopped") && out.contains("local/scripted"),
        "{out}"
    );
    let watched = watch.wait_with_output().unwrap();
    let (wout, werr) = text(&watched);
    assert!(watched.status.success(), "{werr}");
    assert!(wout.contains("stopped: received"), "{wout}");
    let updates: Vec<&str> = werr
        .lines()
        .filter(|l| l.contains("local/scripted") && l.contains("images"))
        .collect();
    assert!(!updates.is_empty(), "{werr}");
    for l in &updates {
        assert!(
            l.contains(" c ") && l.contains(" z ") && l.contains("/1000"),
            "{l}"
        );
        assert!(!l.contains(" p ") && !l.contains(" g "), "{l}");
    }
    assert!(updates.iter().any(|l| l.contains("t 2/1000")), "{werr}");
    let followed = script.wait_with_output().unwrap();
    assert!(
        text(&followed).0.contains("stopped: received"),
        "{:?}",
        text(&followed)
    );

    // Pausing a sequence, or something that is not there: a clear refusal.
    let o = d.cli(&["pause", "999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("NOT_FOUND"), "{:?}", text(&o));
    let o = d.cli(&["stop", "local/nothing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("no acquisition you may read has a dataset called \"local/nothing\""),
        "{:?}",
        text(&o)
    );

    // After a restart the run is still listed, and read.
    drop(d);
    let d = Served::with_config(&config, "");
    let out = d.cli(&["acquisitions"]);
    let (out, err) = text(&out);
    let line = out
        .lines()
        .find(|l| l.contains("local/scripted"))
        .unwrap_or_else(|| panic!("{out}{err}"));
    assert!(line.contains("stopped"), "{line}");
    // Named by its dataset, which outlives the daemon's ids.
    let o = d.cli(&[
        "read",
        "scripted",
        "--t",
        "0",
        "--c",
        "1",
        "--z",
        "2",
        "-o",
        tiff.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(tiff_plane(&tiff, 0), tiff_plane(&file, 5));
}

#[test]
fn a_disk_that_fills_up_mid_run_fails_cleanly_and_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // Files may grow to 1 MiB: the 8th frame of 128 KiB does not fit. SIGXFSZ is ignored, so
    // the write fails with EFBIG as it would with ENOSPC on a full disk.
    let d = Served::with_config(
        &ramp_config(dir.path(), &root),
        "trap '' XFSZ; ulimit -f 1024;",
    );
    let o = d.cli(&["acquire", "--frames", "50", "--name", "full"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("failed: received"), "{out}");
    assert!(
        err.contains("failed") && err.contains("frames before it are in the file"),
        "{err}"
    );
    let written: usize = out
        .split("written ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("written count printed");
    assert!((5..8).contains(&written), "{out}");
    let path = root.join("local").join("full").join("full.ome.tiff");
    let (planes, xml) = tiff_planes(&path);
    assert_eq!(planes, written);
    assert!(xml.contains(&format!(r#"SizeT="{written}""#)), "{xml}");
    // The daemon is still fine: a smaller run works.
    let o = d.cli(&["acquire", "--frames", "2", "--name", "small"]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn presets_and_plans_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let config = dir.path().join("demo.toml");
    std::fs::write(
        &config,
        microscoped::config::DEMO_CONFIG.replace(
            "data_root = \"data\"",
            &format!("data_root = \"{}\"", root.display()),
        ),
    )
    .unwrap();
    let d = Served::with_config(&config, "");

    let o = d.cli(&["presets"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("GFP") && out.contains("FilterWheel.label=GFP"),
        "{out}"
    );
    let o = d.cli(&["preset", "Channel", "mCherry"]);
    assert!(
        text(&o).0.contains("FilterWheel.label = mCherry"),
        "{:?}",
        text(&o)
    );
    let o = d.cli(&["preset", "Channel", "Cy5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("NOT_FOUND"), "{:?}", text(&o));

    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "axis_order: tcz\nchannels:\n  - {config: DAPI, exposure: 5}\n  - {config: GFP, exposure: 5}\nz_plan: {range: 2, step: 1}\ntime_plan: {interval: 0.1, loops: 2}\n",
    )
    .unwrap();
    let plan = plan.to_str().unwrap();
    let o = d.cli(&["acquire", plan, "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // Sizes of the axes the plan uses, none of the others.
    assert!(
        out.contains("12 images in 1 file(s), at most 1 open at once; axes tcz (t 2 c 2 z 3)"),
        "{out}"
    );
    assert!(!root.join("local").join("cli-plan").exists());

    let o = d.cli(&["acquire", plan, "--name", "cli-plan"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("finished: received 12 written 12 dropped 0"),
        "{out}"
    );
    let file = root
        .join("local")
        .join("cli-plan")
        .join("cli-plan.ome.tiff");
    let (planes, xml) = tiff_planes(&file);
    assert_eq!(planes, 12);
    assert!(
        xml.contains("SizeC=\"2\"") && xml.contains("SizeZ=\"3\""),
        "{xml}"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"channels": ["DAPI"], "time_plan": {"interval": -2, "loops": 3}}"#,
    )
    .unwrap();
    let o = d.cli(&["acquire", bad.to_str().unwrap(), "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("time_plan.interval"),
        "{err}"
    );
}

#[test]
fn a_dry_run_refuses_what_the_run_refuses_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // 32 MiB frames and a million time points: more than the disk of any machine this runs on,
    // whatever its speed.
    let config = ramp_config(dir.path(), &root);
    let big = std::fs::read_to_string(&config)
        .unwrap()
        .replace("width = 256", "width = 4096")
        .replace("height = 256", "height = 4096");
    std::fs::write(&config, big).unwrap();
    let d = Served::with_config(&config, "");
    let plan = dir.path().join("huge.yaml");
    std::fs::write(&plan, "time_plan: {interval: 1, loops: 1000000}\n").unwrap();
    let plan = plan.to_str().unwrap();

    // The refusal, with the free space left out (it moves as other programs write).
    let refusal = |o: &Output| {
        let (out, err) = text(o);
        assert_eq!(o.status.code(), Some(1), "{out}{err}");
        assert!(!out.contains("valid"), "{out}");
        let line = err
            .lines()
            .find(|l| l.contains("are free under"))
            .unwrap_or_else(|| panic!("no disk refusal in {err}"));
        let (needs, rest) = line.split_once(" but only ").unwrap();
        format!("{needs} but only _{}", &rest[rest.find(" MiB").unwrap()..])
    };
    let dry = refusal(&d.cli(&["acquire", plan, "--dry-run", "--name", "huge"]));
    let run = refusal(&d.cli(&["acquire", plan, "--name", "huge"]));
    assert_eq!(dry, run);
    assert!(
        dry.contains("RESOURCE_EXHAUSTED") && dry.contains(" MiB"),
        "{dry}"
    );
    assert!(!root.join("local").join("huge").exists());

    // A plan that fits: the dry run prints sizes in the same unit.
    let small = dir.path().join("small.yaml");
    std::fs::write(&small, "time_plan: {interval: 0.01, loops: 2}\n").unwrap();
    let o = d.cli(&["acquire", small.to_str().unwrap(), "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("MiB to write") && out.contains("MiB free"),
        "{out}"
    );

    // A name already taken: the dry run says so as the run does.
    std::fs::create_dir_all(root.join("local").join("taken")).unwrap();
    let small = small.to_str().unwrap();
    let dry = d.cli(&["acquire", small, "--dry-run", "--name", "taken"]);
    let run = d.cli(&["acquire", small, "--name", "taken"]);
    assert_eq!(dry.status.code(), Some(1));
    assert_eq!(text(&dry).1, text(&run).1);
    assert!(text(&dry).1.contains("ALREADY_EXISTS"), "{:?}", text(&dry));
}

/// The `error:` line a command ended with.
fn error_line(o: &Output) -> String {
    let (out, err) = text(o);
    err.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {out}{err}"))
        .to_owned()
}

/// `serve` on a config it refuses: its error line (it exits before serving).
fn serve_refusal(config: &Path) -> String {
    let o = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!o.status.success(), "serve accepted {}", config.display());
    error_line(&o)
}

#[test]
fn check_refuses_what_serve_refuses_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "[instrument]\nname = \"x\"\n\n[server]\nanonymous_loopback_admin = true\n\n[storage]\ndata_root = \"{}\"\n\n[audit]\npath = \"{}\"\n\n",
        dir.path().join("data").display(),
        dir.path().join("audit.jsonl").display()
    );
    let laser =
        "[devices.L]\ndriver = \"sim.laser\"\nmax_power_mw = 100.0\nlimit_power_mw = 20.0\n\n";
    let wheel = "[devices.W]\ndriver = \"sim.state\"\nlabels = [\"DAPI\", \"GFP\"]\n\n";
    let prior = "[ports.P]\nemulate = \"prior\"\n\n[devices.PW]\ndriver = \"prior.filter_wheel\"\nport = \"P\"\nwheel = 1\nlabels = [\"A\", \"B\", \"C\"]\n\n";
    // (what, config after the head, what the message must say)
    let cases = [
        (
            "a preset above a laser's facility limit",
            format!("{laser}[presets.Channel.GFP]\nL.power_setpoint_mw = 30.0\n"),
            vec![
                "presets.Channel.GFP.L.power_setpoint_mw",
                // Where the limit is configured: key, file and line.
                "devices.L.limit_power_mw (",
                "x.toml:16)",
            ],
        ),
        (
            "a filter-wheel label the device does not have",
            format!("{wheel}[presets.Channel.Cy5]\nW.label = \"Cy5\"\n"),
            vec!["presets.Channel.Cy5.W.label", "DAPI", "GFP"],
        ),
        (
            "a preset property typo",
            format!("{laser}[presets.Channel.GFP]\nL.power_setpont_mw = 3.0\n"),
            vec![
                "presets.Channel.GFP.L.power_setpont_mw",
                "power_setpoint_mw",
            ],
        ),
        (
            "a Prior wheel with the wrong number of labels",
            prior.to_owned(),
            // Found by the driver against the emulated controller, named at the device's table.
            vec!["x.toml:16:", "key `devices.PW`", "10 positions"],
        ),
        (
            "a limit outside the hardware's range",
            "[devices.L]\ndriver = \"sim.laser\"\nmax_power_mw = 100.0\nlimit_power_mw = 150.0\n"
                .to_owned(),
            vec!["devices.L.limit_power_mw", "x.toml:16"],
        ),
    ];
    for (what, body, says) in cases {
        let path = dir.path().join("x.toml");
        std::fs::write(&path, format!("{head}{body}")).unwrap();
        let o = run(&["check", path.to_str().unwrap()]);
        assert!(
            !o.status.success(),
            "{what}: check accepted it: {:?}",
            text(&o)
        );
        let check = error_line(&o);
        assert_eq!(check, serve_refusal(&path), "{what}");
        for s in says {
            assert!(check.contains(s), "{what}: {s:?} not in {check}");
        }
    }

    // Good configs pass both; check says what only serve can check.
    let path = dir.path().join("x.toml");
    std::fs::write(
        &path,
        format!("{head}{laser}{wheel}[presets.Channel.GFP]\nL.power_setpoint_mw = 20.0\nW.label = \"GFP\"\n"),
    )
    .unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("valid") && out.contains("checked: L, W"),
        "{out}"
    );
    assert!(!out.contains("only serve"), "{out}");
    // ... and serve runs it.
    drop(Served::with_config(&path, ""));

    // A laser on a real port: its driver, built against its protocol's emulator, tells check
    // its properties, so a typo and a preset above its limit are refused as serve refuses them
    // (serve, here on the emulated twin of the port, since the hardware is away).
    for (what, preset, says) in [
        (
            "above the limit",
            "L.power_setpoint_mw = 30.0",
            "devices.L.limit_power_mw (",
        ),
        (
            "a typo",
            "L.power_setpont_mw = 3.0",
            "has no property \"power_setpont_mw\"",
        ),
    ] {
        let port = |how: &str| {
            format!(
                "{head}[ports.O]\n{how}\n\n[devices.L]\ndriver = \"obis.laser\"\nport = \"O\"\n\
                 limit_power_mw = 20.0\n\n[presets.Channel.GFP]\n{preset}\n"
            )
        };
        std::fs::write(&path, port("path = \"/dev/no-such-obis\"")).unwrap();
        let o = run(&["check", path.to_str().unwrap()]);
        assert!(!o.status.success(), "{what}: accepted {:?}", text(&o));
        let check = error_line(&o);
        assert!(check.contains(says), "{what}: {check}");
        let twin = dir.path().join("twin.toml");
        std::fs::write(&twin, port("emulate = \"obis\"")).unwrap();
        assert_eq!(
            check.replace("x.toml", "twin.toml"),
            serve_refusal(&twin),
            "{what}"
        );
    }

    // A wheel on a real port: its labels are checked from its settings, and check says plainly
    // that the rest waits for serve.
    let real = format!(
        "{head}[ports.P]\npath = \"/dev/ttyUSB7\"\n\n[devices.PW]\ndriver = \"prior.filter_wheel\"\nport = \"P\"\nlabels = [\"A\", \"B\"]\n\n"
    );
    std::fs::write(
        &path,
        format!("{real}[presets.F.X]\nPW.label = \"B\"\nPW.speed_percent = 50\n"),
    )
    .unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("only serve can check what needs the hardware")
            && out.contains("PW  on port P (/dev/ttyUSB7"),
        "{out}"
    );
    std::fs::write(&path, format!("{real}[presets.F.X]\nPW.label = \"C\"\n")).unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    assert!(!o.status.success(), "{:?}", text(&o));
    let e = error_line(&o);
    assert!(
        e.contains("presets.F.X.PW.label") && e.contains("\"C\""),
        "{e}"
    );
}

#[test]
fn old_names_of_travel_and_home_are_refused_naming_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let head = "[instrument]\nname = \"x\"\n\n[ports.P]\nemulate = \"prior\"\n\n";
    let cases = [
        (
            "sim.xy_stage",
            "x_range = [0.0, 10.0]",
            "x_range",
            "x_travel_um",
        ),
        (
            "sim.xy_stage",
            "y_range = [0.0, 10.0]",
            "y_range",
            "y_travel_um",
        ),
        ("sim.xy_stage", "home = [0.0, 0.0]", "home", "home_um"),
        ("sim.stage", "range = [0.0, 10.0]", "range", "travel_um"),
        ("sim.stage", "home = 0.0", "home", "home_um"),
        (
            "prior.xy_stage\"\nport = \"P",
            "x_range_um = [0.0, 10.0]",
            "x_range_um",
            "x_travel_um",
        ),
        (
            "prior.stage\"\nport = \"P",
            "range_um = [0.0, 10.0]",
            "range_um",
            "travel_um",
        ),
        (
            "obis.laser\"\nport = \"P",
            "expected_wavelength_nm = 488.0",
            "expected_wavelength_nm",
            "wavelength_nm",
        ),
    ];
    for (driver, line, old, new) in cases {
        let path = dir.path().join("old.toml");
        let body = format!("{head}[devices.D]\ndriver = \"{driver}\"\n{line}\n");
        let at = body.lines().count();
        std::fs::write(&path, body).unwrap();
        let o = run(&["check", path.to_str().unwrap()]);
        assert!(!o.status.success(), "{old} accepted");
        let e = error_line(&o);
        assert!(
            e.contains(&format!("old.toml:{at}:")) && e.contains(&format!("devices.D.{old}")),
            "{old}: {e}"
        );
        assert!(
            e.contains(&format!("rename `{old}` to `{new}`")),
            "{old}: {e}"
        );
    }
}

#[test]
fn live_shows_a_frame_rate_without_an_acquisition() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let d = Served::with_config(&ramp_config(dir.path(), &root), "");
    // 30 frames at 20 a second take 1.45 s at least, whatever the machine: long enough for
    // the line a second.
    let o = d.cli(&["live", "--frames", "30", "--max-fps", "20"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // Not a terminal: plain lines, no preview.
    assert!(!out.contains('\x1b'), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("Camera: live mode, ")
            && l.contains(" fps, ")
            && l.contains("256 x 256, exposure 5 ms")),
        "{out}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("30 frames in ") && last.ends_with(" fps)"),
        "{out}"
    );
    // Nothing was written.
    assert!(!root.join("local").exists());
}

#[test]
fn live_on_a_terminal_draws_a_preview_in_half_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let d = Served::with_config(&ramp_config(dir.path(), &root), "");
    // `script` gives the command a terminal of its own and copies what it draws.
    let o = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "'{BIN}' live --frames 3 --width 32 --addr {}",
            d.addr
        ))
        .arg("/dev/null")
        .output()
        .expect("script runs");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains('\u{2580}'), "no half blocks: {out:?}");
    // Grays, the cursor hidden while drawing and shown again at the end.
    assert!(
        out.contains("\x1b[38;2;") && out.contains("\x1b[?25l"),
        "{out:?}"
    );
    assert!(out.contains("\x1b[?25h"), "{out:?}");
    assert!(out.contains("3 frames in "), "{out:?}");
}

/// Every `--help` of the command tree (the command itself, then its subcommands), by name.
fn every_help(path: &mut Vec<String>, helps: &mut Vec<(String, String)>) {
    let mut cmd = Command::new(BIN);
    cmd.args(path.iter()).arg("--help");
    for var in [
        "MICROSCOPED_ADDR",
        "MICROSCOPED_TOKEN",
        "MICROSCOPED_TLS_CA",
    ] {
        cmd.env_remove(var);
    }
    let o = cmd.output().unwrap();
    let (help, err) = text(&o);
    assert!(o.status.success(), "{path:?}: {err}");
    let subcommands: Vec<String> = help
        .split("Commands:\n")
        .nth(1)
        .map(|list| {
            list.lines()
                .take_while(|l| l.starts_with("  "))
                .filter(|l| !l.starts_with("   "))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|name| *name != "help")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    helps.push((path.join(" "), help));
    for name in subcommands {
        path.push(name);
        every_help(path, helps);
        path.pop();
    }
}

#[test]
fn help_names_environment_variables_and_shows_no_empty_defaults() {
    let mut helps = Vec::new();
    every_help(&mut Vec::new(), &mut helps);
    assert!(
        helps.len() > 20,
        "{:?}",
        helps.iter().map(|h| &h.0).collect::<Vec<_>>()
    );
    for (command, help) in &helps {
        // clap prints an unset variable as `[env: NAME=]` and an empty default as `[default: ]`.
        assert!(
            !help.contains("=]"),
            "microscoped {command} --help:\n{help}"
        );
        assert!(
            !help.contains("[default: ]") && !help.contains("[default: \"\"]"),
            "microscoped {command} --help:\n{help}"
        );
    }
    let devices = &helps.iter().find(|h| h.0 == "devices").unwrap().1;
    for shown in [
        "[env: MICROSCOPED_ADDR]",
        "[default: 127.0.0.1:50051]",
        "[env: MICROSCOPED_TOKEN]",
        "[env: MICROSCOPED_TLS_CA]",
    ] {
        assert!(devices.contains(shown), "{shown} not in\n{devices}");
    }
}

/// A command whose stdout is a pipe nobody reads any more (`... | head -1` after head left).
fn into_closed_pipe(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap()
}

#[test]
fn a_closed_pipe_ends_every_kind_of_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let d = Served::start();
    let commands: [&[&str]; 4] = [
        &["check", demo.to_str().unwrap()],
        &["token", "new", "--user", "bob"],
        &["devices", "--addr", &d.addr],
        &["props", "Camera", "--addr", &d.addr],
    ];
    for args in commands {
        let o = into_closed_pipe(Command::new(BIN).args(args));
        // As `cat` ends: killed by SIGPIPE, which a shell reports as 141, and not a word.
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {}",
            o.status,
            text(&o).1
        );
        assert_eq!(text(&o).1, "", "{args:?}");
    }
}

#[test]
fn props_says_no_limit_for_an_unbounded_range() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("obis.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[instrument]
name = "cli-obis"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{}"

[ports.OBIS]
emulate = "obis"
baud = 115200

[devices.Laser]
driver = "obis.laser"
port = "OBIS"
max_power_mw = 50.0
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let d = Served::with_config(&config, "");
    let o = d.cli(&["props", "Laser"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // The laser's nominal power has no upper limit in the driver (f64::MAX).
    let nominal = out
        .lines()
        .find(|l| l.contains("nominal_power_mw"))
        .unwrap_or_else(|| panic!("no nominal_power_mw in\n{out}"));
    assert!(nominal.contains("float >= 0 (no upper limit)"), "{nominal}");
    let longest_number = out
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_number < 16, "{out}");
    assert!(out.contains("float 0..=50"), "{out}");
}

/// Starts `acquire ARGS` against `d` and returns it with its stderr lines and the dataset path
/// it announced.
fn acquire_in_background(d: &Served, args: &[&str]) -> (Child, mpsc::Receiver<String>, String) {
    let mut child = Command::new(BIN)
        .arg("acquire")
        .args(args)
        .args(["--addr", &d.addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let path = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("acquire says where it writes");
        if let Some(path) = line.split(" started: ").nth(1) {
            break path.to_owned();
        }
    };
    (child, lines, path)
}

/// SIGKILLs the daemon and waits (bounded) for the CLI that followed it to end.
fn kill_daemon_and_wait(mut d: Served, mut cli: Child) -> (std::process::ExitStatus, String) {
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = cli.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI did not notice the daemon was gone"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut cli.stdout.take().unwrap(), &mut out).unwrap();
    (status, out)
}

#[test]
fn a_daemon_killed_during_acquire_is_named_with_how_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let d = Served::with_config(&ramp_config(dir.path(), &root), "");
    let (cli, lines, path) = acquire_in_background(&d, &["--until-stopped", "--name", "killed"]);
    assert_eq!(
        Path::new(&path),
        root.join("local/killed/killed.ome.tiff").as_path()
    );
    // Wait until frames are in the file: the sidecar has a line per plane after its header.
    let sidecar = format!("{path}.frames.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&sidecar).map_or(0, |s| s.lines().count()) < 3 {
        assert!(std::time::Instant::now() < deadline, "no frame written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _) = kill_daemon_and_wait(d, cli);
    // The CLI has exited: its stderr is at its end.
    let err = lines.iter().collect::<Vec<_>>().join("\n");
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("the daemon went away"), "{err}");
    assert!(!err.contains("(UNKNOWN)"), "{err}");
    let advice = format!("`microscoped recover {path}`");
    assert!(err.contains(&advice), "{err}");

    // The advice works: the file is complete, every linked frame kept.
    let o = run(&["recover", &path]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("recovered"), "{out}");
    let planes: usize = out
        .split("recovered ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("plane count printed");
    assert!(planes >= 2, "{out}");
    assert_eq!(tiff_planes(Path::new(&path)).0, planes);
}

#[test]
fn recover_removes_a_dataset_killed_before_its_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // A ten-minute exposure: the daemon is killed long before the first frame.
    let config = ramp_config(dir.path(), &root);
    let slow = std::fs::read_to_string(&config).unwrap().replace(
        "exposure_ms = 5.0",
        "exposure_ms = 600000.0\nmax_exposure_ms = 1000000.0",
    );
    std::fs::write(&config, slow).unwrap();
    let d = Served::with_config(&config, "");
    let (cli, _lines, path) = acquire_in_background(&d, &["--frames", "1", "--name", "never"]);
    let sidecar = format!("{path}.frames.jsonl");
    assert!(Path::new(&path).exists() && Path::new(&sidecar).exists());
    let (status, _) = kill_daemon_and_wait(d, cli);
    assert_eq!(status.code(), Some(3));

    let o = run(&["recover", &path]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("empty") && out.contains("nothing was recorded"),
        "{out}"
    );
    let folder = root.join("local").join("never");
    for gone in [Path::new(&path), Path::new(&sidecar), folder.as_path()] {
        assert!(!gone.exists(), "{} is still there", gone.display());
        assert!(out.contains(gone.to_str().unwrap()), "{out}");
    }
    // The owner's folder holds other datasets: it stays.
    assert!(root.join("local").is_dir());
}

#[test]
fn token_new_refuses_the_name_reserved_for_anonymous_access() {
    let o = run(&["token", "new", "--user", "local", "--role", "admin"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(out, "", "no token for a name the config refuses");
    assert!(
        err.contains("\"local\" is reserved") && err.contains("choose another name"),
        "{err}"
    );
    // The config says the same of [users.local].
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("users.toml");
    std::fs::write(
        &config,
        format!(
            "[instrument]\nname = \"x\"\n\n[users.local]\nrole = \"admin\"\ntoken_sha256 = \"{}\"\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let o = run(&["check", config.to_str().unwrap()]);
    let config_err = text(&o).1;
    assert!(!o.status.success());
    assert!(config_err.contains("\"local\" is reserved"), "{config_err}");

    let o = run(&["token", "new", "--user", "alice"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("[users.alice]"));
}

#[test]
fn a_plan_whose_daemon_was_killed_is_recovered_by_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let d = Served::with_config(&ramp_config(dir.path(), &root), "");
    // One frame, then a minute's wait for the next time point: the daemon dies in between.
    let plan = dir.path().join("slow.yaml");
    std::fs::write(&plan, "time_plan: {interval: 60, loops: 3}\n").unwrap();
    let (cli, lines, folder) =
        acquire_in_background(&d, &[plan.to_str().unwrap(), "--name", "slow"]);
    assert_eq!(Path::new(&folder), root.join("local/slow").as_path());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let sidecar = loop {
        let written = std::fs::read_dir(&folder).unwrap().find_map(|e| {
            let p = e.unwrap().path();
            let lines = std::fs::read_to_string(&p).map_or(0, |s| s.lines().count());
            (p.to_string_lossy().ends_with(".frames.jsonl") && lines >= 2).then_some(p)
        });
        if let Some(p) = written {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "no frame written");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (status, _) = kill_daemon_and_wait(d, cli);
    let err = lines.iter().collect::<Vec<_>>().join("\n");
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("`microscoped recover {folder}`")),
        "{err}"
    );

    let o = run(&["recover", &folder]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("recovered 1 planes"), "{out}");
    assert!(!sidecar.exists());
    let file = sidecar.to_str().unwrap().trim_end_matches(".frames.jsonl");
    assert_eq!(tiff_planes(Path::new(file)).0, 1);
}

/// A plan the daemon was killed during, found by the next daemon: `acquisitions` counts the
/// planes its files hold (its summary, written at its start, says none), does not pretend to
/// know where it stood, and names one `recover` for its folder rather than one of its files.
#[test]
fn a_killed_plan_is_listed_by_the_next_daemon_with_its_planes_and_its_folder_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let config = demo_config(dir.path(), &root);
    let d = Served::with_config(&config, "");
    // A frame at each position, then a minute's wait for the next time point.
    let plan = dir.path().join("two.yaml");
    std::fs::write(
        &plan,
        "stage_positions: [{x: 0, y: 0}, {x: 10, y: 0}]\ntime_plan: {interval: 60, loops: 2}\n",
    )
    .unwrap();
    let (cli, _lines, folder) =
        acquire_in_background(&d, &[plan.to_str().unwrap(), "--name", "two"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let planes_in = |p: usize| {
        std::fs::read_to_string(format!("{folder}/two_p00{p}.ome.tiff.frames.jsonl"))
            .map_or(0, |s| s.lines().count().saturating_sub(1))
    };
    while planes_in(0) < 1 || planes_in(1) < 1 {
        assert!(std::time::Instant::now() < deadline, "no frame written");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_daemon_and_wait(d, cli);

    let d = Served::with_config(&config, "");
    let o = d.cli(&["acquisitions"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("local/two"))
        .unwrap_or_else(|| panic!("not listed: {out}"));
    assert!(
        line.contains("failed") && line.contains("2/4 images"),
        "{out}"
    );
    assert!(!line.contains(" t 1/"), "no place it stood is known: {out}");
    assert!(
        out.contains(&format!("`microscoped recover {folder}` completes them")),
        "{out}"
    );
}

/// What `/proc` says of process `pid`: its resident memory in bytes (`VmRSS`).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// The ring budget of [`big_ring_config`], in MiB.
const RING_MB: u64 = 256;

/// The `ramp_config` instrument with a ring of [`RING_MB`] of 128 KiB frames: far more than
/// the idle daemon, in slots small enough that a heap allocator would keep them rather than
/// unmap them.
fn big_ring_config(dir: &Path, root: &Path) -> std::path::PathBuf {
    let config = ramp_config(dir, root);
    let text_of = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_of.replace("ring_mb = 4", &format!("ring_mb = {RING_MB}")),
    )
    .unwrap();
    config
}

/// Asserts the daemon's RSS is within a quarter of the ring budget of `idle`.
fn assert_near_idle(pid: u32, idle: u64, when: &str) {
    let rss = rss_bytes(pid);
    assert!(
        rss <= idle + (RING_MB << 20) / 4,
        "{when} the daemon holds {} MiB, {} MiB more than idle (ring budget {RING_MB} MiB)",
        rss >> 20,
        rss.saturating_sub(idle) >> 20
    );
}

#[test]
fn memory_goes_back_to_the_system_after_every_acquisition() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let d = Served::with_config(&big_ring_config(dir.path(), &root), "");
    let pid = d.child.id();
    let idle = rss_bytes(pid);
    for run in 0..4 {
        let name = format!("run{run}");
        let o = d.cli(&["acquire", "--frames", "20", "--name", &name]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}{err}");
        assert!(out.contains("written 20 dropped 0"), "{out}");
        // `acquire` returns once the run has ended: its ring is gone by then.
        assert_near_idle(pid, idle, &format!("after run {run}"));
    }
}

#[test]
fn a_live_view_that_is_not_read_keeps_no_ring_alive() {
    use microscoped::pb;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let d = Served::with_config(&big_ring_config(dir.path(), &root), "");
    let pid = d.child.id();
    let idle = rss_bytes(pid);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (cli, _lines, _) = acquire_in_background(&d, &["--frames", "1000", "--name", "viewed"]);
    // A viewer of the running acquisition that never reads: its stream stalls on the
    // connection's flow control with a frame in hand.
    let stream = rt.block_on(async {
        let mut acq =
            pb::acquisition_client::AcquisitionClient::connect(format!("http://{}", d.addr))
                .await
                .unwrap();
        acq.live_view(pb::LiveViewRequest {
            camera: String::new(),
            max_fps: 0.0,
        })
        .await
        .unwrap()
        .into_inner()
    });
    let out = cli.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("received 1000"), "{:?}", text(&out));
    assert_near_idle(pid, idle, "with a live view open after the run");
    drop(stream);
}

/// An instrument with a 32 x 32 camera and a fast XY stage, for plans of many small files.
fn grid_config(dir: &Path, root: &Path) -> std::path::PathBuf {
    let path = dir.join("grid.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[instrument]
name = "grid"
pixel_size_um = 1.0

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{}"
ring_mb = 4

[devices.Camera]
driver = "sim.camera"
width = 32
height = 32
bit_depth = 16
exposure_ms = 1.0
readout_ms = 1.0
pattern = "ramp"

[devices.XY]
driver = "sim.xy_stage"
x_travel_um = [-25000.0, 25000.0]
y_travel_um = [-25000.0, 25000.0]
speed_um_s = 100000.0
"#,
            root.display()
        ),
    )
    .unwrap();
    path
}

/// What process `pid` has open: the targets of its descriptors.
fn open_files(pid: u32) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect()
}

/// Of `files`, how many are a plan's OME-TIFF files and how many their sidecars.
fn tiffs_and_sidecars(files: &[std::path::PathBuf]) -> (usize, usize) {
    let ends = |s: &str| {
        files
            .iter()
            .filter(|f| f.to_string_lossy().ends_with(s))
            .count()
    };
    (ends(".ome.tiff"), ends(".frames.jsonl"))
}

/// Polls until process `pid` has at most `n` descriptors open (bounded); returns how many.
fn wait_for_descriptors(pid: u32, n: usize) -> usize {
    let start = std::time::Instant::now();
    loop {
        let open = open_files(pid).len();
        if open <= n {
            return open;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon still has {open} descriptors open, {n} before: {:?}",
            open_files(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_plan_with_more_files_than_descriptors_runs_in_a_pool_of_open_files() {
    const LIMIT: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let config = grid_config(dir.path(), &root);
    // 100 grid tiles: 100 files and 100 sidecars, far more than 64 descriptors allow.
    let prefix = format!("ulimit -n {LIMIT};");

    // A first time point, then an hour's wait for the second: every file has its first plane,
    // and most were closed to make room for the next.
    let d = Served::with_config(&config, &prefix);
    let pid = d.child.id();
    let plan = dir.path().join("wait.yaml");
    std::fs::write(
        &plan,
        "grid_plan: {rows: 10, columns: 10}\ntime_plan: {interval: 3600, loops: 2}\n",
    )
    .unwrap();
    let o = d.cli(&["acquire", plan.to_str().unwrap(), "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let pool: usize = out
        .split(" file(s), at most ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pool size in {out}"));
    assert!(out.contains("200 images in 100 file(s)"), "{out}");
    assert!((1..=LIMIT / 2).contains(&pool), "{out}");
    let (cli, _lines, folder) =
        acquire_in_background(&d, &[plan.to_str().unwrap(), "--name", "wait"]);
    let first = Path::new(&folder).join("wait_p000_g000.ome.tiff");
    cli_until(&d, &["acquisitions"], "100/200 images");
    // The first tile's file, closed once `pool` others were written after it.
    let start = std::time::Instant::now();
    while open_files(pid).contains(&first) {
        assert!(start.elapsed() < Duration::from_secs(60), "never closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (tiffs, sidecars) = tiffs_and_sidecars(&open_files(pid));
    assert!(
        tiffs <= pool + 1 && sidecars <= pool + 1,
        "{tiffs} {sidecars}"
    );
    // A file the run writes but has closed reads like any other.
    let plane = dir.path().join("first.tiff");
    let o = d.cli(&[
        "read",
        "wait",
        "--position",
        "0",
        "--t",
        "0",
        "-o",
        plane.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(tiff_plane(&plane, 0), tiff_plane(&first, 0));
    // Killed now, the files (open or closed) are recovered by the folder.
    let (status, _) = kill_daemon_and_wait(d, cli);
    assert_eq!(status.code(), Some(3));
    let o = run(&["recover", &folder]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    for g in 0..100 {
        let file = Path::new(&folder).join(format!("wait_p000_g{g:03}.ome.tiff"));
        let (planes, xml) = tiff_planes(&file);
        assert_eq!(planes, 1, "{}", file.display());
        assert!(xml.contains(r#"SizeT="1""#), "{xml}");
    }

    // Two time points back to back: every tile is visited twice, its file opened again and
    // appended to at the second.
    let d = Served::with_config(&config, &prefix);
    let pid = d.child.id();
    let before = open_files(pid).len();
    let plan = dir.path().join("twice.yaml");
    std::fs::write(
        &plan,
        "grid_plan: {rows: 10, columns: 10}\ntime_plan: {interval: 0, loops: 2}\n",
    )
    .unwrap();
    let o = d.cli(&["acquire", plan.to_str().unwrap(), "--name", "twice"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("finished: received 200 written 200 dropped 0"),
        "{out}"
    );
    let folder = root.join("local").join("twice");
    for g in 0..100 {
        let file = folder.join(format!("twice_p000_g{g:03}.ome.tiff"));
        let (planes, xml) = tiff_planes(&file);
        assert_eq!(planes, 2, "{}", file.display());
        assert!(xml.contains(r#"SizeT="2""#), "{xml}");
        assert!(!microscoped::storage::sidecar_path(&file).exists());
    }
    // Every file it opened is closed again (the client's connection goes too).
    wait_for_descriptors(pid, before);

    // With fewer descriptors left than one file needs beside what is kept for clients, the
    // plan is refused, by the dry run as by the run. The numbers move with the connections
    // open at that moment, so they are compared as words.
    let open = open_files(pid).len() as u64;
    let low = libc::rlimit {
        rlim_cur: open + 8,
        rlim_max: LIMIT as u64,
    };
    // SAFETY: prlimit reads `low` and writes nothing (no old limit asked for).
    let set = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &low,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    let words = |o: &Output| {
        assert_eq!(o.status.code(), Some(1), "{:?}", text(o));
        error_line(o).replace(|c: char| c.is_ascii_digit(), "")
    };
    let plan = plan.to_str().unwrap();
    let dry = words(&d.cli(&["acquire", plan, "--dry-run", "--name", "low"]));
    let run = words(&d.cli(&["acquire", plan, "--name", "low"]));
    assert_eq!(dry, run);
    assert!(
        dry.contains("FAILED_PRECONDITION")
            && dry.contains("file descriptors left")
            && dry.contains("open-file limit"),
        "{dry}"
    );
    assert!(!root.join("local").join("low").exists());
}

#[test]
fn a_short_soak_accounts_for_every_frame_and_rpc_and_writes_its_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("soak.csv");
    let o = run(&[
        "bench",
        "--soak",
        "3s",
        "--dir",
        dir.path().to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--width",
        "64",
        "--height",
        "64",
        "--frames",
        "20",
        "--plan-events",
        "50",
        "--clients",
        "2",
        "--idle",
        "1s",
        "--report-every",
        "1s",
        "--lease-every",
        "1s",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("soak PASSED"), "{out}");
    // The summary's totals: received = written + dropped, and some of each acquisition kind.
    let totals = out
        .lines()
        .find(|l| l.trim_start().starts_with("acquisitions ") && l.contains(" = written "))
        .unwrap_or_else(|| panic!("no totals in\n{out}"));
    let numbers: Vec<u64> = totals
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [acquisitions, received, written, dropped] = numbers[..] else {
        panic!("{totals}")
    };
    assert!(acquisitions >= 2, "{totals}");
    assert_eq!(received, written + dropped, "{totals}");
    assert!(out.contains("p99 load/idle x"), "{out}");
    // Every report is a CSV row under the header; the datasets are gone.
    let rows = std::fs::read_to_string(&csv).unwrap();
    let mut lines = rows.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("elapsed_s,rss_mib,fds,threads,"));
    assert!(lines.count() >= 1, "{rows}");
    assert!(!dir.path().join("soak-datasets").exists());

    let o = run(&["bench", "--soak", "5x"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("not a duration"), "{}", text(&o).1);
}
