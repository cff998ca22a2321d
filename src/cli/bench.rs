//! `microscoped bench`: measures the frame path against the disk it writes to.
//!
//! - **Writer vs plain write**: the OME-TIFF writer and plain sequential `write` calls put the
//!   same bytes on the same disk, alternating (disks here vary run to run), both ending with an
//!   fsync so the page cache flatters neither. Their ratio is the writer's overhead.
//! - **Pipeline**: the real daemon in-process on a loopback port, a simulated 2048x2048 16-bit
//!   camera (the `ramp` test pattern: one memory copy per frame, like a camera's DMA), frames
//!   through the ring into OME-TIFF, driven over gRPC. Once with the camera faster than the
//!   disk (the writer's speed and the frames dropped), once at half the writer's speed (where
//!   nothing may be dropped) while a separate client measures unary RPC latency, and once more
//!   with a live-view client reading as fast as it can.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use microscoped::acquire::RunState;
use microscoped::client::{AcquisitionStatus, Sequence, Session, Target};
use microscoped::config::Config;
use microscoped::storage::{
    ChannelMeta, Counters, DatasetMeta, InstrumentMeta, OmeTiffWriter, PlaneMeta,
};
use microscoped_driver_api::{PixelType, Value};
use tokio::net::TcpListener;

mod soak;

/// `microscoped bench`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Folder on the disk to measure (made and cleaned up).
    #[arg(long, default_value = "bench-data")]
    dir: PathBuf,
    /// Frames per run (2048x2048 u16 frames are 8 MiB each); with --soak, per acquisition
    /// [default: 300; soak: 2000].
    #[arg(long)]
    frames: Option<u64>,
    /// Frame width [default: 2048; soak: 1024].
    #[arg(long)]
    width: Option<u32>,
    /// Frame height [default: 2048; soak: 1024].
    #[arg(long)]
    height: Option<u32>,
    /// Rounds of the disk benchmark, each contender once per round in an order that changes
    /// round to round (ABBA); the pipeline runs min(rounds, 3) times.
    #[arg(long, default_value_t = 4)]
    runs: u32,
    /// A Python with tifffile and numpy, for the reference figure (skipped if it has none).
    #[arg(
        long,
        default_value = "python3",
        env = "MICROSCOPED_BENCH_PYTHON",
        hide_env_values = true
    )]
    python: PathBuf,
    /// Measure a GenICam camera instead: aravis's fake GigE Vision camera over loopback
    /// (needs a build with the genicam feature).
    #[arg(long)]
    gige: bool,
    /// With --gige: the camera's frame rate.
    #[arg(long, default_value_t = 200.0)]
    gige_rate: f64,
    /// Soak and load instead, for this long ("90s", "65m", "2h"): acquisitions back to back,
    /// plans of 100,000 events, unary clients, live viewers and the lease changing hands; a
    /// report line every minute; fails if any RPC or frame went missing.
    #[arg(long, value_parser = soak::parse_duration, value_name = "DURATION")]
    soak: Option<Duration>,
    /// With --soak: also write the report lines as CSV rows to this file.
    #[arg(long, requires = "soak")]
    csv: Option<PathBuf>,
    /// With --soak: unary clients.
    #[arg(long, default_value_t = 8, requires = "soak")]
    clients: usize,
    /// With --soak: live viewers.
    #[arg(long, default_value_t = 2, requires = "soak")]
    viewers: usize,
    /// With --soak: the frame rate each live viewer asks for (a display's); 0 takes every
    /// frame it can read.
    #[arg(long, default_value_t = 30.0, requires = "soak")]
    viewer_fps: f64,
    /// With --soak: events per plan (a time-lapse with no interval on a 64x64 camera); 0 runs
    /// no plans.
    #[arg(long, default_value_t = 100_000, requires = "soak")]
    plan_events: u64,
    /// With --soak: the large camera's frame period in ms [default: 10% faster than the
    /// writer, as two calibration acquisitions measure it].
    #[arg(long, requires = "soak")]
    period_ms: Option<f64>,
    /// With --soak: each unary client's pause between two calls, in ms.
    #[arg(long, default_value_t = 10, requires = "soak")]
    rpc_pause_ms: u64,
    /// With --soak: how often the lease passes to the other user.
    #[arg(long, value_parser = soak::parse_duration, default_value = "10s", requires = "soak")]
    lease_every: Duration,
    /// With --soak: how long unary latency is measured with nothing else running, at the
    /// start and at the end.
    #[arg(long, value_parser = soak::parse_duration, default_value = "15s", requires = "soak")]
    idle: Duration,
    /// With --soak: how often a report line is printed.
    #[arg(long, value_parser = soak::parse_duration, default_value = "60s", requires = "soak")]
    report_every: Duration,
}

/// Runs what the flags ask for: the disk and pipeline benchmark, or with `--gige` the GigE
/// Vision one.
pub async fn run(a: Args) -> anyhow::Result<()> {
    if let Some(duration) = a.soak {
        return soak::run(soak::SoakOptions {
            dir: a.dir,
            duration,
            csv: a.csv,
            width: a.width.unwrap_or(1024),
            height: a.height.unwrap_or(1024),
            frames: a.frames.unwrap_or(2000).max(1),
            plan_events: a.plan_events,
            clients: a.clients,
            viewers: a.viewers,
            viewer_fps: a.viewer_fps,
            period_ms: a.period_ms,
            rpc_pause: Duration::from_millis(a.rpc_pause_ms),
            lease_every: a.lease_every,
            report_every: a.report_every,
            idle: a.idle,
        })
        .await;
    }
    if a.gige {
        return gige(a.dir, a.frames.unwrap_or(400), a.gige_rate).await;
    }
    disk_and_pipeline(BenchOptions {
        dir: a.dir,
        frames: a.frames.unwrap_or(300),
        width: a.width.unwrap_or(2048),
        height: a.height.unwrap_or(2048),
        runs: a.runs.max(1),
        python: a.python,
    })
    .await
}

#[cfg(not(feature = "genicam"))]
async fn gige(_: PathBuf, _: u64, _: f64) -> anyhow::Result<()> {
    anyhow::bail!(
        "this microscoped was built without GenICam support: build it with \
         `cargo build --release --features genicam` (needs libaravis-dev)"
    )
}

/// What to measure.
#[derive(Debug, Clone)]
struct BenchOptions {
    /// Folder on the disk to measure; files are made and removed there.
    pub dir: PathBuf,
    /// Frames per run.
    pub frames: u64,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Rounds of the disk benchmark (each contender once per round).
    pub runs: u32,
    /// The Python with tifffile for the reference figure.
    pub python: PathBuf,
}

fn bench_config(o: &BenchOptions) -> String {
    format!(
        r#"
[instrument]
name = "bench"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{root}"
ring_mb = 1024
min_slots = 16
overflow = "drop"

{camera}
[devices.Z]
driver = "sim.stage"
"#,
        root = o.dir.join("datasets").display(),
        camera = ramp_camera("Camera", o.width, o.height),
    )
}

/// The benchmark's camera table: 16-bit `ramp` frames, one copy each, on the wall clock (so
/// the copy costs the daemon what a real camera's DMA costs the host), its frame period set
/// through `exposure_ms` down to 0.01 ms. The disk benchmark and the soak both use it.
pub(super) fn ramp_camera(name: &str, width: u32, height: u32) -> String {
    format!(
        r#"[devices.{name}]
driver = "sim.camera"
width = {width}
height = {height}
bit_depth = 16
exposure_ms = 10.0
min_exposure_ms = 0.01
readout_ms = 0.01
pattern = "ramp"
wall_clock = true
"#
    )
}

fn gbs(bytes: f64, secs: f64) -> f64 {
    bytes / secs / 1e9
}

/// Waits until everything written to `dir`'s file system so far is on disk (`syncfs`): the
/// previous contender's writeback and the freeing of its deleted file are then not charged to
/// the next one, whatever the order.
fn settle_disk(dir: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let d = std::fs::File::open(dir).with_context(|| format!("open {}", dir.display()))?;
    // SAFETY: `d` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("syncfs");
    }
    Ok(())
}

/// Plain sequential writes of `frames` frames, then fsync; returns GB/s.
fn plain_write(path: &Path, frame: &[u8], frames: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut f =
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    for _ in 0..frames {
        f.write_all(frame)?;
    }
    f.sync_all()?;
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(path)?;
    Ok(gbs(frame.len() as f64 * frames as f64, secs))
}

/// The OME-TIFF writer putting the same frames on disk, finish (and its fsync) included.
fn writer_write(path: &Path, o: &BenchOptions, frame: &[u8]) -> anyhow::Result<f64> {
    let meta = DatasetMeta {
        name: "bench".into(),
        width: o.width,
        height: o.height,
        pixel_type: PixelType::U16,
        significant_bits: 16,
        size_t: o.frames as u32,
        size_c: 1,
        size_z: 1,
        dimension_order: "XYCZT".into(),
        physical_size_um: None,
        channels: vec![ChannelMeta::named("Camera")],
        physical_size_z_um: None,
        stage_label: None,
        instrument: InstrumentMeta::default(),
        acquisition_date: SystemTime::now(),
    };
    let start = Instant::now();
    let mut w = OmeTiffWriter::create(path, meta)?;
    for t in 0..o.frames {
        let plane = PlaneMeta {
            the_t: t as u32,
            the_c: 0,
            the_z: 0,
            delta_t_s: 0.0,
            exposure_ms: 1.0,
            position_x_um: None,
            position_y_um: None,
            position_z_um: None,
            light_mw: Default::default(),
        };
        w.write_plane(frame, &plane)?;
    }
    let done = w.finish(Counters {
        received: o.frames,
        written: o.frames,
        dropped: 0,
    })?;
    let secs = start.elapsed().as_secs_f64();
    std::fs::remove_file(&done.path)?;
    Ok(gbs(frame.len() as f64 * o.frames as f64, secs))
}

/// One way of putting the frames on disk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Contender {
    /// Sequential `write` calls of the frames, nothing else.
    Plain,
    /// The daemon's OME-TIFF writer.
    Writer,
    /// Python's tifffile writing an OME-TIFF of the same frames (the reference).
    Tifffile,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain write",
            Self::Writer => "OME-TIFF writer",
            Self::Tifffile => "tifffile",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Writer => "writer",
            Self::Tifffile => "tifffile",
        }
    }
}

/// The order of the contenders in round `round`: ABBA for two; for three, the six
/// permutations in turn, so that over six rounds each runs first, second and last twice.
fn round_order(n: usize, round: usize) -> Vec<usize> {
    const THREE: [[usize; 3]; 6] = [
        [0, 1, 2],
        [2, 1, 0],
        [1, 0, 2],
        [2, 0, 1],
        [0, 2, 1],
        [1, 2, 0],
    ];
    match n {
        3 => THREE[round % 6].to_vec(),
        _ if round.is_multiple_of(2) => (0..n).collect(),
        _ => (0..n).rev().collect(),
    }
}

/// "min a / median b / max c" of a figure's values.
fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("min {min:.2} / median {:.2} / max {max:.2}", median(v))
}

/// Python's tifffile, run as a child process that times its own write (its start-up is not
/// counted) of the same ramp frames, fsync included.
struct Tifffile {
    /// The interpreter that has tifffile and numpy.
    python: PathBuf,
    /// tifffile's version, for the report.
    version: String,
}

/// The child's program: arguments path, width, height, frames; prints GB/s of pixel data.
const TIFFFILE_SCRIPT: &str = r#"
import os, sys, time
import numpy, tifffile
path, w, h, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
frame = (numpy.arange(w * h, dtype=numpy.uint32) & 0xFFFF).astype("<u2").reshape(h, w)
frame.sum()
start = time.perf_counter()
with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
    tw.write((frame for _ in range(n)), shape=(n, h, w), dtype="<u2",
             photometric="minisblack", metadata={"axes": "TYX"})
fd = os.open(path, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
secs = time.perf_counter() - start
os.remove(path)
print(n * w * h * 2 / secs / 1e9)
"#;

impl Tifffile {
    /// The interpreter if it can import tifffile and numpy, or why not.
    fn probe(python: &Path) -> Result<Self, String> {
        let out = std::process::Command::new(python)
            .args(["-c", "import numpy, tifffile; print(tifffile.__version__)"])
            .output()
            .map_err(|e| format!("cannot run {}: {e} (--python)", python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} cannot import tifffile and numpy (--python): {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self {
            python: python.to_path_buf(),
            version: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        })
    }

    /// tifffile writing `o.frames` ramp frames to `path`; returns GB/s.
    fn write(&self, path: &Path, o: &BenchOptions) -> anyhow::Result<f64> {
        let out = std::process::Command::new(&self.python)
            .arg("-c")
            .arg(TIFFFILE_SCRIPT)
            .arg(path)
            .args([o.width, o.height].map(|x| x.to_string()))
            .arg(o.frames.to_string())
            .output()
            .with_context(|| format!("cannot run {}", self.python.display()))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(path);
            anyhow::bail!(
                "tifffile failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .with_context(|| format!("tifffile's child printed {text:?}, not GB/s"))
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n.is_multiple_of(2) && n > 0 {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    } else {
        v[n / 2]
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A client on its own thread and runtime, so its timings are not those of the daemon's
/// scheduler; returns what `f` returns.
fn on_own_thread<T: Send + 'static, F>(
    f: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<anyhow::Result<T>>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    std::thread::spawn(move || {
        // A client stands for another program: none of the daemon's scheduling class.
        microscoped_core::priority::leave_control_path();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(f())
    })
}

/// A session with the bench's own daemon (plain TCP, no token: it allows anonymous loopback).
async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Session> {
    let target = Target {
        addr: addr.to_string(),
        ..Target::default()
    };
    Ok(Session::connect(&target).await?)
}

/// The daemon running in this process on a loopback port, as the benchmark drives it.
struct InProcess {
    /// Where it listens.
    addr: std::net::SocketAddr,
    /// A session with it.
    session: Session,
    /// Completing this starts its orderly shutdown.
    stop: tokio::sync::oneshot::Sender<()>,
    /// The daemon itself.
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    async fn start(config_text: &str) -> anyhow::Result<Self> {
        let config = Config::parse(config_text, "<bench config>")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(microscoped::run(config, listener, async {
            let _ = stopped.await;
        }));
        let session = connect(addr).await?;
        Ok(Self {
            addr,
            session,
            stop,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Times GetPosition calls from a client on its own thread until `stop` is set; returns the
/// sorted latencies.
fn latency_client(
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<Vec<Duration>>> {
    on_own_thread(move || async move {
        let mut c = connect(addr).await?;
        let mut samples = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            c.position("Z").await?;
            samples.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.sort();
        Ok(samples)
    })
}

fn latency_line(samples: &[Duration]) -> String {
    format!(
        "p50 {:.3} ms, p99 {:.3} ms over {} calls",
        percentile(samples, 0.5).as_secs_f64() * 1e3,
        percentile(samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    )
}

/// Sets the camera's frame period (the ramp pattern ignores exposure otherwise).
async fn set_period(control: &mut Session, period_ms: f64) -> anyhow::Result<()> {
    control
        .set_property("Camera", "exposure_ms", Value::Float(period_ms))
        .await?;
    Ok(())
}

/// Where a sequence's time went, as its client saw it (polling every 20 ms).
#[derive(Debug, Clone, Copy, Default)]
struct Phases {
    /// From StartSequence to the first frame in the file: the ring allocated, the file made,
    /// the camera started.
    startup_s: f64,
    /// From the first frame in the file to the last.
    frames_s: f64,
    /// From the last frame in the file to the end: finishing the file (its fsync).
    finish_s: f64,
    /// Frames already in the file when the client first saw one there: their time falls
    /// before `frames_s` begins.
    written_at_first: u64,
}

/// One sequence through the daemon; returns its final status and where its time went.
async fn sequence(
    acq: &mut Session,
    o: &BenchOptions,
    name: &str,
) -> anyhow::Result<(AcquisitionStatus, Phases)> {
    let start = Instant::now();
    let s = acq
        .start_sequence(Sequence {
            frames: o.frames,
            name: name.into(),
            ..Sequence::default()
        })
        .await?;
    let (mut first, mut last) = (None, None);
    let mut written_at_first = 0;
    let done = loop {
        // The time before the call: frames the reply counts were written by the time it
        // was read, so none of the window's frames is counted before the window opens.
        let asked = start.elapsed();
        let s = acq.acquisition(s.id).await?;
        if s.written > 0 && first.is_none() {
            first = Some(asked);
            written_at_first = s.written;
        }
        if s.written + s.dropped >= o.frames {
            last.get_or_insert_with(|| start.elapsed());
        }
        if s.state != Some(RunState::Running) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let end = start.elapsed();
    let (first, last) = (first.unwrap_or(end), last.unwrap_or(end));
    let phases = Phases {
        startup_s: first.as_secs_f64(),
        frames_s: (last.saturating_sub(first)).as_secs_f64(),
        finish_s: (end.saturating_sub(last)).as_secs_f64(),
        written_at_first,
    };
    // The daemon's anonymous user is `local`: its datasets are under datasets/local/.
    let _ = std::fs::remove_dir_all(o.dir.join("datasets").join("local").join(name));
    if done.state != Some(RunState::Finished) {
        anyhow::bail!(
            "acquisition {name} ended in state {}: {}",
            super::acquisition::state_name(done.state),
            done.error
        );
    }
    Ok((done, phases))
}

/// GB/s over the whole acquisition, start-up (the ring mapped in, the file made, the camera
/// started) included.
fn rate(s: &AcquisitionStatus) -> f64 {
    gbs(s.bytes as f64, s.elapsed_s)
}

/// GB/s from the first frame in the file to the file synced, what plain writes are timed
/// over. The client sees the first frames up to a poll late: those already written then are
/// not counted.
fn writing_rate(s: &AcquisitionStatus, t: &Phases) -> f64 {
    let after_first = s.written.saturating_sub(t.written_at_first) as f64;
    let bytes = s.bytes as f64 * after_first / (s.written.max(1) as f64);
    gbs(bytes, (t.frames_s + t.finish_s).max(1e-6))
}

/// Runs the disk and pipeline benchmark and prints its report.
async fn disk_and_pipeline(o: BenchOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.dir).with_context(|| format!("cannot use {}", o.dir.display()))?;
    let frame_bytes = o.width as usize * o.height as usize * 2;
    println!(
        "microscoped bench: {}x{} u16 frames ({:.1} MiB), {} frames = {:.2} GB per run, in {}",
        o.width,
        o.height,
        frame_bytes as f64 / f64::from(1 << 20),
        o.frames,
        frame_bytes as f64 * o.frames as f64 / 1e9,
        o.dir.display()
    );

    // The bytes the camera makes: a ramp frame, made (so touched) before anything is timed.
    let frame: Vec<u8> = (0..o.width as usize * o.height as usize)
        .flat_map(|i| (i as u16).to_le_bytes())
        .collect();
    let tifffile = Tifffile::probe(&o.python);
    match &tifffile {
        Ok(t) => println!("reference: tifffile {} ({})", t.version, o.python.display()),
        Err(why) => println!("reference: tifffile not measured: {why}"),
    }
    let tifffile = tifffile.ok();
    let mut contenders = vec![Contender::Plain, Contender::Writer];
    if tifffile.is_some() {
        contenders.push(Contender::Tifffile);
    }
    let write = |c: Contender| -> anyhow::Result<f64> {
        settle_disk(&o.dir)?;
        match c {
            Contender::Plain => plain_write(&o.dir.join("plain.bin"), &frame, o.frames),
            Contender::Writer => writer_write(&o.dir.join("writer.ome.tiff"), &o, &frame),
            Contender::Tifffile => tifffile
                .as_ref()
                .map_or(Ok(0.0), |t| t.write(&o.dir.join("tifffile.ome.tiff"), &o)),
        }
    };
    // Warm-up: the first writer of a run pays for growing the page cache; let nobody timed be
    // that writer.
    for &c in &contenders {
        write(c)?;
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for round in 0..o.runs as usize {
        // Each round in another order (ABBA for two, every permutation in turn for three): a
        // writer that runs after another pays for its writeback, so each takes every place.
        let order = round_order(contenders.len(), round);
        let mut got = vec![0.0; contenders.len()];
        for &i in &order {
            got[i] = write(contenders[i])?;
        }
        let line: Vec<String> = order
            .iter()
            .map(|&i| format!("{} {:.2} GB/s", contenders[i].name(), got[i]))
            .collect();
        let ratios: Vec<String> = (1..contenders.len())
            .map(|i| format!("{}/plain {:.2}", contenders[i].short(), got[i] / got[0]))
            .collect();
        println!(
            "  round {}: {}; {}",
            round + 1,
            line.join(", "),
            ratios.join(", ")
        );
        for (f, g) in figures.iter_mut().zip(got) {
            f.push(g);
        }
    }
    println!(
        "disk, {} rounds after a warm-up (same bytes, same disk, fsync included), GB/s min / median / max:",
        o.runs
    );
    for (c, f) in contenders.iter().zip(&figures) {
        println!("  {:<16} {}", c.name(), spread(f));
    }
    for (i, c) in contenders.iter().enumerate().skip(1) {
        let ratios: Vec<f64> = figures[i]
            .iter()
            .zip(&figures[0])
            .map(|(x, p)| x / p)
            .collect();
        println!(
            "  {}/plain, round by round: {}{}",
            c.short(),
            spread(&ratios),
            if *c == Contender::Writer {
                " (target >= 0.9)"
            } else {
                ""
            }
        );
        if median(&ratios) > 1.1 {
            println!(
                "  note: {} beat plain writes of the same bytes by over 10%: this disk's figures \
                 vary more than the difference being measured; more --runs and --frames",
                c.name()
            );
        }
    }
    let (pm, wm) = (median(&figures[0]), median(&figures[1]));
    let tm = tifffile.as_ref().map(|_| median(&figures[2]));

    let daemon = InProcess::start(&bench_config(&o)).await?;
    let addr = daemon.addr;
    let mut acq = daemon.session.clone();
    let mut control = daemon.session.clone();

    // The reference for control latency: the same client against the idle daemon.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let idle = latency_client(addr, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let idle = idle
        .join()
        .map_err(|_| anyhow::anyhow!("latency client panicked"))??;
    println!(
        "unary RPC (GetPosition) on the idle daemon: {}",
        latency_line(&idle)
    );

    // B: the camera a quarter faster than plain writes: the writer is the bottleneck, and the
    // simulator (one copy per frame from a pre-rendered ramp, what a camera's DMA costs the
    // host's memory) takes no more of the two cores than it must.
    let fast_ms = (frame_bytes as f64 / (1.25 * pm.max(wm) * 1e9) * 1e3).max(0.01);
    set_period(&mut control, fast_ms).await?;
    println!(
        "pipeline, camera faster than the disk ({fast_ms:.2} ms/frame); written GB/s from the first frame in the file to the file synced (start-up included in brackets):"
    );
    let mut pipeline = Vec::new();
    for round in 0..o.runs.clamp(1, 3) {
        settle_disk(&o.dir)?;
        let (s, t) = sequence(&mut acq, &o, &format!("bench-fast-{round}")).await?;
        let writing = writing_rate(&s, &t);
        println!(
            "  round {}: written {:.2} GB/s ({:.2}x plain median) [{:.2} GB/s]; received {} written {} dropped {} ({} of them lost in the camera); start-up {:.2} s, frames {:.2} s, finish {:.2} s",
            round + 1,
            writing,
            writing / pm,
            rate(&s),
            s.received,
            s.written,
            s.dropped,
            s.dropped_in_camera,
            t.startup_s,
            t.frames_s,
            t.finish_s
        );
        pipeline.push(writing);
    }
    let ratios: Vec<f64> = pipeline.iter().map(|x| x / pm).collect();
    println!(
        "  pipeline GB/s {}; against plain writes' median {} (target >= 0.9){}",
        spread(&pipeline),
        spread(&ratios),
        tm.map_or(String::new(), |t| format!(
            "; against tifffile's median {:.2}",
            median(&pipeline) / t
        ))
    );

    // C: the camera at half the speed of the slower of the two, with a control client timing
    // a unary RPC.
    let slow_ms = frame_bytes as f64 / (0.5 * wm.min(pm) * 1e9) * 1e3;
    set_period(&mut control, slow_ms).await?;
    settle_disk(&o.dir)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let latency = latency_client(addr, stop.clone());
    let (c, _) = sequence(&mut acq, &o, "bench-slow").await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut samples = latency
        .join()
        .map_err(|_| anyhow::anyhow!("latency client panicked"))??;
    samples.sort();
    println!("pipeline, camera at half the disk's speed ({slow_ms:.2} ms/frame):");
    println!(
        "  written {:.2} GB/s; received {} written {} dropped {} ({} lost in the camera; target 0)",
        rate(&c),
        c.received,
        c.written,
        c.dropped,
        c.dropped_in_camera
    );
    println!(
        "  unary RPC (GetPosition) meanwhile: {} (target p99 < 1 ms; idle p99 x{:.1})",
        latency_line(&samples),
        percentile(&samples, 0.99).as_secs_f64() / percentile(&idle, 0.99).as_secs_f64()
    );

    // D: the camera as in B, with a live-view client reading as fast as it can.
    set_period(&mut control, fast_ms).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let live = {
        let stop = stop.clone();
        on_own_thread(move || async move {
            let mut client = connect(addr).await?;
            let mut stream = client.live_view("", 0.0).await?;
            let (mut bytes, mut frames) = (0u64, 0u64);
            let mut first: Option<Instant> = None;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
                    Ok(Ok(Some(img))) => {
                        first.get_or_insert_with(Instant::now);
                        bytes += img.data.len() as u64;
                        frames += 1;
                    }
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => {}
                }
            }
            let secs = first.map_or(1.0, |f| f.elapsed().as_secs_f64());
            Ok((gbs(bytes as f64, secs), frames))
        })
    };
    settle_disk(&o.dir)?;
    let (d, dt) = sequence(&mut acq, &o, "bench-live").await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (live_gbs, live_frames) = live
        .join()
        .map_err(|_| anyhow::anyhow!("live client panicked"))??;
    println!("pipeline as in the first run, with a live-view client reading as fast as it can:");
    println!(
        "  live view {live_gbs:.2} GB/s ({live_frames} frames); written {:.2} GB/s ({:+.1}% vs the median without), dropped {} ({} in the camera)",
        writing_rate(&d, &dt),
        100.0 * (writing_rate(&d, &dt) / median(&pipeline) - 1.0),
        d.dropped,
        d.dropped_in_camera
    );

    daemon.stop().await?;
    remove_datasets_dir(&o.dir.join("datasets"));
    Ok(())
}

/// `microscoped bench --gige`: aravis's fake GigE Vision camera, talking real GVCP/GVSP over
/// loopback, into OME-TIFF through the daemon: the frame rate and MB/s reached, and the frames
/// dropped (by the camera or the network, and by the ring).
#[cfg(feature = "genicam")]
async fn gige(dir: PathBuf, frames: u64, frame_rate_hz: f64) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot use {}", dir.display()))?;
    // Holds the fake camera's lock for the whole run, so it stays on this task.
    let fake = microscoped_genicam::testing::start_fake_gige("MSDBENCH")?;
    let text = format!(
        r#"
[instrument]
name = "bench-gige"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{root}"
ring_mb = 512

[devices.Camera]
driver = "genicam.camera"
timeout_ms = 10000
device_id = "{id}"
pixel_format = "Mono16"
exposure_ms = 1.0
frame_rate_hz = {frame_rate_hz}
"#,
        root = dir.join("datasets").display(),
        id = fake.device_id()
    );
    let daemon = InProcess::start(&text).await?;
    let mut acq = daemon.session.clone();
    let o = BenchOptions {
        dir: dir.clone(),
        frames,
        width: 0,
        height: 0,
        runs: 1,
        python: PathBuf::new(),
    };
    let (s, _) = sequence(&mut acq, &o, "bench-gige").await?;
    let mut control = daemon.session.clone();
    let failed = control
        .get_property("Camera", "frames_failed")
        .await
        .map(|v| microscoped::client::show_value(v.as_ref()))
        .unwrap_or_else(|e| e.message());
    println!(
        "GigE Vision (aravis fake camera over loopback), {}x{} u16 at up to {frame_rate_hz} Hz, {frames} frames:",
        s.width, s.height
    );
    println!(
        "  {:.1} frames/s, {:.1} MB/s into OME-TIFF; received {} written {} dropped {} ({} by the camera or network; stream failures {failed})",
        s.written as f64 / s.elapsed_s,
        s.bytes as f64 / s.elapsed_s / 1e6,
        s.received,
        s.written,
        s.dropped,
        s.dropped_in_camera
    );
    daemon.stop().await?;
    remove_datasets_dir(&dir.join("datasets"));
    drop(fake);
    Ok(())
}

/// Removes the bench daemon's data root: the (by now empty) user folder, its audit log, and the
/// root itself if nothing else is in it. Never anything the bench did not make.
fn remove_datasets_dir(root: &std::path::Path) {
    let _ = std::fs::remove_dir(root.join("local"));
    let _ = std::fs::remove_dir_all(root.join(".audit"));
    let _ = std::fs::remove_dir(root);
}
