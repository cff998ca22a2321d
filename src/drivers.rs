//! Turns validated device configs into running drivers. The only place that knows which driver
//! crate makes which device.

use microscoped_driver_api::AnyDevice;
use microscoped_sim as sim;

use crate::config::{Config, DriverSettings};

/// The seed of the simulated sample, fixed so the demo shows the same beads every time.
const SIM_SEED: u64 = 42;

/// Builds every device of the config, in config order. Simulated devices share one world, so
/// the simulated camera sees what the simulated stages, lasers and filters do.
pub fn build_all(config: &Config) -> anyhow::Result<Vec<AnyDevice>> {
    let world = sim::SimWorld::new(SIM_SEED);
    config
        .devices
        .iter()
        .map(|dc| {
            let device = match dc.settings.clone() {
                DriverSettings::SimCamera(s) => {
                    AnyDevice::Camera(Box::new(sim::SimCamera::new(&world, s)?))
                }
                DriverSettings::SimXYStage(s) => {
                    AnyDevice::XYStage(Box::new(sim::SimXYStage::new(&world, s)?))
                }
                DriverSettings::SimStage(s) => {
                    AnyDevice::Stage(Box::new(sim::SimStage::new(&world, s)?))
                }
                DriverSettings::SimLaser(s) => {
                    AnyDevice::Laser(Box::new(sim::SimLaser::new(&world, s)?))
                }
                DriverSettings::SimState(s) => {
                    AnyDevice::State(Box::new(sim::SimStateDevice::new(&world, s)?))
                }
                DriverSettings::SimShutter(s) => {
                    AnyDevice::Shutter(Box::new(sim::SimShutter::new(&world, s)?))
                }
            };
            Ok(device)
        })
        .collect::<Result<_, sim::SettingError>>()
        .map_err(|e| anyhow::anyhow!("invalid setting {}: {}", e.key, e.message))
}
