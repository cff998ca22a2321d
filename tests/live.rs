//! Live mode over gRPC: the camera running for viewers with nothing written, started by the
//! first viewer who may control the instrument and stopped (its ring freed) when the last one
//! leaves; commands to the camera while it runs; an acquisition taking the camera over; what
//! observers see.

mod common;

use std::time::{Duration, Instant};

use common::{poll_until, Daemon, Team};
use microscoped::pb;
use pb::acquisition_client::AcquisitionClient;
use tonic::transport::Channel;
use tonic::Streaming;

const W: u32 = 64;
const H: u32 = 48;

fn config(root: &std::path::Path, users: &str) -> String {
    format!(
        r#"
[instrument]
name = "live-test"

[server]
anonymous_loopback_admin = {}

[storage]
data_root = "{}"
ring_mb = 1
min_slots = 4

[devices.Camera]
driver = "sim.camera"
width = {W}
height = {H}
bit_depth = 12
exposure_ms = 2.0
readout_ms = 1.0
pattern = "ramp"

[devices.Z]
driver = "sim.stage"
travel_um = [0.0, 200.0]
speed_um_s = 10000.0

{users}
"#,
        users.is_empty(),
        root.display()
    )
}

fn acq(d: &Daemon) -> AcquisitionClient<Channel> {
    AcquisitionClient::new(d.channel.clone())
        .max_decoding_message_size(microscoped::MAX_MESSAGE_BYTES)
}

async fn view<T>(a: &mut AcquisitionClient<T>) -> Streaming<pb::Image>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    a.live_view(pb::LiveViewRequest {
        camera: String::new(),
        max_fps: 0.0,
    })
    .await
    .unwrap()
    .into_inner()
}

/// The next frame of a live view; bounded.
async fn frame(s: &mut Streaming<pb::Image>) -> pb::Image {
    tokio::time::timeout(Duration::from_secs(30), s.message())
        .await
        .expect("a live frame within 30 s")
        .unwrap()
        .expect("the stream stays open")
}

async fn status<T>(a: &mut AcquisitionClient<T>) -> pb::LiveStatus
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    a.get_live_status(pb::LiveStatusRequest {
        camera: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// Polls the live status until `pred` holds; bounded.
async fn status_until<T>(
    a: &mut AcquisitionClient<T>,
    what: &str,
    pred: impl Fn(&pb::LiveStatus) -> bool,
) -> pb::LiveStatus
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let start = Instant::now();
    loop {
        let s = status(a).await;
        if pred(&s) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn mode(s: &pb::LiveStatus) -> pb::LiveMode {
    pb::LiveMode::try_from(s.mode).unwrap()
}

async fn reset_camera(d: &Daemon) -> Result<(), tonic::Status> {
    d.client
        .clone()
        .reset_device(pb::ResetDeviceRequest {
            device: "Camera".into(),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn live_mode_runs_the_camera_for_its_viewers_and_stops_with_the_last() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let before = status(&mut a).await;
    assert_eq!(mode(&before), pb::LiveMode::Off);
    assert_eq!((before.viewers, before.ring_bytes), (0, 0));

    // No acquisition runs: frames come all the same.
    let mut first = view(&mut a).await;
    let mut second = view(&mut a).await;
    for s in [&mut first, &mut second] {
        for _ in 0..3 {
            let f = frame(s).await;
            assert_eq!((f.width, f.height), (W, H));
            assert_eq!(f.data.len(), (W * H * 2) as usize);
        }
    }
    let live = status(&mut a).await;
    assert_eq!(mode(&live), pb::LiveMode::Live, "{live:?}");
    assert_eq!((live.viewers, live.drivers), (2, 2));
    assert!(live.frames >= 3 && live.ring_slots >= 2, "{live:?}");
    assert_eq!(
        live.ring_bytes,
        u64::from(live.ring_slots) * u64::from(W * H * 2)
    );
    // Nothing is written: live mode is no acquisition.
    let listed = a
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(listed.acquisitions.is_empty(), "{listed:?}");
    // The camera is claimed by live mode, as by an acquisition.
    let e = reset_camera(&d).await.unwrap_err();
    assert!(e.message().contains("live view"), "{}", e.message());

    // One viewer leaves: live mode goes on for the other.
    drop(first);
    status_until(&mut a, "down to one viewer", |s| s.viewers == 1).await;
    assert_eq!(mode(&status(&mut a).await), pb::LiveMode::Live);
    frame(&mut second).await;

    // The last one leaves: the camera stops, its claim and ring are gone.
    drop(second);
    let off = status_until(&mut a, "off", |s| {
        mode(s) == pb::LiveMode::Off && s.viewers == 0
    })
    .await;
    assert_eq!((off.ring_slots, off.ring_bytes), (0, 0));
    reset_camera(&d).await.expect("the camera is free again");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_camera_takes_commands_while_live() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let mut live = view(&mut a).await;
    frame(&mut live).await;

    // Focusing: the exposure is set between two frames, and later frames carry it.
    let mut scope = d.client.clone();
    let set = scope
        .set_property(pb::SetPropertyRequest {
            device: "Camera".into(),
            property: "exposure_ms".into(),
            value: Some(pb::Value {
                kind: Some(pb::value::Kind::FloatValue(7.0)),
            }),
        })
        .await
        .expect("exposure can be set while live")
        .into_inner();
    assert!(set.value.is_some());
    let start = Instant::now();
    loop {
        let f = frame(&mut live).await;
        if (f.metadata.unwrap().exposure_ms - 7.0).abs() < 1e-9 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "exposure never 7 ms"
        );
    }
    // A snap and a move work too, and live mode goes on after them.
    let snap = scope
        .snap(pb::SnapRequest {
            camera: String::new(),
            exposure_ms: 3.0,
        })
        .await
        .expect("snap while live")
        .into_inner();
    assert_eq!((snap.width, snap.height), (W, H));
    assert_eq!(snap.metadata.unwrap().exposure_ms, 3.0);
    scope
        .move_absolute(pb::MoveRequest {
            device: "Z".into(),
            position_um: vec![42.0],
        })
        .await
        .expect("move while live");
    let f = frame(&mut live).await;
    assert_eq!(
        f.metadata.unwrap().exposure_ms,
        7.0,
        "the snap's exposure was put back"
    );
    assert_eq!(mode(&status(&mut a).await), pb::LiveMode::Live);
    drop(live);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_acquisition_takes_the_camera_over_and_live_mode_comes_back_after_it() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let mut live = view(&mut a).await;
    frame(&mut live).await;
    let before = status(&mut a).await;
    assert_eq!(mode(&before), pb::LiveMode::Live);

    let started = a
        .start_sequence(pb::StartSequenceRequest {
            camera: String::new(),
            frames: 0,
            until_stopped: true,
            name: "during-live".into(),
        })
        .await
        .expect("an acquisition takes the camera over from live mode")
        .into_inner();
    let during = status_until(&mut a, "showing the acquisition", |s| {
        mode(s) == pb::LiveMode::Acquisition
    })
    .await;
    assert_eq!(during.acquisition_id, started.id);
    assert_eq!(during.viewers, 1);
    // The viewer goes on, now with the acquisition's frames.
    let start = Instant::now();
    while status(&mut a).await.frames < 5 {
        assert!(start.elapsed() < Duration::from_secs(30));
        frame(&mut live).await;
    }
    frame(&mut live).await;
    let done = a
        .stop_acquisition(pb::AcquisitionRef { id: started.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, pb::AcquisitionState::Stopped as i32, "{done:?}");
    assert!(done.written >= 5);
    assert_eq!(done.received, done.written + done.dropped);

    // Live mode comes back for the viewer still there.
    let after = status_until(&mut a, "live again", |s| mode(s) == pb::LiveMode::Live).await;
    assert_eq!(after.viewers, 1);
    frame(&mut live).await;
    drop(live);
    status_until(&mut a, "off", |s| mode(s) == pb::LiveMode::Off).await;
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn observers_watch_what_runs_but_only_a_controller_starts_live_mode() {
    let root = tempfile::tempdir().unwrap();
    let team = Team::new();
    let d = Daemon::with_config(&config(root.path(), &team.config)).await;
    let mut carol = d.as_user(Some(&team.carol)).acq;
    let alice = d.as_user(Some(&team.alice));
    let (mut alice_acq, mut alice_lease) = (alice.acq, alice.access);
    let mut bob = d.as_user(Some(&team.bob));

    // An observer alone: the stream is open, the camera does not start.
    let mut watching = view(&mut carol).await;
    let s = status(&mut carol).await;
    assert_eq!((mode(&s), s.viewers, s.drivers), (pb::LiveMode::Off, 1, 0));
    // Checking that nothing happens takes a while by nature.
    let nothing = tokio::time::timeout(Duration::from_millis(300), watching.message()).await;
    assert!(nothing.is_err(), "an observer started the camera");
    assert_eq!(mode(&status(&mut carol).await), pb::LiveMode::Off);

    // An operator while someone else holds the lease does not start it either.
    bob.access
        .acquire_lease(pb::AcquireLeaseRequest { ttl_s: 60 })
        .await
        .unwrap();
    let unleased = view(&mut alice_acq).await;
    let s = status(&mut carol).await;
    assert_eq!((mode(&s), s.viewers, s.drivers), (pb::LiveMode::Off, 2, 0));
    drop(unleased);
    bob.access
        .release_lease(pb::ReleaseLeaseRequest {})
        .await
        .unwrap();

    // With the lease she does, and the observer sees her frames.
    alice_lease
        .acquire_lease(pb::AcquireLeaseRequest { ttl_s: 60 })
        .await
        .unwrap();
    let mut driving = view(&mut alice_acq).await;
    frame(&mut driving).await;
    let f = frame(&mut watching).await;
    assert_eq!((f.width, f.height), (W, H));
    let s = status(&mut carol).await;
    assert_eq!((mode(&s), s.drivers), (pb::LiveMode::Live, 1));

    // Who may run the camera for live view is in the audit log; watching is not.
    let log = d
        .as_user(Some(&team.tech))
        .access
        .read_audit_log(pb::ReadAuditLogRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    let views = |user: &str| {
        log.iter()
            .filter(|e| e.user == user && e.action.contains("LiveView"))
            .count()
    };
    assert_eq!((views("alice"), views("carol")), (1, 0), "{log:?}");

    // She leaves: the camera stops although the observer still watches.
    drop(driving);
    let off = status_until(&mut carol, "off with the observer left", |s| {
        mode(s) == pb::LiveMode::Off && s.viewers == 1
    })
    .await;
    assert_eq!((off.viewers, off.drivers, off.ring_bytes), (1, 0, 0));
    drop(watching);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn live_mode_runs_while_a_plan_is_paused_and_the_plan_takes_the_camera_back() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let plan = pb::PlanRequest {
        plan: Some(pb::plan_request::Plan::UseqYaml(
            // Far more time points than the test waits for, so it never races the plan's end.
            "time_plan: {interval: 0.05, loops: 2000}\n".into(),
        )),
        name: "focus-break".into(),
        camera: String::new(),
    };
    let id = a.start_plan(plan).await.unwrap().into_inner().id;
    let done_of = |s: &pb::AcquisitionStatus| s.plan.as_ref().map_or(0, |p| p.events_done);
    poll_until(&mut a, id, "2 events done", |s| done_of(s) >= 2).await;
    let mut live = view(&mut a).await;
    frame(&mut live).await;
    assert_eq!(status(&mut a).await.acquisition_id, id);

    // Paused to refocus: the plan lets the camera go and live mode runs for the viewer.
    a.pause_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap();
    status_until(&mut a, "live while paused", |s| {
        mode(s) == pb::LiveMode::Live
    })
    .await;
    let start = Instant::now();
    while status(&mut a).await.frames < 3 {
        assert!(start.elapsed() < Duration::from_secs(30), "no live frames");
        frame(&mut live).await;
    }
    let paused_at = done_of(
        &a.get_acquisition(pb::AcquisitionRef { id })
            .await
            .unwrap()
            .into_inner(),
    );

    // Resumed: the plan takes the camera back from live mode and goes on taking its frames;
    // stopped, it has lost none of them.
    a.resume_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap();
    poll_until(&mut a, id, "2 events after the resume", |s| {
        done_of(s) >= paused_at + 2
    })
    .await;
    a.stop_acquisition(pb::AcquisitionRef { id }).await.unwrap();
    let done = poll_until(&mut a, id, "stopped", |s| {
        s.state != pb::AcquisitionState::Running as i32
    })
    .await;
    assert_eq!(done.state, pb::AcquisitionState::Stopped as i32, "{done:?}");
    assert!(done.received > paused_at as u64);
    assert_eq!((done.written, done.dropped), (done.received, 0));
    // And live mode comes back for the viewer.
    status_until(&mut a, "live after the plan", |s| {
        mode(s) == pb::LiveMode::Live
    })
    .await;
    frame(&mut live).await;
    drop(live);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_camera_fault_ends_live_mode_with_its_reason_and_a_reset_brings_it_back() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let mut live = view(&mut a).await;
    frame(&mut live).await;
    // The fault fires at the camera's next call: live mode's, or the read-back of the setting
    // when that comes first (then the answer is the fault).
    let armed = d
        .client
        .clone()
        .set_property(pb::SetPropertyRequest {
            device: "Camera".into(),
            property: "sim_fault".into(),
            value: Some(pb::Value {
                kind: Some(pb::value::Kind::StringValue("error".into())),
            }),
        })
        .await;
    if let Err(e) = armed {
        assert!(e.message().contains("sim_fault=error"), "{e:?}");
    }
    // The viewer stays; the status says why nothing comes.
    let failed = status_until(&mut a, "failed", |s| {
        mode(s) == pb::LiveMode::Off && !s.error.is_empty()
    })
    .await;
    assert!(failed.error.contains("sim_fault"), "{failed:?}");
    assert_eq!((failed.viewers, failed.ring_bytes), (1, 0));
    reset_camera(&d).await.expect("the camera answers again");
    let back = status_until(&mut a, "live again", |s| mode(s) == pb::LiveMode::Live).await;
    assert!(back.error.is_empty(), "a stale failure: {back:?}");
    // Frames come again (the newest: any left over from before the fault are skipped).
    let again = status(&mut a).await.frames;
    let start = Instant::now();
    while status(&mut a).await.frames <= again {
        assert!(start.elapsed() < Duration::from_secs(30));
        frame(&mut live).await;
    }
    drop(live);
    d.shutdown().await.unwrap();
}
