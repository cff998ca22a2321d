//! The storage side of a run: a thread of its own drains the ring into the run's OME-TIFF
//! files, and the supervisor finishes them once the ring is closed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::run::Run;
use super::{Acquisitions, RunState};
use crate::ring::FrameRing;
use crate::storage::{Counters, OmeTiffWriter, PlaneMeta};

/// How the writer places frames in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Indexing {
    /// One file; plane i is T = i in arrival order, so dropped frames leave no hole.
    Sequence,
    /// A frame's index names its file (`p`) and its T, C and Z there.
    Plan,
}

/// The lossless consumer: writes every frame of the ring to its file, in order. On a write
/// error it records why, abandons the ring (the frames still waiting are counted dropped) and
/// asks the camera loop to stop; the files keep what was written before.
fn write_all(
    ring: Arc<FrameRing>,
    mut writers: Vec<OmeTiffWriter>,
    indexing: Indexing,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
) -> Vec<OmeTiffWriter> {
    let _guard = AbandonOnPanic {
        ring: ring.clone(),
        stop: stop.clone(),
    };
    let mut first_time: Option<f64> = None;
    let mut done_bytes: Vec<u64> = writers.iter().map(|w| w.bytes()).collect();
    let mut total: u64 = done_bytes.iter().sum();
    let mut last = 0;
    while let Some(result) = ring.consume(|slot| {
        let m = &slot.meta;
        let t0 = *first_time.get_or_insert(m.host_time_s);
        let (file, the_t, the_c, the_z) = match indexing {
            Indexing::Sequence => (0, writers[0].planes().min(u32::MAX as u64) as u32, 0, 0),
            Indexing::Plan => (m.index.p as usize, m.index.t, m.index.c, m.index.z),
        };
        last = file.min(writers.len() - 1);
        let plane = PlaneMeta {
            the_t,
            the_c,
            the_z,
            delta_t_s: m.host_time_s - t0,
            exposure_ms: m.exposure_ms,
            position_x_um: m.stage.x_um,
            position_y_um: m.stage.y_um,
            position_z_um: m.stage.z_um,
            light_mw: m.light_mw,
        };
        writers[last].write_plane(slot.bytes(), &plane)
    }) {
        match result {
            Ok(()) => {
                let now = writers[last].bytes();
                total += now - done_bytes[last];
                done_bytes[last] = now;
                bytes.store(total, Ordering::Relaxed);
            }
            Err(e) => {
                let w = &writers[last];
                let written = w.planes();
                *error.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                    "writing frame {} to {} failed: {e}; the {written} frames before it are in the file",
                    written + 1,
                    w.path().display()
                ));
                stop.store(true, Ordering::Relaxed);
                ring.abandon();
                break;
            }
        }
    }
    writers
}

/// A run's writer thread and the error it reports if a write fails.
pub(super) struct WriterThread {
    thread: std::thread::JoinHandle<Vec<OmeTiffWriter>>,
    error: Arc<Mutex<Option<String>>>,
}

/// Waits for the writer thread and finishes every file it wrote, storing the run's byte count.
/// `decide` turns the writer's error (read once the writer is done) into the run's outcome.
/// Returns the final state and error (a failure to finish turns the run failed) and the planes
/// written in all.
pub(super) async fn finish_files(
    run: &Run,
    ring: &FrameRing,
    writer: WriterThread,
    decide: impl FnOnce(Option<String>) -> (RunState, Option<String>),
) -> (RunState, Option<String>, u64) {
    let WriterThread {
        thread,
        error: write_error,
    } = writer;
    let writers = tokio::task::spawn_blocking(move || thread.join())
        .await
        .ok()
        .and_then(|j| j.ok());
    let (mut state, mut error) =
        decide(write_error.lock().unwrap_or_else(|e| e.into_inner()).take());
    let Some(writers) = writers else {
        return (
            RunState::Failed,
            Some("the writer thread panicked; `microscoped recover` can repair the files".into()),
            0,
        );
    };
    let counters = ring.counters();
    let c = Counters {
        received: counters.received,
        written: counters.written,
        dropped: counters.dropped,
    };
    let finished = tokio::task::spawn_blocking(move || {
        writers.into_iter().map(|w| w.finish(c)).collect::<Vec<_>>()
    })
    .await;
    let mut planes = 0;
    match finished {
        Ok(results) => {
            let mut bytes = 0;
            for r in results {
                match r {
                    Ok(f) => {
                        bytes += f.bytes;
                        planes += f.planes;
                    }
                    Err(e) => {
                        state = RunState::Failed;
                        error = Some(format!(
                            "{}finishing the file failed: {e}; `microscoped recover` can repair it",
                            error.map(|e| format!("{e}; ")).unwrap_or_default()
                        ));
                    }
                }
            }
            run.bytes.store(bytes, Ordering::Relaxed);
        }
        Err(_) => {
            state = RunState::Failed;
            error = Some("the writer panicked while finishing the files; `microscoped recover` can repair them".into());
        }
    }
    (state, error, planes)
}

/// If the writer thread panics, the frames still in the ring will never be written: count them
/// dropped and stop the camera, so the books balance and the acquisition ends.
struct AbandonOnPanic {
    ring: Arc<FrameRing>,
    stop: Arc<AtomicBool>,
}

impl Drop for AbandonOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.stop.store(true, Ordering::Relaxed);
            self.ring.abandon();
        }
    }
}

impl Acquisitions {
    /// Starts the thread that drains the run's ring into `writers`. If the ring is gone or the
    /// thread cannot start, ends the run as failed and returns `None`.
    pub(super) fn start_writer(
        &self,
        run: &Run,
        writers: Vec<OmeTiffWriter>,
        indexing: Indexing,
    ) -> Option<(Arc<FrameRing>, WriterThread)> {
        let Some(ring) = run.ring() else {
            self.end(run, RunState::Failed, Some("the frame ring is gone".into()));
            return None;
        };
        let error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let spawned = {
            let (ring, bytes, stop, error) = (
                ring.clone(),
                run.bytes.clone(),
                run.stop.clone(),
                error.clone(),
            );
            std::thread::Builder::new()
                .name(format!("writer-{}", run.id))
                .spawn(move || write_all(ring, writers, indexing, bytes, stop, error))
        };
        match spawned {
            Ok(thread) => Some((ring, WriterThread { thread, error })),
            Err(e) => {
                self.end(
                    run,
                    RunState::Failed,
                    Some(format!("cannot start the writer thread: {e}")),
                );
                None
            }
        }
    }
}
