//! Behaviour tests across devices sharing a world.

use std::thread;
use std::time::{Duration, Instant};

use microscoped_driver_api::Settings as _;
use microscoped_driver_api::{
    Camera, Device, ErrorKind, Laser, PixelType, Roi, Shutter, Stage, StateDevice, Value, XYStage,
};

use crate::*;

/// Polls `busy` until it reports false; the deadline only keeps a broken test from hanging.
fn wait_idle(mut busy: impl FnMut() -> bool) {
    wait_until("the device to be idle", || !busy());
}

/// Polls `done` until it holds; the deadline only keeps a broken test from hanging.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn small_camera(world: &SimWorld) -> SimCamera {
    SimCamera::new(
        world,
        SimCameraSettings {
            width: 64,
            height: 64,
            exposure_ms: 5.0,
            read_noise: 0.0,
            bead_count: 40,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Snaps a frame and returns its pixels minus the camera offset.
fn snap_signal(camera: &mut SimCamera) -> Vec<f64> {
    let shape = camera.frame_shape().unwrap();
    let mut buf = vec![0u8; shape.bytes()];
    let info = camera.snap(&mut buf).unwrap();
    assert_eq!(info.shape, shape);
    let offset = match camera.get_property("offset").unwrap() {
        Value::Float(v) => v,
        other => panic!("offset is {other:?}"),
    };
    match shape.pixel_type {
        PixelType::U16 => buf
            .chunks_exact(2)
            .map(|b| f64::from(u16::from_le_bytes([b[0], b[1]])) - offset)
            .collect(),
        PixelType::U8 => buf.iter().map(|b| f64::from(*b) - offset).collect(),
    }
}

fn total(signal: &[f64]) -> f64 {
    signal.iter().sum()
}

fn peak(signal: &[f64]) -> f64 {
    signal.iter().cloned().fold(f64::MIN, f64::max)
}

struct Rig {
    camera: SimCamera,
    laser: SimLaser,
    wheel: SimStateDevice,
    shutter: SimShutter,
    z: SimStage,
}

/// A small instrument: camera, green laser (on), filter wheel on GFP, open shutter, focus stage
/// in focus.
fn rig() -> Rig {
    let world = SimWorld::new(1234);
    let camera = small_camera(&world);
    let z = SimStage::new(
        &world,
        SimStageSettings {
            home_um: 100.0,
            speed_um_s: 10_000.0,
            ..Default::default()
        },
    )
    .unwrap();
    let mut laser = SimLaser::new(&world, SimLaserSettings::default()).unwrap();
    laser.set_on(true).unwrap();
    let wheel = SimStateDevice::new(
        &world,
        SimStateDeviceSettings {
            initial: 1,
            switch_ms: 50.0,
            ..Default::default()
        },
    )
    .unwrap();
    let shutter = SimShutter::new(
        &world,
        SimShutterSettings {
            open: true,
            switch_ms: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    Rig {
        camera,
        laser,
        wheel,
        shutter,
        z,
    }
}

#[test]
fn xy_stage_moves_take_time_and_arrive() {
    let world = SimWorld::new(1);
    let mut xy = SimXYStage::new(
        &world,
        SimXYStageSettings {
            speed_um_s: 500.0,
            ..Default::default()
        },
    )
    .unwrap();
    xy.move_absolute_um(60.0, -80.0).unwrap(); // 100 um: 200 ms
    assert!(xy.is_busy().unwrap());
    let (x, _) = xy.position_um().unwrap();
    assert!(x < 60.0, "arrived at once: {x}");
    wait_idle(|| xy.is_busy().unwrap());
    assert_eq!(xy.position_um().unwrap(), (60.0, -80.0));
    xy.move_relative_um(-60.0, 80.0).unwrap();
    wait_idle(|| xy.is_busy().unwrap());
    assert_eq!(xy.position_um().unwrap(), (0.0, 0.0));
}

#[test]
fn xy_stop_freezes_midway() {
    let world = SimWorld::new(1);
    let mut xy = SimXYStage::new(
        &world,
        SimXYStageSettings {
            speed_um_s: 1000.0,
            ..Default::default()
        },
    )
    .unwrap();
    xy.move_absolute_um(1000.0, 0.0).unwrap(); // one second
    wait_until("the stage to leave 0", || xy.position_um().unwrap().0 > 0.0);
    xy.stop().unwrap();
    assert!(!xy.is_busy().unwrap());
    let (x, y) = xy.position_um().unwrap();
    assert!(x > 0.0 && x < 1000.0, "x = {x}");
    assert_eq!(y, 0.0);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(xy.position_um().unwrap(), (x, y));
}

#[test]
fn xy_out_of_travel_is_refused_without_moving() {
    let world = SimWorld::new(1);
    let mut xy = SimXYStage::new(&world, SimXYStageSettings::default()).unwrap();
    let err = xy.move_absolute_um(30_000.0, 0.0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!(err.message.contains("25000"), "{}", err.message);
    assert!(!xy.is_busy().unwrap());
    assert_eq!(xy.position_um().unwrap(), (0.0, 0.0));
    let err = xy.move_absolute_um(f64::NAN, 0.0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);
}

#[test]
fn focus_stage_moves_stops_and_refuses_out_of_travel() {
    let world = SimWorld::new(1);
    let mut z = SimStage::new(
        &world,
        SimStageSettings {
            speed_um_s: 100.0,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(z.position_um().unwrap(), 0.0);
    z.move_absolute_um(10.0).unwrap(); // 100 ms
    assert!(z.is_busy().unwrap());
    wait_idle(|| z.is_busy().unwrap());
    assert_eq!(z.position_um().unwrap(), 10.0);

    let err = z.move_absolute_um(250.0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!(err.message.contains("[0, 200]"), "{}", err.message);
    assert_eq!(z.position_um().unwrap(), 10.0);

    z.move_absolute_um(200.0).unwrap(); // 1.9 s
    wait_until("the stage to leave 10", || z.position_um().unwrap() > 10.0);
    z.make_safe().unwrap();
    let p = z.position_um().unwrap();
    assert!(p > 10.0 && p < 200.0, "p = {p}");
    assert!(!z.is_busy().unwrap());
    assert_eq!(
        z.get_property("position_um").unwrap(),
        Value::Float(p),
        "property and trait agree"
    );
}

#[test]
fn laser_power_limits_switching_and_make_safe() {
    let world = SimWorld::new(1);
    let mut laser = SimLaser::new(&world, SimLaserSettings::default()).unwrap();
    assert!(!laser.is_on().unwrap());
    assert_eq!(laser.power_mw().unwrap(), 0.0);

    let err = laser.set_power_mw(150.0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!(err.message.contains("100"), "{}", err.message);
    assert_eq!(laser.power_setpoint_mw().unwrap(), 10.0);
    assert_eq!(
        laser.set_power_mw(-1.0).unwrap_err().kind,
        ErrorKind::OutOfRange
    );

    laser.set_power_mw(25.0).unwrap();
    laser.set_on(true).unwrap();
    assert_eq!(laser.power_mw().unwrap(), 25.0);
    assert_eq!(laser.get_property("on").unwrap(), Value::Bool(true));

    laser.make_safe().unwrap();
    assert!(!laser.is_on().unwrap());
    assert_eq!(laser.power_mw().unwrap(), 0.0);
    assert_eq!(laser.power_setpoint_mw().unwrap(), 25.0);

    laser.set_property("on", &Value::Bool(true)).unwrap();
    laser
        .set_property("power_setpoint_mw", &Value::Int(5))
        .unwrap();
    assert_eq!(laser.get_property("power_mw").unwrap(), Value::Float(5.0));
    let err = laser
        .set_property("power_setpoint_mw", &Value::Float(101.0))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
}

#[test]
fn camera_roi_and_binning_shape_frames() {
    let world = SimWorld::new(1);
    let mut cam = small_camera(&world);
    assert_eq!(cam.sensor_size().unwrap(), (64, 64));
    let shape = cam.frame_shape().unwrap();
    assert_eq!((shape.width, shape.height), (64, 64));
    assert_eq!(shape.pixel_type, PixelType::U16);
    assert_eq!(shape.bytes(), 64 * 64 * 2);

    let roi = Roi {
        x: 8,
        y: 4,
        width: 33,
        height: 16,
    };
    cam.set_roi(roi).unwrap();
    cam.set_binning(2).unwrap();
    assert_eq!(cam.roi().unwrap(), roi);
    let shape = cam.frame_shape().unwrap();
    assert_eq!((shape.width, shape.height), (16, 8));
    assert_eq!(shape.bytes(), 16 * 8 * 2);
    let mut buf = vec![0u8; shape.bytes()];
    assert_eq!(cam.snap(&mut buf).unwrap().shape, shape);

    let mut small = vec![0u8; shape.bytes() - 1];
    assert_eq!(
        cam.snap(&mut small).unwrap_err().kind,
        ErrorKind::InvalidValue
    );

    let err = cam
        .set_roi(Roi {
            x: 40,
            y: 0,
            width: 32,
            height: 8,
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!(err.message.contains("64x64"), "{}", err.message);
    let empty = Roi {
        x: 0,
        y: 0,
        width: 0,
        height: 8,
    };
    assert_eq!(cam.set_roi(empty).unwrap_err().kind, ErrorKind::OutOfRange);
    assert_eq!(cam.roi().unwrap(), roi);
    assert_eq!(cam.set_binning(5).unwrap_err().kind, ErrorKind::OutOfRange);
    assert_eq!(cam.set_binning(0).unwrap_err().kind, ErrorKind::OutOfRange);

    let err = cam.set_exposure_ms(20_000.0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!(err.message.contains("0.01..=10000"), "{}", err.message);

    let eight = SimCamera::new(
        &world,
        SimCameraSettings {
            width: 16,
            height: 16,
            bit_depth: 8,
            exposure_ms: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    let mut eight = eight;
    let shape = eight.frame_shape().unwrap();
    assert_eq!(shape.pixel_type, PixelType::U8);
    assert_eq!(shape.bytes(), 256);
}

#[test]
fn snap_takes_the_exposure_time() {
    let world = SimWorld::new(1);
    let mut cam = small_camera(&world);
    cam.set_exposure_ms(30.0).unwrap();
    let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
    let t = Instant::now();
    let info = cam.snap(&mut buf).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(30),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(info.exposure_ms, 30.0);
}

#[test]
fn beads_follow_laser_filter_and_shutter() {
    let mut rig = rig();
    let lit = snap_signal(&mut rig.camera);
    assert!(peak(&lit) > 300.0, "peak {}", peak(&lit));

    rig.laser.set_on(false).unwrap();
    let dark = snap_signal(&mut rig.camera);
    assert_eq!(
        total(&dark),
        0.0,
        "no light, no read noise: exactly the offset"
    );
    rig.laser.set_on(true).unwrap();

    // DAPI passes 435..485 nm: the green dye's 510 nm emission is blocked.
    rig.wheel
        .set_property("label", &Value::String("DAPI".into()))
        .unwrap();
    assert!(rig.wheel.is_busy().unwrap());
    wait_idle(|| rig.wheel.is_busy().unwrap());
    let blocked = snap_signal(&mut rig.camera);
    assert!(
        total(&blocked) < 0.05 * total(&lit),
        "blocked {} vs lit {}",
        total(&blocked),
        total(&lit)
    );
    rig.wheel.set_position(1).unwrap();
    wait_idle(|| rig.wheel.is_busy().unwrap());

    rig.shutter.set_open(false).unwrap();
    assert_eq!(total(&snap_signal(&mut rig.camera)), 0.0);
    rig.shutter.set_open(true).unwrap();
    let again = snap_signal(&mut rig.camera);
    assert!(total(&again) > 0.5 * total(&lit));
}

#[test]
fn brightness_scales_with_power_and_binning_sums_light() {
    let mut rig = rig();
    let base = snap_signal(&mut rig.camera);
    rig.laser.set_power_mw(20.0).unwrap();
    let double = snap_signal(&mut rig.camera);
    let ratio = total(&double) / total(&base);
    assert!((ratio - 2.0).abs() < 0.1, "power ratio {ratio}");

    rig.camera.set_binning(2).unwrap();
    let binned = snap_signal(&mut rig.camera);
    assert_eq!(binned.len(), 32 * 32);
    assert!(peak(&binned) > peak(&double), "binned pixels sum light");
    let kept = total(&binned) / total(&double);
    assert!(
        (kept - 1.0).abs() < 0.1,
        "binning keeps total light: {kept}"
    );
}

#[test]
fn defocus_lowers_the_peak() {
    let mut rig = rig();
    let sharp = snap_signal(&mut rig.camera);
    rig.z.move_relative_um(4.0).unwrap();
    wait_idle(|| rig.z.is_busy().unwrap());
    let blurred = snap_signal(&mut rig.camera);
    assert!(
        peak(&blurred) < 0.5 * peak(&sharp),
        "blurred {} sharp {}",
        peak(&blurred),
        peak(&sharp)
    );
    assert!(total(&blurred) > 0.0);
}

#[test]
fn stage_moves_the_image() {
    let world = SimWorld::new(99);
    let mut cam = small_camera(&world);
    let mut laser = SimLaser::new(&world, SimLaserSettings::default()).unwrap();
    laser.set_on(true).unwrap();
    let mut xy = SimXYStage::new(
        &world,
        SimXYStageSettings {
            speed_um_s: 100_000.0,
            ..Default::default()
        },
    )
    .unwrap();
    let here = snap_signal(&mut cam);
    xy.move_relative_um(500.0, 0.0).unwrap();
    wait_idle(|| xy.is_busy().unwrap());
    let there = snap_signal(&mut cam);
    xy.move_relative_um(-500.0, 0.0).unwrap();
    wait_idle(|| xy.is_busy().unwrap());
    let back = snap_signal(&mut cam);
    assert_ne!(here, there);
    // Shot noise differs between frames; the beads are where they were.
    let diff: f64 = here.iter().zip(&back).map(|(a, b)| (a - b).abs()).sum();
    assert!(diff < 0.2 * total(&here), "diff {diff} of {}", total(&here));
}

#[test]
fn gradient_moves_and_noise_is_flat() {
    let world = SimWorld::new(1);
    let mut cam = small_camera(&world);
    cam.set_property("pattern", &Value::String("gradient".into()))
        .unwrap();
    let a = snap_signal(&mut cam);
    thread::sleep(Duration::from_millis(100));
    let b = snap_signal(&mut cam);
    assert!(peak(&a) > 500.0);
    assert_ne!(a, b, "the gradient moves with time");

    cam.set_property("pattern", &Value::String("noise".into()))
        .unwrap();
    cam.set_property("read_noise", &Value::Float(5.0)).unwrap();
    let n = snap_signal(&mut cam);
    let mean = total(&n) / n.len() as f64;
    let sd = (n.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n.len() as f64).sqrt();
    assert!(mean.abs() < 0.5, "mean {mean}");
    assert!((sd - 5.0).abs() < 0.5, "sd {sd}");
}

#[test]
fn sequence_numbers_and_timestamps_increase() {
    let world = SimWorld::new(1);
    let mut cam = small_camera(&world);
    let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
    let err = cam.next_frame(&mut buf).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);
    assert!(err.message.contains("start_sequence"), "{}", err.message);

    cam.start_sequence().unwrap();
    assert_eq!(cam.snap(&mut buf).unwrap_err().kind, ErrorKind::Busy);
    assert_eq!(cam.set_binning(2).unwrap_err().kind, ErrorKind::Busy);
    let t = Instant::now();
    let mut last: Option<(u64, u64)> = None;
    for i in 0..4 {
        let info = cam.next_frame(&mut buf).unwrap();
        assert_eq!(info.sequence, i);
        if let Some((_, ts)) = last {
            assert!(info.camera_timestamp_us > ts);
        }
        last = Some((info.sequence, info.camera_timestamp_us));
    }
    // Four frames at a 5 ms period (exposure 5, readout 5) are ready no sooner than 20 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(20),
        "{:?}",
        t.elapsed()
    );
    cam.set_exposure_ms(8.0).unwrap();
    let info = cam.next_frame(&mut buf).unwrap();
    assert_eq!(info.sequence, 4);
    assert_eq!(info.exposure_ms, 8.0);
    cam.stop_sequence().unwrap();
    cam.stop_sequence().unwrap();
    assert_eq!(
        cam.next_frame(&mut buf).unwrap_err().kind,
        ErrorKind::InvalidValue
    );
}

#[test]
fn slow_reader_loses_frames() {
    let world = SimWorld::new(1);
    let mut cam = small_camera(&world);
    let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
    cam.start_sequence().unwrap();
    thread::sleep(Duration::from_millis(60)); // about 12 frames at 5 ms
    let info = cam.next_frame(&mut buf).unwrap();
    assert!(info.sequence >= 4, "sequence {}", info.sequence);
    assert!(info.camera_timestamp_us >= info.sequence * 4_000);
    cam.make_safe().unwrap();
    assert!(cam.next_frame(&mut buf).is_err());
}

#[test]
fn a_renderer_slower_than_the_frame_period_loses_no_frame() {
    let world = SimWorld::new(1);
    // A 5 ms period. Each render takes eight periods, as a big frame in a debug build may:
    // that is the simulator's cost, not the reader being late, so no frame is lost and the
    // timestamps stay on the frame clock.
    let mut cam = small_camera(&world);
    cam.render_delay = Duration::from_millis(40);
    let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
    cam.start_sequence().unwrap();
    for i in 0..6 {
        let info = cam.next_frame(&mut buf).unwrap();
        assert_eq!(info.sequence, i, "frame {i} lost");
        assert!(
            info.camera_timestamp_us.abs_diff(i * 5_000) <= 1,
            "frame {i} at {} us",
            info.camera_timestamp_us
        );
    }
    // A reader that really is late (twelve periods between calls) still loses frames.
    thread::sleep(Duration::from_millis(60));
    let info = cam.next_frame(&mut buf).unwrap();
    assert!(info.sequence > 6, "sequence {}", info.sequence);
    cam.stop_sequence().unwrap();
}

#[test]
fn on_the_wall_clock_a_renderer_slower_than_the_frame_period_loses_frames() {
    // The same camera and render time as above, its clock the wall clock (as `bench` runs
    // it): the drawing's cost counts, so a drawing eight periods long leaves the frames the
    // camera made meanwhile behind, past its four-frame buffer, as a real camera would.
    let world = SimWorld::new(1);
    let settings = SimCameraSettings {
        width: 64,
        height: 48,
        exposure_ms: 5.0,
        readout_ms: 1.0,
        wall_clock: true,
        ..Default::default()
    };
    let mut cam = SimCamera::new(&world, settings).unwrap();
    cam.render_delay = Duration::from_millis(40);
    let mut buf = vec![0u8; cam.frame_shape().unwrap().bytes()];
    cam.start_sequence().unwrap();
    let first = cam.next_frame(&mut buf).unwrap().sequence;
    let second = cam.next_frame(&mut buf).unwrap().sequence;
    // At least eight periods passed between the two: at most four of them are still held.
    assert!(
        second >= first + 4,
        "frames {first} then {second}: none lost"
    );
    // Timestamps stay on the frame clock: frame n was exposed from n periods in.
    let info = cam.next_frame(&mut buf).unwrap();
    assert!(
        info.camera_timestamp_us.abs_diff(info.sequence * 5_000) <= 1,
        "frame {} at {} us",
        info.sequence,
        info.camera_timestamp_us
    );
    cam.stop_sequence().unwrap();
}

#[test]
fn state_device_labels_positions_and_busy() {
    let world = SimWorld::new(1);
    let mut wheel = SimStateDevice::new(&world, SimStateDeviceSettings::default()).unwrap();
    assert_eq!(wheel.labels().unwrap(), ["DAPI", "GFP", "mCherry", "Empty"]);
    assert_eq!(wheel.position().unwrap(), 0);
    wheel
        .set_property("label", &Value::String("mCherry".into()))
        .unwrap();
    assert!(wheel.is_busy().unwrap());
    assert_eq!(wheel.position().unwrap(), 2);
    assert_eq!(wheel.get_property("position").unwrap(), Value::Int(2));
    wait_idle(|| wheel.is_busy().unwrap());
    wheel.set_property("position", &Value::Int(3)).unwrap();
    assert_eq!(
        wheel.get_property("label").unwrap(),
        Value::String("Empty".into())
    );
    let err = wheel.set_position(4).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert!(err.message.contains("0..=3"), "{}", err.message);
    let err = wheel
        .set_property("label", &Value::String("Cy5".into()))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);
    wait_idle(|| wheel.is_busy().unwrap());
    // Asking for the current position does not move the wheel.
    wheel.set_position(3).unwrap();
    assert!(!wheel.is_busy().unwrap());
}

#[test]
fn shutter_opens_closes_and_make_safe_closes() {
    let world = SimWorld::new(1);
    let mut shutter = SimShutter::new(&world, SimShutterSettings::default()).unwrap();
    assert!(!shutter.is_open().unwrap());
    shutter.set_open(true).unwrap();
    assert_eq!(shutter.get_property("open").unwrap(), Value::Bool(true));
    shutter.make_safe().unwrap();
    assert!(!shutter.is_open().unwrap());
}

#[test]
fn fault_error_fires_once_on_any_call() {
    let world = SimWorld::new(1);
    let mut xy = SimXYStage::new(&world, SimXYStageSettings::default()).unwrap();
    xy.set_property("sim_fault", &Value::String("error".into()))
        .unwrap();
    let err = xy.position_um().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Hardware);
    assert_eq!(err.message, "simulated hardware fault (sim_fault=error)");
    assert!(xy.ping().is_ok());
    assert_eq!(
        xy.get_property("sim_fault").unwrap(),
        Value::String("none".into())
    );

    let mut wheel = SimStateDevice::new(&world, SimStateDeviceSettings::default()).unwrap();
    wheel
        .set_property("sim_fault", &Value::String("error".into()))
        .unwrap();
    // Reading the hook back shows it armed and does not fire it.
    assert_eq!(
        wheel.get_property("sim_fault").unwrap(),
        Value::String("error".into())
    );
    assert_eq!(wheel.ping().unwrap_err().kind, ErrorKind::Hardware);
    assert!(wheel.ping().is_ok());

    // Disarming cancels a pending fault.
    let mut cam = small_camera(&world);
    cam.set_property("sim_fault", &Value::String("error".into()))
        .unwrap();
    cam.set_property("sim_fault", &Value::String("none".into()))
        .unwrap();
    assert!(cam.ping().is_ok());
}

#[test]
fn fault_hang_blocks_then_times_out() {
    let world = SimWorld::new(1);
    let mut laser = SimLaser::new(
        &world,
        SimLaserSettings {
            hang_ms: 50,
            ..Default::default()
        },
    )
    .unwrap();
    laser
        .set_property("sim_fault", &Value::String("hang".into()))
        .unwrap();
    let t = Instant::now();
    let err = laser.set_on(true).unwrap_err();
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert_eq!(err.message, "simulated hang");
    assert!(!laser.is_on().unwrap(), "the hung call did nothing");
}

#[test]
fn properties_are_listed_and_checked() {
    let world = SimWorld::new(1);
    let mut cam = small_camera(&world);
    let names: Vec<String> = cam.properties().into_iter().map(|p| p.name).collect();
    for n in [
        "exposure_ms",
        "binning",
        "pattern",
        "read_noise",
        "offset",
        "bit_depth",
        "sensor_width",
        "sensor_height",
        "pixel_size_um",
        "sim_fault",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n}");
    }
    // Every listed property reads.
    for n in &names {
        cam.get_property(n).unwrap();
    }
    let err = cam.get_property("gain").unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains("gain") && err.message.contains("exposure_ms"),
        "{}",
        err.message
    );
    let err = cam.set_property("bit_depth", &Value::Int(12)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ReadOnly);
    cam.set_property("exposure_ms", &Value::Int(7)).unwrap();
    assert_eq!(cam.exposure_ms().unwrap(), 7.0);
    let err = cam.set_property("binning", &Value::Int(9)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfRange);

    let mut laser = SimLaser::new(&world, SimLaserSettings::default()).unwrap();
    for spec in laser.properties() {
        laser.get_property(&spec.name).unwrap();
    }
    let mut z = SimStage::new(&world, SimStageSettings::default()).unwrap();
    for spec in z.properties() {
        z.get_property(&spec.name).unwrap();
    }
    let mut xy = SimXYStage::new(&world, SimXYStageSettings::default()).unwrap();
    for spec in xy.properties() {
        xy.get_property(&spec.name).unwrap();
    }
    xy.set_property("speed_um_s", &Value::Float(10.0)).unwrap();
    assert_eq!(xy.get_property("speed_um_s").unwrap(), Value::Float(10.0));
}

#[test]
fn settings_validation_names_the_key() {
    fn key(r: Result<(), SettingError>) -> String {
        r.unwrap_err().key
    }
    let xy = SimXYStageSettings {
        x_travel_um: [5.0, 1.0],
        ..Default::default()
    };
    let err = xy.validate().unwrap_err();
    assert_eq!(err.key, "x_travel_um");
    assert!(err.message.contains("[5, 1]"), "{}", err.message);
    assert_eq!(
        err.to_string(),
        "x_travel_um: min must be below max, got [5, 1]"
    );

    assert_eq!(
        key(SimXYStageSettings {
            home_um: [0.0, 30_000.0],
            ..Default::default()
        }
        .validate()),
        "home_um"
    );
    assert_eq!(
        key(SimCameraSettings {
            bit_depth: 20,
            ..Default::default()
        }
        .validate()),
        "bit_depth"
    );
    assert_eq!(
        key(SimCameraSettings {
            exposure_ms: 0.0,
            ..Default::default()
        }
        .validate()),
        "exposure_ms"
    );
    assert_eq!(
        key(SimCameraSettings {
            max_binning: 0,
            ..Default::default()
        }
        .validate()),
        "max_binning"
    );
    assert_eq!(
        key(SimStageSettings {
            focus_z_um: 300.0,
            ..Default::default()
        }
        .validate()),
        "focus_z_um"
    );
    assert_eq!(
        key(SimStageSettings {
            speed_um_s: 0.0,
            ..Default::default()
        }
        .validate()),
        "speed_um_s"
    );
    assert_eq!(
        key(SimLaserSettings {
            power_mw: 200.0,
            ..Default::default()
        }
        .validate()),
        "power_mw"
    );
    assert_eq!(
        key(SimStateDeviceSettings {
            labels: vec!["A".into(), "A".into()],
            passbands_nm: None,
            ..Default::default()
        }
        .validate()),
        "labels"
    );
    assert_eq!(
        key(SimStateDeviceSettings {
            labels: vec!["A".into(), "B".into()],
            ..Default::default()
        }
        .validate()),
        "passbands_nm"
    );
    assert_eq!(
        key(SimStateDeviceSettings {
            initial: 4,
            ..Default::default()
        }
        .validate()),
        "initial"
    );
    assert_eq!(
        key(SimShutterSettings {
            switch_ms: -1.0,
            ..Default::default()
        }
        .validate()),
        "switch_ms"
    );
    let world = SimWorld::new(1);
    let err = SimLaser::new(
        &world,
        SimLaserSettings {
            max_power_mw: 0.0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.key, "max_power_mw");

    // Defaults are valid.
    SimCameraSettings::default().validate().unwrap();
    SimXYStageSettings::default().validate().unwrap();
    SimStageSettings::default().validate().unwrap();
    SimLaserSettings::default().validate().unwrap();
    SimStateDeviceSettings::default().validate().unwrap();
    SimShutterSettings::default().validate().unwrap();
}

#[test]
fn default_camera_sees_several_beads_at_speed() {
    // The demo setup: default camera, matched laser, in focus. Several bright spots must show.
    let world = SimWorld::new(7);
    let mut cam = SimCamera::new(&world, SimCameraSettings::default()).unwrap();
    let mut laser = SimLaser::new(&world, SimLaserSettings::default()).unwrap();
    laser.set_on(true).unwrap();
    let signal = snap_signal(&mut cam);
    let bright = signal.iter().filter(|v| **v > 500.0).count();
    assert!(bright >= 10, "{bright} bright pixels");
    assert!(
        peak(&signal) > 1000.0 && peak(&signal) < 4000.0,
        "peak {}",
        peak(&signal)
    );
}

#[test]
fn settings_deserialize_with_defaults_and_refuse_unknown_keys() {
    use serde::de::value::{Error, MapDeserializer};
    use serde::Deserialize;

    fn from_pairs<'de, T: Deserialize<'de>>(pairs: &[(&'de str, &'de str)]) -> Result<T, Error> {
        T::deserialize(MapDeserializer::new(pairs.iter().copied()))
    }

    let cam: SimCameraSettings = from_pairs(&[("pattern", "gradient")]).unwrap();
    assert_eq!(cam.pattern, SimPattern::Gradient);
    assert_eq!(cam.width, 512);
    let err = from_pairs::<SimCameraSettings>(&[("gain", "3")]).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    assert!(from_pairs::<SimCameraSettings>(&[("pattern", "stars")]).is_err());

    // A state device table without passbands is not a filter, whatever its labels.
    let wheel: SimStateDeviceSettings = from_pairs(&[]).unwrap();
    assert_eq!(wheel.labels.len(), 4);
    assert!(wheel.passbands_nm.is_none());
    wheel.validate().unwrap();
    assert!(SimStateDeviceSettings::default().passbands_nm.is_some());

    let _: SimXYStageSettings = from_pairs(&[]).unwrap();
    let _: SimStageSettings = from_pairs(&[]).unwrap();
    let _: SimLaserSettings = from_pairs(&[]).unwrap();
    let _: SimShutterSettings = from_pairs(&[]).unwrap();
}

#[test]
fn ramp_frames_follow_the_formula() {
    for bit_depth in [8u32, 12, 16] {
        let world = SimWorld::new(1);
        let mut cam = SimCamera::new(
            &world,
            SimCameraSettings {
                width: 40,
                height: 30,
                bit_depth,
                exposure_ms: 0.5,
                readout_ms: 0.5,
                pattern: SimPattern::Ramp,
                ..Default::default()
            },
        )
        .unwrap();
        let modulus = 1u64 << bit_depth;
        let shape = cam.frame_shape().unwrap();
        let mut buf = vec![0u8; shape.bytes()];
        let pixels = |buf: &[u8]| -> Vec<u64> {
            if bit_depth <= 8 {
                buf.iter().map(|&b| u64::from(b)).collect()
            } else {
                buf.chunks_exact(2)
                    .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
                    .collect()
            }
        };
        cam.start_sequence().unwrap();
        for _ in 0..5 {
            let info = cam.next_frame(&mut buf).unwrap();
            let first = info.sequence * 7919 % modulus;
            let expected: Vec<u64> = (0..1200).map(|i| (first + i) % modulus).collect();
            assert_eq!(
                pixels(&buf),
                expected,
                "{bit_depth}-bit frame {}",
                info.sequence
            );
        }
        cam.stop_sequence().unwrap();
    }
}

#[test]
fn the_objective_in_place_sets_the_field_of_view_and_bead_size() {
    let world = SimWorld::new(11);
    let settings = SimCameraSettings {
        width: 64,
        height: 64,
        exposure_ms: 20.0,
        read_noise: 0.0,
        bead_count: 1,
        ..Default::default()
    };
    // The camera's bead field, to find a green bead with no other near it.
    let density = 1.0 / (64.0 * 64.0 * settings.pixel_size_um * settings.pixel_size_um);
    let field = crate::beads::BeadField::new(11, density);
    let mut beads = Vec::new();
    field.for_each_in(-2000.0, 2000.0, -2000.0, 2000.0, |b| beads.push(b));
    let bead = *beads
        .iter()
        .find(|b| {
            b.dye == 1
                && beads
                    .iter()
                    .filter(|o| (o.x - b.x).hypot(o.y - b.y) < 60.0)
                    .count()
                    == 1
        })
        .expect("a lone green bead");
    let mut camera = SimCamera::new(&world, settings).unwrap();
    let mut laser = SimLaser::new(&world, SimLaserSettings::default()).unwrap();
    laser.set_on(true).unwrap();
    let mut xy = SimXYStage::new(
        &world,
        SimXYStageSettings {
            speed_um_s: 1e6,
            ..Default::default()
        },
    )
    .unwrap();
    // Frames are centred on pixel 32 (a pixel's width left of the middle): put the bead there.
    xy.move_absolute_um(bead.x, bead.y).unwrap();
    wait_idle(|| xy.is_busy().unwrap());
    let mut turret = SimStateDevice::new(
        &world,
        SimStateDeviceSettings {
            labels: vec!["10x/0.3".into(), "60x/1.4 oil".into()],
            passbands_nm: None,
            magnifications: Some(vec![10.0, 60.0]),
            switch_ms: 0.0,
            ..Default::default()
        },
    )
    .unwrap();

    // The spot's radius in pixels around the frame's centre.
    let width = |signal: &[f64]| {
        let (mut sum, mut var) = (0.0, 0.0);
        for r in 16..48 {
            for c in 16..48 {
                let v = signal[r * 64 + c].max(0.0);
                let (dx, dy) = (c as f64 - 32.0, r as f64 - 32.0);
                sum += v;
                var += v * (dx * dx + dy * dy) / 2.0;
            }
        }
        (var / sum).sqrt()
    };
    let low = snap_signal(&mut camera);
    assert_eq!(
        camera.get_property("pixel_size_um").unwrap(),
        Value::Float(0.65)
    );
    turret.set_position(1).unwrap();
    wait_idle(|| turret.is_busy().unwrap());
    let high = snap_signal(&mut camera);
    match camera.get_property("pixel_size_um").unwrap() {
        Value::Float(um) => assert!((um - 0.65 / 6.0).abs() < 1e-9, "{um}"),
        other => panic!("{other:?}"),
    }
    let ratio = width(&high) / width(&low);
    // 6x the magnification: the spot is about 6 times wider (a pixel's own width and shot
    // noise keep it a little under).
    assert!((4.5..7.0).contains(&ratio), "the spot grew {ratio} times");
    // The same light, spread wider.
    assert!(peak(&high) < peak(&low) / 5.0);
}
