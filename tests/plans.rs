//! Multi-dimensional plans end to end: the real daemon on loopback runs useq plans on a
//! simulated instrument whose camera stamps the scene (filter, lasers, stage, exposure) into
//! every frame, so the files are checked for content, not just shape, with the `tiff` crate as
//! an independent reader.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{acq, ended, poll_until, yaml, Daemon};
use microscoped::pb;
use microscoped_sim::{Stamp, STAMP_PIXELS};
use pb::acquisition_client::AcquisitionClient;
use tonic::transport::Channel;
use tonic::Code;

const W: u32 = 64;
const H: u32 = 48;

/// A small instrument: stamping camera, XY and Z stages, three lasers, an emission filter
/// wheel, and one preset per channel with its own exposure.
fn config(root: &Path) -> String {
    format!(
        r#"
[instrument]
name = "plan-test"
pixel_size_um = 0.5
shutter = "Shutter"
# mCherry is left out: its files say nothing of its emission rather than guess.
emission_filter = "Filter"
emission_nm = {{ DAPI = 460.0, GFP = 525.0 }}

[server]
anonymous_loopback_admin = true

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
stamp = true

[devices.XY]
driver = "sim.xy_stage"
x_travel_um = [-5000.0, 5000.0]
y_travel_um = [-5000.0, 5000.0]
speed_um_s = 100000.0

[devices.Z]
driver = "sim.stage"
travel_um = [0.0, 200.0]
speed_um_s = 10000.0
home_um = 100.0

[devices.L405]
driver = "sim.laser"
wavelength_nm = 405.0
max_power_mw = 50.0

[devices.L488]
driver = "sim.laser"
wavelength_nm = 488.0
max_power_mw = 100.0

[devices.L561]
driver = "sim.laser"
wavelength_nm = 561.0
max_power_mw = 100.0

[devices.Filter]
driver = "sim.state"
labels = ["DAPI", "GFP", "mCherry", "Empty"]
passbands_nm = [[435.0, 485.0], [500.0, 550.0], [590.0, 650.0], [380.0, 780.0]]
switch_ms = 5.0

[devices.Shutter]
driver = "sim.shutter"

[presets.Channel.DAPI]
L488.on = false
L561.on = false
L405.power_setpoint_mw = 10.0
L405.on = true
Filter.label = "DAPI"
Camera.exposure_ms = 3.0

[presets.Channel.GFP]
L405.on = false
L561.on = false
L488.power_setpoint_mw = 20.0
L488.on = true
Filter.label = "GFP"
Camera.exposure_ms = 4.0

[presets.Channel.mCherry]
L405.on = false
L488.on = false
L561.power_setpoint_mw = 30.0
L561.on = true
Filter.label = "mCherry"
Camera.exposure_ms = 5.0
"#,
        root.display()
    )
}

/// Per channel: (filter position, laser bit, exposure ms), as the presets above set them.
const CHANNELS: [(&str, u32, u8, f64); 3] = [
    ("DAPI", 0, 0b001, 3.0),
    ("GFP", 1, 0b010, 4.0),
    ("mCherry", 2, 0b100, 5.0),
];

/// Where the anonymous loopback admin's datasets go.
fn local(root: &tempfile::TempDir) -> std::path::PathBuf {
    root.path().join("local")
}

/// Follows a run through WatchAcquisition until it ends; bounded.
async fn watch_to_end(a: &mut AcquisitionClient<Channel>, id: u64) -> pb::AcquisitionStatus {
    let mut updates = a
        .watch_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = None;
    while let Ok(Some(s)) = tokio::time::timeout_at(deadline.into(), updates.message())
        .await
        .expect("the run ends within 120 s")
    {
        last = Some(s);
    }
    let last = last.expect("at least one status");
    assert!(ended(&last), "the stream ended before the run: {last:?}");
    last
}

/// Every plane of a file (in file order) as its stamp, and IFD 0's OME-XML.
fn stamps(path: &Path) -> (Vec<Stamp>, String) {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;
    let mut dec =
        Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    let xml = dec.get_tag_ascii_string(Tag::ImageDescription).unwrap();
    let mut out = Vec::new();
    loop {
        assert_eq!(dec.dimensions().unwrap(), (W, H));
        let DecodingResult::U16(px) = dec.read_image().unwrap() else {
            panic!("expected u16 planes");
        };
        out.push(Stamp::read(&px[..STAMP_PIXELS]).expect("every plane carries a stamp"));
        if !dec.more_images() {
            break;
        }
        dec.next_image().unwrap();
    }
    (out, xml)
}

fn attr<'a>(xml: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let at = xml.find(&key).unwrap_or_else(|| panic!("no {name} in XML")) + key.len();
    &xml[at..at + xml[at..].find('"').unwrap()]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.02
}

#[tokio::test]
async fn a_2x3x5x4_plan_lands_as_planned_with_frames_from_the_right_settings() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let plan = r#"
axis_order: tpcz
stage_positions:
  - {x: 100.0, y: 200.0, z: 50.0, name: left}
  - {x: -300.0, y: 50.0, z: 80.0, name: right}
channels: [DAPI, GFP, mCherry]
z_plan: {range: 4.0, step: 1.0}
time_plan: {interval: 0.05, loops: 4}
"#;
    let check = a.validate_plan(yaml(plan, "")).await.unwrap().into_inner();
    assert_eq!(check.events, 120);
    assert_eq!(check.files, 2);
    assert_eq!(check.used_axes, "tpcz");
    assert!(check.bytes >= 120 * u64::from(W * H * 2));

    let started = a
        .start_plan(yaml(plan, "cells"))
        .await
        .unwrap()
        .into_inner();
    let done = watch_to_end(&mut a, started.id).await;
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    assert_eq!((done.received, done.written, done.dropped), (120, 120, 0));
    let p = done.plan.expect("a plan reports its progress");
    assert_eq!((p.events_total, p.events_done), (120, 120));
    assert_eq!(p.files.len(), 2);

    let folder = local(&root).join("cells");
    assert!(folder.join("plan.useq.json").is_file());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["state"], "finished");
    assert_eq!(summary["frames"]["written"], 120);

    // The auto-shutter opened for each exposure and left the sample dark at the end.
    let shutter = d
        .client
        .clone()
        .get_shutter(pb::DeviceRef {
            device: "Shutter".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!shutter.open);

    let positions = [(100.0, 200.0, 50.0), (-300.0, 50.0, 80.0)];
    for (pi, (x, y, z0)) in positions.into_iter().enumerate() {
        let file = folder.join(format!("cells_p{pi:03}.ome.tiff"));
        assert_eq!(p.files[pi], file.display().to_string());
        let (planes, xml) = stamps(&file);
        assert_eq!(planes.len(), 60);
        assert_eq!(attr(&xml, "DimensionOrder"), "XYZCT");
        assert_eq!(
            (
                attr(&xml, "SizeT"),
                attr(&xml, "SizeC"),
                attr(&xml, "SizeZ")
            ),
            ("4", "3", "5")
        );
        for (name, ..) in CHANNELS {
            assert!(xml.contains(&format!("Name=\"{name}\"")), "{name} missing");
        }
        // tpcz: within a file, planes go t, then c, then z (innermost).
        let mut i = 0;
        for _t in 0..4 {
            for (name, filter, laser, exposure) in CHANNELS {
                for zi in 0..5 {
                    let s = planes[i];
                    let want_z = z0 - 2.0 + zi as f64;
                    assert_eq!(s.filter, Some(filter), "plane {i} in {name}");
                    assert_eq!(s.lasers_on, laser, "plane {i} in {name}");
                    assert!(s.shutter_open, "plane {i} exposed with the shutter closed");
                    assert!(close(s.exposure_ms, exposure), "plane {i}: {s:?}");
                    assert!(close(s.x_um, x) && close(s.y_um, y), "plane {i} at {s:?}");
                    assert!(close(s.z_um, want_z), "plane {i}: z {} != {want_z}", s.z_um);
                    i += 1;
                }
            }
        }
    }
    d.shutdown().await.unwrap();
}

/// The scene of each frame of a one-position plan, in the order taken.
async fn visit_order(axis_order: &str) -> (Vec<(u32, f64)>, String) {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let plan = format!(
        "axis_order: {axis_order}\nchannels: [DAPI, GFP]\nz_plan: {{absolute: [10.0, 20.0, 30.0]}}\n"
    );
    let s = a
        .start_plan(yaml(&plan, "order"))
        .await
        .unwrap()
        .into_inner();
    let done = watch_to_end(&mut a, s.id).await;
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    let (planes, xml) = stamps(&local(&root).join("order").join("order.ome.tiff"));
    d.shutdown().await.unwrap();
    let visits = planes
        .iter()
        .map(|s| (s.filter.unwrap(), (s.z_um * 10.0).round() / 10.0))
        .collect();
    (visits, attr(&xml, "DimensionOrder").to_owned())
}

#[tokio::test]
async fn axis_orders_visit_the_devices_in_different_orders() {
    let (cz, cz_order) = visit_order("tpcz").await;
    assert_eq!(
        cz,
        [
            (0, 10.0),
            (0, 20.0),
            (0, 30.0),
            (1, 10.0),
            (1, 20.0),
            (1, 30.0)
        ]
    );
    assert_eq!(cz_order, "XYZCT");
    let (zc, zc_order) = visit_order("tpzc").await;
    assert_eq!(
        zc,
        [
            (0, 10.0),
            (1, 10.0),
            (0, 20.0),
            (1, 20.0),
            (0, 30.0),
            (1, 30.0)
        ]
    );
    assert_eq!(zc_order, "XYCZT");
}

#[tokio::test]
async fn acquire_every_and_do_stack_false_are_honoured() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let plan = r#"
axis_order: tpcz
stage_positions: [{x: 0.0, y: 0.0, z: 100.0}]
channels:
  - DAPI
  - {config: GFP, acquire_every: 2, do_stack: false}
z_plan: {range: 2.0, step: 1.0}
time_plan: {interval: 0.02, loops: 4}
"#;
    let check = a.validate_plan(yaml(plan, "")).await.unwrap().into_inner();
    // DAPI: 3 planes at each of 4 time points; GFP: the middle plane at t = 0 and 2.
    assert_eq!(check.events, 14);
    let s = a.start_plan(yaml(plan, "skip")).await.unwrap().into_inner();
    let done = watch_to_end(&mut a, s.id).await;
    assert_eq!(done.written, 14, "{done:?}");
    let (planes, xml) = stamps(&local(&root).join("skip").join("skip.ome.tiff"));
    let mut expected = Vec::new();
    for t in 0..4u32 {
        for z in [99.0, 100.0, 101.0] {
            expected.push((t, 0u32, z));
        }
        if t % 2 == 0 {
            expected.push((t, 1, 100.0));
        }
    }
    let got: Vec<(u32, f64)> = planes
        .iter()
        .map(|s| (s.filter.unwrap(), (s.z_um * 10.0).round() / 10.0))
        .collect();
    let want: Vec<(u32, f64)> = expected.iter().map(|&(_, c, z)| (c, z)).collect();
    assert_eq!(got, want);
    // Each plane keeps its true (T, C, Z) in the OME-XML, so readers place it correctly.
    for (i, (t, c, z)) in expected.iter().enumerate() {
        let zi = (z - 99.0) as u32;
        let needle = format!("<TiffData IFD=\"{i}\" FirstT=\"{t}\" FirstC=\"{c}\" FirstZ=\"{zi}\"");
        assert!(xml.contains(&needle), "no {needle} in XML");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn pause_resume_and_cancel_mid_run_leave_valid_files() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let plan = "channels: [GFP]\ntime_plan: {interval: 0.03, loops: 2000}\n";
    let s = a.start_plan(yaml(plan, "long")).await.unwrap().into_inner();
    let id = s.id;
    let done_of = |s: &pb::AcquisitionStatus| s.plan.as_ref().map_or(0, |p| p.events_done);
    poll_until(&mut a, id, "3 events done", |s| done_of(s) >= 3).await;

    let paused = a
        .pause_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paused.state, pb::AcquisitionState::Paused as i32);
    // The event in flight may still finish; after that nothing moves while paused.
    let first = done_of(
        &poll_until(&mut a, id, "paused", |s| {
            s.state == pb::AcquisitionState::Paused as i32
        })
        .await,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = done_of(
        &a.get_acquisition(pb::AcquisitionRef { id })
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(settled <= first + 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = a
        .get_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done_of(&later), settled, "events went on while paused");
    assert_eq!(later.state, pb::AcquisitionState::Paused as i32);

    a.resume_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap();
    poll_until(&mut a, id, "running on after resume", |s| {
        done_of(s) >= settled + 3
    })
    .await;

    let stopped = a
        .stop_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stopped.state, pb::AcquisitionState::Stopped as i32);
    assert!(stopped.written >= settled + 3 && stopped.written < 2000);
    assert_eq!(stopped.received, stopped.written + stopped.dropped);
    let (planes, xml) = stamps(&local(&root).join("long").join("long.ome.tiff"));
    assert_eq!(planes.len() as u64, stopped.written);
    assert_eq!(attr(&xml, "SizeT"), stopped.written.to_string());
    assert!(planes.iter().all(|s| s.filter == Some(1)));
    let summary = std::fs::read_to_string(local(&root).join("long").join("summary.json")).unwrap();
    assert!(summary.contains("\"state\": \"stopped\""), "{summary}");

    // Pausing what has ended, or a sequence, is refused with a reason.
    let e = a
        .pause_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("ended"), "{}", e.message());
    let seq = a
        .start_sequence(pb::StartSequenceRequest {
            camera: String::new(),
            frames: 0,
            until_stopped: true,
            name: "seq".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let e = a
        .pause_acquisition(pb::AcquisitionRef { id: seq.id })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("sequence"), "{}", e.message());
    a.stop_acquisition(pb::AcquisitionRef { id: seq.id })
        .await
        .unwrap();
    // Watching an acquisition that does not exist says so.
    let e = a
        .watch_acquisition(pb::AcquisitionRef { id: 999 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    d.shutdown().await.unwrap();
}

/// A snap's stamp: the scene the camera saw.
fn snap_stamp(img: &pb::Image) -> Stamp {
    let px: Vec<u16> = img
        .data
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    Stamp::read(&px[..STAMP_PIXELS]).expect("a snap carries a stamp")
}

#[tokio::test]
async fn a_paused_plan_lets_the_devices_be_used_and_resumes_at_its_own_settings() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let mut scope = d.client.clone();
    // Every event wants the same channel and position: only a run that forgets what it set
    // when paused puts them back after someone changed them.
    let plan = "stage_positions: [{x: 100.0, y: 200.0, z: 50.0}]\nchannels: [GFP]\ntime_plan: {interval: 0.1, loops: 20}\n";
    let s = a
        .start_plan(yaml(plan, "refocus"))
        .await
        .unwrap()
        .into_inner();
    let id = s.id;
    let done_of = |s: &pb::AcquisitionStatus| s.plan.as_ref().map_or(0, |p| p.events_done);
    poll_until(&mut a, id, "2 events done", |s| done_of(s) >= 2).await;

    // The pause answers once the run stands still with the camera let go.
    let paused = a
        .pause_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paused.state, pb::AcquisitionState::Paused as i32);
    let snap = |exposure_ms| pb::SnapRequest {
        camera: String::new(),
        exposure_ms,
    };
    let before = scope.snap(snap(0.0)).await.expect("snap while paused");
    assert_eq!(snap_stamp(before.get_ref()).filter, Some(1));
    // Refocus, another channel, another place, another exposure.
    scope
        .apply_preset(pb::ApplyPresetRequest {
            group: "Channel".into(),
            preset: "mCherry".into(),
        })
        .await
        .expect("presets while paused");
    for (device, position_um) in [("XY", vec![1000.0, -1000.0]), ("Z", vec![10.0])] {
        scope
            .move_absolute(pb::MoveRequest {
                device: device.into(),
                position_um,
            })
            .await
            .expect("moves while paused");
        scope
            .wait_for_idle(pb::WaitForIdleRequest {
                device: device.into(),
                timeout_ms: 0,
            })
            .await
            .unwrap();
    }
    scope
        .set_property(pb::SetPropertyRequest {
            device: "Camera".into(),
            property: "exposure_ms".into(),
            value: Some(pb::Value {
                kind: Some(pb::value::Kind::FloatValue(9.0)),
            }),
        })
        .await
        .expect("camera settings while paused");
    let after = snap_stamp(scope.snap(snap(0.0)).await.unwrap().get_ref());
    assert_eq!(after.filter, Some(2));
    assert!(close(after.exposure_ms, 9.0) && close(after.x_um, 1000.0) && close(after.z_um, 10.0));
    // The auto-shutter is closed while paused, and no other acquisition gets the camera.
    let shutter = scope
        .get_shutter(pb::DeviceRef {
            device: "Shutter".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!shutter.open);
    let e = a
        .start_sequence(pb::StartSequenceRequest {
            camera: String::new(),
            frames: 1,
            until_stopped: false,
            name: "meanwhile".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("paused"), "{}", e.message());

    a.resume_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap();
    let done = watch_to_end(&mut a, id).await;
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    let (planes, _) = stamps(&local(&root).join("refocus").join("refocus.ome.tiff"));
    assert_eq!(planes.len(), 20);
    // Every plane, before and after the pause, at the plan's channel, exposure and place.
    for (i, s) in planes.iter().enumerate() {
        assert_eq!(s.filter, Some(1), "plane {i}: {s:?}");
        assert_eq!(s.lasers_on, 0b010, "plane {i}: {s:?}");
        assert!(close(s.exposure_ms, 4.0), "plane {i}: {s:?}");
        assert!(
            close(s.x_um, 100.0) && close(s.y_um, 200.0),
            "plane {i}: {s:?}"
        );
        assert!(close(s.z_um, 50.0), "plane {i}: {s:?}");
        assert!(s.shutter_open, "plane {i} exposed in the dark");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_plan_outlives_the_client_that_started_it() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let id = {
        let channel = Channel::from_shared(format!("http://{}", d.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut other = AcquisitionClient::new(channel);
        let s = other
            .start_plan(yaml(
                "channels: [DAPI]\ntime_plan: {interval: 0.02, loops: 10}\n",
                "orphan",
            ))
            .await
            .unwrap()
            .into_inner();
        s.id
        // The client and its connection are dropped here.
    };
    let mut a = acq(&d);
    let done = watch_to_end(&mut a, id).await;
    assert_eq!(done.state, pb::AcquisitionState::Finished as i32);
    assert_eq!(done.written, 10);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn structured_plans_run_like_their_useq_text() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let seq = pb::MdaSequence {
        axis_order: "pcz".into(),
        stage_positions: vec![
            pb::PlanPosition {
                x: Some(10.0),
                y: Some(10.0),
                z: Some(100.0),
                name: "a".into(),
            },
            pb::PlanPosition {
                x: Some(20.0),
                y: Some(20.0),
                z: Some(100.0),
                name: "b".into(),
            },
        ],
        channels: vec![pb::PlanChannel {
            config: "mCherry".into(),
            exposure: Some(6.0),
            ..Default::default()
        }],
        z_plan: Some(pb::PlanZ {
            relative: vec![-1.0, 1.0],
            ..Default::default()
        }),
        ..Default::default()
    };
    let s = a
        .start_plan(pb::PlanRequest {
            plan: Some(pb::plan_request::Plan::Sequence(seq)),
            name: "structured".into(),
            camera: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let done = watch_to_end(&mut a, s.id).await;
    assert_eq!(done.written, 4, "{done:?}");
    let (planes, _) = stamps(
        &local(&root)
            .join("structured")
            .join("structured_p001.ome.tiff"),
    );
    assert_eq!(planes.len(), 2);
    // The plan's exposure wins over the preset's, as in useq.
    assert!(planes
        .iter()
        .all(|s| close(s.exposure_ms, 6.0) && close(s.x_um, 20.0)));
    assert!(close(planes[0].z_um, 99.0) && close(planes[1].z_um, 101.0));
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_plans_are_refused_before_anything_moves() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let mut c = d.client.clone();
    let xy_before = c
        .get_position(pb::DeviceRef {
            device: "XY".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .position_um;
    let cases = [
        ("channels: [DAPI]\nautofocus: true\n", "autofocus"),
        ("channels: [Cy5]\n", "channels[0].config"),
        (
            "channels: [{config: GFP, group: Colour}]\n",
            "channels[0].group",
        ),
        (
            "stage_positions: [{x: 9000.0, y: 0.0}]\nchannels: [DAPI]\n",
            "stage_positions[0].x",
        ),
        (
            "channels: [DAPI]\ntime_plan: {interval: -1, loops: 3}\n",
            "time_plan.interval",
        ),
        (
            "channels: [{config: DAPI, exposure: 1e9}]\n",
            "channels[0].exposure",
        ),
        ("{}\n", "empty"),
    ];
    for (plan, field) in cases {
        for start in [false, true] {
            let e = if start {
                a.start_plan(yaml(plan, "bad")).await.unwrap_err()
            } else {
                a.validate_plan(yaml(plan, "")).await.unwrap_err()
            };
            assert_eq!(e.code(), Code::InvalidArgument, "{plan}: {e:?}");
            assert!(e.message().contains(field), "{plan}: {}", e.message());
        }
    }
    let xy_after = c
        .get_position(pb::DeviceRef {
            device: "XY".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .position_um;
    assert_eq!(xy_before, xy_after, "a refused plan moved the stage");
    let filter = c
        .get_state(pb::DeviceRef {
            device: "Filter".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filter.index, 0, "a refused plan turned the wheel");
    assert!(
        !local(&root).join("bad").exists(),
        "a refused plan left a dataset"
    );
    assert!(a
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .acquisitions
        .is_empty());
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn interval_zero_takes_time_points_as_fast_as_possible_as_in_useq() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    // The pymmcore-plus idiom: no wait between time points, none of them late.
    let plan = "channels: [DAPI, GFP]\ntime_plan: {interval: 0, loops: 3}\n";
    let check = a.validate_plan(yaml(plan, "")).await.unwrap().into_inner();
    assert_eq!((check.events, check.sizes.unwrap().t), (6, 3));
    assert!(!check.interval_exceeded, "{check:?}");
    let started = a.start_plan(yaml(plan, "fast")).await.unwrap().into_inner();
    let done = watch_to_end(&mut a, started.id).await;
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    assert_eq!((done.received, done.written, done.dropped), (6, 6, 0));
    let p = done.plan.unwrap();
    assert_eq!((p.events_done, p.late_events), (6, 0));
    let (planes, xml) = stamps(&local(&root).join("fast").join("fast.ome.tiff"));
    assert_eq!(planes.len(), 6);
    assert_eq!((attr(&xml, "SizeT"), attr(&xml, "SizeC")), ("3", "2"));
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_plan_larger_than_the_free_disk_is_refused() {
    let root = tempfile::tempdir().unwrap();
    // 32 MiB frames, a million time points: more than any disk this runs on.
    let text = config(root.path())
        .replace(&format!("width = {W}"), "width = 4096")
        .replace(&format!("height = {H}"), "height = 4096");
    let d = Daemon::with_config(&text).await;
    let mut a = acq(&d);
    let plan = "channels: [DAPI]\ntime_plan: {interval: 1, loops: 1000000}\n";
    // The dry run and the run are one check: the same refusal, word for word, in MiB.
    let dry = a.validate_plan(yaml(plan, "huge")).await.unwrap_err();
    let e = a.start_plan(yaml(plan, "huge")).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // Free space moves as other programs write: the figure is left out of the comparison.
    let free_left_out = |m: &str| {
        let (needs, rest) = m.split_once(" but only ").expect("says what is free");
        (
            needs.to_owned(),
            rest.split_once(" MiB").expect("in MiB").1.to_owned(),
        )
    };
    assert_eq!(dry.code(), e.code());
    assert_eq!(free_left_out(dry.message()), free_left_out(e.message()));
    assert!(
        e.message().contains("MiB are free under") && !e.message().contains(" MB"),
        "{}",
        e.message()
    );
    assert!(!local(&root).join("huge").exists());
    // A plan that fits is valid for both.
    let small = "channels: [DAPI]\ntime_plan: {interval: 0.01, loops: 2}\n";
    let check = a
        .validate_plan(yaml(small, "small"))
        .await
        .unwrap()
        .into_inner();
    assert!(check.free_bytes > 0 && check.bytes < check.free_bytes);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn presets_are_listed_and_applied_in_one_call() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut c = d.client.clone();
    let list = c
        .list_presets(pb::ListPresetsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.groups.len(), 1);
    let names: Vec<_> = list.groups[0]
        .presets
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["DAPI", "GFP", "mCherry"]);

    let applied = c
        .apply_preset(pb::ApplyPresetRequest {
            group: "Channel".into(),
            preset: "GFP".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .applied;
    assert_eq!(applied.len(), 6);
    let wheel = c
        .get_state(pb::DeviceRef {
            device: "Filter".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((wheel.index, wheel.label.as_str()), (1, "GFP"));
    let laser = c
        .get_laser_state(pb::DeviceRef {
            device: "L488".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(laser.enabled);

    let e = c
        .apply_preset(pb::ApplyPresetRequest {
            group: "Channel".into(),
            preset: "Cy5".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("DAPI, GFP, mCherry"),
        "{}",
        e.message()
    );
    let inst = c
        .get_instrument(pb::GetInstrumentRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inst.pixel_size_um, 0.5);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_preset_over_a_lasers_cap_stops_the_daemon_at_start_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let text = config(root.path()).replace(
        "L488.power_setpoint_mw = 20.0",
        "L488.power_setpoint_mw = 500.0",
    );
    let config = microscoped::config::Config::parse(&text, "rig.toml").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = microscoped::run(config, listener, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("rig.toml:") && e.contains("presets.Channel.GFP.L488.power_setpoint_mw"),
        "{e}"
    );
    assert!(e.contains("100"), "the message states the cap: {e}");
}

#[tokio::test]
async fn plans_keep_to_the_soft_limits() {
    let root = tempfile::tempdir().unwrap();
    let text = config(root.path()).replace(
        "speed_um_s = 100000.0",
        "speed_um_s = 100000.0\nsoft_limits_x_um = [-1000.0, 1000.0]",
    );
    let d = Daemon::with_config(&text).await;
    let mut a = acq(&d);
    // Inside the hardware's ±5000 µm but outside the facility's soft limits.
    let plan = "stage_positions: [{x: 2000.0, y: 0.0}]\nchannels: [DAPI]\n";
    let e = a.start_plan(yaml(plan, "far")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("stage_positions[0].x") && e.message().contains("1000"),
        "{}",
        e.message()
    );
    assert!(!local(&root).join("far").exists());
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_device_fault_mid_plan_stops_it_cleanly_and_turns_the_lasers_off() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let mut c = d.client.clone();
    let plan = "axis_order: tc\nchannels: [DAPI, GFP]\ntime_plan: {interval: 0.05, loops: 1000}\n";
    let s = a
        .start_plan(yaml(plan, "faulty"))
        .await
        .unwrap()
        .into_inner();
    let done_of = |s: &pb::AcquisitionStatus| s.plan.as_ref().map_or(0, |p| p.events_done);
    poll_until(&mut a, s.id, "4 events done", |s| done_of(s) >= 4).await;
    // The filter wheel stops answering: the next preset change fails. When the plan's call
    // comes between the setting and its read-back, the read-back meets the fault (or the
    // device it faulted), and that is the answer.
    let armed = c
        .set_property(pb::SetPropertyRequest {
            device: "Filter".into(),
            property: "sim_fault".into(),
            value: Some(pb::Value {
                kind: Some(pb::value::Kind::StringValue("error".into())),
            }),
        })
        .await;
    if let Err(e) = armed {
        assert!(e.message().contains("Filter"), "{e:?}");
    }
    let done = watch_to_end(&mut a, s.id).await;
    assert_eq!(done.state, pb::AcquisitionState::Failed as i32, "{done:?}");
    assert!(
        done.error.contains("Filter") && done.error.contains("event"),
        "{}",
        done.error
    );
    assert!(done.written >= 4 && done.written == done.received);
    // What was taken stays readable, and nothing is left lit.
    let (planes, _) = stamps(&local(&root).join("faulty").join("faulty.ome.tiff"));
    assert_eq!(planes.len() as u64, done.written);
    // The daemon makes the instrument safe right after the failure (on a task of its own).
    let start = Instant::now();
    for laser in ["L405", "L488", "L561"] {
        loop {
            let l = c
                .get_laser_state(pb::DeviceRef {
                    device: laser.into(),
                })
                .await
                .unwrap()
                .into_inner();
            if !l.enabled {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{laser} left on after the failed plan"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn grid_tiles_are_sized_by_the_configured_field_of_view_one_file_each() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    // 0.5 µm pixels x 64 x 48 px: a 32 x 24 µm field; two columns side by side around (100, 200).
    let plan = "axis_order: pgc\nstage_positions: [{x: 100.0, y: 200.0}]\ngrid_plan: {rows: 1, columns: 2}\nchannels: [GFP]\n";
    let check = a.validate_plan(yaml(plan, "")).await.unwrap().into_inner();
    assert_eq!(
        (check.files, check.fov_width_um, check.fov_height_um),
        (2, 32.0, 24.0)
    );
    let s = a
        .start_plan(yaml(plan, "tiles"))
        .await
        .unwrap()
        .into_inner();
    let done = watch_to_end(&mut a, s.id).await;
    assert_eq!(done.written, 2, "{done:?}");
    let mut xs = Vec::new();
    for g in 0..2 {
        let (planes, xml) = stamps(
            &local(&root)
                .join("tiles")
                .join(format!("tiles_p000_g{g:03}.ome.tiff")),
        );
        assert_eq!(planes.len(), 1);
        assert!(close(planes[0].y_um, 200.0));
        xs.push(planes[0].x_um);
        // Each tile is labelled with its position and tile, where it was taken.
        let label = &xml[xml.find("<StageLabel").expect("a StageLabel")..];
        assert_eq!(attr(label, "Name"), format!("p000_g{g:03}"));
        let x: f64 = attr(label, "X").parse().unwrap();
        assert!(close(x, planes[0].x_um), "{x} vs {:?}", planes[0]);
    }
    xs.sort_by(f64::total_cmp);
    assert!(close(xs[0], 84.0) && close(xs[1], 116.0), "{xs:?}");
    d.shutdown().await.unwrap();
}

/// The element `<name ...>` whose `key` attribute is `value`, as text up to its end.
fn element<'a>(xml: &'a str, name: &str, key: &str, value: &str) -> &'a str {
    let open = format!("<{name} ");
    let needle = format!(" {key}=\"{value}\"");
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let el = &rest[at..];
        let end = el.find('>').unwrap();
        if el[..end].contains(&needle) {
            return &el[..end];
        }
        rest = &el[end..];
    }
    panic!("no <{name}{needle}> in XML:\n{xml}")
}

/// Every decimal number in attribute `name` across the XML.
fn all_attrs<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!(" {name}=\"");
    xml.match_indices(&key)
        .map(|(at, _)| {
            let v = &xml[at + key.len()..];
            &v[..v.find('"').unwrap()]
        })
        .collect()
}

#[tokio::test]
async fn files_say_what_the_instrument_knows_of_z_step_light_and_position_rounded() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let plan = r#"
axis_order: tpcz
stage_positions:
  - {x: 100.125, y: 200.0, z: 50.0, name: left}
  - {x: -300.0, y: 50.0, z: 80.0}
channels: [DAPI, mCherry]
z_plan: {range: 1.0, step: 0.5}
time_plan: {interval: 0.01, loops: 2}
"#;
    let s = a.start_plan(yaml(plan, "meta")).await.unwrap().into_inner();
    let done = watch_to_end(&mut a, s.id).await;
    assert_eq!(done.written, 24, "{done:?}");
    let folder = local(&root).join("meta");
    for (p, (name, x, y, z)) in [("left", 100.125, 200.0, 50.0), ("p001", -300.0, 50.0, 80.0)]
        .into_iter()
        .enumerate()
    {
        let (_, xml) = stamps(&folder.join(format!("meta_p{p:03}.ome.tiff")));
        // The z plan's step is the distance between planes.
        assert_eq!(attr(&xml, "PhysicalSizeZ"), "0.5");
        assert_eq!(attr(&xml, "PhysicalSizeZUnit"), "&#xB5;m");
        // DAPI: its preset turns L405 on and selects the filter the config gives 460 nm.
        let dapi = element(&xml, "Channel", "Name", "DAPI");
        assert_eq!(attr(dapi, "ExcitationWavelength"), "405", "{dapi}");
        assert_eq!(attr(dapi, "EmissionWavelength"), "460", "{dapi}");
        // mCherry: L561, and no emission wavelength the config does not know.
        let mcherry = element(&xml, "Channel", "Name", "mCherry");
        assert_eq!(attr(mcherry, "ExcitationWavelength"), "561");
        assert!(!mcherry.contains("EmissionWavelength"), "{mcherry}");
        // The position, by its name or its index, where it is.
        let label = element(&xml, "StageLabel", "Name", name);
        assert_eq!(attr(label, "X").parse::<f64>().unwrap(), x);
        assert_eq!(attr(label, "Y").parse::<f64>().unwrap(), y);
        assert_eq!(attr(label, "Z").parse::<f64>().unwrap(), z);
        // Times to the microsecond, exposures to the microsecond, positions to the nanometre.
        for (key, decimals) in [
            ("DeltaT", 6),
            ("ExposureTime", 3),
            ("PositionX", 3),
            ("PositionY", 3),
            ("PositionZ", 3),
        ] {
            let values = all_attrs(&xml, key);
            assert_eq!(values.len(), 12, "{key}");
            for v in values {
                let places = v.split_once('.').map_or(0, |(_, f)| f.len());
                assert!(places <= decimals, "{key}=\"{v}\"");
                v.parse::<f64>().unwrap();
            }
        }
    }
    d.shutdown().await.unwrap();
}

/// Structured plans carry NaN where JSON cannot: a NaN position or exposure is refused by its
/// field, never read as "not set". A grid whose overlap overflows the step validates no more
/// than it runs: ValidatePlan and StartPlan refuse it with the same message, before anything
/// moves.
#[tokio::test]
async fn non_finite_values_and_targets_are_refused_alike_by_validate_and_start() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let mut c = d.client.clone();
    let xy = |c: &mut pb::microscope_client::MicroscopeClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.get_position(pb::DeviceRef {
                device: "XY".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .position_um
        }
    };
    let xy_before = xy(&mut c).await;
    let structured = |seq: pb::MdaSequence| pb::PlanRequest {
        plan: Some(pb::plan_request::Plan::Sequence(seq)),
        name: "bad".into(),
        camera: String::new(),
    };
    let dapi = || pb::PlanChannel {
        config: "DAPI".into(),
        ..Default::default()
    };
    let cases = [
        (
            structured(pb::MdaSequence {
                stage_positions: vec![pb::PlanPosition {
                    x: Some(f64::NAN),
                    y: Some(f64::NAN),
                    ..Default::default()
                }],
                channels: vec![dapi()],
                ..Default::default()
            }),
            "stage_positions[0].x: NaN is not a number; give a finite value",
        ),
        (
            structured(pb::MdaSequence {
                channels: vec![pb::PlanChannel {
                    exposure: Some(f64::NAN),
                    ..dapi()
                }],
                ..Default::default()
            }),
            "channels[0].exposure: NaN is not a number; give a finite value",
        ),
        (
            structured(pb::MdaSequence {
                channels: vec![dapi()],
                z_plan: Some(pb::PlanZ {
                    relative: vec![0.0, f64::INFINITY],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            "z_plan.relative[1]: inf is not finite",
        ),
        (
            structured(pb::MdaSequence {
                channels: vec![dapi()],
                grid_plan: Some(pb::PlanGrid {
                    rows: Some(1),
                    columns: Some(1),
                    overlap_x: Some(-1e308),
                    overlap_y: Some(0.0),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            "grid_plan.overlap: [-1e308, 0.0] % makes the step between tiles inf",
        ),
        (
            yaml(
                "channels: [DAPI]\ngrid_plan: {rows: 1, columns: 1, overlap: [-1.0e+308, 0]}\n",
                "bad",
            ),
            "grid_plan.overlap: [-1e308, 0.0] % makes the step between tiles inf",
        ),
        (
            // Each value finite, their sum not: z = 1e308 + 1e308.
            yaml(
                "channels: [{config: DAPI, z_offset: 1.0e+308}]\nz_plan: {absolute: [1.0e+308]}\n",
                "bad",
            ),
            "z_plan: z = inf µm",
        ),
    ];
    for (req, message) in cases {
        let check = a.validate_plan(req.clone()).await.unwrap_err();
        let start = a.start_plan(req).await.unwrap_err();
        assert_eq!(check.code(), Code::InvalidArgument, "{check:?}");
        assert!(check.message().contains(message), "{check:?}");
        assert_eq!(
            (start.code(), start.message()),
            (check.code(), check.message()),
            "StartPlan and ValidatePlan disagree"
        );
    }
    assert_eq!(
        xy(&mut c).await,
        xy_before,
        "a refused plan moved the stage"
    );
    assert!(a
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .acquisitions
        .is_empty());
    d.shutdown().await.unwrap();
}

/// The status of a call that must fail.
fn refused<T>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Status {
    match r {
        Ok(_) => panic!("accepted"),
        Err(s) => s,
    }
}

/// 100 kB of a client's text where a name, a key or a value goes, and a plan over the size
/// limit: each is refused with the right status and a short message, which a client with
/// tonic's default limits (decoding and metadata) receives whole instead of
/// RESOURCE_EXHAUSTED. The message quotes the start of the input and says its length.
#[tokio::test]
async fn inputs_of_100_kb_get_short_errors_that_a_default_client_receives() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    // Default limits throughout: no max_decoding_message_size, a plain channel.
    let mut m = microscoped::pb::microscope_client::MicroscopeClient::new(d.channel.clone());
    let mut a = AcquisitionClient::new(d.channel.clone());
    let big = "x".repeat(100_000);
    let short = |s: tonic::Status, code: Code, parts: &[&str]| {
        assert_eq!(s.code(), code, "{:.300}", s.message());
        let most = microscoped::names::MAX_MESSAGE_BYTES + 64;
        assert!(s.message().len() <= most, "{} bytes", s.message().len());
        for p in parts {
            assert!(s.message().contains(p), "{:?} lacks {p:?}", s.message());
        }
    };

    let device = pb::DeviceRef {
        device: big.clone(),
    };
    short(
        refused(m.get_position(device).await),
        Code::NotFound,
        &["(100000 bytes)", "XY"],
    );
    let property = pb::GetPropertyRequest {
        device: "Camera".into(),
        property: big.clone(),
    };
    short(
        refused(m.get_property(property).await),
        Code::NotFound,
        &["(100000 bytes)", "exposure_ms"],
    );
    let preset = pb::ApplyPresetRequest {
        group: "Channel".into(),
        preset: big.clone(),
    };
    short(
        refused(m.apply_preset(preset).await),
        Code::NotFound,
        &["(100000 bytes)", "GFP"],
    );
    // A label goes to the driver, whose message repeats it whole: the daemon caps the message.
    let label = pb::SetStateRequest {
        device: "Filter".into(),
        target: Some(pb::set_state_request::Target::Label(big.clone())),
    };
    short(
        refused(m.set_state(label).await),
        Code::NotFound,
        &["no position is labelled", "message cut"],
    );
    // A dataset name: the plan is fine, the name is not.
    short(
        refused(a.start_plan(yaml("channels: [GFP]\n", &big)).await),
        Code::InvalidArgument,
        &["dataset name", "(100000 bytes)", "1 to 128"],
    );
    // A YAML key and a value where a word goes. YAML limits a plain key to 1024 characters;
    // a long one is written as an explicit key.
    let plans = [
        (format!("? {big}\n: 1\n"), "unknown field"),
        (format!("axis_order: [{big}]\n"), "axis_order"),
    ];
    for (plan, part) in &plans {
        short(
            refused(a.validate_plan(yaml(plan, "")).await),
            Code::InvalidArgument,
            &[part, "(100000 bytes)"],
        );
    }
    // The key in JSON, and a value serde_json repeats whole in its message (cut by the
    // daemon's last guard on a message's length).
    let json = |text: String| pb::PlanRequest {
        plan: Some(pb::plan_request::Plan::UseqJson(text)),
        name: String::new(),
        camera: String::new(),
    };
    short(
        refused(a.validate_plan(json(format!("{{\"{big}\": 1}}"))).await),
        Code::InvalidArgument,
        &["unknown field", "(100000 bytes)"],
    );
    let exposure = format!(r#"{{"channels": [{{"config": "GFP", "exposure": "{big}"}}]}}"#);
    short(
        refused(a.validate_plan(json(exposure)).await),
        Code::InvalidArgument,
        &["channels[0].exposure", "message cut"],
    );
    // A plan text over 1 MiB is refused before it is parsed.
    let huge = format!("channels: [GFP]\n#{}\n", "x".repeat(1 << 20));
    short(
        refused(a.validate_plan(yaml(&huge, "")).await),
        Code::InvalidArgument,
        &["at most 1048576 bytes (1 MiB)"],
    );
    // A request over 4 MiB is refused before it is read, by its size.
    let oversize = format!("#{}\n", "x".repeat(microscoped::MAX_REQUEST_BYTES));
    short(
        refused(a.validate_plan(yaml(&oversize, "")).await),
        Code::InvalidArgument,
        &[
            "the request is 419",
            "a request has at most 4194304 bytes (4 MiB)",
        ],
    );
    // A structured plan's lists are bounded, named by their field, before they are converted.
    let positions = microscoped::plan::PlanList::StagePositions.max() + 1;
    let structured = pb::PlanRequest {
        plan: Some(pb::plan_request::Plan::Sequence(pb::MdaSequence {
            stage_positions: vec![
                pb::PlanPosition {
                    x: Some(1.0),
                    ..Default::default()
                };
                positions
            ],
            ..Default::default()
        })),
        name: String::new(),
        camera: String::new(),
    };
    short(
        refused(a.validate_plan(structured).await),
        Code::InvalidArgument,
        &[&format!(
            "stage_positions: {positions} items; a plan has at most {}",
            positions - 1
        )],
    );
    d.shutdown().await.unwrap();
}
