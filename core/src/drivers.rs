//! Turns validated device configs into running drivers: opens serial ports (and their
//! emulators), then builds each device through its driver's entry in [`crate::registry`]; all of
//! them for `serve`, or those that need no hardware for `microscoped check`.

use std::collections::HashMap;

use anyhow::Context;
use microscoped_driver_api::AnyDevice;
use microscoped_serial::emulate::Emulated;
use microscoped_serial::Port;
use microscoped_sim as sim;

use crate::config::{Config, DeviceConfig};
use crate::registry::{BuildError, Resources};

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
        let mut settings = pc.settings.clone();
        if let Some(emulator) = pc.emulate {
            let emulated = (emulator.start)().with_context(|| {
                format!(
                    "cannot start the {} emulator for port {}",
                    emulator.name, pc.name
                )
            })?;
            // The emulator is the device: the port speaks its framing.
            let framing = emulated.framing();
            settings.path = emulated.path().to_owned();
            settings.write_terminator = framing.command.to_owned();
            settings.read_terminator = framing.reply.to_owned();
            emulators.push(emulated);
        }
        let port =
            Port::open(settings).map_err(|e| anyhow::anyhow!("port {}: {}", pc.name, e.message))?;
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
