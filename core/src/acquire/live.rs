//! Live mode: the camera running for viewing, nothing written.
//!
//! A live mode uses the same ring and the same camera claim as an acquisition: it claims the
//! camera, runs it free into a [`FrameRing::for_viewing`] (a few slots, no writer, so viewers
//! take the newest frame and may skip), and gives the ring's memory back when it stops. It
//! starts when the first viewer who may start it ([`Acquisitions::live_viewer`]) asks for
//! frames while nothing else runs on the camera, and stops when the last such viewer leaves.
//!
//! Its claim admits ordinary commands: between two frames the camera loop steps aside for any
//! command waiting for the camera (an exposure set to focus, a snap), then starts again, so
//! the camera stays usable while people look at it. An acquisition takes the camera over: the
//! live mode hands its claim to the acquisition (the camera is never free in between) and the
//! viewers go on with the acquisition's frames; when it ends, live mode starts again for the
//! viewers still there. A paused plan lets the camera go, so live mode runs during the pause
//! (to refocus) and the plan takes the camera back from it on resume.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use microscoped_driver_api::{AnyDevice, DeviceError};
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use super::run::{camera_setup, frame_meta, Readback};
use super::{AcqError, Acquisitions};
use crate::host::{Claim, DeviceHandle, HostError};
use crate::ring::{AcqIndex, FrameRing};

/// Slots of a live ring: the camera fills one while viewers copy the newest; a few spare so
/// a slow copy never holds the camera up.
const LIVE_SLOTS: usize = 4;
/// How long live mode waits before starting again on a camera where it failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often the stage positions live frames record are read.
const POSITIONS_EVERY: Duration = Duration::from_millis(200);
/// The job live mode claims the camera for, as refusals name it.
const LIVE_JOB: &str = "live view";

/// What a camera's live view shows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// Nothing: no viewer who may start live mode, or the camera is in use by no acquisition
    /// and cannot be claimed.
    Off,
    /// Live mode is claiming and reading the camera.
    Starting,
    /// Live mode: the camera runs for the viewers, nothing is written.
    Live,
    /// An acquisition owns the camera; viewers see its frames.
    Acquisition,
}

/// A camera's live view, for status replies.
#[derive(Debug, Clone)]
pub struct LiveStatus {
    /// The camera.
    pub camera: String,
    /// What viewers see.
    pub mode: LiveMode,
    /// Open live views of the camera (observers included).
    pub viewers: u32,
    /// Of those, the ones that keep live mode running.
    pub drivers: u32,
    /// Frames the current live mode (or acquisition) has received.
    pub frames: u64,
    /// Slots of the ring viewers read, 0 when none is allocated.
    pub ring_slots: u32,
    /// Bytes of that ring's slots, 0 when none is allocated.
    pub ring_bytes: u64,
    /// The acquisition viewers see, in `Acquisition` mode.
    pub acquisition: Option<u64>,
    /// Why live mode last failed on this camera, if it did.
    pub error: Option<String>,
}

/// One camera's viewers and live mode.
#[derive(Default)]
pub(super) struct LiveCam {
    /// Open live views.
    viewers: u32,
    /// Of those, the ones that may start live mode (and keep it running).
    drivers: u32,
    session: Option<Arc<Session>>,
    /// When and why live mode last failed: it waits [`RETRY_AFTER`] before trying again.
    failed: Option<(Instant, String)>,
}

/// A running live mode.
struct Session {
    /// The ring and the camera's bit depth, once allocated.
    ring: Mutex<Option<(Arc<FrameRing>, u32)>>,
    /// Set to end the camera loop.
    stop: Arc<AtomicBool>,
    /// Whether the session has ended (its claim released or handed over), and the acquisition
    /// waiting to be handed the claim. One mutex, so a handover is never asked of a session
    /// that has already let its claim go.
    handover: Mutex<(bool, Option<oneshot::Sender<Claim>>)>,
    /// Becomes true once the session has ended.
    done: watch::Sender<bool>,
}

impl Session {
    fn ring(&self) -> Option<(Arc<FrameRing>, u32)> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One open live view of a camera: its frames come from the acquisition running on the
/// camera, or else from live mode, which this viewer starts if it may. Dropping it leaves the
/// view; the last viewer who may start live mode stops it.
pub struct LiveViewer {
    acq: Acquisitions,
    camera: String,
    /// Whether this viewer starts live mode and keeps it running.
    drives: bool,
}

impl Acquisitions {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveCam>> {
        self.0.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a live view of `camera` (empty: the only camera). A viewer who `may_start` starts
    /// live mode when nothing runs on the camera and keeps it running; others (observers) see
    /// what runs.
    pub fn live_viewer(&self, camera: &str, may_start: bool) -> Result<LiveViewer, AcqError> {
        let camera = self.0.host.camera(camera)?.name().to_owned();
        let mut live = self.live();
        let cam = live.entry(camera.clone()).or_default();
        cam.viewers += 1;
        if may_start {
            cam.drivers += 1;
        }
        Ok(LiveViewer {
            acq: self.clone(),
            camera,
            drives: may_start,
        })
    }

    /// What the live view of `camera` (empty: the only camera) shows now.
    pub fn live_status(&self, camera: &str) -> Result<LiveStatus, AcqError> {
        let camera = self.0.host.camera(camera)?.name().to_owned();
        let running = self.camera_run(&camera).map(|r| (r.id, r.ring()));
        let live = self.live();
        let cam = live.get(&camera);
        let session = cam.and_then(|c| c.session.clone());
        let (mode, ring, acquisition) = match (running, session) {
            (Some((id, ring)), _) => (LiveMode::Acquisition, ring, Some(id)),
            (None, Some(s)) => match s.ring() {
                Some((ring, _)) => (LiveMode::Live, Some(ring), None),
                None => (LiveMode::Starting, None, None),
            },
            (None, None) => (LiveMode::Off, None, None),
        };
        Ok(LiveStatus {
            camera,
            mode,
            viewers: cam.map_or(0, |c| c.viewers),
            drivers: cam.map_or(0, |c| c.drivers),
            frames: ring.as_ref().map_or(0, |r| r.counters().received),
            ring_slots: ring.as_ref().map_or(0, |r| r.capacity() as u32),
            ring_bytes: ring
                .as_ref()
                .map_or(0, |r| r.capacity() as u64 * r.shape().bytes() as u64),
            acquisition,
            error: cam.and_then(|c| c.failed.as_ref().map(|(_, e)| e.clone())),
        })
    }

    /// Claims `camera` for `job`, taking it over from live mode if live mode has it: the
    /// claim passes from one to the other, so nothing else gets the camera in between.
    pub(super) async fn claim_camera(
        &self,
        cam: &DeviceHandle,
        job: &str,
    ) -> Result<Claim, HostError> {
        for _ in 0..3 {
            if let Some(claim) = self.take_from_live(cam, job).await {
                return Ok(claim);
            }
            match cam.claim(job) {
                // Live mode claimed it between our look and our claim: take it from there.
                Err(HostError::InUse { .. }) if self.live_session(cam.name()) => continue,
                r => return r,
            }
        }
        cam.claim(job)
    }

    /// Takes a released claim (a paused plan's) back for `job`, from live mode if live mode
    /// has the camera meanwhile.
    pub(super) async fn reclaim_camera(&self, claim: &Claim, job: &str) -> Result<(), HostError> {
        let cam = claim.device();
        for _ in 0..3 {
            if let Some(live) = self.take_from_live(cam, job).await {
                claim.take_over(live, job);
                return Ok(());
            }
            match claim.take_back(job) {
                Err(HostError::InUse { .. }) if self.live_session(cam.name()) => continue,
                r => return r,
            }
        }
        claim.take_back(job)
    }

    /// Whether live mode runs (or starts) on `camera`.
    fn live_session(&self, camera: &str) -> bool {
        self.live().get(camera).is_some_and(|c| c.session.is_some())
    }

    /// Ends live mode on `cam`, if it runs, and returns its claim, renamed for `job` and
    /// exclusive again.
    async fn take_from_live(&self, cam: &DeviceHandle, job: &str) -> Option<Claim> {
        let s = self
            .live()
            .get(cam.name())
            .and_then(|c| c.session.clone())?;
        let (tx, rx) = oneshot::channel();
        {
            let mut h = s.handover.lock().unwrap_or_else(|e| e.into_inner());
            if h.0 {
                return None;
            }
            h.1 = Some(tx);
        }
        s.stop.store(true, Ordering::Relaxed);
        let claim = rx.await.ok()?;
        info!(camera = %cam.name(), %job, "live mode hands the camera over");
        claim.set_job(job, false);
        Some(claim)
    }

    /// Stops every live mode and waits until each has let its camera go (shutdown).
    pub(super) async fn stop_live(&self) {
        let sessions: Vec<_> = self
            .live()
            .values()
            .filter_map(|c| c.session.clone())
            .collect();
        for s in sessions {
            s.stop.store(true, Ordering::Relaxed);
            let mut done = s.done.subscribe();
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Starts live mode on `camera` for its viewers if nothing runs there and it may be
    /// claimed; returns the ring viewers read now.
    fn live_frames(&self, camera: &str) -> Option<(Arc<FrameRing>, u32)> {
        if let Some(ring) = self.live_ring(camera) {
            return Some(ring);
        }
        let mut live = self.live();
        let cam = live.get_mut(camera)?;
        if let Some(s) = &cam.session {
            return s.ring();
        }
        if cam.drivers == 0 || self.0.closing.load(Ordering::Relaxed) {
            return None;
        }
        if cam
            .failed
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < RETRY_AFTER)
        {
            return None;
        }
        let handle = self.0.host.camera(camera).ok()?.clone();
        // Busy with an acquisition being prepared, or faulted: try again on the next look.
        let claim = handle.claim(LIVE_JOB).ok()?;
        // Ordinary commands (exposure, snaps) run between frames.
        claim.set_job(LIVE_JOB, true);
        let session = Arc::new(Session {
            ring: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            handover: Mutex::new((false, None)),
            done: watch::channel(false).0,
        });
        cam.session = Some(session.clone());
        // A new try: the last failure no longer describes what viewers see.
        cam.failed = None;
        info!(camera, "live mode starts");
        tokio::spawn(self.clone().run_live(handle, claim, session));
        None
    }

    /// Runs one live mode to its end, then frees its ring and hands its claim over or lets it
    /// go.
    async fn run_live(self, cam: DeviceHandle, claim: Claim, s: Arc<Session>) {
        let result = self.live_loop(&cam, &claim, &s).await;
        // The ring's memory goes back now.
        *s.ring.lock().unwrap_or_else(|e| e.into_inner()) = None;
        {
            let mut h = s.handover.lock().unwrap_or_else(|e| e.into_inner());
            h.0 = true;
            match h.1.take() {
                Some(tx) => {
                    let _ = tx.send(claim);
                }
                None => drop(claim),
            }
        }
        {
            let mut live = self.live();
            if let Some(c) = live.get_mut(cam.name()) {
                if c.session.as_ref().is_some_and(|x| Arc::ptr_eq(x, &s)) {
                    c.session = None;
                }
                match &result {
                    Ok(()) => c.failed = None,
                    Err(e) => c.failed = Some((Instant::now(), e.clone())),
                }
            }
        }
        match result {
            Ok(()) => info!(camera = %cam.name(), "live mode stopped"),
            Err(e) => warn!(camera = %cam.name(), error = %e, "live mode failed"),
        }
        s.done.send_replace(true);
    }

    /// The camera loop of a live mode, in turns: each turn runs the camera on its thread until
    /// the session stops or a command waits for the camera; the stage positions frames record
    /// are read meanwhile.
    async fn live_loop(
        &self,
        cam: &DeviceHandle,
        claim: &Claim,
        s: &Session,
    ) -> Result<(), String> {
        let mut current: Option<Arc<FrameRing>> = None;
        let positions = Arc::new(Mutex::new(Readback::default()));
        let mut tick = tokio::time::interval(POSITIONS_EVERY);
        loop {
            if s.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let ring = match &current {
                Some(r) => r.clone(),
                None => {
                    // A command between turns may have changed the frame shape (binning, ROI):
                    // the ring is made, or made again, for the shape the camera has now.
                    let setup = camera_setup(cam, claim).await.map_err(|e| e.to_string())?;
                    let shape = setup.shape;
                    let r = crate::priority::on_frame_path("live-ring".into(), move || {
                        FrameRing::for_viewing(shape, LIVE_SLOTS).map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r)
                    .map(Arc::new)
                    .map_err(|e| format!("cannot allocate the live ring: {e}"))?;
                    *s.ring.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((r.clone(), setup.bit_depth));
                    current = Some(r.clone());
                    r
                }
            };
            let turn = cam.run_claimed(
                claim,
                live_turn(ring, s.stop.clone(), cam.clone(), positions.clone()),
            );
            tokio::pin!(turn);
            let ended = loop {
                tokio::select! {
                    r = &mut turn => break r.map_err(|e| e.to_string())?,
                    _ = tick.tick() => self.refresh_readback(&positions, &[]).await,
                }
            };
            if ended == Turn::ShapeChanged {
                current = None;
            }
        }
    }
}

impl LiveViewer {
    /// The ring to show frames from now (the acquisition's, or live mode's) and its bit
    /// depth; `None` while nothing runs (live mode may be starting).
    pub fn frames(&self) -> Option<(Arc<FrameRing>, u32)> {
        self.acq.live_frames(&self.camera)
    }

    /// The camera viewed.
    pub fn camera(&self) -> &str {
        &self.camera
    }
}

impl Drop for LiveViewer {
    fn drop(&mut self) {
        let mut live = self.acq.live();
        let Some(cam) = live.get_mut(&self.camera) else {
            return;
        };
        cam.viewers = cam.viewers.saturating_sub(1);
        if self.drives {
            cam.drivers = cam.drivers.saturating_sub(1);
            if cam.drivers == 0 {
                if let Some(s) = &cam.session {
                    s.stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// How a turn of the live camera loop ended without a device error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// The session stops.
    Stopped,
    /// A command waits for the camera: it runs, then the next turn starts.
    Yielded,
    /// The camera's frame shape is not the ring's: a new ring is needed.
    ShapeChanged,
}

/// One turn of the live camera loop, on the camera's thread: the camera free-running into the
/// ring until the session stops or an ordinary command waits.
fn live_turn(
    ring: Arc<FrameRing>,
    stop: Arc<AtomicBool>,
    handle: DeviceHandle,
    positions: Arc<Mutex<Readback>>,
) -> impl FnOnce(&mut AnyDevice) -> Result<Turn, DeviceError> + Send + 'static {
    move |dev| {
        let AnyDevice::Camera(cam) = dev else {
            return Err(DeviceError::invalid("not a camera"));
        };
        if cam.frame_shape()? != ring.shape() {
            return Ok(Turn::ShapeChanged);
        }
        // Read each turn: a command between turns may have set it.
        let exposure_ms = cam.exposure_ms()?;
        cam.start_sequence()?;
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(Turn::Stopped);
            }
            if handle.commands_waiting() {
                break Ok(Turn::Yielded);
            }
            let readback = *positions.lock().unwrap_or_else(|e| e.into_inner());
            let produced = ring.produce(|buf| {
                let info = cam.next_frame(buf)?;
                Ok::<_, DeviceError>(frame_meta(
                    &info,
                    &ring,
                    exposure_ms,
                    &readback,
                    AcqIndex::default(),
                ))
            });
            if let Err(e) = produced {
                break Err(e);
            }
        };
        if let Err(e) = cam.stop_sequence() {
            warn!(error = %e, "camera did not stop its live sequence cleanly");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::host::DeviceHost;

    /// A live mode's ring is freed when its last viewer leaves: nothing keeps it alive.
    #[tokio::test]
    async fn the_live_ring_is_freed_when_the_last_viewer_leaves() {
        let root = tempfile::tempdir().unwrap();
        let config = Config::parse(
            &format!(
                "[instrument]\nname = \"t\"\n[server]\nanonymous_loopback_admin = true\n[storage]\ndata_root = \"{}\"\n[devices.Camera]\ndriver = \"sim.camera\"\nwidth = 32\nheight = 16\nexposure_ms = 1.0\n",
                root.path().display()
            ),
            "test.toml",
        )
        .unwrap();
        let host = DeviceHost::start(&config).unwrap();
        let acq = Acquisitions::new(
            host,
            config.storage.clone(),
            config.instrument.clone(),
            crate::presets::Presets::default(),
        );
        let viewer = acq.live_viewer("", true).unwrap();
        let start = Instant::now();
        let ring = loop {
            if let Some((r, _)) = viewer.frames() {
                if r.counters().received > 0 {
                    break r;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no live frame");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let weak = Arc::downgrade(&ring);
        drop(ring);
        drop(viewer);
        let start = Instant::now();
        while acq.live_status("").unwrap().mode != LiveMode::Off {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "live mode never stopped"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(weak.upgrade().is_none(), "the live ring outlived live mode");
    }
}
