//! What every run has, sequence or plan: its record ([`Run`]), and the one way a run starts
//! ([`Acquisitions::prepare`] then [`Acquisitions::launch`]): the camera claimed and read, the
//! dataset folder made, the ring allocated, the record listed, the writer thread started.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use microscoped_driver_api::{AnyDevice, DeviceError, DeviceKind, FrameShape};
use tokio::sync::watch;

use super::plan_run::{self, PlanRun};
use super::writer::{Indexing, Pool, WriterThread};
use super::{AcqError, Acquisitions, EventKind, RunState, Status};
use crate::host::{Claim, DeviceHandle, HostError};
use crate::ring::{AcqIndex, FrameMeta, FrameRing, RingCounters, StageCoords};
use crate::storage::{ChannelMeta, DatasetMeta, InstrumentMeta, OmeTiffWriter, MAX_LIGHTS};

/// What the devices around the camera read back, refreshed while an acquisition runs and
/// copied into every frame's metadata.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Readback {
    /// The first XY stage and first single-axis stage.
    pub(super) stage: StageCoords,
    /// Each laser of the dataset's instrument, in order.
    pub(super) light_mw: [Option<f32>; MAX_LIGHTS],
}

/// What the supervisor records while an acquisition runs.
pub(super) struct Progress {
    pub(super) state: RunState,
    pub(super) error: Option<String>,
    pub(super) ended: Option<Duration>,
    /// The counters as they were when the ring was dropped.
    pub(super) final_counters: Option<RingCounters>,
}

/// One acquisition.
pub(super) struct Run {
    /// Its id.
    pub(super) id: u64,
    /// The dataset name.
    pub(super) name: String,
    /// The user who started it.
    pub(super) owner: String,
    /// The camera.
    pub(super) camera: String,
    /// The OME-TIFF file; for a plan, the dataset folder.
    pub(super) path: PathBuf,
    /// Frames asked for.
    pub(super) frames_planned: Option<u64>,
    /// The ring its frames go through, while it runs; dropped at the end so a finished
    /// acquisition does not keep its memory.
    pub(super) ring: Mutex<Option<Arc<FrameRing>>>,
    /// Ring slots, kept for the status once the ring is gone.
    pub(super) ring_slots: usize,
    /// Frame shape.
    pub(super) shape: FrameShape,
    /// Significant bits per pixel, for live view.
    pub(super) bit_depth: u32,
    /// Set to ask the camera loop to end.
    pub(super) stop: Arc<AtomicBool>,
    /// Bytes in the file, updated by the writer thread.
    pub(super) bytes: Arc<AtomicU64>,
    /// When it started.
    pub(super) started: Instant,
    /// State and error. A std mutex: never held across an await.
    pub(super) progress: Mutex<Progress>,
    /// Becomes true once the dataset is finished and the final state set.
    pub(super) done: watch::Sender<bool>,
    /// For plans: the plan's own state.
    pub(super) plan: Option<Arc<plan_run::PlanRun>>,
}

impl Run {
    pub(super) fn ring(&self) -> Option<Arc<FrameRing>> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the run has the camera now: it has not ended and is not a plan standing
    /// paused (which lets the camera go until the resume).
    pub(super) fn holds_camera(&self) -> bool {
        !*self.done.borrow() && !self.plan.as_ref().is_some_and(|p| p.holding())
    }

    pub(super) fn counters(&self) -> RingCounters {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        match (p.final_counters, self.ring()) {
            (Some(c), _) => c,
            (None, Some(r)) => r.counters(),
            (None, None) => RingCounters::default(),
        }
    }

    pub(super) fn status(&self) -> Status {
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

/// A run being prepared, before it has files: its id, the camera claimed and read, the
/// dataset folder made, the instrument read. Sequences and plans both start from here.
pub(super) struct Prepared {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) cam: DeviceHandle,
    /// Held for the whole run: no other command drives the camera meanwhile.
    pub(super) claim: Claim,
    pub(super) setup: CameraSetup,
    /// Of a pixel at the sample, binning included, when the instrument knows it.
    pub(super) physical_size_um: Option<f64>,
    /// The dataset folder, made empty for this run.
    pub(super) dir: PathBuf,
    pub(super) instrument: InstrumentMeta,
}

/// How a run's frames are laid out in each of its files.
pub(super) struct Layout {
    pub(super) size_t: u32,
    pub(super) size_c: u32,
    pub(super) size_z: u32,
    pub(super) dimension_order: String,
    pub(super) channels: Vec<ChannelMeta>,
    /// Distance between z planes in µm, for a z stack.
    pub(super) physical_size_z_um: Option<f64>,
}

impl Prepared {
    /// The OME metadata of one of the run's files, called `name`, laid out as `layout`.
    pub(super) fn dataset_meta(&self, name: String, layout: &Layout) -> DatasetMeta {
        DatasetMeta {
            name,
            width: self.setup.shape.width,
            height: self.setup.shape.height,
            pixel_type: self.setup.shape.pixel_type,
            significant_bits: self.setup.bit_depth,
            size_t: layout.size_t,
            size_c: layout.size_c,
            size_z: layout.size_z,
            dimension_order: layout.dimension_order.clone(),
            physical_size_um: self.physical_size_um,
            channels: layout.channels.clone(),
            physical_size_z_um: layout.physical_size_z_um,
            stage_label: None,
            instrument: self.instrument.clone(),
            acquisition_date: SystemTime::now(),
        }
    }

    /// Creates the run's files in order, laid out as `indexing` says, keeping at most
    /// `open` of them open (the first ones, which the run writes first). If one cannot be
    /// created, removes the ones made before it and the dataset folder, so a run that did not
    /// start leaves nothing behind.
    pub(super) fn create_files(
        &self,
        files: Vec<(PathBuf, DatasetMeta)>,
        open: u32,
        indexing: Indexing,
    ) -> Result<Pool, AcqError> {
        let mut writers: Vec<OmeTiffWriter> = Vec::with_capacity(files.len());
        for (path, meta) in files {
            match OmeTiffWriter::create(&path, meta) {
                Ok(mut w) => {
                    if writers.len() >= open as usize {
                        // Created and closed: it takes no descriptor until its first plane.
                        w.close();
                    }
                    writers.push(w)
                }
                Err(e) => {
                    for w in &writers {
                        let _ = std::fs::remove_file(w.path());
                        let _ = std::fs::remove_file(crate::storage::sidecar_path(w.path()));
                    }
                    let _ = std::fs::remove_dir(&self.dir);
                    return Err(AcqError::Precondition(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        Ok(Pool::new(writers, open as usize, indexing))
    }
}

/// What a prepared run becomes: where its frames go and, for a plan, its own state.
pub(super) struct Launch {
    /// The run's file (a sequence) or dataset folder (a plan), for its status.
    pub(super) path: PathBuf,
    pub(super) frames_planned: Option<u64>,
    /// Its files, at most a pool's worth of them open.
    pub(super) files: Pool,
    pub(super) indexing: Indexing,
    pub(super) plan: Option<Arc<PlanRun>>,
}

/// A run that has started, for its supervisor: the record, its ring and writer thread, and
/// the camera it holds.
pub(super) struct Started {
    pub(super) run: Arc<Run>,
    pub(super) ring: Arc<FrameRing>,
    pub(super) writer: WriterThread,
    pub(super) cam: DeviceHandle,
    pub(super) claim: Claim,
    /// The dataset's lasers, whose power each frame records.
    pub(super) lasers: Vec<String>,
    /// The camera's exposure as the run started.
    pub(super) exposure_ms: f64,
}

impl Acquisitions {
    /// The start every run shares, up to its files: claims `camera` (empty: the only camera)
    /// for acquisition `name` of `owner`, reads its setup, checks that its ring fits in memory
    /// and makes the dataset folder.
    pub(super) async fn prepare(
        &self,
        owner: &str,
        camera: &str,
        name: String,
    ) -> Result<Prepared, AcqError> {
        let cam = self.0.host.camera(camera)?.clone();
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        // A paused plan lets the camera go but keeps it from other acquisitions.
        if let Some(r) = self
            .runs()
            .iter()
            .find(|r| r.camera == cam.name() && !*r.done.borrow() && !r.holds_camera())
        {
            return Err(AcqError::Host(HostError::InUse {
                device: cam.name().to_owned(),
                job: format!("acquisition {} ({}), paused", r.id, r.name),
            }));
        }
        // Live mode on the camera hands it over: its viewers go on with this run's frames.
        let claim = self
            .claim_camera(&cam, &format!("acquisition {id} ({name})"))
            .await?;
        let setup = camera_setup(&cam, &claim).await?;
        let physical_size_um =
            crate::presets::pixel_size_um(&self.0.instrument, &self.0.host, &cam, Some(&claim))
                .await
                .map(|um| um * f64::from(setup.binning));
        self.check_ring_memory(setup.shape)?;
        let dir = self.dataset_dir(owner, &name)?;
        let instrument = self.instrument_meta(cam.name()).await;
        Ok(Prepared {
            id,
            name,
            owner: owner.to_owned(),
            cam,
            claim,
            setup,
            physical_size_um,
            dir,
            instrument,
        })
    }

    /// Makes a prepared run with its files a running one: allocates the ring, lists the run
    /// (a plan's summary written first), tells the watchers, and starts the writer thread.
    /// Returns the status as it started and, unless the writer could not start (the run has
    /// then ended as failed), what its supervisor needs.
    pub(super) async fn launch(
        &self,
        prep: Prepared,
        launch: Launch,
    ) -> Result<(Status, Option<Started>), AcqError> {
        let Prepared {
            id,
            name,
            owner,
            cam,
            claim,
            setup,
            instrument,
            ..
        } = prep;
        let Launch {
            path,
            frames_planned,
            files,
            indexing,
            plan,
        } = launch;
        let ring = self.alloc_ring(setup.shape).await?;
        let run = Arc::new(Run {
            id,
            name,
            owner,
            camera: cam.name().to_owned(),
            path,
            frames_planned,
            ring_slots: ring.capacity(),
            shape: setup.shape,
            bit_depth: setup.bit_depth,
            ring: Mutex::new(Some(ring)),
            stop: Arc::new(AtomicBool::new(false)),
            bytes: Arc::new(AtomicU64::new(files.bytes())),
            started: Instant::now(),
            progress: Mutex::new(Progress {
                state: RunState::Running,
                error: None,
                ended: None,
                final_counters: None,
            }),
            done: watch::channel(false).0,
            plan,
        });
        // A plan's summary says what it will do from the start; a sequence's is written at its
        // end, so that a sequence killed before its first frame leaves only what `recover`
        // cleans up.
        if run.plan.is_some() {
            super::stored::write_summary(&run);
        }
        self.runs().push(run.clone());
        self.emit(EventKind::Started, &run);
        let status = run.status();
        let Some((ring, writer)) = self.start_writer(&run, files, indexing) else {
            return Ok((status, None));
        };
        let lasers = instrument.lasers.iter().map(|l| l.name.clone()).collect();
        Ok((
            status,
            Some(Started {
                run,
                ring,
                writer,
                cam,
                claim,
                lasers,
                exposure_ms: setup.exposure_ms,
            }),
        ))
    }

    /// Refuses a ring that would not fit in memory: touching more than the kernel has would
    /// get the daemon killed, not the request refused.
    pub(super) fn check_ring_memory(&self, shape: FrameShape) -> Result<(), AcqError> {
        let s = &self.0.storage;
        let ring_bytes = FrameRing::bytes_for(
            shape,
            FrameRing::slot_count(shape, s.ring_bytes, s.min_slots),
        );
        match available_memory() {
            Some(available) if ring_bytes > available / 10 * 8 => Err(AcqError::Precondition(format!(
                "the frame ring needs {} MiB but only {} MiB of memory is available: lower storage.ring_mb or storage.min_slots",
                ring_bytes >> 20,
                available >> 20
            ))),
            _ => Ok(()),
        }
    }

    /// Allocates (and pre-faults) a ring off the async runtime, in the frame path.
    pub(super) async fn alloc_ring(&self, shape: FrameShape) -> Result<Arc<FrameRing>, AcqError> {
        let s = self.0.storage.clone();
        crate::priority::on_frame_path("ring".into(), move || {
            FrameRing::new(shape, s.ring_bytes, s.min_slots, s.overflow).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map(Arc::new)
        .map_err(|e| AcqError::Precondition(format!("cannot allocate the frame ring: {e}")))
    }

    /// Reads the first XY stage, the first single-axis stage and the power each of `lasers`
    /// emits into the cache the camera loop copies from. A device that does not answer leaves
    /// its entry empty rather than holding up the acquisition.
    pub(super) async fn refresh_readback(&self, cache: &Mutex<Readback>, lasers: &[String]) {
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
pub(super) struct CameraSetup {
    pub(super) shape: FrameShape,
    pub(super) exposure_ms: f64,
    pub(super) bit_depth: u32,
    pub(super) binning: u32,
}

/// Reads the camera's frame shape, exposure, bit depth and binning through the claim.
pub(super) async fn camera_setup(
    cam: &DeviceHandle,
    claim: &Claim,
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
pub(super) fn frame_meta(
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

/// Bytes of memory the kernel says are available, on Linux.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
