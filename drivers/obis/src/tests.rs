//! The driver against the emulator on a pseudo-terminal.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use microscoped_driver_api::Settings as _;
use microscoped_driver_api::{Device, ErrorKind, Laser, Value};
use microscoped_serial::emulate::{Emulated, Emulator, Fault};
use microscoped_serial::{Port, PortSettings};

use super::*;
use crate::emulator::{Obis, ObisEmulatorConfig};

fn open(path: &Path) -> Port {
    Port::open(PortSettings {
        timeout_ms: 200,
        ..port_settings(path)
    })
    .expect("open the emulator's pseudo-terminal")
}

struct Rig {
    emu: Emulator<Obis>,
    _running: Emulated,
    laser: ObisLaser,
}

fn rig_with(config: ObisEmulatorConfig, settings: ObisSettings) -> Rig {
    let emu = Emulator::new(Obis::new(config));
    let running = emu.start().unwrap();
    let laser = ObisLaser::new(open(running.path()), settings).unwrap();
    Rig {
        emu,
        _running: running,
        laser,
    }
}

fn rig() -> Rig {
    rig_with(ObisEmulatorConfig::default(), ObisSettings::default())
}

/// Whether any received command starts with `prefix`.
fn sent(emu: &Emulator<Obis>, prefix: &str) -> bool {
    emu.commands().iter().any(|c| c.starts_with(prefix))
}

#[test]
fn connect_reads_identity_wavelength_and_maximum() {
    let mut r = rig();
    assert!(
        r.laser.identity().contains("OBIS"),
        "{}",
        r.laser.identity()
    );
    assert_eq!(r.laser.wavelength_nm().unwrap(), 488.0);
    assert_eq!(r.laser.max_power_mw().unwrap(), 150.0);
    let log = r.emu.commands();
    assert_eq!(
        &log[..5],
        [
            "SYST:COMM:HAND ON",
            "*IDN?",
            "SYST:INF:WAV?",
            "SOUR:POW:LIM:HIGH?",
            "SOUR:AM:STAT OFF"
        ]
    );
    assert_eq!(
        r.laser.get_property("identity").unwrap(),
        Value::String(r.laser.identity().to_owned())
    );
}

#[test]
fn emission_switches_on_and_off() {
    let mut r = rig();
    assert!(!r.laser.is_on().unwrap());
    r.laser.set_on(true).unwrap();
    assert!(r.emu.device().is_on());
    assert!(r.laser.is_on().unwrap());
    assert!(sent(&r.emu, "SYST:LOCK?") && sent(&r.emu, "SYST:FAUL?"));
    r.laser.set_property("on", &Value::Bool(false)).unwrap();
    assert!(!r.emu.device().is_on());
    assert_eq!(r.laser.get_property("on").unwrap(), Value::Bool(false));
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
    assert!(
        r.emu
            .commands()
            .contains(&"SOUR:POW:LEV:IMM:AMPL 0.025000".to_owned()),
        "{:?}",
        r.emu.commands()
    );
    assert!((r.emu.device().setpoint_mw() - 25.0).abs() < 1e-9);
    assert!((r.laser.power_setpoint_mw().unwrap() - 25.0).abs() < 1e-9);
    // Off: 0 whatever the setpoint.
    assert_eq!(r.laser.power_mw().unwrap(), 0.0);
    r.laser.set_on(true).unwrap();
    assert!((r.laser.power_mw().unwrap() - 25.0).abs() < 1e-9);
    assert!(sent(&r.emu, "SOUR:POW:LEV?"));
    r.laser
        .set_property("power_setpoint_mw", &Value::Int(30))
        .unwrap();
    assert!((r.emu.device().setpoint_mw() - 30.0).abs() < 1e-9);
    match r.laser.get_property("nominal_power_mw").unwrap() {
        Value::Float(v) => assert!((v - 150.0).abs() < 1e-9),
        v => panic!("{v:?}"),
    }
}

#[test]
fn power_above_the_maximum_is_refused_before_anything_is_sent() {
    let settings = ObisSettings {
        max_power_mw: Some(100.0),
        ..ObisSettings::default()
    };
    let mut r = rig_with(ObisEmulatorConfig::default(), settings);
    assert_eq!(r.laser.max_power_mw().unwrap(), 100.0);
    r.emu.clear_commands();
    for p in [100.5, 120.0, -1.0] {
        let e = r.laser.set_power_mw(p).unwrap_err();
        assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    }
    let e = r.laser.set_power_mw(f64::NAN).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    let e = r
        .laser
        .set_property("power_setpoint_mw", &Value::Float(140.0))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(r.emu.commands().is_empty(), "{:?}", r.emu.commands());
    r.laser.set_power_mw(100.0).unwrap();

    // A cap above the laser's own maximum leaves the laser's.
    let settings = ObisSettings {
        max_power_mw: Some(500.0),
        ..ObisSettings::default()
    };
    let mut r = rig_with(ObisEmulatorConfig::default(), settings);
    assert_eq!(r.laser.max_power_mw().unwrap(), 150.0);
    assert_eq!(
        r.laser.set_power_mw(151.0).unwrap_err().kind,
        ErrorKind::OutOfRange
    );
}

#[test]
fn operating_mode_is_a_property() {
    let mut r = rig();
    let mode = |r: &mut Rig| r.laser.get_property("operating_mode").unwrap();
    assert_eq!(mode(&mut r), Value::String("CWP".into()));
    for (name, expected) in [
        ("DIGITAL", OperatingMode::Digital),
        ("MIXED", OperatingMode::Mixed),
        ("CWC", OperatingMode::Cwc),
        ("ANALOG", OperatingMode::Analog),
        ("CWP", OperatingMode::Cwp),
    ] {
        r.laser
            .set_property("operating_mode", &Value::String(name.into()))
            .unwrap();
        assert_eq!(r.emu.device().mode(), expected);
        assert_eq!(mode(&mut r), Value::String(name.into()));
    }
    assert!(sent(&r.emu, "SOUR:AM:EXT DIG") && sent(&r.emu, "SOUR:AM:INT CWC"));
    let e = r
        .laser
        .set_property("operating_mode", &Value::String("LOUD".into()))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue);
}

#[test]
fn device_errors_keep_their_code() {
    let mut r = rig();
    // The emulator, like the laser, refuses a mode change while emitting.
    r.laser.set_on(true).unwrap();
    let e = r
        .laser
        .set_property("operating_mode", &Value::String("DIGITAL".into()))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    assert!(e.message.contains("ERR-200"), "{e}");

    // A model without the nominal-power query.
    let config = ObisEmulatorConfig {
        nominal_power_mw: None,
        ..ObisEmulatorConfig::default()
    };
    let mut r = rig_with(config, ObisSettings::default());
    let e = r.laser.get_property("nominal_power_mw").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("ERR-100"), "{e}");
    r.laser.ping().unwrap();
}

#[test]
fn fault_interlock_and_status_read_out() {
    let mut r = rig();
    let get = |r: &mut Rig, n: &str| r.laser.get_property(n).unwrap();
    assert_eq!(get(&mut r, "interlock"), Value::String("closed".into()));
    assert_eq!(get(&mut r, "fault"), Value::String("none".into()));
    let Value::String(status) = get(&mut r, "status") else {
        panic!("status is a string")
    };
    assert!(status.contains("ready"), "{status}");

    r.emu.device().set_interlock_open(true);
    r.emu.device().set_fault(0x0000_0002);
    assert_eq!(get(&mut r, "interlock"), Value::String("open".into()));
    let Value::String(fault) = get(&mut r, "fault") else {
        panic!("fault is a string")
    };
    assert!(fault.contains("diode temperature"), "{fault}");
    let Value::String(status) = get(&mut r, "status") else {
        panic!("status is a string")
    };
    assert!(status.contains("laser fault"), "{status}");
    for name in ["interlock", "fault", "status", "wavelength_nm", "power_mw"] {
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
    assert!(!sent(&r.emu, "SOUR:AM:STAT ON"));

    r.emu.device().set_interlock_open(false);
    r.emu.device().set_fault(0x0000_0001);
    let e = r.laser.set_on(true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Hardware, "{e}");
    assert!(e.message.contains("base plate temperature"), "{e}");
    assert!(!sent(&r.emu, "SOUR:AM:STAT ON"));

    // Switching off needs no checks: it works whatever the laser's state.
    r.laser.set_on(false).unwrap();
    r.emu.device().set_fault(0);
    r.laser.set_on(true).unwrap();
    assert!(r.emu.device().is_on());
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
    // "OFF" cut to "O".
    r.emu.inject(Fault::Truncated);
    let e = r.laser.is_on().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    // "OK" cut to "O": the command's acknowledgement is not trusted.
    r.emu.inject(Fault::Truncated);
    let e = r.laser.set_power_mw(5.0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("\"O\""), "{e}");
    // And the laser works on.
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
    let e = r.laser.is_on().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("\"O\""), "{e}");
    r.laser.set_on(true).unwrap();
    assert!(r.laser.is_on().unwrap());
}

static LINK: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_vanished_port_is_disconnected_and_works_again_when_it_comes_back() {
    let dir = std::env::temp_dir().join(format!(
        "obis-test-{}-{}",
        std::process::id(),
        LINK.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("ttyOBIS");
    let _ = std::fs::remove_file(&link);
    let first = emulator::start(ObisEmulatorConfig::default()).unwrap();
    std::os::unix::fs::symlink(first.path(), &link).unwrap();
    let mut laser = ObisLaser::new(open(&link), ObisSettings::default()).unwrap();
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

    let second = Emulator::new(Obis::new(ObisEmulatorConfig::default()));
    let _running = second.start().unwrap();
    std::os::unix::fs::symlink(_running.path(), &link).unwrap();
    laser.set_on(true).unwrap();
    assert!(second.device().is_on());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_device_index_addresses_one_head_of_several() {
    let config = ObisEmulatorConfig {
        index: 2,
        ..ObisEmulatorConfig::default()
    };
    let settings = ObisSettings {
        device_index: Some(2),
        ..ObisSettings::default()
    };
    let mut r = rig_with(config.clone(), settings);
    r.laser.set_on(true).unwrap();
    assert!(r.emu.device().is_on());
    assert!(sent(&r.emu, "*IDN2?") && sent(&r.emu, "SOUR2:AM:STAT ON"));
    assert!(sent(&r.emu, "SYST2:LOCK?"));

    let emu = Emulator::new(Obis::new(config));
    let running = emu.start().unwrap();
    let settings = ObisSettings {
        device_index: Some(3),
        ..ObisSettings::default()
    };
    let e = ObisLaser::new(open(running.path()), settings).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Disconnected, "{e}");
    assert!(e.message.contains("ERR-241"), "{e}");
}

#[test]
fn the_handshake_is_turned_on_when_it_was_off() {
    let config = ObisEmulatorConfig {
        handshake: false,
        ..ObisEmulatorConfig::default()
    };
    let mut r = rig_with(config, ObisSettings::default());
    assert!(r.emu.device().handshake());
    r.laser.set_on(true).unwrap();
    assert!(r.laser.is_on().unwrap());
}

#[test]
fn connect_applies_the_settings() {
    let settings = ObisSettings {
        power_mw: Some(42.0),
        operating_mode: Some(OperatingMode::Digital),
        wavelength_nm: Some(490.0),
        ..ObisSettings::default()
    };
    let r = rig_with(ObisEmulatorConfig::default(), settings);
    assert!((r.emu.device().setpoint_mw() - 42.0).abs() < 1e-9);
    assert_eq!(r.emu.device().mode(), OperatingMode::Digital);

    // Leave: emission untouched.
    let emu = Emulator::new(Obis::new(ObisEmulatorConfig::default()));
    let running = emu.start().unwrap();
    let settings = ObisSettings {
        at_connect: AtConnect::Leave,
        ..ObisSettings::default()
    };
    let _laser = ObisLaser::new(open(running.path()), settings).unwrap();
    assert!(!sent(&emu, "SOUR:AM:STAT OFF"));

    // The wrong laser on the port.
    let emu = Emulator::new(Obis::new(ObisEmulatorConfig::default()));
    let running = emu.start().unwrap();
    let settings = ObisSettings {
        wavelength_nm: Some(561.0),
        ..ObisSettings::default()
    };
    let e = ObisLaser::new(open(running.path()), settings).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
    assert!(e.message.contains("488"), "{e}");

    // A setpoint above the laser's maximum fails before anything changes.
    let emu = Emulator::new(Obis::new(ObisEmulatorConfig::default()));
    let running = emu.start().unwrap();
    let settings = ObisSettings {
        power_mw: Some(200.0),
        ..ObisSettings::default()
    };
    let e = ObisLaser::new(open(running.path()), settings).unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutOfRange, "{e}");
    assert!(!sent(&emu, "SOUR:AM:STAT OFF"));
}

#[test]
fn settings_are_checked_and_read_from_config() {
    assert!(ObisSettings::default().validate().is_ok());
    let bad = |s: ObisSettings| s.validate().unwrap_err().key;
    assert_eq!(
        bad(ObisSettings {
            max_power_mw: Some(0.0),
            ..Default::default()
        }),
        "max_power_mw"
    );
    assert_eq!(
        bad(ObisSettings {
            max_power_mw: Some(50.0),
            power_mw: Some(60.0),
            ..Default::default()
        }),
        "power_mw"
    );
    assert_eq!(
        bad(ObisSettings {
            device_index: Some(99),
            ..Default::default()
        }),
        "device_index"
    );
    assert_eq!(
        bad(ObisSettings {
            wavelength_nm: Some(f64::NAN),
            ..Default::default()
        }),
        "wavelength_nm"
    );

    let s: ObisSettings = toml::from_str(
        "max_power_mw = 80.0\noperating_mode = \"MIXED\"\nat_connect = \"leave\"\ndevice_index = 1",
    )
    .unwrap();
    assert_eq!(s.max_power_mw, Some(80.0));
    assert_eq!(s.operating_mode, Some(OperatingMode::Mixed));
    assert_eq!(s.at_connect, AtConnect::Leave);
    assert!(toml::from_str::<ObisSettings>("max_power = 80.0").is_err());
}
