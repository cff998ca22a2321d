//! Sequences: the camera free-running into the frame ring on its own device thread while the
//! supervisor reports progress and refreshes the stage positions and laser powers the frames
//! record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use microscoped_driver_api::{AnyDevice, DeviceError};
use tracing::{info, warn};

use super::run::{frame_meta, Launch, Layout, Readback, Started};
use super::writer::{finish_files, Indexing};
use super::{validate_dataset_name, AcqError, Acquisitions, EventKind, RunState, Status};
use crate::ring::{AcqIndex, FrameRing, Produced};

/// The most frames one sequence may ask for: beyond this a request is a mistake, not a plan.
pub const MAX_FRAMES: u64 = 10_000_000;
/// How often progress events go out while an acquisition runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often stage positions and laser powers are refreshed for the frames' metadata.
const POSITIONS_EVERY: Duration = Duration::from_millis(200);

impl Acquisitions {
    /// Starts a sequence acquisition for user `owner` on `camera` (empty: the only camera):
    /// `frames` frames, or until stopped when `None`, into a new dataset called `name` (or one
    /// named after the time) in the owner's folder under the data root.
    pub async fn start_sequence(
        &self,
        owner: &str,
        camera: &str,
        frames: Option<u64>,
        name: Option<String>,
    ) -> Result<Status, AcqError> {
        if self.0.closing.load(Ordering::Relaxed) {
            return Err(AcqError::Precondition("the daemon is shutting down".into()));
        }
        match frames {
            Some(0) => {
                return Err(AcqError::Invalid(
                    "frames must be at least 1 (or ask to run until stopped)".into(),
                ))
            }
            Some(n) if n > MAX_FRAMES => {
                return Err(AcqError::Invalid(format!(
                    "frames = {n} is more than the {MAX_FRAMES} one sequence may take; run until stopped instead"
                )))
            }
            _ => {}
        }
        let name = match name {
            Some(n) => {
                validate_dataset_name(&n).map_err(AcqError::Invalid)?;
                n
            }
            None => self.fresh_name(owner, "seq"),
        };
        let prep = self.prepare(owner, camera, name).await?;
        let path = prep.dir.join(format!("{}.ome.tiff", prep.name));
        let layout = Layout {
            size_t: frames.map_or(1, |n| n.min(u32::MAX as u64) as u32),
            size_c: 1,
            size_z: 1,
            dimension_order: "XYCZT".into(),
            channels: vec![self.current_channel(prep.cam.name()).await],
            physical_size_z_um: None,
        };
        let meta = prep.dataset_meta(prep.name.clone(), &layout);
        let files = prep.create_files(vec![(path.clone(), meta)], 1, Indexing::Sequence)?;
        let (status, started) = self
            .launch(
                prep,
                Launch {
                    path,
                    frames_planned: frames,
                    files,
                    indexing: Indexing::Sequence,
                    plan: None,
                },
            )
            .await?;
        info!(id = status.id, name = %status.name, camera = %status.camera, slots = status.ring_slots, path = %status.path.display(), "acquisition started");
        if let Some(started) = started {
            tokio::spawn(self.clone().supervise(started));
        }
        Ok(status)
    }

    /// Runs one acquisition to its end: the camera loop on the camera's thread, the writer on
    /// its own, progress and stage positions from here; then finishes the file.
    async fn supervise(self, started: Started) {
        let Started {
            run,
            ring,
            writer,
            cam,
            claim,
            lasers,
            exposure_ms,
        } = started;
        let positions = Arc::new(Mutex::new(Readback::default()));
        self.refresh_readback(&positions, &lasers).await;

        let camera_result = {
            let camera_job = cam.run_claimed(
                &claim,
                camera_loop(
                    ring.clone(),
                    run.stop.clone(),
                    run.frames_planned,
                    positions.clone(),
                    exposure_ms,
                ),
            );
            tokio::pin!(camera_job);
            let mut progress = tokio::time::interval(PROGRESS_EVERY);
            let mut stage = tokio::time::interval(POSITIONS_EVERY);
            loop {
                tokio::select! {
                    r = &mut camera_job => break r,
                    _ = progress.tick() => self.emit(EventKind::Progress, &run),
                    _ = stage.tick() => self.refresh_readback(&positions, &lasers).await,
                }
            }
        };
        drop(claim);

        // The camera loop closed (or the writer abandoned) the ring; the writer drains it.
        let capacity = ring.capacity();
        let (state, error, planes) =
            finish_files(&run, &ring, writer, |write_error| {
                match (&camera_result, write_error) {
                    (_, Some(e)) => (RunState::Failed, Some(e)),
                    (Err(e), None) => (RunState::Failed, Some(format!("camera: {e}"))),
                    (Ok(Ended::Overflow), None) => (
                        RunState::Failed,
                        Some(format!(
                            "the writer could not keep up: all {capacity} ring slots were full (storage.overflow = \"stop\")"
                        )),
                    ),
                    (Ok(Ended::Complete), None) => (RunState::Finished, None),
                    (Ok(Ended::Stopped), None) => (RunState::Stopped, None),
                }
            })
            .await;
        if planes == 0 {
            // No frame, no file: leave no empty dataset behind either, so the name can be
            // used again.
            if let Some(dir) = run.path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        // The run's record holds the last reference, which `end` lets go before it tells
        // anyone: a client that hears of the end finds the ring's memory returned.
        drop(ring);
        self.end(&run, state, error);
    }
}

/// How the camera loop ended without a device error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Every frame asked for was received.
    Complete,
    /// Stopped by request, or the writer gave up (its error is reported separately).
    Stopped,
    /// The ring was full under the `stop` policy.
    Overflow,
}

/// Why the camera loop got no frame to store.
enum NoFrame {
    /// The camera failed.
    Device(DeviceError),
    /// The camera's counter jumped past the last frame of the burst.
    PastBurst,
}

/// Closes the ring when the camera loop ends, however it ends (a driver panic included), so
/// the writer never waits for frames that will not come.
struct CloseOnDrop(Arc<FrameRing>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The camera side of an acquisition, run on the camera's device thread.
fn camera_loop(
    ring: Arc<FrameRing>,
    stop: Arc<AtomicBool>,
    frames: Option<u64>,
    positions: Arc<Mutex<Readback>>,
    exposure_ms: f64,
) -> impl FnOnce(&mut AnyDevice) -> Result<Ended, DeviceError> + Send + 'static {
    move |dev| {
        let _close = CloseOnDrop(ring.clone());
        let AnyDevice::Camera(cam) = dev else {
            return Err(DeviceError::invalid("not a camera"));
        };
        cam.start_sequence()?;
        let mut next_camera_seq = 0u64;
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(Ended::Stopped);
            }
            if frames.is_some_and(|n| ring.counters().received >= n) {
                break Ok(Ended::Complete);
            }
            let readback = *positions.lock().unwrap_or_else(|e| e.into_inner());
            let mut camera_seq = 0;
            let produced = ring.produce(|buf| {
                let info = cam.next_frame(buf).map_err(NoFrame::Device)?;
                camera_seq = info.sequence;
                // The camera skipped past the end of the burst: that frame is not part of it.
                if frames.is_some_and(|n| info.sequence >= n) {
                    return Err(NoFrame::PastBurst);
                }
                let index = AcqIndex {
                    t: info.sequence.min(u32::MAX as u64) as u32,
                    ..Default::default()
                };
                Ok(frame_meta(&info, &ring, exposure_ms, &readback, index))
            });
            match produced {
                Ok(Produced::Stored | Produced::Dropped) => {
                    // A jump in the camera's counter: frames it took that never reached us.
                    if camera_seq > next_camera_seq {
                        ring.count_lost(camera_seq - next_camera_seq);
                    }
                    next_camera_seq = camera_seq + 1;
                }
                Ok(Produced::Full) => break Ok(Ended::Overflow),
                Ok(Produced::Closed) => break Ok(Ended::Stopped),
                Err(NoFrame::PastBurst) => {
                    // Only the burst's own frames the camera lost count as lost.
                    if let Some(n) = frames {
                        ring.count_lost(n.saturating_sub(next_camera_seq));
                    }
                    break Ok(Ended::Complete);
                }
                Err(NoFrame::Device(e)) => break Err(e),
            }
        };
        if let Err(e) = cam.stop_sequence() {
            warn!(error = %e, "camera did not stop its sequence cleanly");
        }
        result
    }
}
