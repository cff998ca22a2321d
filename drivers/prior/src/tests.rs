//! Driver tests over the emulated ProScan III on a pseudo-terminal.

use std::path::Path;
use std::time::{Duration, Instant};

use microscoped_driver_api::Settings as _;
use microscoped_driver_api::{Device, ErrorKind, Shutter, Stage, StateDevice, Value, XYStage};
use microscoped_serial::emulate::{Emulated, Emulator, Fault, Framing, Reply, Responder};
use microscoped_serial::{Port, PortSettings};

use crate::emulator::{EmulatorConfig, ProScan};
use crate::*;

fn port_settings(path: &Path, timeout_ms: u64) -> PortSettings {
    PortSettings {
        path: path.to_owned(),
        baud: 9600,
        write_terminator: "\r".into(),
        read_terminator: "\r".into(),
        timeout_ms,
        ..Default::default()
    }
}

/// Fast hardware so tests stay short.
fn fast() -> EmulatorConfig {
    EmulatorConfig {
        xy_units_per_s: 400_000.0,
        z_units_per_s: 100_000.0,
        wheel_ms_per_position: 5.0,
        ..Default::default()
    }
}

/// A ProScan behind a pseudo-terminal, and the emulator to steer it.
fn run(config: EmulatorConfig) -> (Emulated, Emulator<ProScan>) {
    let emu = Emulator::new(ProScan::new(config));
    (emu.start().unwrap(), emu)
}

fn start(config: EmulatorConfig) -> (Emulated, Emulator<ProScan>, Port) {
    let (emu, handle) = run(config);
    let port = Port::open(port_settings(emu.path(), 500)).unwrap();
    (emu, handle, port)
}

fn six_labels() -> PriorFilterWheelSettings {
    PriorFilterWheelSettings {
        wheel: 2,
        labels: ["DAPI", "GFP", "TRITC", "Cy5", "Empty", "Block"]
            .map(String::from)
            .to_vec(),
    }
}

/// Polls `busy` until it reports false; the deadline only keeps a broken test from hanging.
fn wait_idle(mut busy: impl FnMut() -> microscoped_driver_api::Result<bool>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while busy().unwrap() {
        assert!(Instant::now() < deadline, "device never became idle");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn xy_stage_moves_reports_busy_stops_and_homes() {
    // Slow enough that the move is still running when polled.
    let (_emu, emu, port) = start(EmulatorConfig {
        xy_units_per_s: 20_000.0,
        ..fast()
    });
    let mut xy = PriorXYStage::new(
        port,
        PriorXYStageSettings {
            x_um_per_step: 0.5,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(emu.commands().contains(&"COMP,0".to_string()));
    assert_eq!(xy.position_um().unwrap(), (0.0, 0.0));

    // 20 mm at 50 % of 20 000 units/s: about two seconds, stopped well before the end.
    xy.move_absolute_um(10_000.0, 20_000.0).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "G,20000,20000");
    assert!(xy.is_busy().unwrap());
    // Stop once the move is under way, however long this machine took to start it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while xy.position_um().map(|(x, y)| x <= 0.0 || y <= 0.0).unwrap() {
        assert!(Instant::now() < deadline, "the stage never moved");
        std::thread::sleep(Duration::from_millis(5));
    }
    xy.stop().unwrap();
    assert_eq!(emu.commands().last().unwrap(), "K");
    assert!(!xy.is_busy().unwrap());
    let (x, y) = xy.position_um().unwrap();
    assert!(x > 0.0 && x < 10_000.0, "stopped mid-move at x = {x}");
    assert!(y > 0.0 && y < 20_000.0, "stopped mid-move at y = {y}");
    assert_eq!(
        emu.device().xy(),
        ((x / 0.5).round() as i64, y.round() as i64)
    );

    // Speed up, then a relative move goes as GR in controller units.
    xy.set_property("speed_percent", &Value::Int(100)).unwrap();
    assert_eq!(xy.get_property("speed_percent").unwrap(), Value::Int(100));
    xy.move_relative_um(-100.0, 50.0).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "GR,-200,50");
    wait_idle(|| xy.is_busy());
    let (x2, y2) = xy.position_um().unwrap();
    assert!((x2 - (x - 100.0)).abs() <= 0.5 && (y2 - (y + 50.0)).abs() <= 1.0);
    assert_eq!(xy.get_property("position_y_um").unwrap(), Value::Float(y2));

    xy.home().unwrap();
    wait_idle(|| xy.is_busy());
    assert_eq!(xy.position_um().unwrap(), (0.0, 0.0));

    // A new origin where the stage stands.
    xy.move_absolute_um(1000.0, 1000.0).unwrap();
    wait_idle(|| xy.is_busy());
    xy.set_origin().unwrap();
    assert_eq!(emu.commands().last().unwrap(), "PS,0,0");
    assert_eq!(xy.position_um().unwrap(), (0.0, 0.0));

    xy.ping().unwrap();
    xy.make_safe().unwrap();
    assert_eq!(
        xy.travel_um().unwrap(),
        ((-50_000.0, 50_000.0), (-35_000.0, 35_000.0))
    );
}

#[test]
fn z_drive_moves_absolute_up_and_down() {
    let (_emu, emu, port) = start(EmulatorConfig {
        z_units_per_s: 2_000.0,
        ..fast()
    });
    let mut z = PriorZ::new(
        port,
        PriorZSettings {
            um_per_step: 0.1,
            travel_um: [-500.0, 500.0],
            home_um: 10.0,
        },
    )
    .unwrap();
    z.move_absolute_um(100.0).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "V,1000");
    // 1000 units at 50 % of 2000 units/s: about a second.
    assert!(z.is_busy().unwrap());
    z.set_property("speed_percent", &Value::Int(100)).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "SMZ,100");
    wait_idle(|| z.is_busy());
    assert!((z.position_um().unwrap() - 100.0).abs() < 1e-9);

    z.move_relative_um(-2.5).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "D,25");
    wait_idle(|| z.is_busy());
    z.move_relative_um(1.0).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "U,10");
    wait_idle(|| z.is_busy());
    assert!((z.position_um().unwrap() - 98.5).abs() < 1e-9);
    assert_eq!(emu.device().z(), 985);
    assert_eq!(z.get_property("speed_percent").unwrap(), Value::Int(100));

    z.home().unwrap();
    wait_idle(|| z.is_busy());
    assert_eq!(z.get_property("position_um").unwrap(), Value::Float(10.0));
    z.set_origin().unwrap();
    assert_eq!(emu.commands().last().unwrap(), "PZ,0");
    assert_eq!(z.position_um().unwrap(), 0.0);

    z.move_absolute_um(400.0).unwrap();
    z.stop().unwrap();
    assert!(!z.is_busy().unwrap());
    z.ping().unwrap();
    z.make_safe().unwrap();
    assert_eq!(z.travel_um().unwrap(), (-500.0, 500.0));
}

#[test]
fn filter_wheel_rotates_with_busy_and_labels() {
    let (_emu, emu, port) = start(EmulatorConfig {
        wheel_ms_per_position: 100.0,
        ..fast()
    });
    let mut wheel = PriorFilterWheel::new(port, six_labels()).unwrap();
    assert!(emu.commands().contains(&"FPW,2".to_string()));
    assert_eq!(wheel.position().unwrap(), 0);
    assert_eq!(wheel.labels().unwrap().len(), 6);

    wheel.set_position(2).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "7,2,3");
    assert!(wheel.is_busy().unwrap(), "a two-position turn takes time");
    wait_idle(|| wheel.is_busy());
    assert_eq!(wheel.position().unwrap(), 2);
    assert_eq!(emu.commands().last().unwrap(), "7,2,F");
    assert_eq!(
        wheel.get_property("label").unwrap(),
        Value::String("TRITC".into())
    );

    wheel
        .set_property("speed_percent", &Value::Int(100))
        .unwrap();
    assert_eq!(emu.commands().last().unwrap(), "SMF,2,100");
    assert_eq!(
        wheel.get_property("speed_percent").unwrap(),
        Value::Int(100)
    );

    wheel
        .set_property("label", &Value::String("Block".into()))
        .unwrap();
    wait_idle(|| wheel.is_busy());
    assert_eq!(wheel.get_property("position").unwrap(), Value::Int(5));
    assert_eq!(emu.device().wheel(2), 6);

    wheel.set_property("position", &Value::Int(0)).unwrap();
    wait_idle(|| wheel.is_busy());
    assert_eq!(wheel.position().unwrap(), 0);

    let before = emu.commands().len();
    let e = wheel.set_position(6).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    let e = wheel
        .set_property("label", &Value::String("GFPX".into()))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert_eq!(emu.commands().len(), before, "refusals send nothing");
    wheel.ping().unwrap();
}

#[test]
fn shutter_opens_closes_and_makes_safe() {
    let (_emu, emu, port) = start(fast());
    let mut shutter = PriorShutter::new(port, PriorShutterSettings { shutter: 2 }).unwrap();
    assert!(!shutter.is_open().unwrap());
    shutter.set_open(true).unwrap();
    assert_eq!(emu.commands().last().unwrap(), "8,2,0");
    assert!(emu.device().shutter_open(2));
    assert!(shutter.is_open().unwrap());
    assert_eq!(emu.commands().last().unwrap(), "8,2");
    assert_eq!(shutter.get_property("open").unwrap(), Value::Bool(true));
    shutter.make_safe().unwrap();
    assert_eq!(emu.commands().last().unwrap(), "8,2,1");
    assert!(!emu.device().shutter_open(2));
    shutter.set_property("open", &Value::Bool(true)).unwrap();
    assert!(emu.device().shutter_open(2));
    shutter.set_property("open", &Value::Bool(false)).unwrap();
    assert!(!shutter.is_open().unwrap());
    shutter.ping().unwrap();
}

#[test]
fn moves_outside_the_travel_are_refused_before_sending() {
    let (_emu, emu, port) = start(fast());
    let mut xy = PriorXYStage::new(port.clone(), PriorXYStageSettings::default()).unwrap();
    let mut z = PriorZ::new(port, PriorZSettings::default()).unwrap();
    let before = emu.commands().len();
    for e in [
        xy.move_absolute_um(50_001.0, 0.0).unwrap_err(),
        xy.move_absolute_um(0.0, -35_001.0).unwrap_err(),
        z.move_absolute_um(10_000.5).unwrap_err(),
    ] {
        assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
        assert!(e.message.contains("travel"), "{e}");
    }
    let e = xy.move_absolute_um(f64::NAN, 0.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert_eq!(emu.commands().len(), before, "nothing was sent");

    // A relative move reads the position first, but sends no move.
    let e = xy.move_relative_um(60_000.0, 0.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    let e = z.move_relative_um(-20_000.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert_eq!(emu.commands()[before..], ["PS", "PZ"]);
}

#[test]
fn controller_error_codes_map_to_kinds_with_code_in_message() {
    // Soft travel wider than the hardware: the controller refuses the move itself.
    let (_emu, emu, port) = start(EmulatorConfig {
        x_limits: [-1000, 1000],
        ..fast()
    });
    let mut xy = PriorXYStage::new(port.clone(), PriorXYStageSettings::default()).unwrap();
    let e = xy.move_absolute_um(2000.0, 0.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(
        e.message.contains("E,8") && e.message.contains("value out of range"),
        "{e}"
    );
    assert_eq!(emu.commands().last().unwrap(), "G,2000,0");

    // Wheel 3 and shutter 3 are not fitted.
    let e = PriorFilterWheel::new(
        port.clone(),
        PriorFilterWheelSettings {
            wheel: 3,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(e.kind, ErrorKind::Hardware, "{e}");
    assert!(
        e.message.contains("E,17") && e.message.contains("wheel not fitted"),
        "{e}"
    );
    let e = PriorShutter::new(port.clone(), PriorShutterSettings { shutter: 3 })
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Hardware, "{e}");
    assert!(e.message.contains("E,20"), "{e}");

    // Speeds outside 1..=100 are refused by the spec before anything is sent.
    let e = xy
        .set_property("speed_percent", &Value::Int(0))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");

    // The emulator answers unknown commands and bad arguments as the ProScan does.
    assert_eq!(port.query("FROB").unwrap(), "E,5");
    assert_eq!(port.query("G,abc,1").unwrap(), "E,4");
    assert_eq!(error_kind(5), ErrorKind::Protocol);
    assert_eq!(error_meaning(5), "command not found");

    // Wrong label count against the wheel's FPW.
    let e = PriorFilterWheel::new(
        port,
        PriorFilterWheelSettings {
            wheel: 2,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert!(e.message.contains("FPW"), "{e}");
}

#[test]
fn a_garbled_reply_is_a_protocol_error_quoting_it() {
    let (_emu, emu, port) = start(fast());
    let mut xy = PriorXYStage::new(port.clone(), PriorXYStageSettings::default()).unwrap();
    let mut shutter = PriorShutter::new(port, PriorShutterSettings::default()).unwrap();
    emu.inject(Fault::Garbage);
    let e = xy.position_um().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(
        e.message.contains("%?@~") && e.message.contains("PS"),
        "{e}"
    );
    emu.inject(Fault::Garbage);
    let e = shutter.is_open().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    emu.inject(Fault::Garbage);
    let e = xy.move_absolute_um(10.0, 10.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    // Nothing lingers: the next exchange is clean.
    wait_idle(|| xy.is_busy());
    assert_eq!(xy.position_um().unwrap(), (10.0, 10.0));
}

#[test]
fn a_truncated_reply_is_a_protocol_error_quoting_it() {
    let (_emu, emu, port) = start(fast());
    let mut xy = PriorXYStage::new(port.clone(), PriorXYStageSettings::default()).unwrap();
    xy.move_absolute_um(12_345.0, -6_789.0).unwrap();
    wait_idle(|| xy.is_busy());
    emu.inject(Fault::Truncated);
    let e = xy.position_um().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("\"12345\""), "{e}");
    emu.inject(Fault::Truncated);
    let e = xy.is_busy().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert_eq!(xy.position_um().unwrap(), (12_345.0, -6_789.0));
}

#[test]
fn a_silent_controller_times_out_then_recovers() {
    let (emu_run, emu2) = run(fast());
    // A short timeout keeps the test quick.
    let port = Port::open(port_settings(emu_run.path(), 150)).unwrap();
    let mut wheel = PriorFilterWheel::new(
        port,
        PriorFilterWheelSettings {
            wheel: 1,
            ..Default::default()
        },
    )
    .unwrap();
    emu2.inject(Fault::Silent);
    let e = wheel.set_position(3).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("7,1,4"), "{e}");
    // The lost command did nothing; the next one works.
    assert_eq!(wheel.position().unwrap(), 0);
    wheel.set_position(3).unwrap();
    wait_idle(|| wheel.is_busy());
    assert_eq!(wheel.position().unwrap(), 3);
}

/// A device that never answers.
struct Mute;

impl Responder for Mute {
    const FRAMING: Framing = ProScan::FRAMING;

    fn answer(&mut self, _command: &str) -> Reply {
        Reply::Silent
    }
}

/// A device that answers something else entirely.
struct Stranger;

impl Responder for Stranger {
    const FRAMING: Framing = ProScan::FRAMING;

    fn answer(&mut self, command: &str) -> Reply {
        Reply::Line(format!(":A {command}"))
    }
}

#[test]
fn constructors_fail_clearly_when_no_proscan_answers() {
    let mute = Emulator::new(Mute).start().unwrap();
    let port = Port::open(port_settings(mute.path(), 100)).unwrap();
    let e = PriorXYStage::new(port, PriorXYStageSettings::default())
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        e.message.contains("COMP,0") && e.message.contains("terminator"),
        "{e}"
    );

    let stranger = Emulator::new(Stranger).start().unwrap();
    let port = Port::open(port_settings(stranger.path(), 200)).unwrap();
    let e = PriorShutter::new(port, PriorShutterSettings::default())
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains(":A COMP,0"), "{e}");
}

#[test]
fn the_port_vanishing_mid_move_is_disconnected_and_it_comes_back() {
    let dir = std::env::temp_dir().join(format!("prior-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("ttyUSB-proscan");
    let _ = std::fs::remove_file(&link);
    let (first, emu) = run(EmulatorConfig {
        xy_units_per_s: 2_000.0,
        ..fast()
    });
    std::os::unix::fs::symlink(first.path(), &link).unwrap();
    let port = Port::open(port_settings(&link, 300)).unwrap();
    let mut xy = PriorXYStage::new(port, PriorXYStageSettings::default()).unwrap();
    xy.move_absolute_um(5_000.0, 0.0).unwrap();
    assert!(xy.is_busy().unwrap());
    assert!(emu.device().xy().0 < 5_000);

    first.vanish();
    let e = xy.is_busy().unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Disconnected | ErrorKind::Timeout),
        "{e}"
    );
    std::fs::remove_file(&link).unwrap();
    let e = xy.position_um().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Disconnected, "{e}");

    // Plugged back in: a fresh controller (at zero) behind the same stable path.
    let (second, emu2) = run(fast());
    std::os::unix::fs::symlink(second.path(), &link).unwrap();
    assert_eq!(xy.position_um().unwrap(), (0.0, 0.0));
    xy.move_absolute_um(100.0, 200.0).unwrap();
    wait_idle(|| xy.is_busy());
    assert_eq!(emu2.device().xy(), (100, 200));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xy_z_wheel_and_shutter_share_one_port_across_threads() {
    let (_emu, emu, port) = start(fast());
    let mut xy = PriorXYStage::new(port.clone(), PriorXYStageSettings::default()).unwrap();
    let mut z = PriorZ::new(port.clone(), PriorZSettings::default()).unwrap();
    let mut wheel = PriorFilterWheel::new(
        port.clone(),
        PriorFilterWheelSettings {
            wheel: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let mut shutter = PriorShutter::new(port, PriorShutterSettings::default()).unwrap();

    let t_xy = std::thread::spawn(move || {
        for i in 1..=10 {
            let target = f64::from(i) * 100.0;
            xy.move_absolute_um(target, -target).unwrap();
            wait_idle(|| xy.is_busy());
            assert_eq!(xy.position_um().unwrap(), (target, -target));
        }
    });
    let t_z = std::thread::spawn(move || {
        for i in 1..=10 {
            let target = f64::from(i) * 10.0;
            z.move_absolute_um(target).unwrap();
            wait_idle(|| z.is_busy());
            assert_eq!(z.position_um().unwrap(), target);
        }
    });
    let t_wheel = std::thread::spawn(move || {
        for i in 0..10u32 {
            let p = (i * 3) % 10;
            wheel.set_position(p).unwrap();
            wait_idle(|| wheel.is_busy());
            assert_eq!(wheel.position().unwrap(), p);
        }
    });
    let t_shutter = std::thread::spawn(move || {
        for i in 0..20 {
            let open = i % 2 == 0;
            shutter.set_open(open).unwrap();
            assert_eq!(shutter.is_open().unwrap(), open);
        }
    });
    for t in [t_xy, t_z, t_wheel, t_shutter] {
        t.join().unwrap();
    }
    assert_eq!(emu.device().xy(), (1000, -1000));
    assert_eq!(emu.device().z(), 100);
    assert_eq!(emu.device().wheel(1), 8);
    assert!(!emu.device().shutter_open(1));
}

#[test]
fn properties_are_typed_and_checked() {
    let (_emu, _h, port) = start(fast());
    let mut xy = PriorXYStage::new(port.clone(), PriorXYStageSettings::default()).unwrap();
    let names: Vec<String> = xy.properties().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["speed_percent", "position_x_um", "position_y_um"]);
    let e = xy
        .set_property("position_x_um", &Value::Float(1.0))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReadOnly, "{e}");
    let e = xy.get_property("nope").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(xy.get_property("speed_percent").unwrap(), Value::Int(50));

    let mut z = PriorZ::new(port, PriorZSettings::default()).unwrap();
    let e = z
        .set_property("speed_percent", &Value::Bool(true))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert_eq!(z.get_property("speed_percent").unwrap(), Value::Int(50));
}

#[test]
fn settings_are_checked_and_deserialised_strictly() {
    assert!(PriorXYStageSettings::default().validate().is_ok());
    assert!(PriorZSettings::default().validate().is_ok());
    assert!(PriorFilterWheelSettings::default().validate().is_ok());
    assert!(PriorShutterSettings::default().validate().is_ok());

    let xy = PriorXYStageSettings {
        x_travel_um: [10.0, -10.0],
        ..Default::default()
    };
    assert_eq!(xy.validate().unwrap_err().key, "x_travel_um");
    let xy = PriorXYStageSettings {
        y_um_per_step: 0.0,
        ..Default::default()
    };
    assert_eq!(xy.validate().unwrap_err().key, "y_um_per_step");
    let xy = PriorXYStageSettings {
        home_um: [0.0, 40_000.0],
        ..Default::default()
    };
    assert_eq!(xy.validate().unwrap_err().key, "home_um");
    let z = PriorZSettings {
        travel_um: [0.0, 1e12],
        ..Default::default()
    };
    assert_eq!(z.validate().unwrap_err().key, "travel_um");
    let w = PriorFilterWheelSettings {
        wheel: 4,
        ..Default::default()
    };
    assert_eq!(w.validate().unwrap_err().key, "wheel");
    let w = PriorFilterWheelSettings {
        labels: vec!["a".into(), "a".into()],
        ..Default::default()
    };
    assert_eq!(w.validate().unwrap_err().key, "labels");
    assert_eq!(
        PriorShutterSettings { shutter: 0 }
            .validate()
            .unwrap_err()
            .key,
        "shutter"
    );

    let s: PriorFilterWheelSettings =
        serde_json::from_str(r#"{"wheel": 2, "labels": ["a", "b"]}"#).unwrap();
    assert_eq!(s.wheel, 2);
    let s: PriorXYStageSettings = serde_json::from_str(r#"{"x_um_per_step": 0.1}"#).unwrap();
    assert_eq!(s.x_um_per_step, 0.1);
    assert_eq!(s.y_travel_um, PriorXYStageSettings::default().y_travel_um);
    assert!(serde_json::from_str::<PriorZSettings>(r#"{"rang_um": [0, 1]}"#).is_err());

    // A constructor refuses bad settings without touching the port.
    let (_emu, emu, port) = start(fast());
    let e = PriorShutter::new(port, PriorShutterSettings { shutter: 9 })
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert!(e.message.contains("shutter"), "{e}");
    assert!(emu.commands().is_empty());
}
