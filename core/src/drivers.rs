//! Turns validated device configs into running drivers: opens serial ports (and their
//! emulators), then builds each device through its driver's entry in [`crate::registry`].

use std::collections::HashMap;

use anyhow::Context;
use microscoped_driver_api::AnyDevice;
use microscoped_serial::emulate::Emulated;
use microscoped_serial::Port;
use microscoped_sim as sim;

use crate::config::Config;
use crate::registry::{BuildError, Resources};

/// The seed of the simulated sample, fixed so the demo shows the same beads every time.
const SIM_SEED: u64 = 42;

/// What the daemon must keep while its devices run.
pub struct Built {
    /// The devices, in config order.
    pub devices: Vec<AnyDevice>,
    /// Protocol emulators behind `emulate` ports: dropping one closes its port.
    pub emulators: Vec<Emulated>,
}

/// Opens every port (starting emulators where the config asks), then builds every device, in
/// config order. Simulated devices share one world, so the simulated camera sees what the
/// simulated stages, lasers and filters do.
pub fn build_all(config: &Config) -> anyhow::Result<Built> {
    let mut emulators = Vec::new();
    let mut ports = HashMap::new();
    for pc in &config.ports {
        let mut settings = pc.settings.clone();
        if let Some(emulator) = pc.emulate {
            let emulated = (emulator.start)(&pc.emulator_settings).with_context(|| {
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
            BuildError::Setting(_) => anyhow::anyhow!("device {}: {e}", dc.name),
            _ => anyhow::anyhow!("device {} ({}) {e}", dc.name, dc.driver),
        })?;
        devices.push(device);
    }
    Ok(Built { devices, emulators })
}
