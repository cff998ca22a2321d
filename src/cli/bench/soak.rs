//! `microscoped bench --soak DURATION`: the daemon under hours of load, watched for what only
//! shows over time (memory, descriptors and threads that grow, frames or RPCs that go missing,
//! control latency that degrades).
//!
//! The real daemon runs in this process on a loopback port; every client is a real gRPC client
//! on a runtime of its own (so the daemon's scheduler is not the clients'):
//! - acquisitions back to back on a large simulated camera (the `ramp` pattern: one copy per
//!   frame from a pre-rendered buffer) at about the writer's full rate, each of bounded size,
//!   checked when it ends (every frame accounted for, the last plane read back over gRPC) and
//!   then deleted, so the disk holds at most one of them;
//! - meanwhile plans of 100,000 events (a time-lapse with no interval) on a small second camera;
//! - eight clients calling a mix of unary RPCs, two live viewers (at a display's 30 fps), and
//!   the control lease passing between two users.
//!
//! Once a minute (`--report-every`) it prints one line and appends a row to the CSV: the
//! process's RSS, descriptors and threads (daemon and clients together: one process), frames,
//! RPCs by outcome and the unary latency of that minute. Unary latency with nothing else
//! running is measured at the start and again at the end. Any unanswered RPC, unexpected status,
//! failed acquisition or unaccounted frame makes the run fail.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use microscoped::acquire::RunState;
use microscoped::client::{
    AcquisitionStatus, Error, Plan, PlaneAddress, Sequence, Session, Target,
};
use microscoped::config::Config;
use microscoped_driver_api::Value;
use tokio::net::TcpListener;

/// A bound on every RPC: one unanswered for this long counts as unanswered.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// The large camera's name in the soak's instrument.
const CAMERA: &str = "Camera";
/// The small camera the 100,000-event plans use.
const SMALL: &str = "Small";
/// The small camera's side, in pixels (16-bit: 8 KiB a frame).
const SMALL_SIDE: u32 = 64;

/// What the soak does; see `bench --help`.
#[derive(Debug, Clone)]
pub(super) struct SoakOptions {
    /// The data root is `dir/soak-datasets` (made, refused if not empty, removed at the end).
    pub dir: PathBuf,
    /// How long acquisitions keep being started.
    pub duration: Duration,
    /// Where the per-minute rows go, if anywhere.
    pub csv: Option<PathBuf>,
    /// The large camera's frame width.
    pub width: u32,
    /// Its frame height.
    pub height: u32,
    /// Frames per acquisition on it (each dataset is this many frames at most).
    pub frames: u64,
    /// Events per plan on the small camera.
    pub plan_events: u64,
    /// Unary clients.
    pub clients: usize,
    /// Live viewers.
    pub viewers: usize,
    /// The frame rate each viewer asks for; 0: as fast as it reads.
    pub viewer_fps: f64,
    /// The large camera's frame period; `None`: a little faster than the writer, as the
    /// calibration measures it (see `calibrate`).
    pub period_ms: Option<f64>,
    /// Pause of each unary client between two calls.
    pub rpc_pause: Duration,
    /// How often the lease changes hands.
    pub lease_every: Duration,
    /// How often a report line is printed.
    pub report_every: Duration,
    /// How long the idle latency is measured, at the start and at the end.
    pub idle: Duration,
}

/// Parses "65m", "1h30m", "90s", "2h" or plain seconds.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration: write e.g. 90s, 65m, 1h30m or 2h");
    if let Ok(s) = text.parse::<u64>() {
        return Ok(Duration::from_secs(s));
    }
    let (mut total, mut number) = (0u64, String::new());
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// The two operators the lease passes between and the observer who watches.
struct Users {
    /// Tokens of the operators `soak_a` and `soak_b`.
    operators: [String; 2],
    /// Token of the observer `soak_viewer`.
    viewer: String,
    /// Their `[users.*]` tables.
    config: String,
}

impl Users {
    fn new() -> anyhow::Result<Self> {
        use microscoped::token;
        let (a, b, v) = (
            token::new_token()?,
            token::new_token()?,
            token::new_token()?,
        );
        let table = |name: &str, role: &str, t: &str| {
            format!(
                "[users.{name}]\nrole = \"{role}\"\ntoken_sha256 = \"{}\"\ncan_read = [\"*\"]\n",
                token::hex(&token::sha256(t))
            )
        };
        let config = [
            table("soak_a", "operator", &a),
            table("soak_b", "operator", &b),
            table("soak_viewer", "observer", &v),
        ]
        .concat();
        Ok(Self {
            operators: [a, b],
            viewer: v,
            config,
        })
    }
}

fn soak_config(o: &SoakOptions, root: &Path, users: &Users) -> String {
    // The ring: a few hundred MiB, about what a facility gives one acquisition.
    format!(
        r#"
[instrument]
name = "soak"

[server]
anonymous_loopback_admin = false

[storage]
data_root = "{root}"
ring_mb = 256
min_slots = 16
overflow = "drop"

{camera}
[devices.{SMALL}]
driver = "sim.camera"
width = {SMALL_SIDE}
height = {SMALL_SIDE}
bit_depth = 16
exposure_ms = 0.01
min_exposure_ms = 0.01
readout_ms = 0.01
pattern = "ramp"

[devices.Z]
driver = "sim.stage"

[devices.Laser488]
driver = "sim.laser"
wavelength_nm = 488.0
max_power_mw = 100.0
power_mw = 10.0

{users}
"#,
        root = root.display(),
        camera = super::ramp_camera(CAMERA, o.width, o.height),
        users = users.config
    )
}

/// Counts of everything the soak did, shared by its tasks.
struct Stats {
    /// RPCs sent (streams opened included).
    sent: AtomicU64,
    /// RPCs answered, with a status of any code.
    answered: AtomicU64,
    /// Answers by gRPC code ("OK", "FAILED_PRECONDITION", ...).
    codes: Mutex<BTreeMap<&'static str, u64>>,
    /// RPCs never answered (timed out, connection lost).
    unanswered: AtomicU64,
    /// Unary latency of the load clients since the last report, in µs.
    window: Mutex<Histogram<u64>>,
    /// Unary latency of the load clients over the whole load.
    load: Mutex<Timing>,
    /// Frames the live viewers received.
    live_frames: AtomicU64,
    /// Live views (re)opened.
    live_opens: AtomicU64,
    /// Times the lease changed hands.
    handovers: AtomicU64,
    /// Acquisitions ended and checked.
    acquisitions: AtomicU64,
    /// Frames of acquisitions that ended: received, written, dropped.
    done: [AtomicU64; 3],
    /// The same for each acquisition still running, as last polled.
    running: Mutex<HashMap<u64, [u64; 3]>>,
    /// What went wrong: any entry fails the run.
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            codes: Mutex::new(BTreeMap::new()),
            unanswered: AtomicU64::new(0),
            window: Mutex::new(histogram()?),
            load: Mutex::new(Timing::new()?),
            live_frames: AtomicU64::new(0),
            live_opens: AtomicU64::new(0),
            handovers: AtomicU64::new(0),
            acquisitions: AtomicU64::new(0),
            done: Default::default(),
            running: Mutex::new(HashMap::new()),
            failures: Mutex::new(Vec::new()),
        })
    }

    fn fail(&self, what: String) {
        eprintln!("soak: FAILURE: {what}");
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // The first hundred say what happened; more would only grow the process under test.
        if f.len() < 100 {
            f.push(what);
        }
    }

    fn code(&self, code: &'static str) {
        self.answered.fetch_add(1, Relaxed);
        *self
            .codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    /// Frames received, written, dropped: ended acquisitions plus running ones.
    fn frames(&self) -> [u64; 3] {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = self.done.each_ref().map(|a| a.load(Relaxed));
        for r in running.values() {
            for (total, n) in f.iter_mut().zip(r) {
                *total += n;
            }
        }
        f
    }
}

/// Latencies from 1 µs to 10 min at 3 significant digits.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Unary latencies in µs: of every call, and of each method's.
struct Timing {
    /// Every call.
    all: Histogram<u64>,
    /// Each method's calls.
    by_method: BTreeMap<&'static str, Histogram<u64>>,
}

impl Timing {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            all: histogram()?,
            by_method: BTreeMap::new(),
        })
    }

    fn record(&mut self, method: &'static str, us: u64) {
        // Saturates at the histogram's top rather than losing the sample.
        self.all.saturating_record(us.max(1));
        let all = &self.all;
        self.by_method
            .entry(method)
            .or_insert_with(|| Histogram::new_from(all))
            .saturating_record(us.max(1));
    }

    /// Adds `other`'s samples to these and empties it.
    fn absorb(&mut self, other: &mut Self) -> anyhow::Result<()> {
        self.all.add(&other.all)?;
        for (m, h) in &other.by_method {
            let all = &self.all;
            self.by_method
                .entry(m)
                .or_insert_with(|| Histogram::new_from(all))
                .add(h)?;
        }
        other.all.reset();
        other.by_method.clear();
        Ok(())
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

/// Codes that mean the daemon did its job: the answer, and the refusal of a write by the
/// operator who does not hold the lease at that moment (the load makes those on purpose).
fn expected(code: &str) -> bool {
    matches!(code, "OK" | "FAILED_PRECONDITION")
}

/// Sends one RPC and records its outcome (and with `timed`, its latency); `None` unless OK.
async fn call<T>(
    stats: &Stats,
    timed: Option<&Mutex<Timing>>,
    what: &'static str,
    rpc: impl Future<Output = microscoped::client::Result<T>>,
) -> Option<T> {
    stats.sent.fetch_add(1, Relaxed);
    let start = Instant::now();
    let outcome = tokio::time::timeout(RPC_TIMEOUT, rpc).await;
    let us = start.elapsed().as_micros() as u64;
    match outcome {
        Err(_) => {
            stats.unanswered.fetch_add(1, Relaxed);
            stats.fail(format!("{what}: no answer in {RPC_TIMEOUT:?}"));
            None
        }
        Ok(r) => {
            if let Some(t) = timed {
                t.lock().unwrap_or_else(|e| e.into_inner()).record(what, us);
            }
            match r {
                Ok(v) => {
                    stats.code("OK");
                    Some(v)
                }
                Err(Error::Refused { code, message }) => {
                    stats.code(code);
                    if !expected(code) {
                        stats.fail(format!("{what}: {code}: {message}"));
                    }
                    None
                }
                Err(e) => {
                    stats.unanswered.fetch_add(1, Relaxed);
                    stats.fail(format!("{what}: {e}"));
                    None
                }
            }
        }
    }
}

/// A session with the soak's daemon as the user of `token`.
async fn connect(addr: std::net::SocketAddr, token: &str) -> anyhow::Result<Session> {
    let target = Target {
        addr: addr.to_string(),
        token: Some(token.to_owned()),
        ..Target::default()
    };
    Ok(Session::connect(&target).await?)
}

/// A small plan for the unary mix's ValidatePlan.
fn small_plan() -> Plan {
    Plan {
        text: "time_plan: {interval: 0, loops: 10}\n".into(),
        json: false,
        name: String::new(),
        camera: SMALL.into(),
    }
}

/// One call of the unary mix: reads of every kind, a property write (refused unless this
/// user holds the lease), and a plan check.
async fn unary_op(s: &mut Session, stats: &Stats, timed: &Mutex<Timing>, n: u64) {
    let t = Some(timed);
    match n % 8 {
        0 => {
            let _ = call(stats, t, "GetInstrument", s.instrument()).await;
        }
        1 => {
            let v = s.get_property(CAMERA, "exposure_ms");
            let _ = call(stats, t, "GetProperty", v).await;
        }
        2 => {
            let _ = call(stats, t, "GetPosition", s.position("Z")).await;
        }
        3 => {
            let _ = call(stats, t, "GetLease", s.lease()).await;
        }
        4 => {
            let _ = call(stats, t, "GetLiveStatus", s.live_status(CAMERA)).await;
        }
        5 => {
            let power = Value::Float(10.0 + (n % 5) as f64);
            let w = s.set_property("Laser488", "power_mw", power);
            let _ = call(stats, t, "SetProperty", w).await;
        }
        6 => {
            let plan = small_plan();
            let _ = call(stats, t, "ValidatePlan", s.validate_plan(&plan)).await;
        }
        _ => {
            let _ = call(stats, t, "ListProperties", s.properties("Z")).await;
        }
    }
}

/// Runs the unary mix from `sessions` (one client each, concurrently) until `stop`; latencies
/// go to `timed`.
async fn unary_clients(
    sessions: Vec<Session>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    pause: Duration,
    timed: Arc<Mutex<Timing>>,
) {
    let mut tasks = Vec::new();
    for (i, mut s) in sessions.into_iter().enumerate() {
        let (stats, stop, timed) = (stats.clone(), stop.clone(), timed.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = i as u64;
            while !stop.load(Relaxed) {
                unary_op(&mut s, &stats, &timed, n).await;
                n += 1;
                tokio::time::sleep(pause).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// A runtime of its own for the timed unary clients, as a separate program has: a viewer
/// decoding a frame or a dataset being checked on the other clients' runtime never holds a
/// timed call. Shut down (not dropped, which an async context forbids) when it goes.
struct UnaryRuntime(Option<tokio::runtime::Runtime>);

impl UnaryRuntime {
    fn new() -> anyhow::Result<Self> {
        Ok(Self(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("soak-unary")
                .on_thread_start(|| {
                    microscoped_core::priority::leave_control_path();
                })
                .enable_all()
                .build()?,
        )))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("shut down only when dropped")
            .handle()
    }
}

impl Drop for UnaryRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Unary latency with nothing else running: the load's own clients and mix for `window`.
async fn idle_latency(
    rt: &tokio::runtime::Handle,
    sessions: &[Session],
    stats: &Arc<Stats>,
    pause: Duration,
    window: Duration,
) -> anyhow::Result<Timing> {
    let timed = Arc::new(Mutex::new(Timing::new()?));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = rt.spawn(unary_clients(
        sessions.to_vec(),
        stats.clone(),
        stop.clone(),
        pause,
        timed.clone(),
    ));
    tokio::time::sleep(window).await;
    stop.store(true, Relaxed);
    clients.await?;
    let mut t = Timing::new()?;
    t.absorb(&mut timed.lock().unwrap_or_else(|e| e.into_inner()))?;
    Ok(t)
}

/// A live viewer (an observer: it watches what runs and starts nothing), reopening its view
/// whenever the daemon ends it, until `stop`.
async fn viewer(mut s: Session, fps: f64, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    while !stop.load(Relaxed) {
        stats.live_opens.fetch_add(1, Relaxed);
        let Some(mut stream) = call(&stats, None, "LiveView", s.live_view(CAMERA, fps)).await
        else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        while !stop.load(Relaxed) {
            match tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
                Ok(Ok(Some(_))) => {
                    stats.live_frames.fetch_add(1, Relaxed);
                }
                Ok(Ok(None)) => break,
                Ok(Err(Error::Refused { code, message })) => {
                    if !expected(code) {
                        stats.fail(format!("LiveView stream: {code}: {message}"));
                    }
                    break;
                }
                Ok(Err(e)) => {
                    stats.fail(format!("LiveView stream: {e}"));
                    break;
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operators' sessions and which of them holds the lease.
struct Operators {
    /// soak_a's and soak_b's.
    sessions: [Session; 2],
    /// The index of the one holding the lease now.
    holder: AtomicUsize,
}

/// Passes the lease between the two operators every `every` until `stop`, then releases it.
async fn lease_swapper(
    ops: Arc<Operators>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    while !stop.load(Relaxed) {
        tokio::time::sleep(every).await;
        let from = ops.holder.load(Relaxed);
        let to = 1 - from;
        let mut giver = ops.sessions[from].clone();
        let mut taker = ops.sessions[to].clone();
        call(&stats, None, "ReleaseLease", giver.release_lease()).await;
        if call(&stats, None, "AcquireLease", taker.take_lease(60))
            .await
            .is_some()
        {
            ops.holder.store(to, Relaxed);
            stats.handovers.fetch_add(1, Relaxed);
        } else {
            stats.fail("AcquireLease refused right after the other user released it".into());
            // Take it back so that acquisitions can go on.
            call(&stats, None, "AcquireLease", giver.take_lease(60)).await;
        }
    }
    let mut holder = ops.sessions[ops.holder.load(Relaxed)].clone();
    call(&stats, None, "ReleaseLease", holder.release_lease()).await;
}

/// Starts an acquisition as whichever operator holds the lease (the lease may pass between
/// two attempts); returns its status and the starter's session.
async fn start_as_holder<F, Fut>(
    ops: &Operators,
    stats: &Stats,
    what: &'static str,
    start: F,
) -> Option<(AcquisitionStatus, Session)>
where
    F: Fn(Session) -> Fut,
    Fut: Future<Output = microscoped::client::Result<AcquisitionStatus>>,
{
    for _ in 0..50 {
        let s = ops.sessions[ops.holder.load(Relaxed)].clone();
        if let Some(st) = call(stats, None, what, start(s.clone())).await {
            return Some((st, s));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stats.fail(format!("{what}: refused 50 times in a row"));
    None
}

/// Follows acquisition `id` until it ends (stopping it once `deadline` is past, when given),
/// keeping its counts in `stats.running`; returns its final status.
async fn follow(
    s: &mut Session,
    stats: &Stats,
    id: u64,
    deadline: Option<Instant>,
) -> Option<AcquisitionStatus> {
    let mut stopped = false;
    loop {
        let st = call(stats, None, "GetAcquisition", s.acquisition(id)).await?;
        if st.ended() {
            // Under the same lock as the running counts, so no report misses them.
            let mut running = stats.running.lock().unwrap_or_else(|e| e.into_inner());
            running.remove(&id);
            for (total, n) in stats.done.iter().zip([st.received, st.written, st.dropped]) {
                total.fetch_add(n, Relaxed);
            }
            return Some(st);
        }
        stats
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, [st.received, st.written, st.dropped]);
        if !stopped && deadline.is_some_and(|d| Instant::now() > d) {
            stopped = true;
            call(stats, None, "StopAcquisition", s.stop_acquisition(id)).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks an ended acquisition (finished, or stopped when `may_stop`; every frame accounted
/// for; its last plane readable over gRPC at the right size), adds it to the totals and deletes
/// its dataset.
async fn check_and_delete(
    s: &mut Session,
    stats: &Stats,
    st: &AcquisitionStatus,
    root: &Path,
    frame_bytes: usize,
    may_stop: bool,
) {
    let ok_state =
        st.state == Some(RunState::Finished) || (may_stop && st.state == Some(RunState::Stopped));
    if !ok_state {
        stats.fail(format!(
            "acquisition {} ({}) ended {:?}: {}",
            st.id, st.name, st.state, st.error
        ));
    }
    if st.received != st.written + st.dropped {
        stats.fail(format!(
            "acquisition {} ({}): received {} != written {} + dropped {}",
            st.id, st.name, st.received, st.written, st.dropped
        ));
    }
    if st.written > 0 {
        let last = PlaneAddress::Index(st.written - 1);
        if let Some(img) = call(stats, None, "ReadPlane", s.read_plane(st.id, 0, last)).await {
            if img.data.len() != frame_bytes {
                stats.fail(format!(
                    "acquisition {}: its last plane read back holds {} bytes, not {frame_bytes}",
                    st.id,
                    img.data.len()
                ));
            }
        }
    }
    stats.acquisitions.fetch_add(1, Relaxed);
    // A sequence's path is its file, a plan's its folder: the dataset is the folder either way.
    let path = PathBuf::from(&st.path);
    let folder = if path.is_dir() {
        Some(path.as_path())
    } else {
        path.parent()
    };
    match folder {
        Some(f) if f.starts_with(root) && f != root => {
            // Deleting gigabytes takes the file system a good part of a second: off the
            // clients' runtime, whose workers would otherwise hold the unary clients' calls
            // that long, and at the frame path's priority (it is bulk work on frames, the
            // soak's own housekeeping), so it does not count against the daemon's latency.
            let folder = f.to_owned();
            let removed = microscoped_core::priority::on_frame_path("delete".into(), move || {
                std::fs::remove_dir_all(&folder)
            })
            .await
            .and_then(|r| r);
            if let Err(e) = removed {
                stats.fail(format!("cannot delete dataset {}: {e}", f.display()));
            }
        }
        _ => stats.fail(format!(
            "acquisition {}: its path {} is not in the data root {}",
            st.id,
            path.display(),
            root.display()
        )),
    }
}

/// The process's resident memory (MiB), open descriptors and threads.
fn process_sample() -> (f64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (field("VmRSS:") as f64 / 1024.0, fds, field("Threads:"))
}

/// First, last, smallest and largest of one figure over the run.
#[derive(Clone, Copy)]
struct Range {
    /// At the start.
    first: f64,
    /// At the latest report.
    last: f64,
    /// Smallest seen.
    min: f64,
    /// Largest seen.
    max: f64,
}

impl Range {
    fn new(x: f64) -> Self {
        Self {
            first: x,
            last: x,
            min: x,
            max: x,
        }
    }

    fn add(&mut self, x: f64) {
        self.last = x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "first {:.1}, last {:.1}, min {:.1}, max {:.1}",
            self.first, self.last, self.min, self.max
        )
    }
}

/// The figures over time, for the summary.
struct Track {
    /// Resident memory, MiB.
    rss: Range,
    /// Open file descriptors.
    fds: Range,
    /// Threads.
    threads: Range,
}

const CSV_HEADER: &str = "elapsed_s,rss_mib,fds,threads,acquisitions,frames_received,frames_written,frames_dropped,rpc_sent,rpc_answered,rpc_unanswered,rpc_codes,unary_calls,unary_p50_ms,unary_p99_ms,live_frames,lease_handovers";

/// One report: a line on stdout and a CSV row.
fn report(
    stats: &Stats,
    start: Instant,
    csv: &mut Option<std::fs::File>,
    track: &mut Track,
) -> anyhow::Result<()> {
    let (rss, fds, threads) = process_sample();
    track.rss.add(rss);
    track.fds.add(fds as f64);
    track.threads.add(threads as f64);
    let w = {
        let mut w = stats.window.lock().unwrap_or_else(|e| e.into_inner());
        let copy = w.clone();
        w.reset();
        copy
    };
    let [r, wr, d] = stats.frames();
    let codes = stats
        .codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(c, n)| format!("{c}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let elapsed = start.elapsed().as_secs();
    let (sent, answered, unanswered) = (
        stats.sent.load(Relaxed),
        stats.answered.load(Relaxed),
        stats.unanswered.load(Relaxed),
    );
    let (p50, p99) = (ms(w.value_at_quantile(0.5)), ms(w.value_at_quantile(0.99)));
    println!(
        "[{:>3}:{:02}] rss {rss:.1} MiB, fds {fds}, threads {threads}; acquisitions {}, frames received {r} written {wr} dropped {d}; rpc sent {sent} answered {answered} unanswered {unanswered} ({codes}); unary p50 {p50:.2} ms p99 {p99:.2} ms ({} calls); live frames {}; lease handovers {}",
        elapsed / 60,
        elapsed % 60,
        stats.acquisitions.load(Relaxed),
        w.len(),
        stats.live_frames.load(Relaxed),
        stats.handovers.load(Relaxed),
    );
    if let Some(f) = csv {
        writeln!(
            f,
            "{elapsed},{rss:.1},{fds},{threads},{},{r},{wr},{d},{sent},{answered},{unanswered},{},{},{p50:.3},{p99:.3},{},{}",
            stats.acquisitions.load(Relaxed),
            codes.replace(' ', ";"),
            w.len(),
            stats.live_frames.load(Relaxed),
            stats.handovers.load(Relaxed),
        )?;
        f.flush()?;
    }
    Ok(())
}

/// Runs the soak and prints its summary; an error when anything was lost or failed.
pub(super) async fn run(o: SoakOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.dir).with_context(|| format!("cannot use {}", o.dir.display()))?;
    let root = o.dir.canonicalize()?.join("soak-datasets");
    if root.exists() && std::fs::read_dir(&root)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty: the soak deletes every dataset it makes there; give it an empty \
             --dir or remove what is in it",
            root.display()
        );
    }
    std::fs::create_dir_all(&root)?;
    let cleanup = root.clone();
    let users = Users::new()?;
    let config = Config::parse(&soak_config(&o, &root, &users), "<soak config>")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_daemon, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(microscoped::run(config, listener, async {
        let _ = stopped.await;
    }));
    let mut csv = match &o.csv {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .with_context(|| format!("cannot write {}", p.display()))?;
            writeln!(f, "{CSV_HEADER}")?;
            Some(f)
        }
        None => None,
    };
    let frame_bytes = o.width as usize * o.height as usize * 2;
    println!(
        "microscoped bench --soak {}s: {}x{} u16 frames ({:.1} MiB), {} per acquisition ({:.2} GB), plans of {} events on a {SMALL_SIDE}x{SMALL_SIDE} camera, {} unary clients, {} live viewers at {} fps (0: flat out), the lease changing hands every {}s; datasets in {} (each deleted once checked)",
        o.duration.as_secs(),
        o.width,
        o.height,
        frame_bytes as f64 / f64::from(1 << 20),
        o.frames,
        frame_bytes as f64 * o.frames as f64 / 1e9,
        o.plan_events,
        o.clients,
        o.viewers,
        o.viewer_fps,
        o.lease_every.as_secs(),
        root.display()
    );
    // The clients' own runtime, on threads of their own: the daemon's runtime is this one.
    let clients = std::thread::spawn(move || -> anyhow::Result<()> {
        // The clients stand for other programs: none of the daemon's scheduling class.
        microscoped_core::priority::leave_control_path();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(load(o, addr, users, root, &mut csv))
    });
    let outcome = tokio::task::spawn_blocking(move || clients.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the soak's clients panicked"));
    let _ = stop_daemon.send(());
    daemon.await??;
    // Only the soak's own: it refused a data root that was not empty.
    let _ = std::fs::remove_dir_all(&cleanup);
    outcome?
}

/// The writer's rate (bytes/s) with the camera's frame period at `period_ms`: an acquisition run
/// until stopped, the rate taken between two readings of its count once it is under way
/// (start-up and the final fsync left out); the ring is full throughout when the camera is the
/// faster, and frames it cannot take are dropped (or lost in the camera) as they would be.
async fn calibrate(
    ops: &Operators,
    stats: &Stats,
    root: &Path,
    frame_bytes: usize,
    period_ms: f64,
) -> anyhow::Result<f64> {
    let mut lead = ops.sessions[ops.holder.load(Relaxed)].clone();
    let w = lead.set_property(CAMERA, "exposure_ms", Value::Float(period_ms));
    call(stats, None, "SetProperty", w).await;
    let (st, mut s) = start_as_holder(ops, stats, "StartSequence", |mut s| async move {
        s.start_sequence(Sequence {
            camera: CAMERA.into(),
            frames: 0,
            until_stopped: true,
            name: "soak-calibration".into(),
        })
        .await
    })
    .await
    .context("the calibration acquisition could not start")?;
    let mut reading = s.clone();
    let readings = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let first = (Instant::now(), reading.acquisition(st.id).await?.written);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let second = (Instant::now(), reading.acquisition(st.id).await?.written);
        anyhow::Ok((first, second))
    }
    .await;
    // Stopped whatever the readings gave: an acquisition run until stopped must not outlive
    // the calibration.
    call(stats, None, "StopAcquisition", s.stop_acquisition(st.id)).await;
    let ((t1, w1), (t2, w2)) = readings?;
    let end = follow(&mut s, stats, st.id, None)
        .await
        .context("lost the calibration acquisition")?;
    check_and_delete(&mut s, stats, &end, root, frame_bytes, true).await;
    if w2 <= w1 {
        anyhow::bail!("the writer wrote nothing in 3 s of calibration");
    }
    let rate = (w2 - w1) as f64 * frame_bytes as f64 / (t2 - t1).as_secs_f64();
    println!(
        "calibration, camera at {period_ms:.3} ms/frame: the writer took {:.2} GB/s (received {} written {} dropped {})",
        rate / 1e9,
        end.received,
        end.written,
        end.dropped
    );
    Ok(rate)
}

/// Everything the clients do, from the first idle measurement to the summary.
async fn load(
    o: SoakOptions,
    addr: std::net::SocketAddr,
    users: Users,
    root: PathBuf,
    csv: &mut Option<std::fs::File>,
) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::new()?);
    let start = Instant::now();
    let (rss, fds, threads) = process_sample();
    let mut track = Track {
        rss: Range::new(rss),
        fds: Range::new(fds as f64),
        threads: Range::new(threads as f64),
    };
    let ops = Arc::new(Operators {
        sessions: [
            connect(addr, &users.operators[0]).await?,
            connect(addr, &users.operators[1]).await?,
        ],
        holder: AtomicUsize::new(0),
    });
    let unary_rt = UnaryRuntime::new()?;
    let mut unary_sessions = Vec::new();
    for i in 0..o.clients {
        // Connected from their runtime, so their connections' I/O runs there.
        let token = users.operators[i % 2].clone();
        let session = unary_rt
            .handle()
            .spawn(async move { connect(addr, &token).await })
            .await??;
        unary_sessions.push(session);
    }

    // The reference: the same unary mix from the same clients, nothing else running.
    let idle_start = idle_latency(
        unary_rt.handle(),
        &unary_sessions,
        &stats,
        o.rpc_pause,
        o.idle,
    )
    .await?;
    println!(
        "idle unary latency (start): p50 {:.2} ms, p99 {:.2} ms over {} calls",
        ms(idle_start.all.value_at_quantile(0.5)),
        ms(idle_start.all.value_at_quantile(0.99)),
        idle_start.all.len()
    );

    let mut lead = ops.sessions[0].clone();
    if call(&stats, None, "AcquireLease", lead.take_lease(60))
        .await
        .is_none()
    {
        anyhow::bail!("soak_a could not take the lease on an idle daemon");
    }
    let frame_bytes = o.width as usize * o.height as usize * 2;
    let period_ms = match o.period_ms {
        Some(p) => p,
        None => {
            // The writer flat out, twice: first with the camera far faster than any disk, then
            // at 1.5x what the writer took, which leaves the writer the cores a camera spinning
            // flat out would take from it; the load runs the camera 10% faster than that.
            let first = calibrate(&ops, &stats, &root, frame_bytes, 0.05).await?;
            let second_ms = frame_bytes as f64 / (1.5 * first) * 1e3;
            let rate = calibrate(&ops, &stats, &root, frame_bytes, second_ms).await?;
            // A little faster than the writer: it is always busy, and some frames are dropped.
            (frame_bytes as f64 / (1.1 * rate) * 1e3).max(0.01)
        }
    };
    let w = lead.set_property(CAMERA, "exposure_ms", Value::Float(period_ms));
    if call(&stats, None, "SetProperty", w).await.is_none() {
        anyhow::bail!("cannot set the camera's frame period to {period_ms} ms");
    }
    println!(
        "camera frame period {period_ms:.3} ms ({:.2} GB/s offered)",
        frame_bytes as f64 / period_ms / 1e6
    );

    let stop = Arc::new(AtomicBool::new(false));
    let load_hist = Arc::new(Mutex::new(Timing::new()?));
    let mut tasks = Vec::new();
    {
        // The per-report window and the whole-load histogram both get every load sample:
        // the clients record into `load_hist`, and the reporter moves it into the window.
        tasks.push(unary_rt.handle().spawn(unary_clients(
            unary_sessions.clone(),
            stats.clone(),
            stop.clone(),
            o.rpc_pause,
            load_hist.clone(),
        )));
        for _ in 0..o.viewers {
            let v = connect(addr, &users.viewer).await?;
            tasks.push(tokio::spawn(viewer(
                v,
                o.viewer_fps,
                stats.clone(),
                stop.clone(),
            )));
        }
        tasks.push(tokio::spawn(lease_swapper(
            ops.clone(),
            stats.clone(),
            stop.clone(),
            o.lease_every,
        )));
    }
    let end = Instant::now() + o.duration;

    // Sequences on the large camera, back to back.
    let sequences = {
        let (ops, stats, root) = (ops.clone(), stats.clone(), root.clone());
        let frames = o.frames;
        tokio::spawn(async move {
            let mut k = 0u64;
            while Instant::now() < end {
                let name = format!("soak-seq-{k:06}");
                k += 1;
                let Some((st, mut s)) = start_as_holder(&ops, &stats, "StartSequence", |mut s| {
                    let name = name.clone();
                    async move {
                        s.start_sequence(Sequence {
                            camera: CAMERA.into(),
                            frames,
                            until_stopped: false,
                            name,
                        })
                        .await
                    }
                })
                .await
                else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                if let Some(done) = follow(&mut s, &stats, st.id, None).await {
                    check_and_delete(&mut s, &stats, &done, &root, frame_bytes, false).await;
                }
            }
        })
    };
    // Plans of `plan_events` on the small camera, back to back; the last is stopped at the end.
    let plans = {
        let (ops, stats, root) = (ops.clone(), stats.clone(), root.clone());
        let events = o.plan_events;
        tokio::spawn(async move {
            let mut k = 0u64;
            while events > 0 && Instant::now() < end {
                let plan = Plan {
                    text: format!("time_plan: {{interval: 0, loops: {events}}}\n"),
                    json: false,
                    name: format!("soak-plan-{k:04}"),
                    camera: SMALL.into(),
                };
                k += 1;
                let Some((st, mut s)) = start_as_holder(&ops, &stats, "StartPlan", |mut s| {
                    let plan = plan.clone();
                    async move { s.start_plan(&plan).await }
                })
                .await
                else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                let small = SMALL_SIDE as usize * SMALL_SIDE as usize * 2;
                if let Some(done) = follow(&mut s, &stats, st.id, Some(end)).await {
                    if let Some(p) = &done.plan {
                        println!(
                            "plan {} ended {:?}: {} of {events} events, received {} written {} dropped {} in {:.0} s (late events {})",
                            done.name,
                            done.state,
                            p.events_done,
                            done.received,
                            done.written,
                            done.dropped,
                            done.elapsed_s,
                            p.late_events
                        );
                    }
                    check_and_delete(&mut s, &stats, &done, &root, small, true).await;
                }
            }
        })
    };

    // Reports until both acquisition loops are done.
    let mut tick = tokio::time::interval(o.report_every);
    tick.tick().await;
    let acquisitions = async {
        let _ = sequences.await;
        let _ = plans.await;
    };
    tokio::pin!(acquisitions);
    loop {
        tokio::select! {
            _ = &mut acquisitions => break,
            _ = tick.tick() => {
                collect(&stats, &load_hist)?;
                report(&stats, start, csv, &mut track)?;
            }
        }
    }
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    collect(&stats, &load_hist)?;
    report(&stats, start, csv, &mut track)?;

    let idle_end = idle_latency(
        unary_rt.handle(),
        &unary_sessions,
        &stats,
        o.rpc_pause,
        o.idle,
    )
    .await?;
    // Whether memory, descriptors and threads came back once the load ended.
    let (rss, fds, threads) = process_sample();
    println!(
        "after the load, idle again: rss {rss:.1} MiB, fds {fds}, threads {threads} (at the start: rss {:.1} MiB, fds {}, threads {})",
        track.rss.first, track.fds.first, track.threads.first
    );
    let load = std::mem::replace(
        &mut *stats.load.lock().unwrap_or_else(|e| e.into_inner()),
        Timing::new()?,
    );
    summary(&stats, &track, &idle_start, &idle_end, &load, start)
}

/// Moves the load clients' latencies since the last call into the report's window and the
/// whole load's.
fn collect(stats: &Stats, load: &Mutex<Timing>) -> anyhow::Result<()> {
    let mut l = load.lock().unwrap_or_else(|e| e.into_inner());
    stats
        .window
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .add(&l.all)?;
    stats
        .load
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .absorb(&mut l)
}

/// Prints the summary; an error when anything was lost or failed.
fn summary(
    stats: &Stats,
    track: &Track,
    idle_start: &Timing,
    idle_end: &Timing,
    load: &Timing,
    start: Instant,
) -> anyhow::Result<()> {
    let p = |h: &Histogram<u64>, q| ms(h.value_at_quantile(q));
    let idle_start_by = &idle_start.by_method;
    let (idle_start, idle_end, by_method, load) =
        (&idle_start.all, &idle_end.all, &load.by_method, &load.all);
    let [r, w, d] = stats.frames();
    println!(
        "soak summary after {:.0} min:",
        start.elapsed().as_secs_f64() / 60.0
    );
    println!("  RSS MiB: {}", track.rss);
    println!("  open fds: {}", track.fds);
    println!("  threads: {}", track.threads);
    println!(
        "  acquisitions {}: frames received {r} = written {w} + dropped {d}{}",
        stats.acquisitions.load(Relaxed),
        if r == w + d {
            ""
        } else {
            "  <-- NOT ACCOUNTED"
        }
    );
    println!(
        "  rpc sent {} answered {} unanswered {} by code: {:?}",
        stats.sent.load(Relaxed),
        stats.answered.load(Relaxed),
        stats.unanswered.load(Relaxed),
        stats.codes.lock().unwrap_or_else(|e| e.into_inner())
    );
    println!(
        "  live views opened {}, live frames {}; lease handovers {}",
        stats.live_opens.load(Relaxed),
        stats.live_frames.load(Relaxed),
        stats.handovers.load(Relaxed)
    );
    println!(
        "  unary latency idle at start: p50 {:.2} ms p99 {:.2} ms ({} calls); idle at end: p50 {:.2} ms p99 {:.2} ms ({} calls)",
        p(idle_start, 0.5),
        p(idle_start, 0.99),
        idle_start.len(),
        p(idle_end, 0.5),
        p(idle_end, 0.99),
        idle_end.len()
    );
    let ratio = p(load, 0.99) / p(idle_start, 0.99).max(p(idle_end, 0.99));
    println!(
        "  unary latency under load: p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({} calls); p99 load/idle x{ratio:.2} (against the higher idle p99; target <= 2)",
        p(load, 0.5),
        p(load, 0.99),
        ms(load.max()),
        load.len()
    );
    println!("  by method, p50 / p99 ms: idle at start, under load");
    for (m, h) in by_method {
        let idle = idle_start_by.get(m);
        println!(
            "    {m:<16} {} / {}, {:.2} / {:.2} ({} calls under load)",
            idle.map_or("-".into(), |i| format!("{:.2}", p(i, 0.5))),
            idle.map_or("-".into(), |i| format!("{:.2}", p(i, 0.99))),
            p(h, 0.5),
            p(h, 0.99),
            h.len()
        );
    }
    let failures = stats.failures.lock().unwrap_or_else(|e| e.into_inner());
    if r != w + d || stats.unanswered.load(Relaxed) > 0 || !failures.is_empty() {
        anyhow::bail!(
            "soak FAILED: {} unanswered RPC(s), {} unaccounted frame(s), failures: {}",
            stats.unanswered.load(Relaxed),
            r.abs_diff(w + d),
            failures.join("; ")
        );
    }
    println!("soak PASSED: every RPC answered, every frame accounted for");
    Ok(())
}
