//! The driver against the emulator on a pseudo-terminal.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use microscoped_driver_api::Settings as _;
use microscoped_driver_api::{Device, ErrorKind, Laser, Value};
use microscoped_serial::emulate::{Emulated, Emulator, Fault};
use microscoped_serial::{Port, PortSettings};

use super::*;
use crate::emulator::{Cobolt, CoboltEmulatorConfig};

fn open(path: &Path) -> Port {
    Port::open(PortSettings {
        timeout_ms: 200,
        ..port_settings(path)
    })
    .expect("open the emulator's pseudo-terminal")
}

struct Rig {
    emu: Emulator<Cobolt>,
    _running: Emulated,
    laser: CoboltLaser,
}

fn rig_with(config: CoboltEmulatorConfig, settings: CoboltSettings) -> Rig {
    let emu = Emulator::new(Cobolt::new(config));
    let running = emu.start().unwrap();
    let laser = CoboltLaser::new(open(running.path()), settings).unwrap();
    Rig {
        emu,
        _running: running,
        laser,
    }
}

fn rig() -> Rig {
    rig_with(CoboltEmulatorConfig::default(), CoboltSettings::default())
}

fn sent(emu: &Emulator<Cobolt>, command: &str) -> bool {
    emu.commands().iter().any(|c| c == command)
}

#[test]
fn connect_reads_serial_maximum_and_wavelength() {
    let mut r = rig();
    assert_eq!(r.laser.serial_number(), "12345");
    assert_eq!(r.laser.max_power_mw().unwrap(), 60.0);
    assert_eq!(r.laser.wavelength_nm().unwrap(), 488.0);
    assert_eq!(r.emu.commands(), ["gsn?", "gmlp?", "glm?", "l0"]);
    assert_eq!(
        r.laser.get_property("model").unwrap(),
        Value::String("0488-06-01-0060-100".into())
    );
    assert_eq!(
        r.laser.get_property("serial_number").unwrap(),
        Value::String("12345".into())
    );
}

#[test]
fn emission_switches_on_and_off() {
    let mut r = rig();
    assert!(!r.laser.is_on().unwrap());
    r.laser.set_on(true).unwrap();
    assert!(r.emu.device().is_on());
    assert!(sent(&r.emu, "ilk?") && sent(&r.emu, "f?") && sent(&r.emu, "l1"));
    assert!(r.laser.is_on().unwrap());
    assert_eq!(
        r.laser.get_property("operating_state").unwrap(),
        Value::String("continuous".into())
    );
    r.laser.set_property("on", &Value::Bool(false)).unwrap();
    assert!(!r.emu.device().is_on());
    r.laser.set_on(true).unwrap();
    r.laser.make_safe().unwrap();
    assert!(!r.emu.device().is_on());
    r.laser.make_safe().unwrap();
    r.laser.ping().unwrap();
}

#[test]
fn power_crosses_the_wire_in_watts() {
    let mut r = rig();
    r.laser.set_power_mw(25.0).unwrap();
    assert!(sent(&r.emu, "p 0.025000"), "{:?}", r.emu.commands());
    assert!((r.emu.device().setpoint_mw() - 25.0).abs() < 1e-9);
    assert!((r.laser.power_setpoint_mw().unwrap() - 25.0).abs() < 1e-9);
    assert_eq!(r.laser.power_mw().unwrap(), 0.0);
    r.laser.set_on(true).unwrap();
    assert!((r.laser.power_mw().unwrap() - 25.0).abs() < 1e-9);
    assert!(sent(&r.emu, "pa?"));
    r.laser
        .set_property("power_setpoint_mw", &Value::Int(30))
        .unwrap();
    assert!((r.emu.device().setpoint_mw() - 30.0).abs() < 1e-9);
}

#[test]
fn power_above_the_maximum_is_refused_before_anything_is_sent() {
    let settings = CoboltSettings {
        max_power_mw: Some(40.0),
        ..CoboltSettings::default()
    };
    let mut r = rig_with(CoboltEmulatorConfig::default(), settings);
    assert_eq!(r.laser.max_power_mw().unwrap(), 40.0);
    r.emu.clear_commands();
    for p in [40.5, 55.0, -1.0] {
        let e = r.laser.set_power_mw(p).unwrap_err();
        assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    }
    let e = r.laser.set_power_mw(f64::INFINITY).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    let e = r
        .laser
        .set_property("power_setpoint_mw", &Value::Float(50.0))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(r.emu.commands().is_empty(), "{:?}", r.emu.commands());
    r.laser.set_power_mw(40.0).unwrap();

    let settings = CoboltSettings {
        max_power_mw: Some(500.0),
        ..CoboltSettings::default()
    };
    let mut r = rig_with(CoboltEmulatorConfig::default(), settings);
    assert_eq!(r.laser.max_power_mw().unwrap(), 60.0);
    assert_eq!(
        r.laser.set_power_mw(61.0).unwrap_err().kind,
        ErrorKind::OutOfRange
    );
}

#[test]
fn run_mode_is_a_property() {
    let mut r = rig();
    let mode = |r: &mut Rig| r.laser.get_property("mode").unwrap();
    assert_eq!(mode(&mut r), Value::String("constant_power".into()));
    for (name, expected, command) in [
        ("modulation", RunMode::Modulation, "em"),
        ("constant_current", RunMode::ConstantCurrent, "ecc"),
        ("constant_power", RunMode::ConstantPower, "ecp"),
    ] {
        r.laser
            .set_property("mode", &Value::String(name.into()))
            .unwrap();
        assert_eq!(r.emu.device().mode(), expected);
        assert!(sent(&r.emu, command));
        assert_eq!(mode(&mut r), Value::String(name.into()));
    }
    let e = r
        .laser
        .set_property("mode", &Value::String("pulsed".into()))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue);
}

#[test]
fn fault_and_interlock_read_out_and_clear() {
    let mut r = rig();
    let get = |r: &mut Rig, n: &str| r.laser.get_property(n).unwrap();
    assert_eq!(get(&mut r, "interlock"), Value::String("closed".into()));
    assert_eq!(get(&mut r, "fault"), Value::String("none".into()));
    r.laser.set_on(true).unwrap();
    // The interlock opens while emitting: emission stops, fault 3 latches.
    r.emu.device().set_interlock_open(true);
    assert_eq!(get(&mut r, "interlock"), Value::String("open".into()));
    assert_eq!(
        get(&mut r, "fault"),
        Value::String("interlock error".into())
    );
    assert_eq!(
        get(&mut r, "operating_state"),
        Value::String("fault".into())
    );
    assert!(!r.laser.is_on().unwrap());
    r.emu.device().set_interlock_open(false);
    r.laser
        .set_property("clear_fault", &Value::Bool(true))
        .unwrap();
    assert!(sent(&r.emu, "cf"));
    assert_eq!(r.emu.device().fault(), 0);
    assert_eq!(get(&mut r, "clear_fault"), Value::Bool(false));
    r.laser.set_on(true).unwrap();
    assert!(r.emu.device().is_on());
    for name in ["interlock", "fault", "operating_state", "power_mw", "model"] {
        let e = r.laser.set_property(name, &Value::Bool(true)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ReadOnly, "{name}: {e}");
    }
    assert_eq!(
        r.laser.get_property("colour").unwrap_err().kind,
        ErrorKind::NotFound
    );
}

#[test]
fn an_open_interlock_or_a_fault_keeps_emission_off_and_says_why() {
    let mut r = rig();
    r.emu.device().set_interlock_open(true);
    let e = r.laser.set_on(true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Hardware, "{e}");
    assert!(e.message.contains("interlock"), "{e}");
    assert!(!sent(&r.emu, "l1"));

    r.emu.device().set_interlock_open(false);
    r.emu.device().set_fault(1);
    let e = r.laser.set_on(true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Hardware, "{e}");
    assert!(e.message.contains("fault 1 (temperature error)"), "{e}");
    assert!(!sent(&r.emu, "l1"));
    r.laser.set_on(false).unwrap();
}

#[test]
fn device_errors_keep_their_text() {
    // Older firmware without the model query: the wavelength must come from the settings.
    let config = CoboltEmulatorConfig {
        model: None,
        ..CoboltEmulatorConfig::default()
    };
    let emu = Emulator::new(Cobolt::new(config.clone()));
    let running = emu.start().unwrap();
    let e = CoboltLaser::new(open(running.path()), CoboltSettings::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("wavelength_nm"), "{e}");

    let settings = CoboltSettings {
        wavelength_nm: Some(561.0),
        ..CoboltSettings::default()
    };
    let mut r = rig_with(config, settings);
    assert_eq!(r.laser.wavelength_nm().unwrap(), 561.0);
    assert_eq!(
        r.laser.get_property("model").unwrap(),
        Value::String("unknown".into())
    );
    // The laser's own refusal of an unknown command, with its text.
    let e = r.laser.command("xyzzy").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("Syntax error: illegal command"), "{e}");
    let e = r.laser.command("p 7").unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(e.message.contains("out of range"), "{e}");
    r.laser.ping().unwrap();
}

#[test]
fn garbled_and_truncated_replies_are_protocol_errors() {
    let mut r = rig();
    r.emu.inject(Fault::Garbage);
    let e = r.laser.is_on().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    r.emu.inject(Fault::Garbage);
    let e = r.laser.power_setpoint_mw().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    // "OK" cut to "O".
    r.emu.inject(Fault::Truncated);
    let e = r.laser.set_power_mw(5.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("\"O\""), "{e}");
    // "0" cut to nothing: the driver asks again and gets the value.
    r.emu.inject(Fault::Truncated);
    assert!(!r.laser.is_on().unwrap());
}

#[test]
fn no_reply_or_a_cut_reply_times_out() {
    let mut r = rig();
    r.emu.inject(Fault::Silent);
    let e = r.laser.is_on().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    r.emu.inject(Fault::Silent);
    let e = r.laser.set_on(false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    r.emu.inject(Fault::Cut);
    let e = r.laser.set_power_mw(1.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("\"O\""), "{e}");
    r.laser.set_on(true).unwrap();
    assert!(r.laser.is_on().unwrap());
}

static LINK: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_vanished_port_is_disconnected_and_works_again_when_it_comes_back() {
    let dir = std::env::temp_dir().join(format!(
        "cobolt-test-{}-{}",
        std::process::id(),
        LINK.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("ttyCobolt");
    let _ = std::fs::remove_file(&link);
    let first = emulator::start(CoboltEmulatorConfig::default()).unwrap();
    std::os::unix::fs::symlink(first.path(), &link).unwrap();
    let mut laser = CoboltLaser::new(open(&link), CoboltSettings::default()).unwrap();
    assert!(!laser.is_on().unwrap());

    first.vanish();
    let e = laser.is_on().unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Disconnected | ErrorKind::Timeout),
        "{e}"
    );
    std::fs::remove_file(&link).unwrap();
    let e = laser.is_on().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Disconnected, "{e}");

    let second = Emulator::new(Cobolt::new(CoboltEmulatorConfig::default()));
    let running = second.start().unwrap();
    std::os::unix::fs::symlink(running.path(), &link).unwrap();
    laser.set_on(true).unwrap();
    assert!(second.device().is_on());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connect_applies_the_settings() {
    let settings = CoboltSettings {
        power_mw: Some(42.0),
        mode: Some(RunMode::Modulation),
        autostart: Some(true),
        wavelength_nm: Some(488.0),
        ..CoboltSettings::default()
    };
    let r = rig_with(CoboltEmulatorConfig::default(), settings);
    assert!((r.emu.device().setpoint_mw() - 42.0).abs() < 1e-9);
    assert_eq!(r.emu.device().mode(), RunMode::Modulation);
    assert!(r.emu.device().autostart() && sent(&r.emu, "@cobas 1"));

    let emu = Emulator::new(Cobolt::new(CoboltEmulatorConfig::default()));
    let running = emu.start().unwrap();
    let settings = CoboltSettings {
        at_connect: AtConnect::Leave,
        ..CoboltSettings::default()
    };
    let _laser = CoboltLaser::new(open(running.path()), settings).unwrap();
    assert!(!sent(&emu, "l0"));

    // The wrong laser on the port.
    let emu = Emulator::new(Cobolt::new(CoboltEmulatorConfig::default()));
    let running = emu.start().unwrap();
    let settings = CoboltSettings {
        wavelength_nm: Some(561.0),
        ..CoboltSettings::default()
    };
    let e = CoboltLaser::new(open(running.path()), settings).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert!(e.message.contains("488"), "{e}");

    // A setpoint above the laser's maximum fails before anything changes.
    let emu = Emulator::new(Cobolt::new(CoboltEmulatorConfig::default()));
    let running = emu.start().unwrap();
    let settings = CoboltSettings {
        power_mw: Some(70.0),
        ..CoboltSettings::default()
    };
    let e = CoboltLaser::new(open(running.path()), settings).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(!sent(&emu, "l0"));
}

#[test]
fn settings_are_checked_and_read_from_config() {
    assert!(CoboltSettings::default().validate().is_ok());
    let bad = |s: CoboltSettings| s.validate().unwrap_err().key;
    assert_eq!(
        bad(CoboltSettings {
            max_power_mw: Some(-5.0),
            ..Default::default()
        }),
        "max_power_mw"
    );
    assert_eq!(
        bad(CoboltSettings {
            max_power_mw: Some(20.0),
            power_mw: Some(21.0),
            ..Default::default()
        }),
        "power_mw"
    );
    assert_eq!(
        bad(CoboltSettings {
            wavelength_nm: Some(10.0),
            ..Default::default()
        }),
        "wavelength_nm"
    );
    let s: CoboltSettings = toml::from_str(
        "max_power_mw = 30.0\nmode = \"constant_current\"\nat_connect = \"leave\"\nautostart = false",
    )
    .unwrap();
    assert_eq!(s.max_power_mw, Some(30.0));
    assert_eq!(s.mode, Some(RunMode::ConstantCurrent));
    assert_eq!(s.at_connect, AtConnect::Leave);
    assert_eq!(s.autostart, Some(false));
    assert!(toml::from_str::<CoboltSettings>("max_power = 30.0").is_err());
}
