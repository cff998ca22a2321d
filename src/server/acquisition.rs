//! The `Acquisition` service: sequences, live view and the event stream.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::{audited, record, require};
use super::{convert, plans};
use crate::access::lease::{LeaseEvent, LeaseEventKind};
use crate::access::{Access, Caller, Need, Role};
use crate::acquire::{self, Acquisitions, EventKind, RunState};
use crate::host::DeviceHost;
use crate::pb;
use crate::ring::FrameRing;
use crate::storage::{unix_us, PlaneAddress};

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
    /// Who may do what; every handler asks it first.
    access: Access,
}

impl AcquisitionService {
    /// A service over the engine.
    pub fn new(
        acq: Acquisitions,
        host: DeviceHost,
        stopping: watch::Receiver<bool>,
        access: Access,
    ) -> Self {
        Self {
            acq,
            host,
            stopping,
            access,
        }
    }

    /// Acquisition `id` (0: the caller's most recent readable one) if the caller may read it:
    /// PERMISSION_DENIED for another user's they may not (ids are no secret, and saying so
    /// helps more than pretending it does not exist).
    /// An acquisition `caller` may stop, pause or resume (`what`): its owner, an admin, or the
    /// lease holder.
    fn controllable(
        &self,
        caller: &Caller,
        id: u64,
        what: &str,
    ) -> Result<acquire::Status, Status> {
        let who = &caller.identity;
        let s = self.readable(caller, id)?;
        let holder = self.access.leases().current().map(|l| l.user);
        if s.owner == who.user || who.role == Role::Admin || holder.as_deref() == Some(&who.user) {
            Ok(s)
        } else {
            Err(Status::permission_denied(format!(
                "acquisition {} belongs to {}: its owner, an admin or the lease holder may {what} it",
                s.id, s.owner
            )))
        }
    }

    /// Pauses or resumes a plan, for its owner, an admin or the lease holder; audited.
    async fn set_paused(
        &self,
        req: Request<pb::AcquisitionRef>,
        paused: bool,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let id = req.get_ref().id;
        let what = if paused { "pause" } else { "resume" };
        let caller = require(
            &self.access,
            &req,
            Need::Operate,
            &format!("acquisition {id}"),
        )?;
        let found = self.controllable(&caller, id, what);
        let target = format!("acquisition {}", found.as_ref().map_or(id, |s| s.id));
        audited(
            &self.access,
            &caller,
            &target,
            serde_json::json!({ "paused": paused }),
            async {
                let s = self
                    .acq
                    .set_paused(found?.id, paused)
                    .await
                    .map_err(convert::error_status)?;
                Ok(Response::new(status_to_pb(&s)))
            },
        )
        .await
    }

    fn readable(&self, caller: &Caller, id: u64) -> Result<acquire::Status, Status> {
        let who = &caller.identity;
        if id == 0 {
            return self
                .acq
                .list()
                .into_iter()
                .rev()
                .find(|s| self.access.can_read(who, &s.owner))
                .ok_or_else(|| Status::not_found("no acquisition you may read has run yet"));
        }
        let s = self.acq.get(id).map_err(convert::error_status)?;
        if !self.access.can_read(who, &s.owner) {
            return Err(Status::permission_denied(format!(
                "acquisition {id} belongs to {} and {} may not read it: a user reads their own \
                 datasets and those their config entry's can_read names (ask an admin)",
                s.owner, who.user
            )));
        }
        Ok(s)
    }
}

/// A lease event for the API.
fn lease_event_to_pb(e: &LeaseEvent) -> pb::Event {
    let kind = match e.kind {
        LeaseEventKind::Taken => pb::EventKind::LeaseTaken,
        LeaseEventKind::Released => pb::EventKind::LeaseReleased,
        LeaseEventKind::Expired => pb::EventKind::LeaseExpired,
        LeaseEventKind::Broken => pb::EventKind::LeaseBroken,
    };
    pb::Event {
        kind: kind as i32,
        time_unix_us: unix_us(e.time),
        acquisition: None,
        lease: Some(pb::LeaseEvent {
            holder: e.holder.clone(),
            by: e.by.clone(),
            reason: e.reason.clone(),
            expires_unix_us: e.expires.map_or(0, unix_us),
        }),
    }
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
        owner: s.owner.clone(),
    }
}

impl AcquisitionService {
    async fn start(
        &self,
        owner: String,
        req: pb::StartSequenceRequest,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
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
            .start_sequence(&owner, &req.camera, frames, name)
            .await
            .map_err(convert::error_status)?;
        Ok(Response::new(status_to_pb(&s)))
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl pb::acquisition_server::Acquisition for AcquisitionService {
    async fn start_sequence(
        &self,
        req: Request<pb::StartSequenceRequest>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let target = req.get_ref().name.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let r = req.get_ref();
        let detail = serde_json::json!({
            "camera": r.camera, "frames": r.frames, "until_stopped": r.until_stopped,
        });
        let owner = caller.identity.user.clone();
        let result = self.start(owner, req.into_inner()).await;
        let detail = match &result {
            Ok(s) => {
                serde_json::json!({ "id": s.get_ref().id, "path": s.get_ref().path, "request": detail })
            }
            Err(_) => detail,
        };
        record(
            &self.access,
            &caller,
            &target,
            detail,
            result.as_ref().map(|_| ()),
        );
        result
    }

    async fn stop_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let id = req.get_ref().id;
        let caller = require(
            &self.access,
            &req,
            Need::Operate,
            &format!("acquisition {id}"),
        )?;
        let found = self.controllable(&caller, id, "stop");
        let target = match &found {
            Ok(s) => format!("acquisition {}", s.id),
            Err(_) => format!("acquisition {id}"),
        };
        let detail = serde_json::Value::Null;
        audited(&self.access, &caller, &target, detail, async {
            let s = self
                .acq
                .stop(found?.id)
                .await
                .map_err(convert::error_status)?;
            Ok(Response::new(status_to_pb(&s)))
        })
        .await
    }

    async fn get_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let caller = require(&self.access, &req, Need::Observe, "")?;
        let s = self.readable(&caller, req.get_ref().id)?;
        Ok(Response::new(status_to_pb(&s)))
    }

    async fn list_acquisitions(
        &self,
        req: Request<pb::ListAcquisitionsRequest>,
    ) -> Result<Response<pb::ListAcquisitionsResponse>, Status> {
        let caller = require(&self.access, &req, Need::Observe, "")?;
        Ok(Response::new(pb::ListAcquisitionsResponse {
            acquisitions: self
                .acq
                .list()
                .iter()
                .filter(|s| self.access.can_read(&caller.identity, &s.owner))
                .map(status_to_pb)
                .collect(),
        }))
    }

    async fn read_plane(
        &self,
        req: Request<pb::ReadPlaneRequest>,
    ) -> Result<Response<pb::Image>, Status> {
        let caller = require(&self.access, &req, Need::Observe, "")?;
        let req = req.into_inner();
        let addr = match req.coords {
            Some(c) if req.plane != 0 => {
                return Err(Status::invalid_argument(format!(
                    "give either plane ({}) or coords (t={} c={} z={}), not both",
                    req.plane, c.t, c.c, c.z
                )))
            }
            Some(c) => PlaneAddress::Coords {
                t: c.t,
                c: c.c,
                z: c.z,
            },
            None => PlaneAddress::Index(req.plane),
        };
        let s = self.readable(&caller, req.id)?;
        let data = self
            .acq
            .read_plane(&s, req.position, addr)
            .await
            .map_err(convert::error_status)?;
        let pixel_type = if data.bits_per_sample == 8 {
            pb::PixelType::U8
        } else {
            pb::PixelType::U16
        };
        Ok(Response::new(pb::Image {
            camera: s.camera.clone(),
            width: data.width,
            height: data.height,
            pixel_type: pixel_type as i32,
            bit_depth: u32::from(data.bits_per_sample),
            data: data.data,
            metadata: None,
        }))
    }

    async fn validate_plan(
        &self,
        req: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::PlanSummary>, Status> {
        // A dry run changes nothing: anyone who may watch may ask what a plan amounts to.
        let caller = require(&self.access, &req, Need::Observe, "")?;
        let req = req.into_inner();
        let plan = plans::plan_from_pb(&req)?;
        let name = (!req.name.is_empty()).then_some(req.name.as_str());
        let check = self
            .acq
            .check_plan(&caller.identity.user, &plan, &req.camera, name)
            .await
            .map_err(convert::error_status)?;
        Ok(Response::new(plans::check_to_pb(&check)))
    }

    async fn start_plan(
        &self,
        req: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        let target = req.get_ref().name.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let owner = caller.identity.user.clone();
        let req = req.into_inner();
        let kind = match &req.plan {
            Some(pb::plan_request::Plan::Sequence(_)) => "structured",
            Some(pb::plan_request::Plan::UseqJson(_)) => "useq_json",
            Some(pb::plan_request::Plan::UseqYaml(_)) => "useq_yaml",
            None => "none",
        };
        let detail = serde_json::json!({ "plan": kind, "camera": req.camera });
        audited(&self.access, &caller, &target, detail, async {
            let plan = plans::plan_from_pb(&req)?;
            let name = (!req.name.is_empty()).then(|| req.name.clone());
            let s = self
                .acq
                .start_plan(&owner, plan, &req.camera, name)
                .await
                .map_err(convert::error_status)?;
            Ok(Response::new(status_to_pb(&s)))
        })
        .await
    }

    async fn pause_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        self.set_paused(req, true).await
    }

    async fn resume_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<pb::AcquisitionStatus>, Status> {
        self.set_paused(req, false).await
    }

    type WatchAcquisitionStream = Stream<pb::AcquisitionStatus>;

    async fn watch_acquisition(
        &self,
        req: Request<pb::AcquisitionRef>,
    ) -> Result<Response<Self::WatchAcquisitionStream>, Status> {
        let caller = require(&self.access, &req, Need::Observe, "")?;
        // Subscribe before reading the status, so an end between the two is not missed.
        let mut events = self.acq.subscribe();
        let first = self.readable(&caller, req.get_ref().id)?;
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
            const EVERY: Duration = Duration::from_millis(250);
            let mut last_sent = tokio::time::Instant::now();
            // An update held back by the rate limit, sent when the limit allows unless a newer
            // one replaces it: a run that goes quiet (waiting for its next time point) shows
            // where it stands, not where it stood a moment before.
            let mut held: Option<acquire::Status> = None;
            loop {
                let due = last_sent + EVERY;
                // `None`: the held update is due.
                let event = tokio::select! {
                    e = events.recv() => Some(e),
                    _ = tokio::time::sleep_until(due), if held.is_some() => None,
                    _ = tx.closed() => return,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                let Some(event) = event else {
                    if let Some(s) = held.take() {
                        last_sent = tokio::time::Instant::now();
                        if tx.send(Ok(status_to_pb(&s))).await.is_err() {
                            return;
                        }
                    }
                    continue;
                };
                let event = match event {
                    Ok(e) if e.status.id == id => e,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let last = matches!(event.kind, EventKind::Finished | EventKind::Failed);
                // At most 4 updates a second; the final status always goes out.
                if !last && last_sent.elapsed() < EVERY {
                    held = Some(event.status);
                    continue;
                }
                held = None;
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
        let caller = require(&self.access, &req, Need::Observe, "")?;
        // Watching is a read; starting the camera for it is a change of the instrument, so
        // only a viewer who may control it starts live mode (and keeps it running).
        let may_start = self.access.allows(&caller, Need::Control);
        let req = req.into_inner();
        convert::finite("max_fps", req.max_fps)?;
        if !(req.max_fps == 0.0 || (0.01..=10_000.0).contains(&req.max_fps)) {
            return Err(Status::invalid_argument(format!(
                "max_fps must be 0 (as fast as you read) or from 0.01 to 10000, got {}",
                req.max_fps
            )));
        }
        let viewer = self
            .acq
            .live_viewer(&req.camera, may_start)
            .map_err(convert::error_status)?;
        let camera = viewer.camera().to_owned();
        if may_start {
            // Running the camera is a change of the instrument: who may cause it is recorded.
            let detail = serde_json::json!({ "may_start_live_mode": true, "max_fps": req.max_fps });
            record(&self.access, &caller, &camera, detail, Ok(()));
        }
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
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            // Held as long as the stream: dropping it leaves the view (and stops live mode
            // with the last viewer who keeps it running).
            let viewer = viewer;
            // Which ring the frames came from, to know when it changes; a `Weak`, so that
            // a stream (maybe waiting on a client that does not read) never keeps a ring's
            // memory once its acquisition or live mode has let it go.
            let mut shown: Option<Weak<FrameRing>> = None;
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
                let Some((r, depth)) = viewer.frames() else {
                    shown = None;
                    continue;
                };
                if !shown
                    .as_ref()
                    .is_some_and(|w| Weak::ptr_eq(w, &Arc::downgrade(&r)))
                {
                    shown = Some(Arc::downgrade(&r));
                    bit_depth = depth;
                    after = 0;
                }
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
                drop(r);
                if tx.send(Ok(image)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_live_status(
        &self,
        req: Request<pb::LiveStatusRequest>,
    ) -> Result<Response<pb::LiveStatus>, Status> {
        require(&self.access, &req, Need::Observe, "")?;
        let s = self
            .acq
            .live_status(&req.get_ref().camera)
            .map_err(convert::error_status)?;
        Ok(Response::new(pb::LiveStatus {
            camera: s.camera,
            mode: match s.mode {
                acquire::LiveMode::Off => pb::LiveMode::Off,
                acquire::LiveMode::Starting => pb::LiveMode::Starting,
                acquire::LiveMode::Live => pb::LiveMode::Live,
                acquire::LiveMode::Acquisition => pb::LiveMode::Acquisition,
            } as i32,
            viewers: s.viewers,
            drivers: s.drivers,
            frames: s.frames,
            ring_slots: s.ring_slots,
            ring_bytes: s.ring_bytes,
            acquisition_id: s.acquisition.unwrap_or(0),
            error: s.error.unwrap_or_default(),
        }))
    }

    type WatchEventsStream = Stream<pb::Event>;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = require(&self.access, &req, Need::Observe, "")?;
        let mut events = self.acq.subscribe();
        let mut lease_events = self.access.leases().subscribe();
        let access = self.access.clone();
        let (tx, rx) = mpsc::channel(64);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    e = events.recv() => Ok(e),
                    e = lease_events.recv() => Err(e),
                    _ = tx.closed() => return,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                let event = match got {
                    Ok(e) => e,
                    // Everyone sees lease events: who holds the instrument is everyone's
                    // business.
                    Err(Ok(e)) => {
                        if tx.send(Ok(lease_event_to_pb(&e))).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                    Err(Err(broadcast::error::RecvError::Closed)) => return,
                };
                let event = match event {
                    Ok(e) => e,
                    // A watcher that fell behind misses progress events, not the stream.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if !access.can_read(&caller.identity, &event.status.owner) {
                    continue;
                }
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
                    lease: None,
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
