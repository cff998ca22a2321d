//! The real serial drivers in the daemon, against protocol emulators on pseudo-terminals:
//! commands over gRPC, and each fault (garbled, truncated and missing replies, device error
//! codes, the port vanishing and coming back) giving the right status while the other devices
//! keep working.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Daemon;
use microscoped::pb;
use microscoped_asi::emulator::{Asi, EmulatorConfig};
use microscoped_serial::emulate::{Emulated, Emulator, Fault};
use tonic::Code;

fn dev(device: &str) -> pb::DeviceRef {
    pb::DeviceRef {
        device: device.into(),
    }
}

/// An ASI emulator behind a stable symlink, as a USB adapter behind /dev/serial/by-id.
fn asi_behind(link: &Path) -> (Emulated, Emulator<Asi>) {
    let handle = Emulator::new(Asi::new(EmulatorConfig::default()));
    let running = handle.start().unwrap();
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(running.path(), link).unwrap();
    (running, handle)
}

fn config(asi: &Path, prior: &Path) -> String {
    format!(
        r#"
[instrument]
name = "serial-test"

[server]
anonymous_loopback_admin = true

[ports.ASI]
path = "{}"
baud = 115200
read_terminator = "\r\n"
timeout_ms = 300

[ports.ProScan]
path = "{}"
read_terminator = "\r"
timeout_ms = 300

[devices.XY]
driver = "asi.xy_stage"
port = "ASI"
timeout_ms = 2000

[devices.Z]
driver = "asi.stage"
port = "ASI"
# Wider than the controller's own limits (12 mm in the emulator), so the controller refuses.
travel_um = [-50000.0, 50000.0]

[devices.Wheel]
driver = "prior.filter_wheel"
port = "ProScan"
wheel = 2
labels = ["A", "B", "C", "D", "E", "F"]
"#,
        asi.display(),
        prior.display()
    )
}

async fn position(d: &mut Daemon, device: &str) -> Vec<f64> {
    d.client
        .get_position(dev(device))
        .await
        .unwrap()
        .into_inner()
        .position_um
}

#[tokio::test]
async fn serial_devices_over_grpc_and_every_fault() {
    let dir = tempfile::tempdir().unwrap();
    let link: PathBuf = dir.path().join("ttyASI");
    let (asi, handle) = asi_behind(&link);
    let prior = microscoped_prior::emulator::start(Default::default()).unwrap();
    let mut d = Daemon::with_config(&config(&link, prior.path())).await;

    // Commands reach the controller and come back.
    d.client
        .move_absolute(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![1500.0, -250.0],
        })
        .await
        .unwrap();
    d.client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "XY".into(),
            timeout_ms: 20_000,
        })
        .await
        .unwrap();
    assert_eq!(position(&mut d, "XY").await, vec![1500.0, -250.0]);
    assert_eq!(handle.device().position_um('X'), Some(1500.0));
    use pb::set_state_request::Target;
    d.client
        .set_state(pb::SetStateRequest {
            device: "Wheel".into(),
            target: Some(Target::Label("C".into())),
        })
        .await
        .unwrap();

    // A garbled reply: UNAVAILABLE (a protocol error), the device stays usable.
    handle.inject(Fault::Garbage);
    let e = d.client.get_position(dev("Z")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(position(&mut d, "Z").await.len(), 1);

    // A truncated reply: the same.
    handle.inject(Fault::Truncated);
    let e = d.client.get_position(dev("Z")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(position(&mut d, "Z").await.len(), 1);

    // A device error code: the controller's own limit gives INVALID_ARGUMENT with its code.
    let e = d
        .client
        .move_absolute(pb::MoveRequest {
            device: "Z".into(),
            position_um: vec![20_000.0],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains(":N-4"), "{e:?}");

    // No reply: DEADLINE_EXCEEDED, the device is faulted, the other port's device works, and
    // a reset brings it back.
    handle.inject(Fault::Silent);
    let e = d.client.get_position(dev("Z")).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    let e = d.client.get_position(dev("Z")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    d.client.get_state(dev("Wheel")).await.unwrap();
    d.client
        .reset_device(pb::ResetDeviceRequest { device: "Z".into() })
        .await
        .unwrap();
    assert_eq!(position(&mut d, "Z").await.len(), 1);

    // The adapter is unplugged mid-move: UNAVAILABLE or DEADLINE_EXCEEDED, the device faulted;
    // the Prior wheel on the other port keeps working.
    d.client
        .move_absolute(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![30_000.0, 0.0],
        })
        .await
        .unwrap();
    asi.vanish();
    let e = d.client.get_position(dev("XY")).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{e:?}"
    );
    d.client
        .set_state(pb::SetStateRequest {
            device: "Wheel".into(),
            target: Some(Target::Index(0)),
        })
        .await
        .unwrap();

    // Plugged back in: a reset finds it answering and the stage works again.
    let (_asi2, _handle2) = asi_behind(&link);
    let start = Instant::now();
    loop {
        match d
            .client
            .reset_device(pb::ResetDeviceRequest {
                device: "XY".into(),
            })
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "never came back: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(position(&mut d, "XY").await.len(), 2);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_port_stops_the_daemon_from_starting_with_a_clear_error() {
    let text = config(Path::new("/dev/ttyDOESNOTEXIST"), Path::new("/dev/ttyNOPE"));
    let cfg = microscoped::config::Config::parse(&text, "t.toml").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = microscoped::run(cfg, listener, async {}).await.unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("port ASI")
            && msg.contains("/dev/ttyDOESNOTEXIST")
            && msg.contains("does not exist"),
        "{msg}"
    );
}

#[tokio::test]
async fn serial_lasers_over_grpc_caps_and_interlock() {
    use microscoped_obis::emulator::Obis;
    let obis = Emulator::new(Obis::new(Default::default()));
    let running = obis.start().unwrap();
    let cobolt = microscoped_cobolt::emulator::start(Default::default()).unwrap();
    let text = format!(
        r#"
[instrument]
name = "lasers"

[server]
anonymous_loopback_admin = true

[ports.OBIS]
path = "{}"
baud = 115200
write_terminator = "\r\n"
read_terminator = "\r\n"
timeout_ms = 300

[ports.Cobolt]
path = "{}"
baud = 115200
read_terminator = "\r"
timeout_ms = 300

[devices.L488]
driver = "obis.laser"
port = "OBIS"
max_power_mw = 30.0

[devices.L561]
driver = "cobolt.laser"
port = "Cobolt"
"#,
        running.path().display(),
        cobolt.path().display()
    );
    let mut d = Daemon::with_config(&text).await;
    let laser = |device: &str, mw: f64| pb::SetLaserPowerRequest {
        device: device.into(),
        power_mw: mw,
    };
    let s = d
        .client
        .set_laser_power(laser("L488", 12.5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.setpoint_mw, 12.5);
    assert_eq!(obis.device().setpoint_mw(), 12.5);
    let on = d
        .client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "L488".into(),
            enabled: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(on.enabled && obis.device().is_on());

    // Over the configured cap: refused before anything reaches the laser.
    let before = obis.commands().len();
    let e = d
        .client
        .set_laser_power(laser("L488", 45.0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("30"), "{e:?}");
    assert_eq!(obis.device().setpoint_mw(), 12.5);
    assert!(
        obis.commands()[before..]
            .iter()
            .all(|c| !c.contains("AMPL ")),
        "{:?}",
        obis.commands()
    );

    // The interlock opens: switching on is refused with the cause; the other laser works.
    d.client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "L488".into(),
            enabled: false,
        })
        .await
        .unwrap();
    obis.device().set_interlock_open(true);
    let e = d
        .client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "L488".into(),
            enabled: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().to_lowercase().contains("interlock"), "{e:?}");
    assert!(!obis.device().is_on());
    let c = d
        .client
        .set_laser_power(laser("L561", 5.0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.setpoint_mw, 5.0);

    // Interlock closed again: after a reset the laser is usable.
    obis.device().set_interlock_open(false);
    d.client
        .reset_device(pb::ResetDeviceRequest {
            device: "L488".into(),
        })
        .await
        .unwrap();
    d.client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "L488".into(),
            enabled: true,
        })
        .await
        .unwrap();
    assert!(obis.device().is_on());
    // Shutdown turns it off.
    d.shutdown().await.unwrap();
    assert!(!obis.device().is_on(), "laser left on at shutdown");
}

#[tokio::test]
async fn prior_and_cobolt_faults_over_grpc() {
    use microscoped_cobolt::emulator::Cobolt;
    use microscoped_prior::emulator::ProScan;
    let prior_faults = Emulator::new(ProScan::new(Default::default()));
    let prior = prior_faults.start().unwrap();
    let cobolt = Emulator::new(Cobolt::new(Default::default()));
    let cobolt_port = cobolt.start().unwrap();
    let text = format!(
        r#"
[instrument]
name = "prior-cobolt"

[server]
anonymous_loopback_admin = true

[ports.ProScan]
path = "{}"
read_terminator = "\r"
timeout_ms = 300

[ports.Cobolt]
path = "{}"
baud = 115200
read_terminator = "\r"
timeout_ms = 300

[devices.XY]
driver = "prior.xy_stage"
port = "ProScan"
# Wider than the controller's own limits (60 mm in the emulator), so the controller refuses.
x_range_um = [-100000.0, 100000.0]

[devices.Wheel]
driver = "prior.filter_wheel"
port = "ProScan"
wheel = 2
labels = ["A", "B", "C", "D", "E", "F"]

[devices.L561]
driver = "cobolt.laser"
port = "Cobolt"
"#,
        prior.path().display(),
        cobolt_port.path().display()
    );
    let mut d = Daemon::with_config(&text).await;
    let laser = || dev("L561");

    // Garbled and truncated replies: UNAVAILABLE, the device stays usable.
    prior_faults.inject(Fault::Garbage);
    assert_eq!(
        d.client.get_position(dev("XY")).await.unwrap_err().code(),
        Code::Unavailable
    );
    prior_faults.inject(Fault::Truncated);
    assert_eq!(
        d.client.get_position(dev("XY")).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(position(&mut d, "XY").await.len(), 2);
    cobolt.inject(Fault::Garbage);
    assert_eq!(
        d.client.get_laser_state(laser()).await.unwrap_err().code(),
        Code::Unavailable
    );
    d.client.get_laser_state(laser()).await.unwrap();

    // A device error code: the ProScan refuses a move past its hardware limit.
    let e = d
        .client
        .move_absolute(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![80_000.0, 0.0],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("E,8"), "{e:?}");

    // No reply: DEADLINE_EXCEEDED and faulted, the devices on the other port unaffected, and
    // a reset brings it back.
    cobolt.inject(Fault::Silent);
    assert_eq!(
        d.client.get_laser_state(laser()).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    assert_eq!(
        d.client.get_laser_state(laser()).await.unwrap_err().code(),
        Code::Unavailable
    );
    d.client.get_state(dev("Wheel")).await.unwrap();
    d.client
        .reset_device(pb::ResetDeviceRequest {
            device: "L561".into(),
        })
        .await
        .unwrap();
    d.client.get_laser_state(laser()).await.unwrap();
    prior_faults.inject(Fault::Silent);
    assert_eq!(
        d.client.get_state(dev("Wheel")).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    d.client.get_laser_state(laser()).await.unwrap();
    d.client
        .reset_device(pb::ResetDeviceRequest {
            device: "Wheel".into(),
        })
        .await
        .unwrap();
    d.client.get_state(dev("Wheel")).await.unwrap();
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_emulated_port_rehearses_the_laser_head_the_config_describes() {
    // A 405 nm, 100 mW OBIS and a 405 nm Cobolt, each refusing to start on the wrong head.
    let text = r#"
[instrument]
name = "violet"

[server]
anonymous_loopback_admin = true

[ports.OBIS]
emulate = { kind = "obis", wavelength_nm = 405.0, max_power_mw = 100.0 }
baud = 115200

[ports.Cobolt]
emulate = { kind = "cobolt", wavelength_nm = 405.0 }
baud = 115200

[devices.L405]
driver = "obis.laser"
port = "OBIS"
expected_wavelength_nm = 405.0

[devices.C405]
driver = "cobolt.laser"
port = "Cobolt"
wavelength_nm = 405.0
"#;
    let mut d = Daemon::with_config(text).await;
    let state = d
        .client
        .get_laser_state(dev("L405"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((state.wavelength_nm, state.max_power_mw), (405.0, 100.0));
    let state = d
        .client
        .get_laser_state(dev("C405"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.wavelength_nm, 405.0);
    d.shutdown().await.unwrap();

    // The default head is still 488 nm: a config expecting 405 is refused at start.
    let default_head = text.replace(
        "emulate = { kind = \"obis\", wavelength_nm = 405.0, max_power_mw = 100.0 }",
        "emulate = \"obis\"",
    );
    let config = microscoped::config::Config::parse(&default_head, "violet.toml").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = microscoped::run(config, listener, async {})
        .await
        .expect_err("a 488 nm head where 405 nm is expected");
    assert!(format!("{err:#}").contains("405"), "{err:#}");
}
