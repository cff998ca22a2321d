//! The acquisition engine: sequences (a camera free-running into the frame ring) and plans
//! (useq events, one snapped frame each), both drained by a storage writer on a thread of its
//! own into OME-TIFF, each watched by a supervisor task that reports progress and finishes the
//! dataset.
//!
//! An acquisition belongs to the daemon, not to the client that started it: it runs until it has
//! its frames, is stopped, fails, or the daemon shuts down.
//!
//! `mod.rs` holds the public types and the registry of runs ([`Acquisitions`]); `run.rs` the
//! run record and the one way a run starts; `sequence.rs` and `plan_run.rs` what each kind of
//! run does; `writer.rs` the storage side; `dataset.rs` dataset names, folders and metadata.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use microscoped_driver_api::FrameShape;
use thiserror::Error;
use tokio::sync::broadcast;
use tracing::{info, warn};

mod dataset;
mod live;
mod plan_run;
mod run;
mod sequence;
mod stored;
mod writer;

pub use dataset::validate_dataset_name;
pub use live::{LiveMode, LiveStatus, LiveViewer};
pub use plan_run::{mib, PlanCheck, PlanProgress, PlanStatus};
pub use sequence::MAX_FRAMES;
pub use stored::images;

use crate::config::{InstrumentInfo, StorageConfig};
use crate::host::{DeviceHost, HostError};
use crate::presets::Presets;
use crate::ring::{FrameRing, RingCounters};
use run::Run;

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
    /// The datasets found in the data root at start, oldest first, as ended acquisitions.
    past: Mutex<Vec<Status>>,
    /// The next acquisition id.
    next_id: AtomicU64,
    /// Events to every watcher; a watcher that falls behind skips events, never slows us.
    events: broadcast::Sender<Event>,
    /// Refuses new acquisitions once shutdown has begun.
    closing: AtomicBool,
    /// Called with the final status of every acquisition that fails.
    on_failure: Mutex<Option<FailureHook>>,
    /// Each camera's live viewers and live mode. A std mutex: never held across an await.
    live: Mutex<std::collections::HashMap<String, live::LiveCam>>,
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
            past: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            events,
            closing: AtomicBool::new(false),
            on_failure: Mutex::new(None),
            live: Mutex::new(Default::default()),
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

    fn past(&self) -> std::sync::MutexGuard<'_, Vec<Status>> {
        self.0.past.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A dataset found at start with id `id` (0: the most recent, when nothing ran since).
    fn find_past(&self, id: u64) -> Option<Status> {
        let past = self.past();
        if id == 0 {
            return if self.runs().is_empty() {
                past.last().cloned()
            } else {
                None
            };
        }
        past.iter().find(|s| s.id == id).cloned()
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

    /// Every dataset found at start, then every acquisition since, oldest first.
    pub fn list(&self) -> Vec<Status> {
        let mut all = self.past().clone();
        all.extend(self.runs().iter().map(|r| r.status()));
        all
    }

    /// The acquisitions started since the daemon did that have not ended, and the last `ended`
    /// that have, oldest first: what metrics report run by run, a bounded set however long
    /// the daemon runs (datasets found at start are not runs of this daemon, and are left out).
    pub fn recent(&self, ended: usize) -> Vec<Status> {
        let runs = self.runs().clone();
        let mut keep_ended = ended;
        let mut out: Vec<Status> = runs
            .iter()
            .rev()
            .filter(|r| {
                if !*r.done.borrow() {
                    return true;
                }
                let keep = keep_ended > 0;
                keep_ended = keep_ended.saturating_sub(1);
                keep
            })
            .map(|r| r.status())
            .collect();
        out.reverse();
        out
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
        if let Some(s) = self.find_past(id) {
            return Ok(s);
        }
        Ok(self.find(id)?.status())
    }

    /// The acquisition holding `camera` now (not a paused plan, which lets the camera go): the
    /// one live view shows.
    fn camera_run(&self, camera: &str) -> Option<Arc<Run>> {
        self.runs()
            .iter()
            .rev()
            .find(|r| r.camera == camera && r.holds_camera())
            .cloned()
    }

    /// The ring of the acquisition running on `camera` and its bit depth, for live view.
    pub(super) fn live_ring(&self, camera: &str) -> Option<(Arc<FrameRing>, u32)> {
        self.camera_run(camera)
            .and_then(|r| Some((r.ring()?, r.bit_depth)))
    }

    /// Asks acquisition `id` (0: the most recent) to stop and waits until its file is finished.
    pub async fn stop(&self, id: u64) -> Result<Status, AcqError> {
        // A dataset from before the daemon started has ended: stopping it changes nothing.
        if let Some(s) = self.find_past(id) {
            return Ok(s);
        }
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

    /// Stops every running acquisition and live mode and waits until their files are finished
    /// and their cameras free (shutdown).
    pub async fn stop_all(&self) {
        self.0.closing.store(true, Ordering::Relaxed);
        self.stop_live().await;
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

    fn end(&self, run: &Run, state: RunState, error: Option<String>) {
        // The ring's memory goes back now (the supervisor and the writer have let go of theirs;
        // live views hold one only while they copy a frame); its counters stay with the run.
        let ring = run.ring.lock().unwrap_or_else(|e| e.into_inner()).take();
        let c = ring.map(|r| r.counters()).unwrap_or_default();
        {
            let mut p = run.progress.lock().unwrap_or_else(|e| e.into_inner());
            p.state = state;
            p.error = error.clone();
            p.ended = Some(run.started.elapsed());
            p.final_counters = Some(c);
        }
        // Before the watchers hear of the end, so that what they find on disk says so too.
        stored::write_summary(run);
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
}
