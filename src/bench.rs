//! `microscoped bench`: measures the frame path against the disk it writes to.
//!
//! It runs the real daemon in-process on a loopback port with a simulated 2048x2048 16-bit
//! camera at full speed (the `ramp` test pattern, cheap to make, so the camera outruns the
//! disk) and takes sequences into OME-TIFF over gRPC. In the same run, on the same disk, it
//! writes the same number of bytes with plain sequential `write` calls. The two alternate, since
//! disks here vary run to run, and both end with an fsync, so the page cache flatters neither.
//! Then, while a sequence streams to disk, it measures live-view throughput to one client and
//! the latency of a unary control RPC.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use crate::config::Config;
use crate::pb;
use crate::pb::acquisition_client::AcquisitionClient;
use crate::pb::microscope_client::MicroscopeClient;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Folder on the disk to measure; datasets are made and removed there.
    pub dir: PathBuf,
    /// Frames per run.
    pub frames: u64,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Alternating (plain, writer) run pairs.
    pub runs: u32,
    /// Seconds of streaming for the live-view and latency phase.
    pub live_seconds: f64,
}

fn bench_config(o: &BenchOptions) -> String {
    format!(
        r#"
[instrument]
name = "bench"

[storage]
data_root = "{root}"
ring_mb = 1024
min_slots = 16
overflow = "drop"

[devices.Camera]
driver = "sim.camera"
width = {w}
height = {h}
bit_depth = 16
exposure_ms = 0.01
min_exposure_ms = 0.01
readout_ms = 0.01
pattern = "ramp"

[devices.Z]
driver = "sim.stage"
"#,
        root = o.dir.join("datasets").display(),
        w = o.width,
        h = o.height
    )
}

/// Plain sequential writes of `frames` frames of `frame` bytes, then fsync; returns GB/s.
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
    Ok(frame.len() as f64 * frames as f64 / secs / 1e9)
}

/// One sequence through the daemon; returns (GB/s written, dropped).
async fn pipeline(
    acq: &mut AcquisitionClient<Channel>,
    o: &BenchOptions,
    name: &str,
) -> anyhow::Result<(f64, u64)> {
    let s = acq
        .start_sequence(pb::StartSequenceRequest {
            camera: String::new(),
            frames: o.frames,
            until_stopped: false,
            name: name.into(),
        })
        .await?
        .into_inner();
    let done = wait_done(acq, s.id).await?;
    let _ = std::fs::remove_dir_all(o.dir.join("datasets").join(name));
    if done.state != pb::AcquisitionState::Finished as i32 {
        anyhow::bail!("acquisition ended {}: {}", done.state, done.error);
    }
    Ok((done.bytes as f64 / done.elapsed_s / 1e9, done.dropped))
}

async fn wait_done(
    acq: &mut AcquisitionClient<Channel>,
    id: u64,
) -> anyhow::Result<pb::AcquisitionStatus> {
    loop {
        let s = acq
            .get_acquisition(pb::AcquisitionRef { id })
            .await?
            .into_inner();
        if s.state != pb::AcquisitionState::Running as i32 {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the benchmark and prints its report.
pub async fn run(o: BenchOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.dir).with_context(|| format!("cannot use {}", o.dir.display()))?;
    let config = Config::parse(&bench_config(&o), "<bench config>")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(crate::run(config, listener, async {
        let _ = stop_rx.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut acq =
        AcquisitionClient::new(channel.clone()).max_decoding_message_size(crate::MAX_MESSAGE_BYTES);
    let frame_bytes = o.width as usize * o.height as usize * 2;
    let total_gb = frame_bytes as f64 * o.frames as f64 / 1e9;
    println!(
        "microscoped bench: {}x{} u16 frames ({:.1} MiB), {} frames = {:.2} GB per run, in {}",
        o.width,
        o.height,
        frame_bytes as f64 / (1 << 20) as f64,
        o.frames,
        total_gb,
        o.dir.display()
    );

    // The same bytes the camera makes: one ramp frame.
    let frame: Vec<u8> = (0..o.width as usize * o.height as usize)
        .flat_map(|i| (i as u16).to_le_bytes())
        .collect();
    let mut plain = Vec::new();
    let mut writer = Vec::new();
    let mut dropped_total = 0;
    for run in 0..o.runs {
        let p = plain_write(&o.dir.join("plain.bin"), &frame, o.frames)?;
        let (w, dropped) = pipeline(&mut acq, &o, &format!("bench-{run}")).await?;
        println!(
            "  run {}: plain write {p:.2} GB/s, writer {w:.2} GB/s ({dropped} dropped)",
            run + 1
        );
        plain.push(p);
        writer.push(w);
        dropped_total += dropped;
    }
    let ratios: Vec<f64> = writer.iter().zip(&plain).map(|(w, p)| w / p).collect();
    let (pm, wm) = (median(&mut plain.clone()), median(&mut writer.clone()));
    println!("writer:        {wm:.2} GB/s (median of {})", o.runs);
    println!("plain write:   {pm:.2} GB/s (median of {})", o.runs);
    println!(
        "ratio:         {:.2} (median of run ratios {:.2}; target >= 0.9)",
        wm / pm,
        median(&mut ratios.clone())
    );
    println!("dropped:       {dropped_total} frames in {} runs", o.runs);

    // Live view and control latency while a sequence streams to disk.
    let s = acq
        .start_sequence(pb::StartSequenceRequest {
            camera: String::new(),
            frames: 0,
            until_stopped: true,
            name: "bench-live".into(),
        })
        .await?
        .into_inner();
    let live = {
        let mut client = acq.clone();
        let secs = o.live_seconds;
        tokio::spawn(async move {
            let mut stream = client
                .live_view(pb::LiveViewRequest {
                    camera: String::new(),
                    max_fps: 0.0,
                })
                .await?
                .into_inner();
            let start = Instant::now();
            let (mut bytes, mut frames) = (0u64, 0u64);
            while start.elapsed().as_secs_f64() < secs {
                match stream.message().await? {
                    Some(img) => {
                        bytes += img.data.len() as u64;
                        frames += 1;
                    }
                    None => break,
                }
            }
            anyhow::Ok((bytes as f64 / start.elapsed().as_secs_f64() / 1e9, frames))
        })
    };
    let mut control = MicroscopeClient::new(channel.clone());
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < o.live_seconds {
        let t = Instant::now();
        control
            .get_position(pb::DeviceRef { device: "Z".into() })
            .await?;
        latencies.push(t.elapsed());
    }
    let (live_gbs, live_frames) = live.await??;
    let stopped = acq
        .stop_acquisition(pb::AcquisitionRef { id: s.id })
        .await?
        .into_inner();
    let _ = std::fs::remove_dir_all(o.dir.join("datasets").join("bench-live"));
    latencies.sort();
    let writer_live = stopped.bytes as f64 / stopped.elapsed_s / 1e9;
    println!(
        "live view:     {live_gbs:.2} GB/s to one client ({live_frames} frames in {:.1} s)",
        o.live_seconds
    );
    println!(
        "writer during live view: {writer_live:.2} GB/s ({:.0}% of the writer alone; {} dropped)",
        100.0 * writer_live / wm,
        stopped.dropped
    );
    println!(
        "unary RPC (GetPosition) while streaming: p50 {:.3} ms, p99 {:.3} ms over {} calls (target p99 < 1 ms)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len()
    );
    let _ = stop_tx.send(());
    daemon.await??;
    let _ = std::fs::remove_dir(o.dir.join("datasets"));
    Ok(())
}
