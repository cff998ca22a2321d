//! Sequence acquisitions end to end: the real daemon on loopback, frames through the ring into
//! OME-TIFF, read back with the `tiff` crate's decoder as an independent reader.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{acq, ended, poll_until, ramp_instrument as config, Daemon, RAMP_H as H, RAMP_W as W};
use microscoped::pb;
use pb::acquisition_client::AcquisitionClient;
use tonic::transport::Channel;
use tonic::Code;

fn start(frames: u64, name: &str) -> pb::StartSequenceRequest {
    pb::StartSequenceRequest {
        camera: String::new(),
        frames,
        until_stopped: false,
        name: name.into(),
    }
}

/// Polls until the acquisition has ended; bounded.
async fn wait_done(a: &mut AcquisitionClient<Channel>, id: u64) -> pb::AcquisitionStatus {
    poll_until(a, id, "ended", ended).await
}

/// The ramp the simulated camera draws for frame `n` (12-bit).
fn ramp(n: u64) -> Vec<u16> {
    let first = (n * 7919 % 4096) as u32;
    (0..W * H).map(|i| ((first + i) % 4096) as u16).collect()
}

/// Every plane of a TIFF file, decoded by the `tiff` crate, and IFD 0's ImageDescription.
fn read_tiff(path: &Path) -> (Vec<Vec<u16>>, String) {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;
    let mut dec =
        Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    let xml = dec.get_tag_ascii_string(Tag::ImageDescription).unwrap();
    let mut planes = Vec::new();
    loop {
        assert_eq!(dec.dimensions().unwrap(), (W, H));
        match dec.read_image().unwrap() {
            DecodingResult::U16(px) => planes.push(px),
            other => panic!(
                "expected u16 planes, got {:?}",
                std::mem::discriminant(&other)
            ),
        }
        if !dec.more_images() {
            break;
        }
        dec.next_image().unwrap();
    }
    (planes, xml)
}

fn count(xml: &str, needle: &str) -> usize {
    xml.matches(needle).count()
}

#[tokio::test]
async fn a_burst_lands_bit_exact_in_ome_tiff_with_every_frame_accounted() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let mut events = a
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let s = a
        .start_sequence(start(30, "burst"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.state, pb::AcquisitionState::Running as i32);
    assert_eq!((s.width, s.height, s.frames_planned), (W, H, 30));
    let expected_path = root
        .path()
        .join("local")
        .join("burst")
        .join("burst.ome.tiff");
    assert_eq!(PathBuf::from(&s.path), expected_path);

    let done = wait_done(&mut a, s.id).await;
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    assert_eq!(
        (done.received, done.written, done.dropped),
        (30, 30, 0),
        "{done:?}"
    );
    assert_eq!(done.bytes, std::fs::metadata(&expected_path).unwrap().len());

    let (planes, xml) = read_tiff(&expected_path);
    assert_eq!(planes.len(), 30);
    for (n, plane) in planes.iter().enumerate() {
        assert!(
            *plane == ramp(n as u64),
            "plane {n} differs from camera frame {n}"
        );
    }
    assert!(xml.contains(r#"SizeT="30""#), "{xml}");
    assert!(xml.contains(r#"DimensionOrder="XYCZT""#));
    assert_eq!(count(&xml, "<Plane "), 30);
    assert!(
        xml.contains("PositionZ=\"50"),
        "stage Z in the plane metadata: {xml}"
    );
    assert!(
        !Path::new(&format!("{}.frames.jsonl", expected_path.display())).exists(),
        "sidecar removed"
    );

    // The event stream told the story: started, then finished, for this acquisition.
    let mut kinds = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("events arrive")
            .unwrap()
            .expect("the event stream stays open");
        if ev.acquisition.as_ref().map(|a| a.id) != Some(s.id) {
            continue;
        }
        kinds.push(ev.kind);
        if ev.kind == pb::EventKind::AcquisitionFinished as i32 {
            assert_eq!(ev.acquisition.unwrap().written, 30);
            break;
        }
    }
    assert_eq!(
        kinds.first(),
        Some(&(pb::EventKind::AcquisitionStarted as i32))
    );
    assert_eq!(
        kinds.last(),
        Some(&(pb::EventKind::AcquisitionFinished as i32))
    );

    // The dataset is never overwritten.
    let e = a.start_sequence(start(3, "burst")).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert_eq!(read_tiff(&expected_path).0.len(), 30);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_run_stopped_early_has_xml_matching_the_frames_written() {
    let root = tempfile::tempdir().unwrap();
    let mut d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let s = a
        .start_sequence(pb::StartSequenceRequest {
            until_stopped: true,
            ..start(0, "")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(s.name.starts_with("seq-"), "{}", s.name);
    assert_eq!(s.frames_planned, 0);

    // One acquisition per camera; the camera is busy for other commands meanwhile.
    let e = a.start_sequence(start(5, "second")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("acquisition"), "{e:?}");
    let e = d
        .client
        .snap(pb::SnapRequest {
            camera: String::new(),
            exposure_ms: 0.0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(!root.path().join("local").join("second").exists());
    // A reset does not interrupt the acquisition, nor fault the camera.
    let e = d
        .client
        .reset_device(pb::ResetDeviceRequest {
            device: "Camera".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    let t = Instant::now();
    while a
        .get_acquisition(pb::AcquisitionRef { id: s.id })
        .await
        .unwrap()
        .into_inner()
        .written
        < 8
    {
        assert!(t.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = a
        .stop_acquisition(pb::AcquisitionRef { id: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stopped.state,
        pb::AcquisitionState::Stopped as i32,
        "{stopped:?}"
    );
    assert!(stopped.written >= 8);
    assert_eq!(stopped.received, stopped.written + stopped.dropped);
    let (planes, xml) = read_tiff(Path::new(&stopped.path));
    assert_eq!(planes.len() as u64, stopped.written);
    assert!(
        xml.contains(&format!(r#"SizeT="{}""#, stopped.written)),
        "{xml}"
    );
    assert_eq!(count(&xml, "<Plane ") as u64, stopped.written);
    assert!(
        xml.contains(&format!(r#"<M K="written">{}</M>"#, stopped.written)),
        "{xml}"
    );

    // The camera is free again.
    d.client
        .snap(pb::SnapRequest {
            camera: String::new(),
            exposure_ms: 0.0,
        })
        .await
        .unwrap();
    let list = a
        .list_acquisitions(pb::ListAcquisitionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.acquisitions.len(), 1);
}

#[tokio::test]
async fn bad_requests_are_refused_and_nothing_is_written_outside_the_data_root() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("data");
    let d = Daemon::with_config(&config(&root, "")).await;
    let mut a = acq(&d);
    let cases: &[(pb::StartSequenceRequest, Code, &str)] = &[
        (start(0, "zero"), Code::InvalidArgument, "at least 1"),
        (
            start(1_000_000_000_000, "huge"),
            Code::InvalidArgument,
            "10000000",
        ),
        (start(3, "a/b"), Code::InvalidArgument, "'/'"),
        (start(3, ".."), Code::InvalidArgument, "not allowed"),
        (start(3, "../escape"), Code::InvalidArgument, "not allowed"),
        (start(3, "/tmp/abs"), Code::InvalidArgument, "not allowed"),
        (start(3, "ctl\u{7}"), Code::InvalidArgument, "not allowed"),
        (start(3, "NUL"), Code::InvalidArgument, "reserved"),
        (
            pb::StartSequenceRequest {
                until_stopped: true,
                ..start(5, "both")
            },
            Code::InvalidArgument,
            "not both",
        ),
        (
            pb::StartSequenceRequest {
                camera: "XY".into(),
                ..start(5, "xy")
            },
            Code::InvalidArgument,
            "not a camera",
        ),
        (
            pb::StartSequenceRequest {
                camera: "Nope".into(),
                ..start(5, "nope")
            },
            Code::NotFound,
            "Nope",
        ),
    ];
    for (req, code, part) in cases {
        let e = a.start_sequence(req.clone()).await.unwrap_err();
        assert_eq!(e.code(), *code, "{req:?}: {e:?}");
        assert!(
            e.message().contains(part),
            "{req:?}: {:?} lacks {part:?}",
            e.message()
        );
    }
    // Nothing was created: not in the data root, not beside it.
    let outside: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(outside.iter().all(|n| n == "data"), "{outside:?}");
    if root.exists() {
        // Only the audit log, which lives there by default.
        let inside: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(inside.iter().all(|n| n == ".audit"), "{inside:?}");
    }
    let e = a
        .get_acquisition(pb::AcquisitionRef { id: 42 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = a
        .stop_acquisition(pb::AcquisitionRef { id: 0 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn an_unusable_data_root_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    // The audit log elsewhere: by default it lives in the data root, and the daemon would not
    // start without it.
    let text = format!(
        "{}\n[audit]\npath = \"{}\"\n",
        config(&file.join("data"), ""),
        dir.path().join("audit.jsonl").display()
    );
    let d = Daemon::with_config(&text).await;
    let e = acq(&d).start_sequence(start(3, "x")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("data root"), "{e:?}");
}

#[tokio::test]
async fn two_live_viewers_watch_while_the_writer_writes_every_frame() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let mut viewers = Vec::new();
    let mut connected = Vec::new();
    for fps in [0.0, 20.0] {
        let mut client = acq(&d);
        let (tx, rx) = tokio::sync::oneshot::channel();
        connected.push(rx);
        viewers.push(tokio::spawn(async move {
            let mut stream = client
                .live_view(pb::LiveViewRequest {
                    camera: String::new(),
                    max_fps: fps,
                })
                .await
                .unwrap()
                .into_inner();
            let _ = tx.send(());
            let mut frames = Vec::new();
            while frames.len() < 5 {
                let img = tokio::time::timeout(Duration::from_secs(30), stream.message())
                    .await
                    .expect("live frames arrive")
                    .unwrap()
                    .unwrap();
                frames.push(img);
            }
            frames
        }));
    }
    // Live view stays open across acquisitions: start one after the viewers connected.
    for rx in connected {
        rx.await.expect("viewer connected");
    }
    let s = a
        .start_sequence(start(150, "watched"))
        .await
        .unwrap()
        .into_inner();
    for v in viewers {
        let frames = v.await.unwrap();
        for img in &frames {
            assert_eq!((img.width, img.height), (W, H));
            assert_eq!(img.data.len(), (W * H * 2) as usize);
            let meta = img.metadata.as_ref().unwrap();
            assert_eq!(meta.stage_positions["Z"].position_um, vec![50.0]);
            assert_eq!(meta.stage_positions["XY"].position_um.len(), 2);
            // Every live frame is one of the camera's ramps, intact.
            let px: Vec<u16> = img
                .data
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            let first = px[0] as u32;
            assert!(px
                .iter()
                .enumerate()
                .all(|(i, &p)| p as u32 == (first + i as u32) % 4096));
        }
    }
    let done = wait_done(&mut a, s.id).await;
    assert_eq!(
        (done.received, done.written, done.dropped),
        (150, 150, 0),
        "{done:?}"
    );
    let e = a
        .live_view(pb::LiveViewRequest {
            camera: String::new(),
            max_fps: -1.0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn shutdown_finishes_a_running_acquisition() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&config(root.path(), "")).await;
    let mut a = acq(&d);
    let s = a
        .start_sequence(start(100_000, "long"))
        .await
        .unwrap()
        .into_inner();
    // Shut down once a frame is on disk, however long this machine takes to get there.
    let t = Instant::now();
    while a
        .get_acquisition(pb::AcquisitionRef { id: s.id })
        .await
        .unwrap()
        .into_inner()
        .written
        < 1
    {
        assert!(t.elapsed() < Duration::from_secs(60), "no frame written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    d.shutdown().await.unwrap();
    let (planes, xml) = read_tiff(Path::new(&s.path));
    assert!(!planes.is_empty());
    assert!(
        xml.contains(&format!(r#"SizeT="{}""#, planes.len())),
        "{xml}"
    );
}

/// A camera far faster than any writer (a frame every microsecond, tiny frames) into a
/// two-slot ring: the ring fills at once, and the overflow policy decides.
fn flood_config(root: &Path, overflow: &str) -> String {
    format!(
        r#"
[instrument]
name = "flood"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{}"
ring_mb = 1
min_slots = 2
overflow = "{overflow}"

[devices.Camera]
driver = "sim.camera"
width = 16
height = 16
exposure_ms = 0.001
min_exposure_ms = 0.001
readout_ms = 0.001
pattern = "ramp"
"#,
        root.display()
    )
}

#[tokio::test]
async fn overflow_stop_ends_the_run_with_a_clear_error_and_a_readable_file() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg =
        microscoped::config::Config::parse(&flood_config(root.path(), "stop"), "t.toml").unwrap();
    // 1 MiB holds thousands of 512-byte frames: pin the ring to its two-slot minimum.
    cfg.storage.ring_bytes = 0;
    let d = Daemon::start(cfg).await;
    let mut a = acq(&d);
    let s = a
        .start_sequence(start(200_000, "flood"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.ring_slots, 2);
    let done = wait_done(&mut a, s.id).await;
    assert_eq!(done.state, pb::AcquisitionState::Failed as i32, "{done:?}");
    assert!(
        done.error.contains("could not keep up") && done.error.contains("overflow"),
        "{}",
        done.error
    );
    assert_eq!(done.received, done.written + done.dropped, "{done:?}");
    assert!(done.written < 200_000);
    let planes = tiff::decoder::Decoder::new(std::fs::File::open(&done.path).unwrap())
        .map(|mut dec| {
            let mut n = 1;
            while dec.more_images() {
                dec.next_image().unwrap();
                n += 1;
            }
            n
        })
        .unwrap();
    assert_eq!(planes as u64, done.written);
}

#[tokio::test]
async fn overflow_drop_counts_every_frame_it_drops() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg =
        microscoped::config::Config::parse(&flood_config(root.path(), "drop"), "t.toml").unwrap();
    cfg.storage.ring_bytes = 0;
    let d = Daemon::start(cfg).await;
    let mut a = acq(&d);
    let s = a
        .start_sequence(start(5_000, "flood"))
        .await
        .unwrap()
        .into_inner();
    let done = wait_done(&mut a, s.id).await;
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    assert_eq!(done.received, 5_000);
    assert_eq!(done.received, done.written + done.dropped, "{done:?}");
    assert!(
        done.dropped > done.dropped_in_camera,
        "some drops were the ring's: {done:?}"
    );
}

#[tokio::test]
async fn a_sequence_channel_carries_the_light_the_instrument_is_set_to() {
    use pb::value::Kind;
    let root = tempfile::tempdir().unwrap();
    // No emission_nm: the wheel's labels are bands, read from their names.
    let text = config(root.path(), "").replace(
        "name = \"acq-test\"\n",
        "name = \"acq-test\"\nemission_filter = \"Wheel\"\n",
    ) + r#"
[devices.L488]
driver = "sim.laser"
wavelength_nm = 488.0

[devices.L561]
driver = "sim.laser"
wavelength_nm = 561.0

[devices.Wheel]
driver = "sim.state"
labels = ["ET 525/50m", "GFP"]
"#;
    let mut d = Daemon::with_config(&text).await;
    for (device, property, kind) in [
        ("L488", "on", Kind::BoolValue(true)),
        ("Wheel", "position", Kind::IntValue(0)),
    ] {
        d.client
            .set_property(pb::SetPropertyRequest {
                device: device.into(),
                property: property.into(),
                value: Some(pb::Value { kind: Some(kind) }),
            })
            .await
            .unwrap();
    }
    let mut a = acq(&d);
    let s = a
        .start_sequence(start(2, "lit"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wait_done(&mut a, s.id).await.written, 2);
    let (_, xml) = read_tiff(&root.path().join("local/lit/lit.ome.tiff"));
    let channel = &xml[xml.find("<Channel ").unwrap()..];
    let channel = &channel[..channel.find('>').unwrap()];
    assert!(
        channel.contains(" ExcitationWavelength=\"488\" ExcitationWavelengthUnit=\"nm\""),
        "{channel}"
    );
    assert!(channel.contains(" EmissionWavelength=\"525\""), "{channel}");
    // A sequence is no z stack and no plan position.
    assert!(
        !xml.contains("PhysicalSizeZ") && !xml.contains("StageLabel"),
        "{xml}"
    );
    d.shutdown().await.unwrap();
}
