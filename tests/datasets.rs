//! Data back to the user: `ReadPlane` on every dataset the daemon writes (plans with one file
//! per position, sequences), addressed by position and plane or by (t, c, z), with a status
//! that says what was wrong; while a file is written; and after a restart, when the datasets
//! of earlier runs are listed (for whoever may read them) and read like today's. The camera
//! stamps the scene into each frame, so a plane read back is checked for where it was taken;
//! the `tiff` crate reads the same plane independently.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{acq, ended, poll_until, shared_demo, yaml, Daemon, Team};
use microscoped::pb;
use microscoped::storage::{
    ChannelMeta, Counters, DatasetMeta, InstrumentMeta, OmeTiffWriter, PlaneMeta,
};
use microscoped_driver_api::PixelType;
use microscoped_sim::{Stamp, STAMP_PIXELS};
use pb::acquisition_client::AcquisitionClient;
use tonic::transport::Channel;
use tonic::Code;

const W: u32 = 64;
const H: u32 = 48;

/// A stamping camera, XY and Z stages, a filter wheel and two channel presets.
fn config(root: &Path) -> String {
    format!(
        r#"
[instrument]
name = "datasets"
pixel_size_um = 0.5

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

[devices.Filter]
driver = "sim.state"
labels = ["DAPI", "GFP"]
passbands_nm = [[435.0, 485.0], [500.0, 550.0]]
switch_ms = 1.0

[presets.Channel.DAPI]
Filter.label = "DAPI"
Camera.exposure_ms = 2.0

[presets.Channel.GFP]
Filter.label = "GFP"
Camera.exposure_ms = 3.0
"#,
        root.display()
    )
}

/// Every status WatchAcquisition sends until the run ends; bounded.
async fn watch_all(a: &mut AcquisitionClient<Channel>, id: u64) -> Vec<pb::AcquisitionStatus> {
    let mut updates = a
        .watch_acquisition(pb::AcquisitionRef { id })
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut all = Vec::new();
    while let Ok(Some(s)) = tokio::time::timeout_at(deadline.into(), updates.message())
        .await
        .expect("the run ends within 120 s")
    {
        all.push(s);
    }
    assert!(
        all.last().is_some_and(ended),
        "the stream ended before the run"
    );
    all
}

fn at_plane(id: u64, position: u32, plane: u64) -> pb::ReadPlaneRequest {
    pb::ReadPlaneRequest {
        id,
        plane,
        position,
        coords: None,
    }
}

fn at_coords(id: u64, position: u32, t: u32, c: u32, z: u32) -> pb::ReadPlaneRequest {
    pb::ReadPlaneRequest {
        id,
        plane: 0,
        position,
        coords: Some(pb::PlaneCoords { t, c, z }),
    }
}

async fn read(a: &mut AcquisitionClient<Channel>, req: pb::ReadPlaneRequest) -> pb::Image {
    let what = format!("{req:?}");
    a.read_plane(req)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"))
        .into_inner()
}

/// Asserts a refusal's code and that its message says each of `parts`.
async fn refused(
    a: &mut AcquisitionClient<Channel>,
    req: pb::ReadPlaneRequest,
    code: Code,
    parts: &[&str],
) {
    let what = format!("{req:?}");
    let e = a.read_plane(req).await.expect_err(&what);
    assert_eq!(e.code(), code, "{what}: {e:?}");
    for p in parts {
        assert!(
            e.message().contains(p),
            "{what}: {:?} lacks {p:?}",
            e.message()
        );
    }
}

fn pixels(img: &pb::Image) -> Vec<u16> {
    assert_eq!((img.width, img.height), (W, H));
    img.data
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn stamp(img: &pb::Image) -> Stamp {
    Stamp::read(&pixels(img)[..STAMP_PIXELS]).expect("the plane carries a stamp")
}

/// Plane `index` of a file as the `tiff` crate reads it.
fn tiff_plane(path: &Path, index: usize) -> Vec<u16> {
    use tiff::decoder::{Decoder, DecodingResult};
    let mut dec =
        Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    for _ in 0..index {
        dec.next_image().unwrap();
    }
    let DecodingResult::U16(px) = dec.read_image().unwrap() else {
        panic!("expected u16 planes");
    };
    px
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.02
}

const TWO_POSITIONS: &str = r#"
axis_order: tpcz
stage_positions:
  - {x: 100.0, y: 200.0, z: 50.0}
  - {x: -300.0, y: 50.0, z: 80.0}
channels: [DAPI, GFP]
z_plan: {range: 2.0, step: 1.0}
time_plan: {interval: 0.05, loops: 2}
"#;

#[tokio::test]
async fn plan_datasets_read_back_by_position_and_plane_or_by_tcz() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let started = a
        .start_plan(yaml(TWO_POSITIONS, "two"))
        .await
        .unwrap()
        .into_inner();
    let id = started.id;
    let done = watch_all(&mut a, id).await.pop().unwrap();
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    let files: Vec<PathBuf> = done.plan.unwrap().files.iter().map(PathBuf::from).collect();
    assert_eq!(files.len(), 2);

    // By position and plane: the first plane of position 1 was taken there, in DAPI, at the
    // bottom of the stack.
    let img = read(&mut a, at_plane(id, 1, 0)).await;
    let s = stamp(&img);
    assert!(close(s.x_um, -300.0) && close(s.y_um, 50.0), "{s:?}");
    assert_eq!(s.filter, Some(0));
    assert!(close(s.z_um, 79.0), "{s:?}");
    assert_eq!(pixels(&img), tiff_plane(&files[1], 0));

    // By (t, c, z): each plane is the one taken there, and the same the tiff crate reads at
    // the index tpcz puts it (z innermost, then c, then t).
    for (p, (x, z0)) in [(100.0, 50.0), (-300.0, 80.0)].into_iter().enumerate() {
        for t in 0..2u32 {
            for c in 0..2u32 {
                for z in 0..3u32 {
                    let img = read(&mut a, at_coords(id, p as u32, t, c, z)).await;
                    let s = stamp(&img);
                    assert!(close(s.x_um, x), "p{p} t{t} c{c} z{z}: {s:?}");
                    assert_eq!(s.filter, Some(c), "p{p} t{t} c{c} z{z}");
                    assert!(close(s.z_um, z0 - 1.0 + f64::from(z)), "{s:?}");
                    let index = (t * 6 + c * 3 + z) as usize;
                    assert_eq!(pixels(&img), tiff_plane(&files[p], index));
                }
            }
        }
    }
    // id 0 is the most recent.
    let img = read(&mut a, at_coords(0, 0, 1, 1, 2)).await;
    assert_eq!(pixels(&img), tiff_plane(&files[0], 11));

    // What addresses nothing says so, with the status for it; never DATA_LOSS.
    refused(
        &mut a,
        at_plane(id, 2, 0),
        Code::InvalidArgument,
        &["2 position(s)", "no position 2"],
    )
    .await;
    refused(
        &mut a,
        at_plane(id, 0, 12),
        Code::OutOfRange,
        &["holds 12 plane(s)", "plane 12"],
    )
    .await;
    refused(
        &mut a,
        at_coords(id, 0, 2, 0, 0),
        Code::OutOfRange,
        &["2 time point(s)", "t=2 c=0 z=0"],
    )
    .await;
    refused(
        &mut a,
        at_coords(id, 1, 0, 2, 0),
        Code::OutOfRange,
        &["2 channel(s)"],
    )
    .await;
    let mut both = at_coords(id, 0, 0, 0, 1);
    both.plane = 1;
    refused(&mut a, both, Code::InvalidArgument, &["not both"]).await;
    refused(&mut a, at_plane(999, 0, 0), Code::NotFound, &["999"]).await;

    // A plane the run never took: stopped before it.
    let long = "channels: [DAPI]\ntime_plan: {interval: 0.5, loops: 1000}\n";
    let run = a
        .start_plan(yaml(long, "stopped"))
        .await
        .unwrap()
        .into_inner();
    poll_until(&mut a, run.id, "2 frames written", |s| s.written >= 2).await;
    a.stop_acquisition(pb::AcquisitionRef { id: run.id })
        .await
        .unwrap();
    let s = a
        .get_acquisition(pb::AcquisitionRef { id: run.id })
        .await
        .unwrap()
        .into_inner();
    let written = s.written as u32;
    read(&mut a, at_coords(run.id, 0, written - 1, 0, 0)).await;
    refused(
        &mut a,
        at_coords(run.id, 0, written, 0, 0),
        Code::OutOfRange,
        &["outside"],
    )
    .await;
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn planes_are_read_while_the_file_is_written() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let plan = "channels: [DAPI, GFP]\ntime_plan: {interval: 0.3, loops: 1000}\n";
    let run = a
        .start_plan(yaml(plan, "growing"))
        .await
        .unwrap()
        .into_inner();
    poll_until(&mut a, run.id, "3 frames written", |s| s.written >= 3).await;
    // The file is being written: its sidecar says which plane is where.
    let file = root.path().join("local/growing/growing.ome.tiff");
    assert!(microscoped::storage::sidecar_path(&file).exists());
    let img = read(&mut a, at_coords(run.id, 0, 0, 1, 0)).await;
    assert_eq!(stamp(&img).filter, Some(1));
    assert_eq!(pixels(&img), tiff_plane(&file, 1));
    let img = read(&mut a, at_plane(run.id, 0, 2)).await;
    assert_eq!(stamp(&img).filter, Some(0));
    refused(
        &mut a,
        at_coords(run.id, 0, 900, 0, 0),
        Code::OutOfRange,
        &["yet"],
    )
    .await;
    refused(
        &mut a,
        at_plane(run.id, 0, 5000),
        Code::OutOfRange,
        &["yet"],
    )
    .await;
    a.stop_acquisition(pb::AcquisitionRef { id: run.id })
        .await
        .unwrap();
    // Finished: the same plane through the OME-XML.
    let after = read(&mut a, at_coords(run.id, 0, 0, 1, 0)).await;
    assert_eq!(after.data, img_data(&file, 1));
    d.shutdown().await.unwrap();
}

fn img_data(path: &Path, index: usize) -> Vec<u8> {
    tiff_plane(path, index)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// A dataset as a daemon writes it, made with the daemon's own writer: `planes` frames of
/// `fill`, finished unless `crashed` (then left as a killed daemon leaves it).
fn write_dataset(root: &Path, owner: &str, name: &str, planes: u32, crashed: bool) -> PathBuf {
    let dir = root.join(owner).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.ome.tiff"));
    let meta = DatasetMeta {
        name: name.into(),
        width: 8,
        height: 4,
        pixel_type: PixelType::U16,
        significant_bits: 12,
        size_t: planes,
        size_c: 1,
        size_z: 1,
        dimension_order: "XYCZT".into(),
        physical_size_um: None,
        physical_size_z_um: None,
        stage_label: None,
        channels: vec![ChannelMeta::named("Cam")],
        instrument: InstrumentMeta {
            detector_model: "OldCamera".into(),
            ..Default::default()
        },
        acquisition_date: SystemTime::now(),
    };
    let mut w = OmeTiffWriter::create(&path, meta).unwrap();
    for t in 0..planes {
        let px: Vec<u8> = (0..32u16)
            .flat_map(|i| (i + 100 * t as u16).to_le_bytes())
            .collect();
        let plane = PlaneMeta {
            the_t: t,
            ..Default::default()
        };
        w.write_plane(&px, &plane).unwrap();
    }
    if !crashed {
        let n = u64::from(planes);
        w.finish(Counters {
            received: n + 1,
            written: n,
            dropped: 1,
        })
        .unwrap();
    }
    path
}

#[tokio::test]
async fn datasets_from_before_a_restart_are_listed_and_read() {
    let root = tempfile::tempdir().unwrap();
    // Yesterday: a plan and a sequence run by this daemon...
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let plan = a
        .start_plan(yaml(TWO_POSITIONS, "yesterday-plan"))
        .await
        .unwrap()
        .into_inner();
    let plan_end = watch_all(&mut a, plan.id).await.pop().unwrap();
    let seq = a
        .start_sequence(pb::StartSequenceRequest {
            until_stopped: true,
            name: "yesterday-seq".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    poll_until(&mut a, seq.id, "2 frames written", |s| s.written >= 2).await;
    let stopped = a
        .stop_acquisition(pb::AcquisitionRef { id: seq.id })
        .await
        .unwrap()
        .into_inner();
    let first_plane = read(&mut a, at_coords(plan.id, 1, 1, 1, 2)).await;
    d.shutdown().await.unwrap();
    // ...and a run the daemon was killed during (its file never finished).
    let crashed = write_dataset(root.path(), "local", "killed", 3, true);

    // Today: a fresh daemon lists them, oldest first, as they ended.
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let list = a
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .acquisitions;
    let by_name = |n: &str| {
        list.iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("{n} not listed: {list:?}"))
            .clone()
    };
    assert_eq!(list.len(), 3, "{list:?}");
    let p = by_name("yesterday-plan");
    assert_eq!(p.state, pb::AcquisitionState::Finished as i32, "{p:?}");
    assert_eq!(
        (p.received, p.written, p.dropped, p.frames_planned),
        (24, 24, 0, 24)
    );
    assert_eq!(p.owner, "local");
    assert_eq!(p.camera, "Camera");
    assert_eq!((p.width, p.height), (W, H));
    let progress = p.plan.clone().expect("a plan's progress");
    assert_eq!((progress.events_total, progress.events_done), (24, 24));
    // Where it ended, as it said before the restart.
    let before = plan_end.plan.unwrap();
    assert!(before.current.is_some());
    assert_eq!(
        (progress.current, &progress.channel, &progress.position_name),
        (before.current, &before.channel, &before.position_name)
    );
    assert_eq!(progress.files.len(), 2);
    assert_eq!(progress.summary.unwrap().used_axes, "tpcz");
    let s = by_name("yesterday-seq");
    assert_eq!(s.state, pb::AcquisitionState::Stopped as i32, "{s:?}");
    assert_eq!(s.written, stopped.written);
    assert_eq!(s.path, stopped.path);
    let k = by_name("killed");
    assert_eq!(k.state, pb::AcquisitionState::Failed as i32, "{k:?}");
    assert!(
        k.error.contains("microscoped recover") && k.error.contains(crashed.to_str().unwrap()),
        "{}",
        k.error
    );
    assert_eq!(k.written, 3);
    assert_eq!((k.width, k.height), (8, 4));

    // They are read like today's: the plan by (t, c, z), the sequence by plane, the killed
    // run's file through its sidecar.
    let again = read(&mut a, at_coords(p.id, 1, 1, 1, 2)).await;
    assert_eq!(again.data, first_plane.data);
    read(&mut a, at_plane(s.id, 0, 1)).await;
    let img = read(&mut a, at_coords(k.id, 0, 2, 0, 0)).await;
    assert_eq!(u16::from_le_bytes([img.data[0], img.data[1]]), 200);
    refused(
        &mut a,
        at_plane(k.id, 0, 3),
        Code::OutOfRange,
        &["3 plane(s)", "recover"],
    )
    .await;
    // Ended: they cannot be paused; stopping one changes nothing.
    let e = a
        .pause_acquisition(pb::AcquisitionRef { id: p.id })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let same = a
        .stop_acquisition(pb::AcquisitionRef { id: p.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.state, p.state);

    // Today's runs come after them, with ids of their own.
    let today = a
        .start_plan(yaml("channels: [GFP]\n", "today"))
        .await
        .unwrap()
        .into_inner();
    assert!(list.iter().all(|s| s.id < today.id));
    watch_all(&mut a, today.id).await;
    let list = a
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .acquisitions;
    assert_eq!(list.last().unwrap().name, "today");
    assert_eq!(list.len(), 4);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_index_shows_each_user_only_what_they_may_read() {
    let root = tempfile::tempdir().unwrap();
    write_dataset(root.path(), "alice", "a1", 2, false);
    write_dataset(root.path(), "bob", "b1", 2, false);
    // Not datasets: a folder without images, a link, a hidden folder.
    std::fs::create_dir_all(root.path().join("alice/empty")).unwrap();
    std::os::unix::fs::symlink(root.path().join("bob/b1"), root.path().join("alice/link")).unwrap();
    std::fs::create_dir_all(root.path().join(".hidden/x")).unwrap();
    let team = Team::new();
    let d = Daemon::with_config(&shared_demo(&team, root.path(), "")).await;
    let names = |list: Vec<pb::AcquisitionStatus>| -> Vec<String> {
        list.into_iter()
            .map(|s| format!("{}/{}", s.owner, s.name))
            .collect()
    };
    let mut lists = Vec::new();
    for token in [&team.tech, &team.carol, &team.bob] {
        let mut u = d.as_user(Some(token));
        let list = u
            .acq
            .list_acquisitions(pb::ListAcquisitionsRequest {})
            .await
            .unwrap()
            .into_inner()
            .acquisitions;
        lists.push(names(list));
    }
    let mut all = lists[0].clone();
    all.sort();
    assert_eq!(all, ["alice/a1", "bob/b1"]);
    assert_eq!(lists[1], ["alice/a1"]);
    assert_eq!(lists[2], ["bob/b1"]);

    // The counters a finished file records.
    let mut tech = d.as_user(Some(&team.tech));
    let list = tech
        .acq
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .acquisitions;
    let b1 = list.iter().find(|s| s.name == "b1").unwrap();
    assert_eq!(b1.state, pb::AcquisitionState::Finished as i32);
    assert_eq!((b1.received, b1.written, b1.dropped), (3, 2, 1));
    assert_eq!(b1.camera, "OldCamera");
    let mut carol = d.as_user(Some(&team.carol));
    let e = carol
        .acq
        .read_plane(at_plane(b1.id, 0, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let a1 = list.iter().find(|s| s.name == "a1").unwrap();
    let img = carol
        .acq
        .read_plane(at_coords(a1.id, 0, 1, 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u16::from_le_bytes([img.data[0], img.data[1]]), 100);
    d.shutdown().await.unwrap();
}

/// A finished two-channel file whose (t=0, c=1) plane was never taken (a dropped frame).
fn write_with_a_hole(root: &Path) -> PathBuf {
    let dir = root.join("local").join("holes");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("holes.ome.tiff");
    let meta = DatasetMeta {
        name: "holes".into(),
        width: 8,
        height: 4,
        pixel_type: PixelType::U16,
        significant_bits: 12,
        size_t: 2,
        size_c: 2,
        size_z: 1,
        dimension_order: "XYCZT".into(),
        physical_size_um: None,
        physical_size_z_um: None,
        stage_label: None,
        channels: vec![ChannelMeta::named("DAPI"), ChannelMeta::named("GFP")],
        instrument: InstrumentMeta::default(),
        acquisition_date: SystemTime::now(),
    };
    let mut w = OmeTiffWriter::create(&path, meta).unwrap();
    for (t, c) in [(0u32, 0u32), (1, 0), (1, 1)] {
        let v = (10 * t + c) as u16;
        let px: Vec<u8> = (0..32).flat_map(|_| v.to_le_bytes()).collect();
        let plane = PlaneMeta {
            the_t: t,
            the_c: c,
            ..Default::default()
        };
        w.write_plane(&px, &plane).unwrap();
    }
    w.finish(Counters {
        received: 4,
        written: 3,
        dropped: 1,
    })
    .unwrap();
    path
}

#[tokio::test]
async fn a_plane_never_taken_is_not_found_and_only_a_damaged_file_is_data_loss() {
    let root = tempfile::tempdir().unwrap();
    write_with_a_hole(root.path());
    let broken = write_dataset(root.path(), "local", "broken", 2, false);
    // Garbage where the first IFD's offset is: the file no longer holds together.
    let mut bytes = std::fs::read(&broken).unwrap();
    bytes[8..16].copy_from_slice(&7u64.to_le_bytes());
    std::fs::write(&broken, bytes).unwrap();

    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    let list = a
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .acquisitions;
    let find = |n: &str| list.iter().find(|s| s.name == n).unwrap().clone();
    let holes = find("holes");
    let value = |img: pb::Image| u16::from_le_bytes([img.data[0], img.data[1]]);
    assert_eq!(
        value(read(&mut a, at_coords(holes.id, 0, 1, 1, 0)).await),
        11
    );
    assert_eq!(
        value(read(&mut a, at_coords(holes.id, 0, 1, 0, 0)).await),
        10
    );
    refused(
        &mut a,
        at_coords(holes.id, 0, 0, 1, 0),
        Code::NotFound,
        &["t=0 c=1 z=0", "dropped"],
    )
    .await;

    let b = find("broken");
    assert_eq!(b.state, pb::AcquisitionState::Failed as i32, "{b:?}");
    assert!(b.error.contains("damaged"), "{}", b.error);
    refused(&mut a, at_plane(b.id, 0, 0), Code::DataLoss, &["damaged"]).await;
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_watcher_sees_where_a_plan_waits_between_time_points() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    // Two quick images per time point, then a second's wait: the update that says both are
    // done must reach the watcher during the wait, not be held back by the rate limit.
    let plan = "axis_order: tc\nchannels: [DAPI, GFP]\ntime_plan: {interval: 1.0, loops: 3}\n";
    let run = a
        .start_plan(yaml(plan, "waits"))
        .await
        .unwrap()
        .into_inner();
    let all = watch_all(&mut a, run.id).await;
    let progress = |s: &pb::AcquisitionStatus| {
        let p = s.plan.clone().unwrap();
        (p.events_done, p.current.unwrap_or_default().t)
    };
    for done in [2, 4] {
        // The update names the time point waited for.
        let waiting = (done, (done / 2) as u32);
        assert!(
            all.iter()
                .filter(|s| !ended(s))
                .map(progress)
                .any(|p| p == waiting),
            "no update with {done} images done while waiting for the next time point: {:?}",
            all.iter().map(progress).collect::<Vec<_>>()
        );
    }
    d.shutdown().await.unwrap();
}

/// A position the run has not reached yet is not written yet (`OUT_OF_RANGE`, as a plane past
/// the end of a file being written is), not `NOT_FOUND`: a script waiting for planes retries
/// on one code.
#[tokio::test]
async fn a_position_not_reached_yet_is_out_of_range_like_any_plane_not_written_yet() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path())).await;
    let mut a = acq(&d);
    // Both time points at the first position (a minute apart) before the second.
    let plan = "axis_order: ptc\nstage_positions: [{x: 0, y: 0}, {x: 10, y: 0}]\n\
                channels: [DAPI]\ntime_plan: {interval: 60, loops: 2}\n";
    let run = a
        .start_plan(yaml(plan, "later"))
        .await
        .unwrap()
        .into_inner();
    poll_until(&mut a, run.id, "the first frame written", |s| {
        s.written >= 1
    })
    .await;
    read(&mut a, at_plane(run.id, 0, 0)).await;
    for req in [
        at_plane(run.id, 1, 0),
        at_coords(run.id, 1, 0, 0, 0),
        at_coords(run.id, 0, 1, 0, 0),
    ] {
        let what = format!("{req:?}");
        let e = a.read_plane(req).await.expect_err(&what);
        assert_eq!(e.code(), Code::OutOfRange, "{what}: {e:?}");
        assert!(e.message().contains("being written"), "{what}: {e:?}");
        // The daemon is writing it: `recover` now would race the writer.
        assert!(!e.message().contains("recover"), "{what}: {e:?}");
    }
    a.stop_acquisition(pb::AcquisitionRef { id: run.id })
        .await
        .unwrap();
    d.shutdown().await.unwrap();
}
