//! Turns validated device configs into running drivers. The only place that knows which driver
//! crate makes which device, and where serial ports (and their emulators) are opened.

use std::collections::HashMap;

use anyhow::Context;
use microscoped_asi as asi;
use microscoped_cobolt as cobolt;
use microscoped_driver_api::AnyDevice;
use microscoped_obis as obis;
use microscoped_prior as prior;
use microscoped_serial::emulate::Emulated;
use microscoped_serial::Port;
use microscoped_sim as sim;

use crate::config::{Config, DriverSettings, Emulator};

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
        if let Some(kind) = pc.emulate {
            let (emulated, command, reply) = match kind {
                Emulator::Asi => (
                    asi::emulator::start(asi::emulator::EmulatorConfig::default()),
                    asi::emulator::COMMAND_TERMINATOR.to_owned(),
                    asi::emulator::REPLY_TERMINATOR.to_owned(),
                ),
                Emulator::Prior => (
                    prior::emulator::start(prior::emulator::EmulatorConfig::default()),
                    prior::emulator::COMMAND_TERMINATOR.to_owned(),
                    prior::emulator::REPLY_TERMINATOR.to_owned(),
                ),
                Emulator::Obis => {
                    let framing = obis::port_settings("");
                    (
                        obis::emulator::start(Default::default()),
                        framing.write_terminator,
                        framing.read_terminator,
                    )
                }
                Emulator::Cobolt => {
                    let framing = cobolt::port_settings("");
                    (
                        cobolt::emulator::start(Default::default()),
                        framing.write_terminator,
                        framing.read_terminator,
                    )
                }
            };
            let emulated = emulated.with_context(|| {
                format!("cannot start the {kind:?} emulator for port {}", pc.name)
            })?;
            // The emulator is the device: the port speaks its framing.
            settings.path = emulated.path().to_owned();
            settings.write_terminator = command;
            settings.read_terminator = reply;
            emulators.push(emulated);
        }
        let port =
            Port::open(settings).map_err(|e| anyhow::anyhow!("port {}: {}", pc.name, e.message))?;
        ports.insert(pc.name.clone(), port);
    }

    let world = sim::SimWorld::new(SIM_SEED);
    let mut devices = Vec::with_capacity(config.devices.len());
    for dc in &config.devices {
        let port = || -> anyhow::Result<Port> {
            let name = dc.port.as_deref().unwrap_or_default();
            ports
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("device {}: no port {name:?}", dc.name))
        };
        let setting = |e: sim::SettingError| {
            anyhow::anyhow!(
                "device {}: invalid setting {}: {}",
                dc.name,
                e.key,
                e.message
            )
        };
        let start = |e: microscoped_driver_api::DeviceError| {
            anyhow::anyhow!(
                "device {} ({}) could not be started: {}",
                dc.name,
                dc.driver,
                e.message
            )
        };
        let device = match dc.settings.clone() {
            DriverSettings::SimCamera(s) => {
                AnyDevice::Camera(Box::new(sim::SimCamera::new(&world, s).map_err(setting)?))
            }
            DriverSettings::SimXYStage(s) => {
                AnyDevice::XYStage(Box::new(sim::SimXYStage::new(&world, s).map_err(setting)?))
            }
            DriverSettings::SimStage(s) => {
                AnyDevice::Stage(Box::new(sim::SimStage::new(&world, s).map_err(setting)?))
            }
            DriverSettings::SimLaser(s) => {
                AnyDevice::Laser(Box::new(sim::SimLaser::new(&world, s).map_err(setting)?))
            }
            DriverSettings::SimState(s) => AnyDevice::State(Box::new(
                sim::SimStateDevice::new(&world, s).map_err(setting)?,
            )),
            DriverSettings::SimShutter(s) => {
                AnyDevice::Shutter(Box::new(sim::SimShutter::new(&world, s).map_err(setting)?))
            }
            DriverSettings::AsiXYStage(s) => {
                AnyDevice::XYStage(Box::new(asi::AsiXYStage::new(port()?, s).map_err(start)?))
            }
            DriverSettings::AsiStage(s) => {
                AnyDevice::Stage(Box::new(asi::AsiStage::new(port()?, s).map_err(start)?))
            }
            DriverSettings::PriorXYStage(s) => AnyDevice::XYStage(Box::new(
                prior::PriorXYStage::new(port()?, s).map_err(start)?,
            )),
            DriverSettings::PriorZ(s) => {
                AnyDevice::Stage(Box::new(prior::PriorZ::new(port()?, s).map_err(start)?))
            }
            DriverSettings::PriorFilterWheel(s) => AnyDevice::State(Box::new(
                prior::PriorFilterWheel::new(port()?, s).map_err(start)?,
            )),
            DriverSettings::Obis(s) => {
                AnyDevice::Laser(Box::new(obis::ObisLaser::new(port()?, s).map_err(start)?))
            }
            DriverSettings::Cobolt(s) => AnyDevice::Laser(Box::new(
                cobolt::CoboltLaser::new(port()?, s).map_err(start)?,
            )),
            #[cfg(feature = "genicam")]
            DriverSettings::Genicam(s) => AnyDevice::Camera(Box::new(
                microscoped_genicam::GenicamCamera::new(s).map_err(start)?,
            )),
            DriverSettings::PriorShutter(s) => AnyDevice::Shutter(Box::new(
                prior::PriorShutter::new(port()?, s).map_err(start)?,
            )),
        };
        devices.push(device);
    }
    Ok(Built { devices, emulators })
}
