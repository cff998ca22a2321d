//! Driver tests over the pseudo-terminal emulator.

use std::path::Path;
use std::time::Duration;

use microscoped_driver_api::Settings as _;
use microscoped_driver_api::{Device, ErrorKind, Stage, Value, XYStage};
use microscoped_serial::emulate::{Emulated, Emulator, Fault};
use microscoped_serial::{Port, PortSettings};

use crate::emulator::{Asi, Controller, EmulatedAxis, EmulatorConfig};
use crate::{AsiStage, AsiStageSettings, AsiXYStage, AsiXYStageSettings};

fn port(path: &Path) -> Port {
    Port::open(PortSettings {
        path: path.to_owned(),
        baud: 115_200,
        timeout_ms: 200,
        ..Default::default()
    })
    .unwrap()
}

fn emulator(config: EmulatorConfig) -> (Emulated, Emulator<Asi>) {
    let emu = Emulator::new(Asi::new(config));
    (emu.start().unwrap(), emu)
}

fn tiger() -> EmulatorConfig {
    EmulatorConfig {
        controller: Controller::Tiger,
        ..Default::default()
    }
}

fn xy(port: Port) -> AsiXYStage {
    AsiXYStage::new(port, AsiXYStageSettings::default()).unwrap()
}

fn z(port: Port) -> AsiStage {
    AsiStage::new(port, AsiStageSettings::default()).unwrap()
}

/// Polls until the stage is idle; panics rather than hanging if it never is.
fn wait_idle(busy: &mut dyn FnMut() -> microscoped_driver_api::Result<bool>) {
    for _ in 0..2000 {
        if !busy().unwrap() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the stage never stopped");
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

#[test]
fn xy_moves_reports_position_and_busy() {
    let (emu, handle) = emulator(EmulatorConfig::default());
    let mut stage = xy(port(emu.path()));
    assert_eq!(stage.position_um().unwrap(), (0.0, 0.0));

    handle.clear_commands();
    stage.move_absolute_um(1500.0, -500.5).unwrap();
    assert!(stage.is_busy().unwrap(), "busy right after a 1.5 mm move");
    wait_idle(&mut || stage.is_busy());
    let (x, y) = stage.position_um().unwrap();
    assert!(close(x, 1500.0) && close(y, -500.5), "({x}, {y})");

    stage.move_relative_um(-100.0, 10.0).unwrap();
    wait_idle(&mut || stage.is_busy());
    let (x, y) = stage.position_um().unwrap();
    assert!(close(x, 1400.0) && close(y, -490.5), "({x}, {y})");
    assert_eq!(
        handle.device().position_um('X').unwrap(),
        x,
        "the driver reads what the controller holds"
    );

    let sent = handle.commands();
    for expected in [
        "M X=15000.0 Y=-5005.0",
        "RS X",
        "W X",
        "W Y",
        "R X=-1000.0 Y=100.0",
    ] {
        assert!(
            sent.iter().any(|c| c == expected),
            "{expected:?} not in {sent:?}"
        );
    }
    assert_eq!(
        stage.travel_um().unwrap(),
        ((-50_000.0, 50_000.0), (-50_000.0, 50_000.0))
    );
}

#[test]
fn stop_halts_mid_move_and_home_runs_to_the_upper_limit() {
    let (emu, handle) = emulator(EmulatorConfig::default());
    // Both devices share one Port, as the daemon gives them one controller.
    let shared = port(emu.path());
    let mut stage = xy(shared.clone());
    stage.move_absolute_um(40_000.0, 0.0).unwrap();
    // Stop once the move is under way, however long this machine took to start it.
    for _ in 0..12_000 {
        if stage.position_um().unwrap().0 > 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.clear_commands();
    stage.stop().unwrap();
    assert_eq!(handle.commands(), vec!["\\".to_owned()]);
    assert!(!stage.is_busy().unwrap());
    let (x, _) = stage.position_um().unwrap();
    assert!(x > 0.0 && x < 40_000.0, "stopped part way, at {x}");
    // Stopping a stage at rest is harmless (":A" rather than ":N-21").
    stage.stop().unwrap();
    stage.make_safe().unwrap();

    let mut focus = z(shared);
    handle.clear_commands();
    focus.home().unwrap();
    assert_eq!(handle.commands(), vec!["! Z".to_owned()]);
    assert!(focus.is_busy().unwrap());
    assert!(
        !stage.is_busy().unwrap(),
        "the XY stage is not busy while Z homes: busy is per axis"
    );
    wait_idle(&mut || focus.is_busy());
    assert!(close(focus.position_um().unwrap(), 12_000.0));
}

#[test]
fn speed_is_a_property() {
    let (emu, handle) = emulator(EmulatorConfig::default());
    let shared = port(emu.path());
    let mut stage = xy(shared.clone());
    assert_eq!(stage.get_property("speed_mm_s").unwrap(), Value::Float(5.0));
    handle.clear_commands();
    stage
        .set_property("speed_mm_s", &Value::Float(2.0))
        .unwrap();
    assert_eq!(
        handle.commands(),
        vec!["S X=2.000000 Y=2.000000".to_owned()]
    );
    assert_eq!(stage.get_property("speed_mm_s").unwrap(), Value::Float(2.0));
    let e = stage
        .set_property("speed_mm_s", &Value::Float(50.0))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    let e = stage
        .set_property("position_x_um", &Value::Float(1.0))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReadOnly, "{e}");
    let e = stage.get_property("colour").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(
        stage.get_property("position_y_um").unwrap(),
        Value::Float(0.0)
    );
    let names: Vec<String> = stage.properties().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["speed_mm_s", "position_x_um", "position_y_um"]);

    // A speed from the settings is applied at start.
    let settings = AsiStageSettings {
        speed_mm_s: Some(1.25),
        ..Default::default()
    };
    let mut focus = AsiStage::new(shared, settings).unwrap();
    assert_eq!(
        focus.get_property("speed_mm_s").unwrap(),
        Value::Float(1.25)
    );
    assert_eq!(
        focus.get_property("position_um").unwrap(),
        Value::Float(0.0)
    );
}

#[test]
fn moves_outside_the_travel_are_refused_before_anything_is_sent() {
    let (emu, handle) = emulator(EmulatorConfig::default());
    let mut stage = xy(port(emu.path()));
    handle.clear_commands();
    let e = stage.move_absolute_um(60_000.0, 0.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    let e = stage.move_absolute_um(0.0, f64::NAN).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert!(handle.commands().is_empty(), "{:?}", handle.commands());

    // A relative move reads the position, then refuses without moving.
    let e = stage.move_relative_um(0.0, -50_001.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(
        handle.commands().iter().all(|c| c.starts_with("W ")),
        "{:?}",
        handle.commands()
    );
    assert!(!handle.device().is_moving());
}

#[test]
fn controller_errors_map_to_kinds_with_their_code() {
    let (emu, handle) = emulator(EmulatorConfig::default());
    let shared = port(emu.path());
    // Soft travel wider than the controller's own: the controller refuses with :N-4.
    let settings = AsiStageSettings {
        travel_um: [-50_000.0, 50_000.0],
        ..Default::default()
    };
    let mut focus = AsiStage::new(shared.clone(), settings).unwrap();
    let e = focus.move_absolute_um(20_000.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(
        e.message.contains(":N-4") && e.message.contains("out of range"),
        "{e}"
    );
    assert!(!handle.device().is_moving());

    // An axis the controller does not have: :N-2 at start.
    let settings = AsiStageSettings {
        axis: "Q".into(),
        ..Default::default()
    };
    let e = AsiStage::new(shared, settings).err().unwrap();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains(":N-2"), "{e}");
}

#[test]
fn the_emulator_answers_unknown_commands_like_the_controller() {
    let (emu, _handle) = emulator(EmulatorConfig::default());
    let p = port(emu.path());
    assert_eq!(p.query("FROB").unwrap(), ":N-1");
    assert_eq!(p.query("/").unwrap(), "N");
    assert_eq!(p.query("W Z X").unwrap(), ":A 0.0 0.0");
    assert_eq!(p.query("RS X?").unwrap(), ":A N");
    assert_eq!(
        p.query("2HALT").unwrap(),
        ":N-1",
        "no card addresses on an MS-2000"
    );
    drop(emu);
    let (emu, _handle) = emulator(tiger());
    let p = port(emu.path());
    assert_eq!(p.query("FROB").unwrap(), ":N-6");
    assert_eq!(p.query("1BU").unwrap(), "STD_XY");
    assert_eq!(p.query("7HALT").unwrap(), ":N-7");
    let e = crate::protocol::describe_error(1);
    assert_eq!(e.0, ErrorKind::Protocol);
}

#[test]
fn garbled_truncated_and_missing_replies() {
    let (emu, handle) = emulator(EmulatorConfig::default());
    let shared = port(emu.path());
    let mut stage = xy(shared.clone());

    handle.inject(Fault::Garbage);
    let e = stage.position_um().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("%?@~"), "raw text in the message: {e}");
    assert_eq!(stage.position_um().unwrap(), (0.0, 0.0));

    // ":A" cut to ":" is not an acknowledgement.
    handle.inject(Fault::Truncated);
    let e = stage.move_absolute_um(10.0, 10.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("\":\""), "{e}");
    wait_idle(&mut || stage.is_busy());

    // ":A 10" cut to ":A " carries no status byte.
    handle.inject(Fault::Truncated);
    let e = stage.is_busy().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");

    handle.inject(Fault::Silent);
    let e = stage.position_um().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("W X"), "{e}");
    let (x, y) = stage.position_um().unwrap();
    assert!(close(x, 10.0) && close(y, 10.0), "({x}, {y})");

    // A silent controller at start is a clear error.
    handle.inject(Fault::Silent);
    let e = AsiXYStage::new(shared, AsiXYStageSettings::default())
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("could not be started"), "{e}");
}

#[test]
fn tiger_card_addresses() {
    let (emu, handle) = emulator(tiger());
    let shared = port(emu.path());
    let mut stage = AsiXYStage::new(
        shared.clone(),
        AsiXYStageSettings {
            card: Some('1'),
            ..Default::default()
        },
    )
    .unwrap();
    let mut focus = AsiStage::new(
        shared.clone(),
        AsiStageSettings {
            card: Some('2'),
            ..Default::default()
        },
    )
    .unwrap();
    stage.move_absolute_um(30_000.0, 0.0).unwrap();
    focus.move_absolute_um(5_000.0).unwrap();
    handle.clear_commands();
    stage.stop().unwrap();
    assert_eq!(handle.commands(), vec!["1HALT".to_owned()]);
    assert!(!stage.is_busy().unwrap());
    assert!(
        focus.is_busy().unwrap(),
        "halting card 1 leaves card 2 moving"
    );
    focus.stop().unwrap();
    assert!(!focus.is_busy().unwrap());

    let e = AsiStage::new(
        shared,
        AsiStageSettings {
            card: Some('5'),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains(":N-7"), "{e}");
}

#[test]
fn xy_and_z_share_one_port_from_two_threads() {
    let (emu, handle) = emulator(EmulatorConfig::default());
    let shared = port(emu.path());
    let mut stage = xy(shared.clone());
    let mut focus = z(shared);
    let t_xy = std::thread::spawn(move || {
        for i in 1..=5 {
            let target = f64::from(i) * 100.0;
            stage.move_absolute_um(target, -target).unwrap();
            wait_idle(&mut || stage.is_busy());
            let (x, y) = stage.position_um().unwrap();
            assert!(close(x, target) && close(y, -target), "({x}, {y})");
        }
    });
    let t_z = std::thread::spawn(move || {
        for i in 1..=5 {
            let target = f64::from(i) * -20.0;
            focus.move_absolute_um(target).unwrap();
            wait_idle(&mut || focus.is_busy());
            assert!(close(focus.position_um().unwrap(), target));
            assert_eq!(focus.get_property("speed_mm_s").unwrap(), Value::Float(5.0));
        }
    });
    t_xy.join().unwrap();
    t_z.join().unwrap();
    assert!(close(handle.device().position_um('Z').unwrap(), -100.0));
}

#[test]
fn a_vanished_port_is_disconnected_then_works_when_it_comes_back() {
    let dir = std::env::temp_dir().join(format!("asi-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("ttyUSB-asi");
    let _ = std::fs::remove_file(&link);
    let (first, _handle) = emulator(EmulatorConfig::default());
    std::os::unix::fs::symlink(first.path(), &link).unwrap();
    let mut stage = xy(port(&link));
    stage.move_absolute_um(20_000.0, 0.0).unwrap();
    assert!(stage.is_busy().unwrap());

    // Unplugged mid-move.
    first.vanish();
    std::fs::remove_file(&link).unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = stage.is_busy().unwrap_err();
        kinds.push(e.kind);
        if e.kind == ErrorKind::Disconnected {
            assert!(e.message.contains("ttyUSB-asi"), "{e}");
            break;
        }
    }
    assert_eq!(kinds.last(), Some(&ErrorKind::Disconnected), "{kinds:?}");

    // Plugged back in: a fresh controller behind the same path.
    let (second, handle) = emulator(EmulatorConfig::default());
    std::os::unix::fs::symlink(second.path(), &link).unwrap();
    assert_eq!(stage.position_um().unwrap(), (0.0, 0.0));
    stage.move_absolute_um(100.0, 100.0).unwrap();
    wait_idle(&mut || stage.is_busy());
    assert!(close(handle.device().position_um('Y').unwrap(), 100.0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn settings_are_checked() {
    let ok = AsiXYStageSettings::default();
    assert!(ok.validate().is_ok());
    let s = AsiXYStageSettings {
        x_axis: "x1".into(),
        ..Default::default()
    };
    assert_eq!(s.validate().unwrap_err().key, "x_axis");
    let s = AsiXYStageSettings {
        y_axis: "X".into(),
        ..Default::default()
    };
    assert_eq!(s.validate().unwrap_err().key, "y_axis");
    let s = AsiXYStageSettings {
        card: Some('A'),
        ..Default::default()
    };
    assert_eq!(s.validate().unwrap_err().key, "card");
    let s = AsiXYStageSettings {
        y_travel_um: [5.0, 5.0],
        ..Default::default()
    };
    assert_eq!(s.validate().unwrap_err().key, "y_travel_um");
    let s = AsiStageSettings {
        speed_mm_s: Some(10.0),
        ..Default::default()
    };
    assert_eq!(s.validate().unwrap_err().key, "speed_mm_s");
    let s = AsiStageSettings {
        home_timeout_ms: 0,
        ..Default::default()
    };
    assert_eq!(s.validate().unwrap_err().key, "home_timeout_ms");
    let s = AsiStageSettings {
        travel_um: [0.0, f64::INFINITY],
        ..Default::default()
    };
    assert_eq!(s.validate().unwrap_err().key, "travel_um");

    // A bad setting is refused before the port is used.
    let (emu, handle) = emulator(EmulatorConfig::default());
    let e = AsiStage::new(port(emu.path()), s).err().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert!(e.message.contains("travel_um"), "{e}");
    assert!(handle.commands().is_empty());
    let _ = EmulatedAxis {
        letter: 'A',
        card: '3',
        limits_um: [0.0, 1.0],
        position_um: 0.0,
        speed_mm_s: 1.0,
    };
}
