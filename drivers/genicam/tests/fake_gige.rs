//! The driver against aravis's fake GigE Vision camera on 127.0.0.1: real discovery, GVCP
//! control and GVSP streaming over loopback. Tests wait their turn for the one fake camera a
//! process can run (see `testing`).

use microscoped_driver_api::{Camera, Device, ErrorKind, PixelType, Roi, Value};
use microscoped_genicam::testing::{start_fake_gige, FakeGigE};
use microscoped_genicam::{discover, GenicamCamera, GenicamPixelFormat, GenicamSettings};

fn open(fake: &FakeGigE, settings: GenicamSettings) -> GenicamCamera {
    GenicamCamera::new(GenicamSettings {
        device_id: Some(fake.device_id()),
        frame_rate_hz: Some(200.0),
        ..settings
    })
    .expect("open the fake camera")
}

fn is_varied(frame: &[u8]) -> bool {
    frame.iter().any(|&b| b != frame[0])
}

#[test]
fn discovery_finds_the_fake_and_opens_it_by_id_and_address() {
    let fake = start_fake_gige("DISC1").unwrap();
    let ids = discover();
    assert!(ids.contains(&fake.device_id()), "{ids:?}");

    let mut cam = open(&fake, GenicamSettings::default());
    assert_eq!(cam.sensor_size().unwrap(), (2048, 2048));
    assert_eq!(
        cam.get_property("device_id").unwrap(),
        Value::String(fake.device_id())
    );
    assert_eq!(
        cam.get_property("vendor").unwrap(),
        Value::String("Aravis".into())
    );
    assert_eq!(
        cam.get_property("model").unwrap(),
        Value::String("Fake".into())
    );
    // The packet size is set explicitly, not left to aravis's 1400-byte negotiation.
    assert_eq!(cam.get_property("packet_size").unwrap(), Value::Int(8000));
    cam.ping().unwrap();
    let names: Vec<String> = cam.properties().into_iter().map(|p| p.name).collect();
    for name in [
        "exposure_ms",
        "gain",
        "frame_rate_hz",
        "pixel_format",
        "trigger_mode",
        "binning",
        "sensor_width",
        "frames_completed",
        "frames_failed",
        "frames_underrun",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    for spec in cam.properties() {
        cam.get_property(&spec.name)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    }
    let err = cam
        .set_property("sensor_width", &Value::Int(5))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ReadOnly);
    drop(cam);

    // By address, and with no id at all (the only camera here is the fake).
    let mut cam = GenicamCamera::new(GenicamSettings {
        device_id: Some(fake.address().into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(cam.sensor_size().unwrap(), (2048, 2048));
    drop(cam);
    let cam = GenicamCamera::new(GenicamSettings::default()).unwrap();
    assert_eq!(cam.device_id(), fake.device_id());
}

#[test]
fn a_missing_camera_is_disconnected_and_the_error_lists_what_was_found() {
    let fake = start_fake_gige("MISS1").unwrap();
    let err = GenicamCamera::new(GenicamSettings {
        device_id: Some("Aravis-Fake-NOSUCH".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Disconnected, "{err}");
    assert!(err.message.contains("NOSUCH"), "{err}");
    assert!(err.message.contains(&fake.device_id()), "{err}");

    let err = GenicamCamera::new(GenicamSettings {
        buffers: 0,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);
    assert!(err.message.contains("buffers"), "{err}");
}

#[test]
fn roi_and_binning_shape_the_frames() {
    let fake = start_fake_gige("ROI1").unwrap();
    let mut cam = open(&fake, GenicamSettings::default());
    let roi = Roi {
        x: 100,
        y: 200,
        width: 640,
        height: 480,
    };
    cam.set_roi(roi).unwrap();
    assert_eq!(cam.roi().unwrap(), roi);
    let shape = cam.frame_shape().unwrap();
    assert_eq!(
        (shape.width, shape.height, shape.pixel_type),
        (640, 480, PixelType::U8)
    );
    let mut buf = vec![0u8; shape.bytes()];
    let info = cam.snap(&mut buf).unwrap();
    assert_eq!(info.shape, shape);
    assert!(is_varied(&buf));

    // Binning keeps the region of the sensor and divides the frame.
    cam.set_binning(2).unwrap();
    assert_eq!(cam.binning().unwrap(), 2);
    assert_eq!(cam.roi().unwrap(), roi);
    let shape = cam.frame_shape().unwrap();
    assert_eq!((shape.width, shape.height), (320, 240));
    let mut small = vec![0u8; shape.bytes()];
    assert_eq!(cam.snap(&mut small).unwrap().shape, shape);
    // A buffer too small for the frame is refused before anything is acquired.
    let err = cam.snap(&mut small[..100]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);

    cam.set_property("binning", &Value::Int(1)).unwrap();
    assert_eq!(cam.roi().unwrap(), roi);
    let err = cam.set_binning(17).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!(cam.properties().iter().any(|p| p.name == "binning"
        && p.ty == microscoped_driver_api::PropertyType::Int { min: 1, max: 16 }));

    let err = cam
        .set_roi(Roi {
            x: 2000,
            y: 0,
            width: 100,
            height: 100,
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    cam.set_roi(Roi {
        x: 0,
        y: 0,
        width: 2048,
        height: 2048,
    })
    .unwrap();
    assert_eq!(cam.frame_shape().unwrap().bytes(), 2048 * 2048);
}

#[test]
fn exposure_round_trips_and_refuses_out_of_range() {
    let fake = start_fake_gige("EXP1").unwrap();
    let mut cam = open(&fake, GenicamSettings::default());
    let (min, max) = cam.exposure_range_ms().unwrap();
    assert!(min > 0.0 && max > min, "{min}..{max}");
    cam.set_exposure_ms(5.0).unwrap();
    assert!((cam.exposure_ms().unwrap() - 5.0).abs() < 1e-6);
    cam.set_property("exposure_ms", &Value::Float(2.5)).unwrap();
    assert_eq!(cam.get_property("exposure_ms").unwrap(), Value::Float(2.5));
    let err = cam.set_exposure_ms(max * 2.0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    let err = cam.set_exposure_ms(f64::NAN).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!((cam.exposure_ms().unwrap() - 2.5).abs() < 1e-6);

    // The same check at open (the first connection must let go of the camera first).
    drop(cam);
    let err = GenicamCamera::new(GenicamSettings {
        device_id: Some(fake.device_id()),
        exposure_ms: max * 2.0,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
}

#[test]
fn snap_mono8_and_mono16() {
    let fake = start_fake_gige("SNAP1").unwrap();
    let mut cam = open(&fake, GenicamSettings::default());
    let roi = Roi {
        x: 0,
        y: 0,
        width: 256,
        height: 128,
    };
    cam.set_roi(roi).unwrap();
    assert_eq!(cam.bit_depth().unwrap(), 8);
    let mut buf = vec![0u8; 256 * 128 * 2];
    let info = cam.snap(&mut buf).unwrap();
    assert_eq!(info.shape.bytes(), 256 * 128);
    assert!(is_varied(&buf[..info.shape.bytes()]));

    cam.set_property("pixel_format", &Value::String("Mono16".into()))
        .unwrap();
    assert_eq!(cam.bit_depth().unwrap(), 16);
    let shape = cam.frame_shape().unwrap();
    assert_eq!(shape.pixel_type, PixelType::U16);
    assert_eq!(shape.bytes(), 256 * 128 * 2);
    let info = cam.snap(&mut buf).unwrap();
    assert_eq!(info.shape, shape);
    assert!(is_varied(&buf));
    let err = cam
        .set_property("pixel_format", &Value::String("Mono12".into()))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue, "{err}");

    drop(cam);
    let cam16 = GenicamCamera::new(GenicamSettings {
        pixel_format: GenicamPixelFormat::Mono16,
        ..fake.settings()
    });
    let mut cam16 = cam16.unwrap();
    assert_eq!(cam16.bit_depth().unwrap(), 16);
}

#[test]
fn sequences_number_frames_count_statistics_and_restart() {
    let fake = start_fake_gige("SEQ1").unwrap();
    let mut cam = open(&fake, GenicamSettings::default());
    cam.set_roi(Roi {
        x: 0,
        y: 0,
        width: 320,
        height: 240,
    })
    .unwrap();
    let shape = cam.frame_shape().unwrap();
    let mut buf = vec![0u8; shape.bytes()];
    let err = cam.next_frame(&mut buf).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);

    for round in 0..2 {
        cam.start_sequence().unwrap();
        let err = cam
            .set_roi(Roi {
                x: 0,
                y: 0,
                width: 64,
                height: 64,
            })
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Busy);
        assert_eq!(cam.snap(&mut buf).unwrap_err().kind, ErrorKind::Busy);
        let mut seqs = Vec::new();
        let mut stamps = Vec::new();
        for _ in 0..20 {
            let info = cam.next_frame(&mut buf).unwrap();
            assert_eq!(info.shape, shape);
            assert!((info.exposure_ms - 10.0).abs() < 1e-6);
            seqs.push(info.sequence);
            stamps.push(info.camera_timestamp_us);
        }
        cam.stop_sequence().unwrap();
        cam.stop_sequence().unwrap();
        assert_eq!(seqs[0], 0, "round {round}: {seqs:?}");
        assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
        assert!(stamps.windows(2).all(|w| w[1] > w[0]), "{stamps:?}");
        let Value::Int(completed) = cam.get_property("frames_completed").unwrap() else {
            panic!("frames_completed is not an integer");
        };
        assert!(completed >= 20 * (round + 1), "{completed}");
        for name in ["frames_failed", "frames_underrun"] {
            assert!(matches!(cam.get_property(name).unwrap(), Value::Int(n) if n >= 0));
        }
    }
    let err = cam.next_frame(&mut buf).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);
}

#[test]
fn frame_ids_keep_increasing_over_many_frames() {
    // The fake camera's 16-bit GVSP block ids start near the top of their range, so a few
    // hundred frames cross the wrap from 65535 to 1.
    let fake = start_fake_gige("WRAP1").unwrap();
    let mut cam = open(&fake, GenicamSettings::default());
    cam.set_property("frame_rate_hz", &Value::Float(1000.0))
        .unwrap();
    cam.set_exposure_ms(0.1).unwrap();
    cam.set_roi(Roi {
        x: 0,
        y: 0,
        width: 64,
        height: 64,
    })
    .unwrap();
    let mut buf = vec![0u8; 64 * 64];
    cam.start_sequence().unwrap();
    let mut last = None;
    for _ in 0..300 {
        let seq = cam.next_frame(&mut buf).unwrap().sequence;
        if let Some(last) = last {
            assert!(seq > last && seq - last < 100, "{last} -> {seq}");
        }
        last = Some(seq);
    }
    cam.stop_sequence().unwrap();
}

#[test]
fn software_trigger_and_timeouts() {
    let fake = start_fake_gige("TRIG1").unwrap();
    let mut cam = open(
        &fake,
        GenicamSettings {
            trigger: "software".into(),
            frame_timeout_ms: 2000,
            ..Default::default()
        },
    );
    assert_eq!(
        cam.get_property("trigger_mode").unwrap(),
        Value::String("software".into())
    );
    cam.set_roi(Roi {
        x: 0,
        y: 0,
        width: 128,
        height: 128,
    })
    .unwrap();
    let mut buf = vec![0u8; 128 * 128];
    cam.snap(&mut buf).unwrap();
    cam.start_sequence().unwrap();
    let seqs: Vec<u64> = (0..5)
        .map(|_| cam.next_frame(&mut buf).unwrap().sequence)
        .collect();
    cam.stop_sequence().unwrap();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");

    // An external trigger that never comes: the wait ends in a timeout.
    let spec = cam
        .properties()
        .into_iter()
        .find(|p| p.name == "trigger_mode")
        .unwrap();
    let microscoped_driver_api::PropertyType::Enum { allowed } = spec.ty else {
        panic!("trigger_mode is not an enum");
    };
    let line = allowed
        .iter()
        .find(|a| a.starts_with("line"))
        .expect("the fake camera has a line trigger");
    drop(cam);
    let mut cam = open(
        &fake,
        GenicamSettings {
            trigger: line.clone(),
            frame_timeout_ms: 200,
            ..Default::default()
        },
    );
    let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
    let err = cam.snap(&mut buf).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    cam.set_property("trigger_mode", &Value::String("off".into()))
        .unwrap();
    cam.snap(&mut buf).unwrap();
    let err = cam
        .set_property("trigger_mode", &Value::String("line99".into()))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);
}

#[test]
fn the_driver_works_from_another_thread() {
    let fake = start_fake_gige("THRD1").unwrap();
    let cam = open(&fake, GenicamSettings::default());
    let handle = std::thread::spawn(move || {
        let mut cam = cam;
        let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
        cam.snap(&mut buf).map(|info| info.shape)
    });
    let shape = handle.join().unwrap().unwrap();
    assert_eq!((shape.width, shape.height), (512, 512));
}

#[test]
fn lost_packets_are_resent_or_the_frame_is_skipped_and_counted() {
    let fake = start_fake_gige("LOSS1").unwrap();
    let mut cam = open(&fake, GenicamSettings::default());
    cam.set_roi(Roi {
        x: 0,
        y: 0,
        width: 512,
        height: 256,
    })
    .unwrap();
    // 17 packets a frame: about 40% of the frames lose at least one, and many of those fail.
    fake.set_packet_loss(0.03);
    let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
    cam.start_sequence().unwrap();
    let mut last = None;
    for _ in 0..20 {
        let seq = cam.next_frame(&mut buf).unwrap().sequence;
        if let Some(last) = last {
            assert!(seq > last, "{last} -> {seq}");
        }
        last = Some(seq);
    }
    cam.stop_sequence().unwrap();
    let count = |cam: &mut GenicamCamera, name: &str| match cam.get_property(name).unwrap() {
        Value::Int(n) => n,
        other => panic!("{name} = {other:?}"),
    };
    let completed = count(&mut cam, "frames_completed");
    let failed = count(&mut cam, "frames_failed");
    assert!(completed >= 20);
    assert!(failed > 0, "no frame failed with 3% packet loss");
    // Every frame the sequence skipped was either failed or never arrived.
    let skipped = last.unwrap() + 1 - 20;
    assert!(skipped as i64 <= failed + count(&mut cam, "frames_underrun") + 1);
}
