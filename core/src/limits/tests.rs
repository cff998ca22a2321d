use std::time::Duration;

use microscoped_driver_api::{DeviceKind, ErrorKind};

use super::*;
use crate::config::Config;
use crate::host::{DeviceHandle, DeviceHost};

#[tokio::test]
async fn laser_cap_refuses_before_the_device_and_narrows_specs() {
    let text = crate::config::DEMO_CONFIG.replace(
        "max_power_mw = 100.0\npower_mw = 10.0\n",
        "max_power_mw = 100.0\npower_mw = 80.0\nlimit_power_mw = 50.0\n",
    );
    let config = Config::parse(&text, "t.toml").unwrap();
    let host = crate::host::DeviceHost::start(&config).unwrap();
    let l = host.get("Laser488").unwrap();
    // Brought down to the cap at start.
    assert_eq!(l.with_laser(|l| l.power_setpoint_mw()).await.unwrap(), 50.0);
    let e = l.with_laser(|l| l.set_power_mw(60.0)).await.unwrap_err();
    let m = e.to_string();
    assert!(m.contains("limit_power_mw") && m.contains("t.toml:"), "{m}");
    assert_eq!(l.with_laser(|l| l.power_setpoint_mw()).await.unwrap(), 50.0);
    assert_eq!(l.with_laser(|l| l.max_power_mw()).await.unwrap(), 50.0);
    let spec = l
        .properties()
        .iter()
        .find(|s| s.name == "power_setpoint_mw")
        .unwrap();
    assert_eq!(
        spec.ty,
        PropertyType::Float {
            min: 0.0,
            max: 50.0
        }
    );
    l.with_laser(|l| l.set_power_mw(50.0)).await.unwrap();
}

#[tokio::test]
async fn soft_limits_refuse_moves_absolute_and_relative() {
    let text = crate::config::DEMO_CONFIG.replace(
        "home_um = 100.0\n",
        "home_um = 100.0\nsoft_limits_um = [50.0, 150.0]\n",
    );
    let config = Config::parse(&text, "t.toml").unwrap();
    let host = crate::host::DeviceHost::start(&config).unwrap();
    let z = host.get("Z").unwrap();
    assert!(z.with_stage(|s| s.move_absolute_um(160.0)).await.is_err());
    assert!(z.with_stage(|s| s.move_relative_um(-60.0)).await.is_err());
    assert_eq!(z.with_stage(|s| s.position_um()).await.unwrap(), 100.0);
    assert_eq!(
        z.with_stage(|s| s.travel_um()).await.unwrap(),
        (50.0, 150.0)
    );
    z.with_stage(|s| s.move_relative_um(-40.0)).await.unwrap();
}

#[test]
fn limits_outside_the_hardware_are_config_errors() {
    for (from, to, key) in [
        (
            "max_power_mw = 100.0\npower_mw = 10.0\n",
            "max_power_mw = 100.0\npower_mw = 10.0\nlimit_power_mw = 150.0\n",
            "limit_power_mw",
        ),
        (
            "home_um = 100.0\n",
            "home_um = 100.0\nsoft_limits_um = [-5.0, 150.0]\n",
            "soft_limits_um",
        ),
        (
            "speed_um_s = 5000.0\n",
            "speed_um_s = 5000.0\nsoft_limits_x_um = [-30000.0, 0.0]\n",
            "soft_limits_x_um",
        ),
        (
            "pattern = \"beads\"\n",
            "pattern = \"beads\"\nlimit_exposure_ms = 20000.0\n",
            "limit_exposure_ms",
        ),
    ] {
        let text = crate::config::DEMO_CONFIG.replacen(from, to, 1);
        assert_ne!(text, crate::config::DEMO_CONFIG, "{from:?} not found");
        let config = Config::parse(&text, "t.toml").unwrap();
        let e = crate::host::DeviceHost::start(&config)
            .err()
            .expect("refused at start")
            .to_string();
        assert!(e.contains(key) && e.starts_with("t.toml:"), "{e}");
    }
}

// ---- Every path to a limited quantity is checked ----
//
// The tests below build every driver family the daemon runs without hardware (the simulated
// instrument, the serial drivers against their emulators, the GenICam driver against aravis's
// fake camera with the `genicam` feature) with facility limits on every device that can have
// them, and fail when a limited quantity can be changed through a path that skips its limit.

/// The serial families against their emulators, each device with the limits its kind takes.
const SERIAL_FAMILIES: &str = r#"
[ports.ASI]
emulate = "asi"
baud = 115200

[ports.ProScan]
emulate = "prior"
baud = 9600

[ports.OBIS]
emulate = "obis"
baud = 115200

[ports.Cobolt]
emulate = "cobolt"
baud = 115200

[devices.AsiXY]
driver = "asi.xy_stage"
port = "ASI"
soft_limits_x_um = [-1000.0, 1000.0]
soft_limits_y_um = [-1000.0, 1000.0]

[devices.AsiZ]
driver = "asi.stage"
port = "ASI"
axis = "Z"
soft_limits_um = [-500.0, 500.0]

[devices.PriorXY]
driver = "prior.xy_stage"
port = "ProScan"
soft_limits_x_um = [-1000.0, 1000.0]
soft_limits_y_um = [-1000.0, 1000.0]

[devices.PriorZ]
driver = "prior.stage"
port = "ProScan"
soft_limits_um = [-500.0, 500.0]

[devices.PriorWheel]
driver = "prior.filter_wheel"
port = "ProScan"
wheel = 2
labels = ["a", "b", "c", "d", "e", "f"]

[devices.PriorShutter]
driver = "prior.shutter"
port = "ProScan"
shutter = 1

[devices.Obis]
driver = "obis.laser"
port = "OBIS"
limit_power_mw = 10.0

[devices.Cobolt]
driver = "cobolt.laser"
port = "Cobolt"
limit_power_mw = 10.0
"#;

/// The demo instrument with limits on every device that takes them, a laser whose power
/// setpoint has a second name (the sim's `power_alias` hook, as a driver that names its power
/// property differently would have), and the serial families.
fn every_family() -> String {
    let mut text = crate::config::DEMO_CONFIG.to_owned();
    for (from, to) in [
        (
            "max_power_mw = 100.0\npower_mw = 10.0\n",
            "max_power_mw = 100.0\npower_mw = 10.0\nlimit_power_mw = 50.0\npower_alias = \"laser_power\"\n",
        ),
        (
            "max_power_mw = 50.0\npower_mw = 5.0\n",
            "max_power_mw = 50.0\npower_mw = 5.0\nlimit_power_mw = 20.0\n",
        ),
        ("home_um = 100.0\n", "home_um = 100.0\nsoft_limits_um = [50.0, 150.0]\n"),
        (
            "speed_um_s = 5000.0\n",
            "speed_um_s = 5000.0\nsoft_limits_x_um = [-1000.0, 1000.0]\nsoft_limits_y_um = [-1000.0, 1000.0]\n",
        ),
        ("pattern = \"beads\"\n", "pattern = \"beads\"\nlimit_exposure_ms = 1000.0\n"),
    ] {
        let next = text.replacen(from, to, 1);
        assert_ne!(next, text, "the demo config changed: {from:?} not found");
        text = next;
    }
    text + SERIAL_FAMILIES
}

/// Starts the instrument of [`every_family`], plus a GenICam camera with an exposure limit when
/// the feature is on (the fake camera must outlive the host, hence the second value).
fn start_every_family() -> (DeviceHost, Box<dyn std::any::Any>) {
    let text = every_family();
    #[cfg(feature = "genicam")]
    let (text, keep) = {
        let fake = microscoped_genicam::testing::start_fake_gige("MSDLIMIT")
            .expect("the fake GigE camera starts");
        let camera = format!(
            "\n[devices.GigE]\ndriver = \"genicam.camera\"\ntimeout_ms = 10000\ndevice_id = \"{}\"\nexposure_ms = 10.0\nlimit_exposure_ms = 100.0\n",
            fake.device_id()
        );
        (text + &camera, Box::new(fake) as Box<dyn std::any::Any>)
    };
    #[cfg(not(feature = "genicam"))]
    let keep: Box<dyn std::any::Any> = Box::new(());
    let config = Config::parse(&text, "t.toml").unwrap();
    (DeviceHost::start(&config).unwrap(), keep)
}

/// The limited quantity a writable property's name or unit suggests on a device of `kind`: what
/// a driver's power, exposure or position property would look like, whatever it is called.
/// XY stages may tag either axis.
fn suggested(kind: DeviceKind, spec: &PropertySpec) -> Option<&'static [Quantity]> {
    let name = spec.name.to_lowercase();
    let unit = spec.unit.as_deref().unwrap_or("");
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    match kind {
        DeviceKind::Laser
            if ["mW", "W", "uW", "µW"].contains(&unit) || has(&["power", "_mw", "watt"]) =>
        {
            Some(&[Quantity::LaserPower])
        }
        DeviceKind::Camera
            if ["ms", "s", "us", "µs"].contains(&unit)
                || has(&["exposure", "integration", "shutter_time"]) =>
        {
            Some(&[Quantity::Exposure])
        }
        DeviceKind::Stage
            if ["um", "µm", "mm", "nm", "steps"].contains(&unit)
                || has(&["position", "target", "_um", "_mm"]) && !has(&["speed", "velocity"]) =>
        {
            Some(&[Quantity::Position(Axis::Z)])
        }
        DeviceKind::XYStage
            if ["um", "µm", "mm", "nm", "steps"].contains(&unit)
                || has(&["position", "target", "_um", "_mm"]) && !has(&["speed", "velocity"]) =>
        {
            Some(&[Quantity::Position(Axis::X), Quantity::Position(Axis::Y)])
        }
        _ => None,
    }
}

#[tokio::test]
async fn every_writable_property_that_looks_like_a_limited_quantity_is_tagged() {
    let (host, _keep) = start_every_family();
    let mut seen = Vec::new();
    for d in host.devices() {
        for s in d.properties() {
            if let Some(q) = s.quantity {
                assert_eq!(
                    s.unit.as_deref(),
                    Some(q.unit()),
                    "{}.{}: a {q:?} is in {}",
                    d.name(),
                    s.name,
                    q.unit()
                );
            }
            if s.read_only {
                continue;
            }
            if let Some(expected) = suggested(d.kind(), s) {
                assert!(
                    s.quantity.is_some_and(|q| expected.contains(&q)),
                    "{}.{} ({}, unit {:?}) looks like {expected:?} but is tagged {:?}: \
                     its writes would pass the facility limit unchecked",
                    d.name(),
                    s.name,
                    d.driver(),
                    s.unit,
                    s.quantity
                );
                seen.push(format!("{}.{}", d.name(), s.name));
            }
        }
    }
    // The heuristic finds the properties it is meant to find, the second name included.
    for p in [
        "Laser488.laser_power",
        "Laser488.power_setpoint_mw",
        "Obis.power_setpoint_mw",
        "Cobolt.power_setpoint_mw",
        "Camera.exposure_ms",
    ] {
        assert!(seen.iter().any(|s| s == p), "{p} not checked: {seen:?}");
    }
}

/// A value of `quantity` just past its limit but inside what the hardware accepts, so that only
/// the limit can refuse it.
fn past(limits: &DeviceLimits, quantity: Quantity) -> Option<f64> {
    Some(match bound(limits, quantity)? {
        Bound::Cap(cap) => cap.value + 1.0,
        Bound::Range(range) => range.value.1 + 1.0,
    })
}

#[tokio::test]
async fn every_tagged_property_is_refused_past_its_limit() {
    let (host, _keep) = start_every_family();
    let mut checked = Vec::new();
    for d in host.devices() {
        for s in d.properties().iter().filter(|s| !s.read_only) {
            let Some(v) = s.quantity.and_then(|q| past(d.limits(), q)) else {
                continue;
            };
            let name = s.name.clone();
            let before = d
                .call({
                    let name = name.clone();
                    move |dev| dev.device().get_property(&name)
                })
                .await
                .unwrap();
            let e = d
                .call({
                    let name = name.clone();
                    move |dev| dev.device().set_property(&name, &Value::Float(v))
                })
                .await
                .expect_err(&format!("{}.{name} = {v} got past its limit", d.name()));
            let m = e.to_string();
            assert!(m.contains("facility safety limit"), "{m}");
            let after = d
                .call(move |dev| dev.device().get_property(&name))
                .await
                .unwrap();
            assert_eq!(before, after, "{}.{}: nothing was sent", d.name(), s.name);
            checked.push(format!("{}.{}", d.name(), s.name));
        }
    }
    assert!(
        checked.iter().any(|c| c == "Laser488.laser_power"),
        "{checked:?}"
    );
}

/// The limited quantities of a device as its trait reports them.
async fn quantities(d: &DeviceHandle) -> Vec<(Quantity, f64)> {
    match d.kind() {
        DeviceKind::Laser => vec![(
            Quantity::LaserPower,
            d.with_laser(|l| l.power_setpoint_mw()).await.unwrap(),
        )],
        DeviceKind::Camera => vec![(
            Quantity::Exposure,
            d.with_camera(|c| c.exposure_ms()).await.unwrap(),
        )],
        DeviceKind::Stage => vec![(
            Quantity::Position(Axis::Z),
            d.with_stage(|s| s.position_um()).await.unwrap(),
        )],
        DeviceKind::XYStage => {
            let (x, y) = d.with_xy_stage(|s| s.position_um()).await.unwrap();
            vec![
                (Quantity::Position(Axis::X), x),
                (Quantity::Position(Axis::Y), y),
            ]
        }
        _ => Vec::new(),
    }
}

/// Values worth writing to a property to see what it changes.
fn probes(spec: &PropertySpec) -> Vec<Value> {
    match &spec.ty {
        PropertyType::Bool => vec![Value::Bool(true), Value::Bool(false)],
        PropertyType::Int { min, max } => vec![Value::Int(*max), Value::Int(*min)],
        PropertyType::Float { min, max } => vec![Value::Float(*max), Value::Float(*min)],
        PropertyType::Enum { allowed } => allowed.iter().cloned().map(Value::String).collect(),
        PropertyType::String => Vec::new(),
    }
}

/// Names aside: writes every value worth trying to every untagged writable property of every
/// limited device, and fails if one changes a limited quantity (a second way to it that its
/// limit would not see).
#[tokio::test]
async fn no_untagged_property_changes_a_limited_quantity() {
    let (host, _keep) = start_every_family();
    for d in host.devices().filter(|d| !d.limits().is_empty()) {
        for s in d.properties() {
            // The sim's fault hook fails or hangs the next call on purpose.
            if s.read_only || s.quantity.is_some() || s.name == "sim_fault" {
                continue;
            }
            for v in probes(s) {
                let before = quantities(d).await;
                let (name, value) = (s.name.clone(), v.clone());
                // Refusals are fine: only what gets through matters.
                let _ = d
                    .call(move |dev| dev.device().set_property(&name, &value))
                    .await;
                if matches!(d.kind(), DeviceKind::Stage | DeviceKind::XYStage) {
                    d.wait_for_idle(Duration::from_secs(10)).await.unwrap();
                }
                let after = quantities(d).await;
                assert_eq!(
                    before,
                    after,
                    "writing {}.{} = {v} changed a limited quantity, but {} carries no quantity tag",
                    d.name(),
                    s.name,
                    s.name
                );
            }
        }
    }
}

#[test]
fn every_quantity_has_its_limit_and_a_refusal_naming_it() {
    let text = every_family();
    let config = Config::parse(&text, "t.toml").unwrap();
    let limits = |n: &str| {
        config
            .devices
            .iter()
            .find(|d| d.name == n)
            .unwrap()
            .limits
            .clone()
    };
    for (device, q, key) in [
        ("Laser488", Quantity::LaserPower, "limit_power_mw"),
        ("Laser488", Quantity::MaxLaserPower, "limit_power_mw"),
        ("Camera", Quantity::Exposure, "limit_exposure_ms"),
        ("Z", Quantity::Position(Axis::Z), "soft_limits_um"),
        ("XY", Quantity::Position(Axis::X), "soft_limits_x_um"),
        ("XY", Quantity::Position(Axis::Y), "soft_limits_y_um"),
    ] {
        let guard = Guard::new(&limits(device), Vec::new());
        let v = past(&guard.limits, q).unwrap();
        let e = guard.check(q, v).unwrap_err();
        assert_eq!(e.kind, ErrorKind::OutOfRange);
        assert!(e.message.contains(key), "{q:?}: {e}");
    }
}
