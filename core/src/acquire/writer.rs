//! The storage side of a run: a thread of its own drains the ring into the run's OME-TIFF
//! files, and the supervisor finishes them once the ring is closed.
//!
//! A plan has a file per stage position and grid tile, each with its sidecar: more files than
//! a process may have open (a 30 x 20 grid is 1,200 descriptors). The writer keeps at most a
//! pool's worth open ([`Pool`]), sized by the plan's check from the descriptors the daemon
//! has left ([`open_files_for`]): a file is closed when every plane it was laid out for is in
//! it, or when the pool is full and it is the one written to longest ago; a position the plan
//! comes back to (the next time point) opens its file again and appends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::run::Run;
use super::{AcqError, Acquisitions, RunState};
use crate::ring::FrameRing;
use crate::storage::{Counters, OmeTiffWriter, PlaneMeta};

/// Descriptors one open file of a run takes: the OME-TIFF and its sidecar.
pub(super) const FDS_PER_FILE: u64 = 2;
/// Descriptors a plan leaves to everything else while it runs: client connections, `ReadPlane`
/// opening files (a file and its sidecar each), finishing files, summaries, the audit log.
pub(super) const FDS_KEPT: u64 = 32;
/// The most files a run keeps open however many descriptors are left: plans up to this many
/// positions never close a file before it is complete, and a bigger one leaves the rest of
/// the limit to others.
pub(super) const MAX_OPEN_FILES: u32 = 64;

/// How many of a plan's `files` it may keep open, from the descriptors the daemon has left
/// (its `RLIMIT_NOFILE` soft limit less those open now): what is left after [`FDS_KEPT`],
/// [`FDS_PER_FILE`] a file, at most [`MAX_OPEN_FILES`] and `files`. Refused
/// (`FAILED_PRECONDITION`: the plan is fine, the daemon's state is not) when not even one file
/// fits: whatever its size, a plan writes to one file at a time. Where the limit or the open
/// descriptors cannot be read, the pool is as large as allowed.
pub(super) fn open_files_for(files: u32) -> Result<u32, AcqError> {
    let wanted = files.clamp(1, MAX_OPEN_FILES);
    let Some((limit, open)) = descriptors() else {
        return Ok(wanted);
    };
    let left = limit.saturating_sub(open);
    let fit = left.saturating_sub(FDS_KEPT) / FDS_PER_FILE;
    if fit == 0 {
        return Err(AcqError::Precondition(format!(
            "the daemon has only {left} file descriptors left (limit {limit}, {open} open): a plan needs {FDS_PER_FILE} for the file it writes and its sidecar, beside {FDS_KEPT} kept for clients and reading data; raise the daemon's open-file limit (LimitNOFILE= in its service unit, or ulimit -n)"
        )));
    }
    Ok(wanted.min(fit.min(u64::from(u32::MAX)) as u32))
}

/// The process's open-file soft limit and the descriptors it has open now, on Linux.
fn descriptors() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let limit = if lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_cur
    };
    // The listing's own descriptor is among those it lists.
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some((limit, open.saturating_sub(1)))
}

/// A run's files with at most `cap` of them open: the one written to longest ago is closed
/// to make room, and a complete file is closed at once.
pub(super) struct Pool {
    /// Every file of the run, by index; closed ones keep their state.
    writers: Vec<OmeTiffWriter>,
    /// The open ones, written to longest ago first. Allocated once: the frame path does not
    /// allocate.
    open: VecDeque<usize>,
    /// The most files open at once.
    cap: usize,
    /// Whether a file is closed once it holds every plane laid out for it: a plan's layout
    /// is what it will write, a sequence's T is only what was asked (1 for one that runs until
    /// stopped), and its one file stays open.
    close_complete: bool,
}

impl Pool {
    /// A pool over `writers`, of which those still open count against `cap` (at least 1);
    /// files are laid out as `indexing` says.
    pub(super) fn new(mut writers: Vec<OmeTiffWriter>, cap: usize, indexing: Indexing) -> Self {
        let cap = cap.max(1);
        let mut open = VecDeque::with_capacity(cap + 1);
        for (i, w) in writers.iter_mut().enumerate() {
            if w.is_open() {
                if open.len() < cap {
                    open.push_back(i);
                } else {
                    w.close();
                }
            }
        }
        Self {
            writers,
            open,
            cap,
            close_complete: indexing == Indexing::Plan,
        }
    }

    /// Writes a plane to file `i`, opening it (and closing another to make room) if need be.
    fn write_plane(&mut self, i: usize, data: &[u8], plane: &PlaneMeta) -> std::io::Result<()> {
        if let Some(at) = self.open.iter().position(|&o| o == i) {
            self.open.remove(at);
        } else if !self.writers[i].is_open() {
            while self.open.len() >= self.cap {
                if let Some(oldest) = self.open.pop_front() {
                    self.writers[oldest].close();
                }
            }
        }
        let w = &mut self.writers[i];
        let result = w.write_plane(data, plane);
        if w.is_open() {
            if self.close_complete && w.is_complete() {
                // Nothing more comes for it: the descriptors are better spent on the next.
                w.close();
            } else {
                self.open.push_back(i);
            }
        }
        result
    }

    /// Bytes in all the files.
    pub(super) fn bytes(&self) -> u64 {
        self.writers.iter().map(|w| w.bytes()).sum()
    }

    /// The files, to finish.
    pub(super) fn into_writers(self) -> Vec<OmeTiffWriter> {
        self.writers
    }
}

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
    mut files: Pool,
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
    let mut done_bytes: Vec<u64> = files.writers.iter().map(|w| w.bytes()).collect();
    let mut total: u64 = done_bytes.iter().sum();
    let mut last = 0;
    while let Some(result) = ring.consume(|slot| {
        let m = &slot.meta;
        let t0 = *first_time.get_or_insert(m.host_time_s);
        let (file, the_t, the_c, the_z) = match indexing {
            Indexing::Sequence => (
                0,
                files.writers[0].planes().min(u32::MAX as u64) as u32,
                0,
                0,
            ),
            Indexing::Plan => (m.index.p as usize, m.index.t, m.index.c, m.index.z),
        };
        last = file.min(files.writers.len() - 1);
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
        files.write_plane(last, slot.bytes(), &plane)
    }) {
        match result {
            Ok(()) => {
                let now = files.writers[last].bytes();
                total += now - done_bytes[last];
                done_bytes[last] = now;
                bytes.store(total, Ordering::Relaxed);
            }
            Err(e) => {
                let w = &files.writers[last];
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
    files.into_writers()
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
    let finished = crate::priority::on_frame_path(format!("finish-{}", run.id), move || {
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
        Err(e) => {
            state = RunState::Failed;
            error = Some(format!(
                "finishing the files failed: {e}; `microscoped recover` can repair them"
            ));
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
        files: Pool,
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
                .spawn(move || {
                    crate::priority::enter_frame_path();
                    write_all(ring, files, indexing, bytes, stop, error)
                })
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
