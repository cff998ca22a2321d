//! The `Acquisition` service: sequences, live view and the event stream.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{convert, plans};
use crate::acquire::{self, AcqError, Acquisitions, EventKind, RunState};
use crate::host::DeviceHost;
use crate::pb;
use crate::ring::FrameRing;

/// How long a live-view stream waits between looks for a new frame when the client sets no
/// rate: short enough for any camera, long enough not to spin.
const LIVE_POLL: Duration = Duration::from_millis(2);

/// The `Acquisition` service.
#[derive(Clone)]
pub struct AcquisitionService {
    /// The engine.
    acq: Acquisitions,
    /// For resolving camera names.
    host: DeviceHost,
    /// Becomes true when the daemon shuts down, so open streams end and shutdown is not held
    /// up by a client that never hangs up.
    stopping: watch::Receiver<bool>,
}

impl AcquisitionService {
    /// A service over the engine.
    pub fn new(acq: Acquisitions, host: DeviceHost, stopping: watch::Receiver<bool>) -> Self {
        Self {
            acq,
            host,
            stopping,
        }
    }
}

fn acq_status(e: AcqError) -> Status {
    match e {
        AcqError::Invalid(m) => Status::invalid_argument(m),
        AcqError::AlreadyExists(m) => Status::already_exists(m),
        AcqError::NotFound(m) => Status::not_found(m),
        AcqError::Precondition(m) => Status::failed_precondition(m),
        AcqError::Plan(e) => Status::invalid_argument(format!("invalid plan: {e}")),
        AcqError::NoSpace(m) => Status::resource_exhausted(m),
        AcqError::Host(h) => convert::status(h),
    }
}

fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A status for the API.
pub fn status_to_pb(s: &acquire::Status) -> pb::AcquisitionStatus {
    pb::AcquisitionStatus {
        id: s.id,
        name: s.name.clone(),
        camera: s.camera.clone(),
        state: match s.state {
            RunState::Running => pb::AcquisitionState::Running,
            RunState::Finished => pb::AcquisitionState::Finished,
            RunState::Stopped => pb::AcquisitionState::Stopped,
            RunState::Failed => pb::AcquisitionState::Failed,
            RunState::Paused => pb::AcquisitionState::Paused,
        } as i32,
        frames_planned: s.frames_planned.unwrap_or(0),
        received: s.counters.received,
        written: s.counters.written,
        dropped: s.counters.dropped,
        bytes: s.bytes,
        path: s.path.display().to_string(),
        error: s.error.clone().unwrap_or_default(),
        elapsed_s: s.elapsed.as_secs_f64(),
        ring_slots: s.ring_slots as u32,
        width: s.shape.width,
        height: s.shape.height,
        pixel_type: convert::pixel_type(s.shape.pixel_type) as i32,
        dropped_in_camera: s.counters.lost_in_camera,
        plan: s.plan.as_ref().map(plans::progress_to_pb),
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl pb::acquisition_server::Acquisition for AcquisitionService {
    async fn start_sequence(
        &self,
        req: Request<pb::StartSequenceRequest>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let req = req.into_inner();
        let frames = match (req.until_stopped, req.frames) {
            (true, 0) => None,
            (true, _) => {
                return Err(Status::invalid_argument(
                    "give either frames or until_stopped, not both",
                ))
            }
            (false, n) => Some(n),
        };
        let name = (!req.name.is_empty()).then_some(req.name);
        let s = self
            .acq
            .start_sequence(&req.camera, frames, name)
            .await
            .map_err(acq_status)?;
        Ok(Response::new(status_to_pb(&s)))
    }

    async fn stop_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let s = self.acq.stop(req.get_ref().id).await.map_err(acq_status)?;
        Ok(Response::new(status_to_pb(&s)))
    }

    async fn get_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let s = self.acq.get(req.get_ref().id).map_err(acq_status)?;
        Ok(Response::new(status_to_pb(&s)))
    }

    async fn list_acquisitions(
        &self,
        _: Request<pb::ListAcquisitionsRequest>,
    ) -> Result<Response<pb::ListAcquisitionsResponse>, Status> {
        Ok(Response::new(pb::ListAcquisitionsResponse {
            acquisitions: self.acq.list().iter().map(status_to_pb).collect(),
        }))
    }

    async fn validate_plan(
        &self,
        req: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::PlanSummary>, Status> {
        let req = req.into_inner();
        let plan = plans::plan_from_pb(&req)?;
        let check = self
            .acq
            .check_plan(&plan, &req.camera)
            .await
            .map_err(acq_status)?;
        Ok(Response::new(plans::check_to_pb(&check)))
    }

    async fn start_plan(
        &self,
        req: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let req = req.into_inner();
        let plan = plans::plan_from_pb(&req)?;
        let name = (!req.name.is_empty()).then(|| req.name.clone());
        let s = self
            .acq
            .start_plan(plan, &req.camera, name)
            .await
            .map_err(acq_status)?;
        Ok(Response::new(status_to_pb(&s)))
    }

    async fn pause_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let s = self
            .acq
            .set_paused(req.get_ref().id, true)
            .map_err(acq_status)?;
        Ok(Response::new(status_to_pb(&s)))
    }

    async fn resume_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let s = self
            .acq
            .set_paused(req.get_ref().id, false)
            .map_err(acq_status)?;
        Ok(Response::new(status_to_pb(&s)))
    }

    type WatchAcquisitionStream = Stream<pb::AcquisitionStatus>;

    async fn watch_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<Self::WatchAcquisitionStream>, Status> {
        // Subscribe before reading the status, so an end between the two is not missed.
        let mut events = self.acq.subscribe();
        let first = self.acq.get(req.get_ref().id).map_err(acq_status)?;
        let id = first.id;
        let (tx, rx) = mpsc::channel(16);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            let ended = |s: &acquire::Status| {
                matches!(
                    s.state,
                    RunState::Finished | RunState::Stopped | RunState::Failed
                )
            };
            if tx.send(Ok(status_to_pb(&first))).await.is_err() || ended(&first) {
                return;
            }
            let mut last_sent = tokio::time::Instant::now();
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    _ = tx.closed() => return,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                let event = match event {
                    Ok(e) if e.status.id == id => e,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let last = matches!(event.kind, EventKind::Finished | EventKind::Failed);
                // At most 4 updates a second; the final status always goes out.
                if !last && last_sent.elapsed() < Duration::from_millis(250) {
                    continue;
                }
                last_sent = tokio::time::Instant::now();
                if tx.send(Ok(status_to_pb(&event.status))).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type LiveViewStream = Stream<pb::Image>;

    async fn live_view(
        &self,
        req: Request<pb::LiveViewRequest>,
    ) -> Result<Response<Self::LiveViewStream>, Status> {
        let req = req.into_inner();
        if !(req.max_fps == 0.0 || (0.01..=10_000.0).contains(&req.max_fps)) {
            return Err(Status::invalid_argument(format!(
                "max_fps must be 0 (as fast as you read) or from 0.01 to 10000, got {}",
                req.max_fps
            )));
        }
        let camera = self.host.camera(&req.camera).map_err(convert::status)?;
        let camera = camera.name().to_owned();
        // The ring's stage coordinates come from the first XY stage and first focus stage.
        let first = |k| self.host.of_kind(k).next().map(|d| d.name().to_owned());
        let xy_name = first(microscoped_driver_api::DeviceKind::XYStage);
        let z_name = first(microscoped_driver_api::DeviceKind::Stage);
        let period = if req.max_fps > 0.0 {
            Duration::from_secs_f64(1.0 / req.max_fps).max(LIVE_POLL)
        } else {
            LIVE_POLL
        };
        // One frame in flight: a slow client holds back only its own next frame.
        let (tx, rx) = mpsc::channel(1);
        let acq = self.acq.clone();
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            let mut ring: Option<Arc<FrameRing>> = None;
            let mut bit_depth = 16;
            let mut after = 0u64;
            let mut buf = Vec::new();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                    _ = stopping.wait_for(|s| *s) => return,
                }
                let current = acq.live_ring(&camera);
                let current_ring = current.as_ref().map(|(r, _)| r.clone());
                if !same_ring(&ring, &current_ring) {
                    ring = current_ring;
                    bit_depth = current.map_or(16, |(_, b)| b);
                    after = 0;
                }
                let Some(r) = &ring else { continue };
                let Some(meta) = r.latest(after, &mut buf) else {
                    continue;
                };
                after = meta.seq + 1;
                let shape = r.shape();
                let mut stage_positions = std::collections::HashMap::new();
                let coords = [
                    (
                        &xy_name,
                        meta.stage
                            .x_um
                            .zip(meta.stage.y_um)
                            .map(|(x, y)| vec![x, y]),
                    ),
                    (&z_name, meta.stage.z_um.map(|z| vec![z])),
                ];
                for (name, position) in coords {
                    if let (Some(name), Some(position_um)) = (name, position) {
                        let p = pb::StagePosition {
                            device: name.clone(),
                            position_um,
                            busy: false,
                        };
                        stage_positions.insert(name.clone(), p);
                    }
                }
                let image = pb::Image {
                    camera: camera.clone(),
                    width: shape.width,
                    height: shape.height,
                    pixel_type: convert::pixel_type(shape.pixel_type) as i32,
                    bit_depth,
                    data: std::mem::take(&mut buf),
                    metadata: Some(pb::ImageMetadata {
                        exposure_ms: meta.exposure_ms,
                        camera_timestamp_us: meta.camera_timestamp_us,
                        host_time_unix_us: unix_us(SystemTime::now()),
                        binning: 0,
                        roi_x: 0,
                        roi_y: 0,
                        stage_positions,
                    }),
                };
                if tx.send(Ok(image)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchEventsStream = Stream<pb::Event>;

    async fn watch_events(
        &self,
        _: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let mut events = self.acq.subscribe();
        let (tx, rx) = mpsc::channel(64);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    _ = tx.closed() => return,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                let event = match event {
                    Ok(e) => e,
                    // A watcher that fell behind misses progress events, not the stream.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let kind = match event.kind {
                    EventKind::Started => pb::EventKind::AcquisitionStarted,
                    EventKind::Progress => pb::EventKind::AcquisitionProgress,
                    EventKind::Finished => pb::EventKind::AcquisitionFinished,
                    EventKind::Failed => pb::EventKind::AcquisitionFailed,
                };
                let msg = pb::Event {
                    kind: kind as i32,
                    time_unix_us: unix_us(event.time),
                    acquisition: Some(status_to_pb(&event.status)),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn same_ring(a: &Option<Arc<FrameRing>>, b: &Option<Arc<FrameRing>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
