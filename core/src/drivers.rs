//! Turns validated device configs into running drivers: opens serial ports (and their
//! emulators), then builds each device through its driver's entry in [`crate::registry`]; all of
//! them for `serve`, or those that need no hardware for `microscoped check`.

use std::collections::HashMap;

use anyhow::Context;
use microscoped_driver_api::{AnyDevice, PropertySpec, PropertyType};
use microscoped_serial::emulate::Emulated;
use microscoped_serial::{Port, PortSettings};
use microscoped_sim as sim;

use crate::config::{Config, DeviceConfig};
use crate::registry::{BuildError, EmulatorEntry, EmulatorSettings, Resources};

/// The seed of the simulated sample, fixed so the demo shows the same beads every time.
const SIM_SEED: u64 = 42;

/// Which devices to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every device, opening every port: what `serve` runs.
    Hardware,
    /// Only the devices built without hardware (simulated, or behind an emulated port): what
    /// `microscoped check` builds, the same way.
    Offline,
}

/// What the daemon must keep while its devices run.
pub struct Built {
    /// The devices, in config order; `None` for one left to its hardware ([`Reach::Offline`]).
    pub devices: Vec<Option<AnyDevice>>,
    /// Protocol emulators behind `emulate` ports: dropping one closes its port.
    pub emulators: Vec<Emulated>,
}

/// The hardware a device needs to be built, for people ("port ProScan (/dev/ttyUSB0)"), or
/// `None` when it is built without any (simulated, or behind an emulated port).
pub fn hardware(config: &Config, device: &DeviceConfig) -> Option<String> {
    if device.settings.driver().offline {
        return None;
    }
    if !device.settings.needs_port() {
        return Some(format!(
            "its {} ({})",
            device.kind().as_str(),
            device.driver
        ));
    }
    let name = device.port.as_deref()?;
    let port = config.ports.iter().find(|p| p.name == name)?;
    match port.emulate {
        Some(_) => None,
        None => {
            let path = &port.settings.path;
            // Said, not refused: a config is often checked on another machine than its own.
            let absent = if path.exists() {
                ""
            } else {
                ", not present on this machine"
            };
            Some(format!("port {name} ({}{absent})", path.display()))
        }
    }
}

/// Starts `emulator` as `emulated` describes the device, and opens a port to it as `settings`
/// say, in the emulator's framing (the emulator is the device); `port` names it in errors.
fn open_emulated(
    emulator: &EmulatorEntry,
    emulated: &EmulatorSettings,
    mut settings: PortSettings,
    port: &str,
) -> anyhow::Result<(Emulated, Port)> {
    let emulated = (emulator.start)(emulated).with_context(|| {
        format!(
            "cannot start the {} emulator for port {port}",
            emulator.name
        )
    })?;
    let framing = emulated.framing();
    settings.path = emulated.path().to_owned();
    settings.write_terminator = framing.command.to_owned();
    settings.read_terminator = framing.reply.to_owned();
    let port = Port::open(settings).map_err(|e| anyhow::anyhow!("port {port}: {}", e.message))?;
    Ok((emulated, port))
}

/// The properties a serial device's driver gives, learnt by building it, with the device's
/// settings, against its protocol's emulator while its hardware is away (`check`). What the
/// hardware decides is left open: number ranges are unbounded; names, types, read-only,
/// allowed strings and the quantity a property is (so its facility limit) are the driver's.
/// `None` when the driver has no emulator or does not start on it (settings that need the
/// real hardware, such as a wheel's position count).
pub fn properties_on_emulator(device: &DeviceConfig) -> Option<Vec<PropertySpec>> {
    let emulator = crate::registry::emulator(device.settings.driver().emulator?)?;
    let (_emulated, port) = open_emulated(
        emulator,
        &EmulatorSettings::default(),
        PortSettings::default(),
        "check",
    )
    .ok()?;
    let world = sim::SimWorld::new(SIM_SEED);
    let mut resources = Resources {
        world: &world,
        port: Some(port),
    };
    let mut built = device.settings.build(&mut resources).ok()?;
    let mut specs = built.device().properties();
    for spec in &mut specs {
        spec.ty = match spec.ty.clone() {
            PropertyType::Int { .. } => PropertyType::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
            PropertyType::Float { .. } => PropertyType::Float {
                min: f64::MIN,
                max: f64::MAX,
            },
            other => other,
        };
    }
    Some(specs)
}

/// Opens every port `reach` takes (starting emulators where the config asks), then builds every
/// device it takes, in config order. Simulated devices share one world, so the simulated camera
/// sees what the simulated stages, lasers and filters do.
pub fn build_all(config: &Config, reach: Reach) -> anyhow::Result<Built> {
    let mut emulators = Vec::new();
    let mut ports = HashMap::new();
    for pc in &config.ports {
        if reach == Reach::Offline && pc.emulate.is_none() {
            continue;
        }
        let port = match pc.emulate {
            Some(emulator) => {
                let (emulated, port) = open_emulated(
                    emulator,
                    &pc.emulator_settings,
                    pc.settings.clone(),
                    &pc.name,
                )?;
                emulators.push(emulated);
                port
            }
            None => Port::open(pc.settings.clone())
                .map_err(|e| anyhow::anyhow!("port {}: {}", pc.name, e.message))?,
        };
        ports.insert(pc.name.clone(), port);
    }

    let world = sim::SimWorld::new(SIM_SEED);
    let mut devices = Vec::with_capacity(config.devices.len());
    for dc in &config.devices {
        if reach == Reach::Offline && hardware(config, dc).is_some() {
            devices.push(None);
            continue;
        }
        let port = match dc.port.as_deref() {
            Some(name) if dc.settings.needs_port() => Some(
                ports
                    .get(name)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("device {}: no port {name:?}", dc.name))?,
            ),
            _ => None,
        };
        let mut resources = Resources {
            world: &world,
            port,
        };
        let device = dc.settings.build(&mut resources).map_err(|e| match e {
            BuildError::Setting(s) => dc.error(Some(&s.key), s.message),
            _ => dc.error(None, format!("device {} ({}) {e}", dc.name, dc.driver)),
        })?;
        devices.push(Some(device));
    }
    Ok(Built { devices, emulators })
}
