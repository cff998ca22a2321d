//! The acquisition engine for sequences: a camera free-running into the frame ring on its own
//! device thread, the storage writer draining the ring into OME-TIFF on a thread of its own, and
//! a supervisor task that reports progress and finishes the dataset.
//!
//! An acquisition belongs to the daemon, not to the client that started it: it runs until it has
//! its frames, is stopped, fails, or the daemon shuts down.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use microscoped_driver_api::{AnyDevice, DeviceError, DeviceKind, FrameShape};
use thiserror::Error;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

mod plan_run;

pub use plan_run::{PlanCheck, PlanProgress, PlanStatus};

use crate::config::{InstrumentInfo, StorageConfig};
use crate::host::{DeviceHandle, DeviceHost, HostError};
use crate::presets::Presets;
use crate::ring::{AcqIndex, FrameMeta, FrameRing, Produced, RingCounters, StageCoords};
use crate::storage::{
    Counters, DatasetMeta, InstrumentMeta, LaserMeta, ObjectiveMeta, OmeTiffWriter, PlaneMeta,
    MAX_LIGHTS,
};

/// The most frames one sequence may ask for: beyond this a request is a mistake, not a plan.
pub const MAX_FRAMES: u64 = 10_000_000;
/// How often progress events go out while an acquisition runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// What the devices around the camera read back, refreshed while an acquisition runs and
/// copied into every frame's metadata.
#[derive(Debug, Clone, Copy, Default)]
struct Readback {
    /// The first XY stage and first single-axis stage.
    stage: StageCoords,
    /// Each laser of the dataset's instrument, in order.
    light_mw: [Option<f32>; MAX_LIGHTS],
}

/// How often stage positions and laser powers are refreshed for the frames' metadata.
const POSITIONS_EVERY: Duration = Duration::from_millis(200);

/// Why an acquisition could not start or be found.
#[derive(Debug, Error)]
pub enum AcqError {
    /// The request is malformed (count, name).
    #[error("{0}")]
    Invalid(String),
    /// A plan that cannot run on this instrument; the error names the field.
    #[error("{0}")]
    Plan(crate::plan::PlanError),
    /// Not enough disk for the dataset.
    #[error("{0}")]
    NoSpace(String),
    /// A dataset of that name exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// No acquisition has that id.
    #[error("{0}")]
    NotFound(String),
    /// The daemon is not in a state to do it (data root unusable, shutting down).
    #[error("{0}")]
    Precondition(String),
    /// A device refused or failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// Where an acquisition is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Taking frames.
    Running,
    /// Took every frame asked for.
    Finished,
    /// Stopped early by a client or by shutdown.
    Stopped,
    /// Ended by an error.
    Failed,
    /// A plan paused between events.
    Paused,
}

/// A snapshot of one acquisition, for status replies and events.
#[derive(Debug, Clone)]
pub struct Status {
    /// The acquisition's id, from 1.
    pub id: u64,
    /// The dataset name.
    pub name: String,
    /// The user who started it: the dataset is in their folder and theirs to read.
    pub owner: String,
    /// The camera.
    pub camera: String,
    /// Where it is in its life.
    pub state: RunState,
    /// Frames asked for; `None` until stopped.
    pub frames_planned: Option<u64>,
    /// Frame counters.
    pub counters: RingCounters,
    /// Bytes in the file (all the files, for a plan).
    pub bytes: u64,
    /// The OME-TIFF file; for a plan, the dataset folder (its files are in `plan`).
    pub path: PathBuf,
    /// Why it failed.
    pub error: Option<String>,
    /// Time since start, or its whole duration once ended.
    pub elapsed: Duration,
    /// Ring slots.
    pub ring_slots: usize,
    /// Frame shape.
    pub shape: FrameShape,
    /// For plans: where the run stands.
    pub plan: Option<PlanStatus>,
}

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An acquisition started.
    Started,
    /// Counters moved on.
    Progress,
    /// An acquisition ended without error (finished or stopped).
    Finished,
    /// An acquisition ended with an error.
    Failed,
}

/// A daemon event.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub time: SystemTime,
    /// The acquisition's status at that moment.
    pub status: Status,
}

/// What the supervisor records while an acquisition runs.
struct Progress {
    state: RunState,
    error: Option<String>,
    ended: Option<Duration>,
    /// The counters as they were when the ring was dropped.
    final_counters: Option<RingCounters>,
}

/// One acquisition.
struct Run {
    /// Its id.
    id: u64,
    /// The dataset name.
    name: String,
    /// The user who started it.
    owner: String,
    /// The camera.
    camera: String,
    /// The OME-TIFF file; for a plan, the dataset folder.
    path: PathBuf,
    /// Frames asked for.
    frames_planned: Option<u64>,
    /// The ring its frames go through, while it runs; dropped at the end so a finished
    /// acquisition does not keep its memory.
    ring: Mutex<Option<Arc<FrameRing>>>,
    /// Ring slots, kept for the status once the ring is gone.
    ring_slots: usize,
    /// Frame shape.
    shape: FrameShape,
    /// Significant bits per pixel, for live view.
    bit_depth: u32,
    /// Set to ask the camera loop to end.
    stop: Arc<AtomicBool>,
    /// Bytes in the file, updated by the writer thread.
    bytes: Arc<AtomicU64>,
    /// When it started.
    started: Instant,
    /// State and error. A std mutex: never held across an await.
    progress: Mutex<Progress>,
    /// Becomes true once the dataset is finished and the final state set.
    done: watch::Sender<bool>,
    /// For plans: the plan's own state.
    plan: Option<Arc<plan_run::PlanRun>>,
}

impl Run {
    fn ring(&self) -> Option<Arc<FrameRing>> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn counters(&self) -> RingCounters {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        match (p.final_counters, self.ring()) {
            (Some(c), _) => c,
            (None, Some(r)) => r.counters(),
            (None, None) => RingCounters::default(),
        }
    }

    fn status(&self) -> Status {
        let counters = self.counters();
        let plan = self.plan.as_ref().map(|p| p.status());
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let state = match (&plan, p.state) {
            (Some(plan), RunState::Running) if plan.paused => RunState::Paused,
            (_, s) => s,
        };
        Status {
            id: self.id,
            name: self.name.clone(),
            owner: self.owner.clone(),
            camera: self.camera.clone(),
            state,
            frames_planned: self.frames_planned,
            counters,
            bytes: self.bytes.load(Ordering::Relaxed),
            path: self.path.clone(),
            error: p.error.clone(),
            elapsed: p.ended.unwrap_or_else(|| self.started.elapsed()),
            ring_slots: self.ring_slots,
            shape: self.shape,
            plan,
        }
    }
}

struct Inner {
    /// The devices.
    host: DeviceHost,
    /// Data root and ring sizing.
    storage: StorageConfig,
    /// For the OME metadata (objective device) and the field of view.
    instrument: InstrumentInfo,
    /// The config's presets, for plans.
    presets: Presets,
    /// Every acquisition since start, oldest first. A std mutex: never held across an await.
    runs: Mutex<Vec<Arc<Run>>>,
    /// The next acquisition id.
    next_id: AtomicU64,
    /// Events to every watcher; a watcher that falls behind skips events, never slows us.
    events: broadcast::Sender<Event>,
    /// Refuses new acquisitions once shutdown has begun.
    closing: AtomicBool,
    /// Called with the final status of every acquisition that fails.
    on_failure: Mutex<Option<FailureHook>>,
}

/// What the engine calls when an acquisition fails (see [`Acquisitions::on_failure`]).
pub type FailureHook = Arc<dyn Fn(Status) + Send + Sync>;

/// The acquisition engine: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Acquisitions(Arc<Inner>);

impl Acquisitions {
    /// An engine over the given devices and storage settings.
    pub fn new(
        host: DeviceHost,
        storage: StorageConfig,
        instrument: InstrumentInfo,
        presets: Presets,
    ) -> Self {
        let (events, _) = broadcast::channel(256);
        Self(Arc::new(Inner {
            host,
            storage,
            instrument,
            presets,
            runs: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            events,
            closing: AtomicBool::new(false),
            on_failure: Mutex::new(None),
        }))
    }

    /// Sets what happens when an acquisition fails: the daemon turns lasers off and stops
    /// stages (see `lib.rs`). Called from the supervisor once the file is finished.
    pub fn on_failure(&self, hook: FailureHook) {
        *self.0.on_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Run>>> {
        self.0.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes to the daemon's events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.events.subscribe()
    }

    fn emit(&self, kind: EventKind, run: &Run) {
        // No receivers is fine: nobody is watching.
        let _ = self.0.events.send(Event {
            kind,
            time: SystemTime::now(),
            status: run.status(),
        });
    }

    /// Every acquisition since start, oldest first.
    pub fn list(&self) -> Vec<Status> {
        self.runs().iter().map(|r| r.status()).collect()
    }

    fn find(&self, id: u64) -> Result<Arc<Run>, AcqError> {
        let runs = self.runs();
        let found = if id == 0 {
            runs.last()
        } else {
            runs.iter().find(|r| r.id == id)
        };
        found.cloned().ok_or_else(|| {
            AcqError::NotFound(if id == 0 {
                "no acquisition has run yet".into()
            } else {
                format!("no acquisition has id {id}")
            })
        })
    }

    /// The status of acquisition `id` (0: the most recent).
    pub fn get(&self, id: u64) -> Result<Status, AcqError> {
        Ok(self.find(id)?.status())
    }

    /// The ring of the acquisition running on `camera` and its bit depth, for live view.
    pub fn live_ring(&self, camera: &str) -> Option<(Arc<FrameRing>, u32)> {
        self.runs()
            .iter()
            .rev()
            .find(|r| r.camera == camera && !*r.done.borrow())
            .and_then(|r| Some((r.ring()?, r.bit_depth)))
    }

    /// Asks acquisition `id` (0: the most recent) to stop and waits until its file is finished.
    pub async fn stop(&self, id: u64) -> Result<Status, AcqError> {
        let run = self.find(id)?;
        run.stop.store(true, Ordering::Relaxed);
        if let Some(p) = &run.plan {
            // A paused plan waits for a change of its pause flag: wake it to see the stop.
            p.wake();
        }
        let mut done = run.done.subscribe();
        // wait_for only fails if the sender is gone, which means it is done too.
        let _ = done.wait_for(|d| *d).await;
        Ok(run.status())
    }

    /// Stops every running acquisition and waits until their files are finished (shutdown).
    pub async fn stop_all(&self) {
        self.0.closing.store(true, Ordering::Relaxed);
        let running: Vec<_> = self
            .runs()
            .iter()
            .filter(|r| !*r.done.borrow())
            .cloned()
            .collect();
        for run in running {
            info!(id = run.id, "stopping acquisition for shutdown");
            let _ = self.stop(run.id).await;
        }
    }

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
        let cam = self.0.host.camera(camera)?.clone();
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let claim = cam.claim(&format!("acquisition {id} ({name})"))?;

        let CameraSetup {
            shape,
            exposure_ms,
            bit_depth,
            binning,
        } = camera_setup(&cam, &claim).await?;
        let physical_size_um =
            crate::presets::pixel_size_um(&self.0.instrument, &self.0.host, &cam, Some(&claim))
                .await
                .map(|um| um * binning as f64);
        self.check_ring_memory(shape)?;

        let dir = self.dataset_dir(owner, &name)?;
        let path = dir.join(format!("{name}.ome.tiff"));
        let meta = DatasetMeta {
            name: name.clone(),
            width: shape.width,
            height: shape.height,
            pixel_type: shape.pixel_type,
            significant_bits: bit_depth,
            size_t: frames.map_or(1, |n| n.min(u32::MAX as u64) as u32),
            size_c: 1,
            size_z: 1,
            dimension_order: "XYCZT".into(),
            physical_size_um,
            channels: vec![cam.name().to_owned()],
            instrument: self.instrument_meta(cam.name()).await,
            acquisition_date: SystemTime::now(),
        };
        let writer = OmeTiffWriter::create(&path, meta).map_err(|e| {
            let _ = std::fs::remove_dir(&dir);
            AcqError::Precondition(format!("cannot create {}: {e}", path.display()))
        })?;

        let ring = self.alloc_ring(shape).await?;
        let run = Arc::new(Run {
            id,
            name,
            owner: owner.to_owned(),
            camera: cam.name().to_owned(),
            path,
            frames_planned: frames,
            ring_slots: ring.capacity(),
            shape,
            bit_depth,
            ring: Mutex::new(Some(ring)),
            stop: Arc::new(AtomicBool::new(false)),
            bytes: Arc::new(AtomicU64::new(writer.bytes())),
            started: Instant::now(),
            progress: Mutex::new(Progress {
                state: RunState::Running,
                error: None,
                ended: None,
                final_counters: None,
            }),
            done: watch::channel(false).0,
            plan: None,
        });
        self.runs().push(run.clone());
        info!(id, name = %run.name, camera = %run.camera, slots = run.ring_slots, path = %run.path.display(), "acquisition started");
        self.emit(EventKind::Started, &run);
        let status = run.status();
        tokio::spawn(self.clone().supervise(run, cam, claim, writer, exposure_ms));
        Ok(status)
    }

    /// Refuses a ring that would not fit in memory: touching more than the kernel has would
    /// get the daemon killed, not the request refused.
    fn check_ring_memory(&self, shape: FrameShape) -> Result<(), AcqError> {
        let s = &self.0.storage;
        let ring_bytes =
            FrameRing::slot_count(shape, s.ring_bytes, s.min_slots) as u64 * (shape.bytes() as u64);
        match available_memory() {
            Some(available) if ring_bytes > available / 10 * 8 => Err(AcqError::Precondition(format!(
                "the frame ring needs {} MiB but only {} MiB of memory is available: lower storage.ring_mb or storage.min_slots",
                ring_bytes >> 20,
                available >> 20
            ))),
            _ => Ok(()),
        }
    }

    /// Allocates (and pre-faults) a ring off the async runtime.
    async fn alloc_ring(&self, shape: FrameShape) -> Result<Arc<FrameRing>, AcqError> {
        let s = self.0.storage.clone();
        tokio::task::spawn_blocking(move || {
            FrameRing::new(shape, s.ring_bytes, s.min_slots, s.overflow)
        })
        .await
        .map(Arc::new)
        .map_err(|e| AcqError::Precondition(format!("cannot allocate the frame ring: {e}")))
    }

    /// A name for a dataset the client did not name: `prefix`, the time, and a counter if
    /// taken.
    fn fresh_name(&self, owner: &str, prefix: &str) -> String {
        let base = format!("{prefix}-{}", utc_stamp(SystemTime::now()));
        let root = self.0.storage.data_root.join(owner);
        (0..)
            .map(|i| {
                if i == 0 {
                    base.clone()
                } else {
                    format!("{base}-{i}")
                }
            })
            .find(|n| !root.join(n).exists())
            .unwrap_or(base)
    }

    /// Makes the dataset's folder, `data_root/<owner>/<name>`; never reuses an existing one.
    ///
    /// The owner's folder must be a real folder, not a symbolic link someone planted to send
    /// datasets elsewhere; the dataset folder is made with a single `mkdir` of that exact path,
    /// which fails rather than following a link or reusing what is there.
    fn dataset_dir(&self, owner: &str, name: &str) -> Result<PathBuf, AcqError> {
        // Owner names come from the config, which checks them; checked again because a path
        // is made of it.
        validate_dataset_name(owner).map_err(AcqError::Precondition)?;
        let root = &self.0.storage.data_root;
        std::fs::create_dir_all(root).map_err(|e| {
            AcqError::Precondition(format!(
                "cannot use the data root {}: {e}; fix its permissions or set storage.data_root",
                root.display()
            ))
        })?;
        let user_dir = root.join(owner);
        match std::fs::create_dir(&user_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(AcqError::Precondition(format!(
                    "cannot create the folder {} for {owner}'s datasets: {e}",
                    user_dir.display()
                )))
            }
        }
        match std::fs::symlink_metadata(&user_dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                warn!(path = %user_dir.display(), "a user's dataset folder is not a real folder; refusing to write there");
                return Err(AcqError::Precondition(format!(
                    "{} is not a real folder (a link or a file): the daemon does not write \
                     datasets there; an admin must remove it",
                    user_dir.display()
                )));
            }
            Err(e) => {
                return Err(AcqError::Precondition(format!(
                    "cannot use the folder {}: {e}",
                    user_dir.display()
                )))
            }
        }
        let dir = user_dir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(AcqError::AlreadyExists(format!(
                    "dataset {name:?} already exists in {}; choose another name",
                    user_dir.display()
                )))
            }
            Err(e) => Err(AcqError::Precondition(format!(
                "cannot create the dataset folder {}: {e}",
                dir.display()
            ))),
        }
    }

    /// The instrument as OME describes it, read from the devices now; best effort, since a
    /// faulted laser must not stop an acquisition that does not use it.
    async fn instrument_meta(&self, camera: &str) -> InstrumentMeta {
        let mut lasers = Vec::new();
        // Per-plane power is kept for a fixed number of lasers: the frame path stays Copy.
        for l in self.0.host.of_kind(DeviceKind::Laser).take(MAX_LIGHTS) {
            if let Ok((wavelength_nm, power_mw)) = l
                .with_laser(|l| Ok((l.wavelength_nm()?, l.power_setpoint_mw()?)))
                .await
            {
                lasers.push(LaserMeta {
                    name: l.name().to_owned(),
                    wavelength_nm,
                    power_mw,
                });
            }
        }
        let objective = crate::presets::objective_label(&self.0.instrument, &self.0.host)
            .await
            .map(|label| objective_meta(&label));
        InstrumentMeta {
            detector_model: camera.to_owned(),
            lasers,
            objective,
        }
    }

    /// Runs one acquisition to its end: the camera loop on the camera's thread, the writer on
    /// its own, progress and stage positions from here; then finishes the file.
    async fn supervise(
        self,
        run: Arc<Run>,
        cam: DeviceHandle,
        claim: crate::host::Claim,
        writer: OmeTiffWriter,
        exposure_ms: f64,
    ) {
        let lasers: Vec<String> = writer
            .meta()
            .instrument
            .lasers
            .iter()
            .map(|l| l.name.clone())
            .collect();
        let Some((ring, writer)) = self.start_writer(&run, vec![writer], Indexing::Sequence) else {
            return;
        };
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
        self.end(&run, state, error);
    }

    /// Starts the thread that drains the run's ring into `writers`. If the ring is gone or the
    /// thread cannot start, ends the run as failed and returns `None`.
    fn start_writer(
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

    fn end(&self, run: &Run, state: RunState, error: Option<String>) {
        // The ring's memory goes back now; its counters stay with the run.
        let ring = run.ring.lock().unwrap_or_else(|e| e.into_inner()).take();
        let c = ring.map(|r| r.counters()).unwrap_or_default();
        {
            let mut p = run.progress.lock().unwrap_or_else(|e| e.into_inner());
            p.state = state;
            p.error = error.clone();
            p.ended = Some(run.started.elapsed());
            p.final_counters = Some(c);
        }
        match &error {
            None => {
                info!(id = run.id, ?state, received = c.received, written = c.written, dropped = c.dropped, path = %run.path.display(), "acquisition ended")
            }
            Some(e) => {
                warn!(id = run.id, received = c.received, written = c.written, dropped = c.dropped, error = %e, "acquisition failed")
            }
        }
        self.emit(
            if state == RunState::Failed {
                EventKind::Failed
            } else {
                EventKind::Finished
            },
            run,
        );
        run.done.send_replace(true);
        if state == RunState::Failed {
            let hook = self
                .0
                .on_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(hook) = hook {
                hook(run.status());
            }
        }
    }

    /// Reads the first XY stage, the first single-axis stage and the power each of `lasers`
    /// emits into the cache the camera loop copies from. A device that does not answer leaves
    /// its entry empty rather than holding up the acquisition.
    async fn refresh_readback(&self, cache: &Mutex<Readback>, lasers: &[String]) {
        let mut light_mw = [None; MAX_LIGHTS];
        for (slot, name) in light_mw.iter_mut().zip(lasers) {
            if let Ok(l) = self.0.host.get(name) {
                *slot = l.with_laser(|l| l.power_mw()).await.ok().map(|p| p as f32);
            }
        }
        let mut coords = StageCoords::default();
        if let Some(xy) = self.0.host.of_kind(DeviceKind::XYStage).next() {
            if let Ok((x, y)) = xy.with_xy_stage(|s| s.position_um()).await {
                coords.x_um = Some(x);
                coords.y_um = Some(y);
            }
        }
        if let Some(z) = self.0.host.of_kind(DeviceKind::Stage).next() {
            coords.z_um = z.with_stage(|s| s.position_um()).await.ok();
        }
        *cache.lock().unwrap_or_else(|e| e.into_inner()) = Readback {
            stage: coords,
            light_mw,
        };
    }
}

/// What an acquisition needs to know of its camera before it starts.
struct CameraSetup {
    shape: FrameShape,
    exposure_ms: f64,
    bit_depth: u32,
    binning: u32,
}

/// Reads the camera's frame shape, exposure, bit depth and binning through the claim.
async fn camera_setup(
    cam: &DeviceHandle,
    claim: &crate::host::Claim,
) -> Result<CameraSetup, HostError> {
    cam.run_claimed(claim, |d| {
        let AnyDevice::Camera(c) = d else {
            return Err(DeviceError::invalid("not a camera"));
        };
        Ok(CameraSetup {
            shape: c.frame_shape()?,
            exposure_ms: c.exposure_ms()?,
            bit_depth: c.bit_depth()?,
            binning: c.binning()?,
        })
    })
    .await
}

/// A frame's metadata as it enters the ring: what the camera said, with the acquisition's
/// exposure when the camera does not report one, and the positions and powers read back.
fn frame_meta(
    info: &microscoped_driver_api::FrameInfo,
    ring: &FrameRing,
    exposure_ms: f64,
    readback: &Readback,
    index: AcqIndex,
) -> FrameMeta {
    FrameMeta {
        seq: 0,
        camera_seq: info.sequence,
        camera_timestamp_us: info.camera_timestamp_us,
        host_time_s: ring.now_s(),
        exposure_ms: if info.exposure_ms > 0.0 {
            info.exposure_ms
        } else {
            exposure_ms
        },
        stage: readback.stage,
        light_mw: readback.light_mw,
        index,
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

/// Bytes of memory the kernel says are available, on Linux.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// How the writer places frames in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Indexing {
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
struct WriterThread {
    thread: std::thread::JoinHandle<Vec<OmeTiffWriter>>,
    error: Arc<Mutex<Option<String>>>,
}

/// Waits for the writer thread and finishes every file it wrote, storing the run's byte count.
/// `decide` turns the writer's error (read once the writer is done) into the run's outcome.
/// Returns the final state and error (a failure to finish turns the run failed) and the planes
/// written in all.
async fn finish_files(
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

// Dataset names are checked in a leaf module, which config (user names) uses as well.
pub use crate::names::validate_dataset_name;

/// An objective as OME describes it, from a turret label such as "60x/1.4 oil".
fn objective_meta(label: &str) -> ObjectiveMeta {
    let mut magnification = None;
    let mut numerical_aperture = None;
    if let Some((mag, rest)) = label.split_once(['x', 'X']) {
        magnification = mag.trim().parse().ok();
        let na = rest
            .trim_start_matches('/')
            .split_whitespace()
            .next()
            .unwrap_or("");
        numerical_aperture = na.parse().ok();
    }
    ObjectiveMeta {
        model: label.to_owned(),
        magnification,
        numerical_aperture,
    }
}

/// "20261122-134501" in UTC, for dataset names: the file metadata's own ISO-8601 time, with
/// the characters a name does not allow left out.
fn utc_stamp(t: SystemTime) -> String {
    let iso = crate::storage::iso8601(t);
    let digits = |r: std::ops::Range<usize>| iso[r].replace([':', '-'], "");
    format!("{}-{}", digits(0..10), digits(11..19))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objective_labels() {
        let o = objective_meta("60x/1.4 oil");
        assert_eq!(
            (o.magnification, o.numerical_aperture),
            (Some(60.0), Some(1.4))
        );
        let o = objective_meta("custom");
        assert_eq!((o.magnification, o.numerical_aperture), (None, None));
    }

    #[test]
    fn utc_stamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_268_701);
        assert_eq!(utc_stamp(t), "20261121-134501");
        assert_eq!(utc_stamp(SystemTime::UNIX_EPOCH), "19700101-000000");
    }
}
