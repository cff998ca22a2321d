//! Plans: a useq `MDASequence` run event by event.
//!
//! The whole plan is checked before anything moves ([`Acquisitions::check_plan`]). A run then
//! claims the camera and, for each event in axis order: applies the channel's preset, sets the
//! exposure, moves the stages and waits for them to settle, waits for the event's time in the
//! time plan (counting the events it could not start on time), reads the stage positions and
//! laser powers back, and snaps one frame into the ring, tagged with its (t, c, z) index and
//! its file. The storage writer sorts frames into one OME-TIFF per stage position (and grid
//! tile). The plan (as useq JSON) and a summary sit beside the files.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use microscoped_driver_api::{AnyDevice, DeviceError, DeviceKind, PropertyType};
use tokio::sync::watch;
use tracing::{info, warn};

use super::run::{frame_meta, Launch, Layout, Readback, Run, Started};
use super::writer::{finish_files, Indexing};
use super::{validate_dataset_name, AcqError, Acquisitions, EventKind, RunState, Status};
use crate::host::{Claim, DeviceHandle};
use crate::plan::{EventIndex, MdaEvent, MdaSequence, PlanLimits, PlanSummary};
use crate::presets::Presets;
use crate::ring::{AcqIndex, FrameRing, Produced};
use crate::storage::{ChannelMeta, DatasetMeta, StageLabel};

/// Bytes of TIFF and OME-XML per plane, on top of its pixels (IFD, sidecar line, XML plane).
const PLANE_OVERHEAD: u64 = 2048;
/// How often a waiting run looks at its stop and pause flags.
const POLL: Duration = Duration::from_millis(20);
/// A time point that starts this much after its due time counts as late.
const LATE_TOLERANCE: Duration = Duration::from_millis(20);
/// How long a run waits for the stages of one event to arrive.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// A plan checked against the instrument: what it amounts to, before anything moves.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCheck {
    /// Events, sizes, duration estimate and warnings.
    pub summary: PlanSummary,
    /// Bytes the dataset will take.
    pub bytes: u64,
    /// Bytes free on the file system of the data root, when known.
    pub free_bytes: Option<u64>,
    /// OME-TIFF files: one per stage position and grid tile.
    pub files: u32,
    /// The most of them the run keeps open at once (each with its sidecar), from the file
    /// descriptors the daemon has left; the others are closed until the plan comes to them.
    pub open_files: u32,
}

/// Where a plan run stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanProgress {
    /// Events whose frame was taken.
    pub events_done: u64,
    /// The event being taken, or the last one once ended.
    pub current: Option<EventIndex>,
    /// Its channel preset.
    pub channel: Option<String>,
    /// Its stage position's name.
    pub position_name: Option<String>,
    /// Time points that started later than the time plan asked.
    pub late_events: u64,
    /// The most any of them was late, in seconds.
    pub max_late_s: f64,
    /// Estimated seconds to the end.
    pub time_left_s: f64,
}

/// A plan run's status.
#[derive(Debug, Clone)]
pub struct PlanStatus {
    /// Progress.
    pub progress: PlanProgress,
    /// Paused between events.
    pub paused: bool,
    /// Events in the plan.
    pub events_total: u64,
    /// The dataset folder.
    pub folder: PathBuf,
    /// Its OME-TIFF files, by file index (position × grid tile).
    pub files: Vec<PathBuf>,
    /// The check made before it started.
    pub check: PlanCheck,
}

/// What a running plan keeps beside the common [`Run`].
pub(super) struct PlanRun {
    check: PlanCheck,
    folder: PathBuf,
    files: Vec<PathBuf>,
    events_total: u64,
    /// Set by PauseAcquisition; the run looks at it between events.
    paused: watch::Sender<bool>,
    /// True while the run stands paused with the camera let go to the people at the
    /// instrument: PauseAcquisition answers once it is.
    holding: watch::Sender<bool>,
    progress: Mutex<PlanProgress>,
}

impl PlanRun {
    pub(super) fn status(&self) -> PlanStatus {
        PlanStatus {
            progress: self.progress().clone(),
            paused: *self.paused.borrow(),
            events_total: self.events_total,
            folder: self.folder.clone(),
            files: self.files.clone(),
            check: self.check.clone(),
        }
    }

    /// Whether the run stands paused with the camera let go.
    pub(super) fn holding(&self) -> bool {
        *self.holding.borrow()
    }

    /// Wakes a run waiting on its pause flag (to see a stop).
    pub(super) fn wake(&self) {
        self.paused.send_modify(|_| {});
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, PlanProgress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the checks found out about the instrument, for starting the run.
struct Checked {
    check: PlanCheck,
    events: Vec<MdaEvent>,
}

impl Acquisitions {
    /// Checks a plan against the instrument without moving anything, exactly as
    /// [`start_plan`](Self::start_plan) checks it before it starts (the same code, so the same
    /// verdict and message): the dataset name (free in `owner`'s folder), presets, stage travel
    /// (soft limits included), exposure range, the size of the data against free disk, the
    /// frame ring against memory, and how many files it may keep open against the file
    /// descriptors the daemon has left.
    pub async fn check_plan(
        &self,
        owner: &str,
        plan: &MdaSequence,
        camera: &str,
        name: Option<&str>,
    ) -> Result<PlanCheck, AcqError> {
        Ok(self.checked(owner, plan, camera, name).await?.check)
    }

    /// The one check of a plan, for [`check_plan`](Self::check_plan) and
    /// [`start_plan`](Self::start_plan).
    async fn checked(
        &self,
        owner: &str,
        plan: &MdaSequence,
        camera: &str,
        name: Option<&str>,
    ) -> Result<Checked, AcqError> {
        if let Some(n) = name {
            validate_dataset_name(n).map_err(AcqError::Invalid)?;
            self.check_name_free(owner, n)?;
        }
        let cam = self.0.host.camera(camera)?.clone();
        let (shape, binning, exposure) = cam
            .with_camera(|c| Ok((c.frame_shape()?, c.binning()?, c.exposure_ms()?)))
            .await?;
        let exposure_range_ms = cam
            .properties()
            .iter()
            .find(|p| p.name == "exposure_ms")
            .and_then(|p| match p.ty {
                PropertyType::Float { min, max } => Some((min, max)),
                _ => None,
            });
        // Relative plans without a position count from where the stages are now.
        let mut plan = plan.clone();
        let (xy_travel_um, z_travel_um) = (
            match self.0.host.of_kind(DeviceKind::XYStage).next() {
                Some(xy) => {
                    let (travel, here) = xy
                        .with_xy_stage(|s| Ok((s.travel_um()?, s.position_um()?)))
                        .await?;
                    plan.origin.xy = Some(here);
                    Some(travel)
                }
                None => None,
            },
            match self.0.host.of_kind(DeviceKind::Stage).next() {
                Some(z) => {
                    let (travel, here) = z
                        .with_stage(|s| Ok((s.travel_um()?, s.position_um()?)))
                        .await?;
                    plan.origin.z = Some(here);
                    Some(travel)
                }
                None => None,
            },
        );
        let plan = &plan;
        let limits = PlanLimits {
            presets: self.0.presets.names(),
            xy_travel_um,
            z_travel_um,
            exposure_range_ms,
            current_exposure_ms: Some(exposure),
        };
        let fov = crate::presets::pixel_size_um(&self.0.instrument, &self.0.host, &cam, None)
            .await
            .map(|um| {
                let px = um * f64::from(binning);
                (px * f64::from(shape.width), px * f64::from(shape.height))
            });
        // Preset values (laser powers under their caps, ...) were checked against the devices
        // when the daemon started; `validate` checks that the presets exist.
        let (summary, events) = plan.validate_events(&limits, fov).map_err(AcqError::Plan)?;
        let files = summary.files() as u32;
        let bytes = events.len() as u64 * (shape.bytes() as u64 + PLANE_OVERHEAD)
            + u64::from(files) * 64 * 1024;
        let free_bytes = free_bytes(&self.0.storage.data_root);
        if let Some(free) = free_bytes {
            if bytes > free {
                return Err(AcqError::NoSpace(format!(
                    "the plan needs about {} but only {} are free under {}; free some space or shorten the plan",
                    mib(bytes),
                    mib(free),
                    self.0.storage.data_root.display()
                )));
            }
        }
        self.check_ring_memory(shape)?;
        let open_files = super::writer::open_files_for(files)?;
        Ok(Checked {
            check: PlanCheck {
                summary,
                bytes,
                free_bytes,
                files,
                open_files,
            },
            events,
        })
    }

    /// Checks a plan, then starts it for user `owner` as a new acquisition into a dataset
    /// called `name` (or one named after the time) in the owner's folder under the data root.
    /// `camera` empty: the only camera.
    pub async fn start_plan(
        &self,
        owner: &str,
        plan: MdaSequence,
        camera: &str,
        name: Option<String>,
    ) -> Result<Status, AcqError> {
        if self.0.closing.load(Ordering::Relaxed) {
            return Err(AcqError::Precondition("the daemon is shutting down".into()));
        }
        let Checked { check, events } = self.checked(owner, &plan, camera, name.as_deref()).await?;
        let name = name.unwrap_or_else(|| self.fresh_name(owner, "mda"));
        let prep = self.prepare(owner, camera, name).await?;
        let sizes = check.summary.sizes;
        let n_grid = sizes.g.max(1);
        let mut channels: Vec<ChannelMeta> = Vec::with_capacity(plan.channels.len().max(1));
        for c in &plan.channels {
            channels.push(self.preset_channel(&c.group, &c.config).await);
        }
        if channels.is_empty() {
            channels.push(self.current_channel(prep.cam.name()).await);
        }
        let layout = Layout {
            size_t: sizes.t.max(1) as u32,
            size_c: channels.len() as u32,
            size_z: sizes.z.max(1) as u32,
            dimension_order: dimension_order(&plan),
            channels,
            physical_size_z_um: plan.z_plan.as_ref().and_then(|z| z.spacing_um()),
        };
        let mut labels = stage_labels(&plan, &events, check.files as usize, n_grid);
        // One file per stage position and grid tile.
        let files: Vec<(PathBuf, DatasetMeta)> = (0..check.files as usize)
            .map(|f| {
                let (p, g) = (f / n_grid, f % n_grid);
                let name = &prep.name;
                let stem = match (check.files, sizes.g) {
                    (1, _) => name.clone(),
                    (_, 0) => format!("{name}_p{p:03}"),
                    _ => format!("{name}_p{p:03}_g{g:03}"),
                };
                let image_name = plan
                    .stage_positions
                    .get(p)
                    .and_then(|s| s.name.clone())
                    .map_or_else(|| stem.clone(), |n| format!("{stem} ({n})"));
                let path = prep.dir.join(format!("{stem}.ome.tiff"));
                let mut meta = prep.dataset_meta(image_name, &layout);
                meta.stage_label = labels.get_mut(f).and_then(Option::take);
                (path, meta)
            })
            .collect();
        let paths = files.iter().map(|(path, _)| path.clone()).collect();
        let files = prep.create_files(files, check.open_files, Indexing::Plan)?;
        let plan_json = serde_json::to_string_pretty(&plan.to_useq_json()).unwrap_or_default();
        if let Err(e) = std::fs::write(prep.dir.join("plan.useq.json"), plan_json) {
            warn!(error = %e, "cannot save the plan beside the dataset");
        }

        let events_total = events.len() as u64;
        let plan_run = Arc::new(PlanRun {
            events_total,
            folder: prep.dir.clone(),
            files: paths,
            paused: watch::channel(false).0,
            holding: watch::channel(false).0,
            progress: Mutex::new(PlanProgress {
                time_left_s: check.summary.duration_s,
                ..Default::default()
            }),
            check,
        });
        let launch = Launch {
            path: prep.dir.clone(),
            frames_planned: Some(events_total),
            files,
            indexing: Indexing::Plan,
            plan: Some(plan_run.clone()),
        };
        let (status, started) = self.launch(prep, launch).await?;
        info!(id = status.id, name = %status.name, events = events_total, files = plan_run.files.len(), folder = %status.path.display(), "plan started");
        if let Some(started) = started {
            tokio::spawn(
                self.clone()
                    .supervise_plan(started, plan_run, events, n_grid),
            );
        }
        Ok(status)
    }

    /// Pauses (`true`) or resumes a plan. A pause answers once the run stands between two
    /// events with the camera let go (the frame being taken is finished first), so what the
    /// caller does next with the devices is not refused as busy.
    pub async fn set_paused(&self, id: u64, paused: bool) -> Result<Status, AcqError> {
        if let Some(s) = self.find_past(id) {
            return Err(AcqError::Precondition(format!(
                "acquisition {} ({}) ended before the daemon started",
                s.id, s.name
            )));
        }
        let run = self.find(id)?;
        let Some(plan) = &run.plan else {
            return Err(AcqError::Precondition(format!(
                "acquisition {} is a sequence; only plans pause (stop a sequence instead)",
                run.id
            )));
        };
        if *run.done.borrow() {
            return Err(AcqError::Precondition(format!(
                "acquisition {} has ended",
                run.id
            )));
        }
        plan.paused.send_replace(paused);
        info!(id = run.id, paused, "plan pause changed");
        self.emit(EventKind::Progress, &run);
        if paused {
            let mut holding = plan.holding.subscribe();
            let mut done = run.done.subscribe();
            // Ends when the run holds, or ends (stopped, failed) before it got there.
            tokio::select! {
                _ = holding.wait_for(|h| *h) => {}
                _ = done.wait_for(|d| *d) => {}
            }
        }
        Ok(run.status())
    }

    /// Runs a plan's events, then finishes its files and summary.
    async fn supervise_plan(
        self,
        started: Started,
        plan: Arc<PlanRun>,
        events: Vec<MdaEvent>,
        n_grid: usize,
    ) {
        let result = match PlanRunner::new(&self, &started, &plan, n_grid, events.len()) {
            Ok(runner) => runner.run(&events).await,
            Err(e) => Err(e),
        };
        let Started {
            run,
            ring,
            writer,
            claim,
            ..
        } = started;
        drop(claim);
        ring.close();
        if let Some(shutter) = self.0.instrument.shutter.as_ref() {
            // However the run ended, the auto-shutter leaves the sample in the dark.
            if let Ok(s) = self.0.host.get(shutter) {
                if let Err(e) = s.with_shutter(|s| s.set_open(false)).await {
                    warn!(error = %e, "could not close the shutter after the plan");
                }
            }
        }
        let (state, error, _) = finish_files(&run, &ring, writer, |write_error| {
            match (result, write_error) {
                (_, Some(e)) => (RunState::Failed, Some(e)),
                (Err(e), None) => (RunState::Failed, Some(e)),
                (Ok(true), None) => (RunState::Finished, None),
                (Ok(false), None) => (RunState::Stopped, None),
            }
        })
        .await;
        {
            let mut p = plan.progress();
            p.time_left_s = 0.0;
        }
        // As for sequences: the record's reference is the last, let go by `end`.
        drop(ring);
        self.end(&run, state, error);
    }
}

/// How often a plan run sends progress events, at most (and once more after its last event).
const EMIT_EVERY: Duration = Duration::from_millis(100);

/// Why a plan run ends before its last event, from whichever step saw it.
enum Halt {
    /// Stopped by request, or the ring closed.
    Stopped,
    /// Failed: why, naming the event.
    Failed(String),
}

/// The event being run, for naming it in errors.
#[derive(Clone, Copy)]
struct At<'e> {
    /// Its number, from 1.
    n: usize,
    /// Events in the plan.
    total: usize,
    event: &'e MdaEvent,
}

impl At<'_> {
    /// The run fails at this event, because of `err`.
    fn fail(self, err: impl std::fmt::Display) -> Halt {
        Halt::Failed(format!(
            "event {} of {} ({}): {err}",
            self.n,
            self.total,
            describe(self.event)
        ))
    }
}

/// One plan run's event loop, step by step: the devices it drives, and what it remembers
/// between events so that an event changes only what differs from the one before.
struct PlanRunner<'a> {
    acq: &'a Acquisitions,
    run: &'a Run,
    plan: &'a PlanRun,
    cam: &'a DeviceHandle,
    claim: &'a Claim,
    ring: &'a Arc<FrameRing>,
    /// The dataset's lasers, whose power each frame records.
    lasers: &'a [String],
    /// Grid tiles per stage position: a frame's file is `p * n_grid + g`.
    n_grid: usize,
    /// Events in the plan.
    total: usize,
    /// The first XY stage and the first single-axis stage, which events move.
    xy: Option<DeviceHandle>,
    z: Option<DeviceHandle>,
    /// The auto-shutter: light on the sample only while the camera exposes.
    shutter: Option<DeviceHandle>,
    /// Stage positions and laser powers, read after the stages settle, for the frames.
    readback: Mutex<Readback>,
    paused_rx: watch::Receiver<bool>,
    shutter_open: bool,
    /// The channel preset applied last (group, config).
    channel: Option<(String, String)>,
    /// The camera's exposure now, in ms.
    exposure: f64,
    /// Where the stages were sent last; `None` until an event moves them.
    at_xy: Option<(f64, f64)>,
    at_z: Option<f64>,
    /// What the time plan counts from: the start, shifted by pauses and timer resets.
    origin: Instant,
    /// Time spent paused, left out of the time-left estimate.
    paused_for: Duration,
    /// The previous event's time point: only a new time point can start late.
    prev_t: Option<usize>,
    /// When the previous time point was due (s from `origin`): a time point due no later
    /// (useq's `interval: 0`, as fast as possible) cannot be late.
    prev_due_s: Option<f64>,
    last_emit: Instant,
}

impl<'a> PlanRunner<'a> {
    /// A runner for `total` events of `plan`, run as `started`.
    fn new(
        acq: &'a Acquisitions,
        started: &'a Started,
        plan: &'a PlanRun,
        n_grid: usize,
        total: usize,
    ) -> Result<Self, String> {
        let host = &acq.0.host;
        let shutter = match &acq.0.instrument.shutter {
            Some(name) => Some(host.get(name).map_err(|e| e.to_string())?.clone()),
            None => None,
        };
        Ok(Self {
            acq,
            run: &started.run,
            plan,
            cam: &started.cam,
            claim: &started.claim,
            ring: &started.ring,
            lasers: &started.lasers,
            n_grid,
            total,
            xy: host.of_kind(DeviceKind::XYStage).next().cloned(),
            z: host.of_kind(DeviceKind::Stage).next().cloned(),
            shutter,
            readback: Mutex::new(Readback::default()),
            paused_rx: plan.paused.subscribe(),
            shutter_open: false,
            channel: None,
            exposure: started.exposure_ms,
            at_xy: None,
            at_z: None,
            origin: Instant::now(),
            paused_for: Duration::ZERO,
            prev_t: None,
            prev_due_s: None,
            last_emit: Instant::now(),
        })
    }

    /// Runs the events in order. `Ok(true)`: every event done; `Ok(false)`: stopped
    /// (cancelled, the ring closed); `Err`: why it failed, naming the event.
    async fn run(mut self, events: &[MdaEvent]) -> Result<bool, String> {
        for (i, event) in events.iter().enumerate() {
            let at = At {
                n: i + 1,
                total: self.total,
                event,
            };
            match self.event(at).await {
                Ok(()) => {}
                Err(Halt::Stopped) => return Ok(false),
                Err(Halt::Failed(why)) => return Err(why),
            }
        }
        Ok(true)
    }

    /// One event: wait for its time, set the devices up, take its frame, count it.
    async fn event(&mut self, at: At<'_>) -> Result<(), Halt> {
        self.show_current(at.event);
        self.wait_until_due(at.event).await?;
        self.apply_settings(at).await?;
        let moved = self.move_stages(at).await?;
        self.settle(at, &moved).await?;
        self.acq.refresh_readback(&self.readback, self.lasers).await;
        self.acquire_frame(at).await?;
        self.account(at.n);
        Ok(())
    }

    /// Shows the event in the progress as the one being taken.
    fn show_current(&self, e: &MdaEvent) {
        let mut p = self.plan.progress();
        p.current = Some(e.index);
        p.channel = e.channel.as_ref().map(|c| c.config.clone());
        p.position_name = e.pos_name.clone();
    }

    fn check_stop(&self) -> Result<(), Halt> {
        if self.run.stop.load(Ordering::Relaxed) {
            Err(Halt::Stopped)
        } else {
            Ok(())
        }
    }

    /// Pauses and the time plan: waits here, between events, for the event's due time,
    /// looking at the stop and pause flags meanwhile.
    async fn wait_until_due(&mut self, e: &MdaEvent) -> Result<(), Halt> {
        if e.reset_event_timer {
            self.origin = Instant::now();
            self.prev_due_s = None;
        }
        let due = e
            .min_start_time
            .map(|s| Duration::from_secs_f64(s.max(0.0)));
        if due.is_some_and(|d| Instant::now() < self.origin + d) {
            // About to wait for a time point: the watchers see where the run stands (the last
            // event done, the one waited for), not an update the rate limit held back.
            self.acq.emit(EventKind::Progress, self.run);
            self.last_emit = Instant::now();
        }
        loop {
            self.check_stop()?;
            if *self.paused_rx.borrow_and_update() {
                self.wait_while_paused().await?;
                continue;
            }
            match due.map(|d| self.origin + d) {
                Some(at) if Instant::now() < at => {
                    let left = at - Instant::now();
                    let _ = tokio::time::timeout(left.min(POLL), self.paused_rx.changed()).await;
                }
                Some(at) => {
                    self.count_late(e, Instant::now() - at);
                    break;
                }
                None => break,
            }
        }
        if e.index.t != self.prev_t {
            self.prev_due_s = e.min_start_time;
        }
        self.prev_t = e.index.t;
        Ok(())
    }

    /// Waits until resumed or stopped. Intervals count from the resume: the time plan shifts
    /// by the pause.
    ///
    /// People pause to refocus: meanwhile the run lets the camera go (snaps, settings and
    /// live mode work; other acquisitions are still refused, see `prepare`), the
    /// auto-shutter is closed, and the run forgets the channel, exposure and stage positions
    /// it set, so the next event sets them all again instead of trusting they are unchanged.
    /// On resume it takes the camera back, from live mode if that runs meanwhile.
    async fn wait_while_paused(&mut self) -> Result<(), Halt> {
        let since = Instant::now();
        if let (Some(shutter), true) = (&self.shutter, self.shutter_open) {
            if let Err(e) = shutter.with_shutter(|s| s.set_open(false)).await {
                warn!(error = %e, "could not close the shutter for the pause");
            }
        }
        self.shutter_open = false;
        self.channel = None;
        self.at_xy = None;
        self.at_z = None;
        let job = format!("acquisition {} ({})", self.run.id, self.run.name);
        self.claim.release();
        self.plan.holding.send_replace(true);
        info!(
            id = self.run.id,
            "plan paused: the devices are free for the lease holder"
        );
        self.acq.emit(EventKind::Progress, self.run);
        while *self.paused_rx.borrow_and_update() && self.check_stop().is_ok() {
            let _ = tokio::time::timeout(POLL * 10, self.paused_rx.changed()).await;
        }
        // Viewers follow the run again from here, so live mode does not start anew meanwhile.
        self.plan.holding.send_replace(false);
        let paused = since.elapsed();
        self.origin += paused;
        self.paused_for += paused;
        self.acq.emit(EventKind::Progress, self.run);
        // A run stopped while paused ends here, without taking the camera back.
        self.check_stop()?;
        self.acq
            .reclaim_camera(self.claim, &job)
            .await
            .map_err(|e| Halt::Failed(format!("taking the camera back after the pause: {e}")))?;
        // The exposure may have been changed meanwhile: what the camera has now is what an
        // event compares with (and what frames record if the camera does not say).
        self.exposure = self
            .camera_exposure()
            .await
            .map_err(|e| Halt::Failed(format!("reading the exposure after the pause: {e}")))?;
        Ok(())
    }

    /// The exposure the camera has now: a preset, or a user during a pause, may have changed
    /// it, and frames record what the camera had.
    async fn camera_exposure(&self) -> Result<f64, crate::host::HostError> {
        self.cam
            .run_claimed(self.claim, |d| match d {
                AnyDevice::Camera(c) => c.exposure_ms(),
                _ => Err(DeviceError::invalid("not a camera")),
            })
            .await
    }

    /// Counts a time point that starts `late` after its due time, if that is beyond the
    /// tolerance and the plan asked for time since the previous one; the first one is logged.
    fn count_late(&self, e: &MdaEvent, late: Duration) {
        if e.index.t != self.prev_t
            && crate::plan::gap_asked(self.prev_due_s, e.min_start_time)
            && late > LATE_TOLERANCE
        {
            let mut p = self.plan.progress();
            p.late_events += 1;
            p.max_late_s = p.max_late_s.max(late.as_secs_f64());
            if p.late_events == 1 {
                warn!(id = self.run.id, late_s = late.as_secs_f64(), t = ?e.index.t,
                    "the plan cannot keep its time intervals: a time point started late (counted in the progress and summary.json)");
            }
        }
    }

    /// Applies the event's channel preset (when it changes) and exposure (when it differs).
    async fn apply_settings(&mut self, at: At<'_>) -> Result<(), Halt> {
        let e = at.event;
        if let Some(ch) = &e.channel {
            let key = (ch.group.clone(), ch.config.clone());
            if self.channel.as_ref() != Some(&key) {
                let preset = self
                    .acq
                    .0
                    .presets
                    .find(&ch.group, &ch.config)
                    .map_err(|err| at.fail(err))?;
                Presets::apply(&self.acq.0.host, preset, Some(self.claim))
                    .await
                    .map_err(|err| at.fail(format!("applying preset {:?}: {err}", ch.config)))?;
                self.channel = Some(key);
                // A preset may set the exposure: read it back for the frames' metadata.
                self.exposure = self.camera_exposure().await.map_err(|err| at.fail(err))?;
            }
        }
        if let Some(ms) = e.exposure.filter(|ms| (*ms - self.exposure).abs() > 1e-9) {
            self.cam
                .run_claimed(self.claim, move |d| match d {
                    AnyDevice::Camera(c) => c.set_exposure_ms(ms),
                    _ => Err(DeviceError::invalid("not a camera")),
                })
                .await
                .map_err(|err| at.fail(format!("setting the exposure to {ms} ms: {err}")))?;
            self.exposure = ms;
        }
        Ok(())
    }

    /// Sends the stages where the event wants them, if they are not there; returns the stages
    /// that move.
    async fn move_stages(&mut self, at: At<'_>) -> Result<Vec<DeviceHandle>, Halt> {
        let e = at.event;
        let mut moved = Vec::new();
        if let (Some(stage), true) = (&self.xy, e.x.is_some() || e.y.is_some()) {
            let here = match self.at_xy {
                Some(p) => p,
                None => stage
                    .with_xy_stage(|s| s.position_um())
                    .await
                    .map_err(|err| at.fail(err))?,
            };
            let target = (e.x.unwrap_or(here.0), e.y.unwrap_or(here.1));
            if self.at_xy != Some(target) {
                stage
                    .with_xy_stage(move |s| s.move_absolute_um(target.0, target.1))
                    .await
                    .map_err(|err| at.fail(err))?;
                moved.push(stage.clone());
                self.at_xy = Some(target);
            }
        }
        if let (Some(stage), Some(target)) = (&self.z, e.z) {
            if self.at_z != Some(target) {
                stage
                    .with_stage(move |s| s.move_absolute_um(target))
                    .await
                    .map_err(|err| at.fail(err))?;
                moved.push(stage.clone());
                self.at_z = Some(target);
            }
        }
        Ok(moved)
    }

    /// Waits for the stages that moved to settle.
    async fn settle(&self, at: At<'_>, moved: &[DeviceHandle]) -> Result<(), Halt> {
        for stage in moved {
            stage
                .wait_for_idle(SETTLE_LIMIT)
                .await
                .map_err(|err| at.fail(err))?;
        }
        Ok(())
    }

    /// Snaps the event's frame into the ring, tagged with its index and file, the shutter
    /// open only around it (unless the event keeps it open).
    async fn acquire_frame(&mut self, at: At<'_>) -> Result<(), Halt> {
        let e = at.event;
        // A plan paces the camera itself: wait for the writer rather than drop a frame.
        while !self.ring.has_space() {
            self.check_stop()?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let (Some(shutter), false) = (&self.shutter, self.shutter_open) {
            shutter
                .with_shutter(|s| s.set_open(true))
                .await
                .map_err(|err| at.fail(format!("opening the shutter: {err}")))?;
            self.shutter_open = true;
        }
        let file = e.index.p.unwrap_or(0) * self.n_grid + e.index.g.unwrap_or(0);
        let index = AcqIndex {
            t: e.index.t.unwrap_or(0) as u32,
            p: file as u32,
            c: e.index.c.unwrap_or(0) as u32,
            z: e.index.z.unwrap_or(0) as u32,
        };
        let rb = *self.readback.lock().unwrap_or_else(|e| e.into_inner());
        let (frame_ring, exposure) = (self.ring.clone(), self.exposure);
        let produced = self
            .cam
            .run_claimed(self.claim, move |d| {
                let AnyDevice::Camera(c) = d else {
                    return Err(DeviceError::invalid("not a camera"));
                };
                frame_ring.produce(|buf| {
                    let info = c.snap(buf)?;
                    Ok(frame_meta(&info, &frame_ring, exposure, &rb, index))
                })
            })
            .await
            .map_err(|err| at.fail(err))?;
        if let (Some(shutter), false) = (&self.shutter, e.keep_shutter_open) {
            shutter
                .with_shutter(|s| s.set_open(false))
                .await
                .map_err(|err| at.fail(format!("closing the shutter: {err}")))?;
            self.shutter_open = false;
        }
        match produced {
            Produced::Stored | Produced::Dropped => Ok(()),
            Produced::Closed => Err(Halt::Stopped),
            Produced::Full => Err(at.fail("the ring was full (storage.overflow = \"stop\")")),
        }
    }

    /// Counts event `n` (from 1) done, re-estimates the time left, and tells the watchers
    /// (at most every [`EMIT_EVERY`], and after the last event).
    fn account(&mut self, n: usize) {
        {
            let mut p = self.plan.progress();
            p.events_done = n as u64;
            let active = self
                .run
                .started
                .elapsed()
                .saturating_sub(self.paused_for)
                .as_secs_f64();
            let planned_left = (self.plan.check.summary.duration_s - active).max(0.0);
            let paced_left = active / n as f64 * (self.total - n) as f64;
            p.time_left_s = planned_left.max(paced_left);
        }
        if self.last_emit.elapsed() >= EMIT_EVERY || n == self.total {
            self.acq.emit(EventKind::Progress, self.run);
            self.last_emit = Instant::now();
        }
    }
}

/// An event's index and settings, for error messages.
fn describe(e: &MdaEvent) -> String {
    let mut parts = Vec::new();
    for (axis, v) in [
        ("t", e.index.t),
        ("p", e.index.p),
        ("g", e.index.g),
        ("c", e.index.c),
        ("z", e.index.z),
    ] {
        if let Some(v) = v {
            parts.push(format!("{axis}={v}"));
        }
    }
    if let Some(c) = &e.channel {
        parts.push(format!("channel {}", c.config));
    }
    if let Some(n) = &e.pos_name {
        parts.push(format!("position {n:?}"));
    }
    parts.join(", ")
}

/// Each file's StageLabel: the stage position's name (or `p000`), with `_g000` for a grid
/// tile, at the X and Y its events go to, and the Z they share (else the position's own z,
/// the middle of a relative stack).
fn stage_labels(
    plan: &MdaSequence,
    events: &[MdaEvent],
    files: usize,
    n_grid: usize,
) -> Vec<Option<StageLabel>> {
    let mut labels: Vec<Option<StageLabel>> = vec![None; files];
    // Per file: whether its events all share one z so far.
    let mut one_z = vec![true; files];
    for e in events {
        let (p, g) = (e.index.p.unwrap_or(0), e.index.g.unwrap_or(0));
        let f = p * n_grid + g;
        let Some(slot) = labels.get_mut(f) else {
            continue;
        };
        match slot {
            None => {
                let base = e.pos_name.clone().unwrap_or_else(|| format!("p{p:03}"));
                *slot = Some(StageLabel {
                    name: match e.index.g {
                        Some(g) => format!("{base}_g{g:03}"),
                        None => base,
                    },
                    x_um: e.x,
                    y_um: e.y,
                    z_um: e.z,
                });
            }
            Some(label) => {
                if label.z_um != e.z {
                    one_z[f] = false;
                }
            }
        }
    }
    for (f, label) in labels.iter_mut().enumerate() {
        if let (Some(label), false) = (label, one_z[f]) {
            label.z_um = plan.stage_positions.get(f / n_grid).and_then(|p| p.z);
        }
    }
    labels
}

/// OME's DimensionOrder for a plan: the plan's t, c and z from innermost out, then any left.
fn dimension_order(plan: &MdaSequence) -> String {
    let mut order = String::from("XY");
    for a in plan.axis_order.iter().rev() {
        match a.letter() {
            'z' => order.push('Z'),
            'c' => order.push('C'),
            't' => order.push('T'),
            _ => {}
        }
    }
    for c in ['Z', 'C', 'T'] {
        if !order.contains(c) {
            order.push(c);
        }
    }
    order
}

/// Bytes as people read them, in MiB: the one unit of a plan's size, in the daemon's refusal
/// and in what the CLI's dry run prints.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Bytes free for an unprivileged writer on the file system holding `path` (or its nearest
/// existing ancestor, since the data root may not exist yet).
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut at = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    while !at.exists() {
        at = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    let c = std::ffi::CString::new(at.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

impl PlanRun {
    /// The plan's part of the dataset's `summary.json`: the check, the progress, the files.
    pub(super) fn summary_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let p = self.progress().clone();
        let json = serde_json::json!({
            "plan": self.check.summary,
            "estimated_bytes": self.check.bytes,
            "open_files": self.check.open_files,
            "events_total": self.events_total,
            "events_done": p.events_done,
            // Where it stands (the last event once ended), so a listing after a restart shows
            // what it showed before.
            "current": p.current,
            "channel": p.channel,
            "position_name": p.position_name,
            "late_time_points": p.late_events,
            "max_late_s": p.max_late_s,
            "files": self.files.iter().filter_map(|f| f.file_name()).map(|f| f.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        });
        match json {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// The dataset folder.
    pub(super) fn folder(&self) -> &Path {
        &self.folder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_json;

    #[test]
    fn dimension_orders_follow_the_axis_order() {
        let order = |axes: &str| {
            let p = parse_json(&format!(
                r#"{{"axis_order": "{axes}", "channels": ["DAPI"], "z_plan": {{"range": 2, "step": 1}}, "time_plan": {{"interval": 1, "loops": 2}}}}"#
            ))
            .unwrap();
            dimension_order(&p)
        };
        assert_eq!(order("tpcz"), "XYZCT");
        assert_eq!(order("tpzc"), "XYCZT");
        assert_eq!(order("ctz"), "XYZTC");
        let no_z = parse_json(r#"{"axis_order": "tc", "channels": ["DAPI"]}"#).unwrap();
        assert_eq!(dimension_order(&no_z), "XYCTZ");
    }

    #[test]
    fn free_bytes_of_a_missing_folder_is_its_ancestors() {
        let here = free_bytes(Path::new(".")).unwrap();
        assert!(here > 0);
        assert!(free_bytes(Path::new("./no/such/folder/yet")).is_some());
    }
}
