//! The simulated laser.

use microscoped_driver_api::Settings;
use microscoped_driver_api::{Device, Laser, PropertySpec, Quantity, Result, Value};
use serde::Deserialize;

use crate::fault::{Fault, FAULT_PROPERTY};
use crate::props;
use crate::setting::{check_hang, check_positive, check_range, SettingError};
use crate::world::{LaserState, SimWorld};

/// Highest `max_power_mw` accepted: beyond this a setting is surely a unit mistake.
const MAX_POWER_LIMIT_MW: f64 = 100_000.0;

/// Settings of a [`SimLaser`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimLaserSettings {
    /// Emission wavelength, nm (200..=2000).
    pub wavelength_nm: f64,
    /// Highest power setpoint, mW.
    pub max_power_mw: f64,
    /// Initial power setpoint, mW (0..=max_power_mw). Emission starts off.
    pub power_mw: f64,
    /// How long an injected hang (`sim_fault = "hang"`) blocks, ms.
    pub hang_ms: u64,
    /// Test hook: a second property that sets the power, named so, as a driver that names its
    /// power property differently would have (the facility cap must hold for it too).
    pub power_alias: Option<String>,
}

impl Default for SimLaserSettings {
    fn default() -> Self {
        Self {
            wavelength_nm: 488.0,
            max_power_mw: 100.0,
            power_mw: 10.0,
            hang_ms: 5000,
            power_alias: None,
        }
    }
}

impl Settings for SimLaserSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        check_range("wavelength_nm", self.wavelength_nm, 200.0, 2000.0)?;
        check_positive("max_power_mw", self.max_power_mw, MAX_POWER_LIMIT_MW)?;
        check_range("power_mw", self.power_mw, 0.0, self.max_power_mw)?;
        if let Some(alias) = &self.power_alias {
            if alias.is_empty() || PROPERTIES.contains(&alias.as_str()) {
                return Err(SettingError::new(
                    "power_alias",
                    format!(
                        "must be a name the laser's other properties do not have ({}), got {alias:?}",
                        PROPERTIES.join(", ")
                    ),
                ));
            }
        }
        check_hang(self.hang_ms)
    }
}

/// A simulated laser. It starts with emission off; what it emits excites the beads whose dye
/// absorbs at its wavelength. The power it reports is the setpoint exactly, or 0 when off.
#[derive(Debug)]
pub struct SimLaser {
    world: SimWorld,
    id: usize,
    settings: SimLaserSettings,
    fault: Fault,
}

impl SimLaser {
    /// A laser in `world`, off, after validating `settings`.
    pub fn new(
        world: &SimWorld,
        settings: SimLaserSettings,
    ) -> std::result::Result<SimLaser, SettingError> {
        settings.validate()?;
        let id = {
            let mut w = world.lock();
            w.lasers.push(LaserState {
                wavelength_nm: settings.wavelength_nm,
                on: false,
                power_mw: settings.power_mw,
            });
            w.lasers.len() - 1
        };
        Ok(SimLaser {
            world: world.clone(),
            id,
            fault: Fault::new(settings.hang_ms),
            settings,
        })
    }

    fn state(&self) -> LaserState {
        self.world.lock().lasers[self.id].clone()
    }

    fn update(&self, f: impl FnOnce(&mut LaserState)) {
        f(&mut self.world.lock().lasers[self.id]);
    }

    fn set_power_checked(&mut self, power: f64) -> Result<()> {
        microscoped_driver_api::check_power_mw(power, self.settings.max_power_mw)?;
        self.update(|l| l.power_mw = power);
        Ok(())
    }

    fn emitted(&self) -> f64 {
        let l = self.state();
        if l.on {
            l.power_mw
        } else {
            0.0
        }
    }

    /// True when `name` is the power setpoint's second name.
    fn is_alias(&self, name: &str) -> bool {
        self.settings.power_alias.as_deref() == Some(name)
    }
}

const DEVICE: &str = "laser";

/// The names of the laser's own properties, which `power_alias` may not take.
const PROPERTIES: [&str; 6] = [
    "on",
    "power_setpoint_mw",
    "power_mw",
    "max_power_mw",
    "wavelength_nm",
    FAULT_PROPERTY,
];

impl Device for SimLaser {
    fn properties(&self) -> Vec<PropertySpec> {
        let max = self.settings.max_power_mw;
        let nm = self.settings.wavelength_nm;
        let mut specs = vec![
            PropertySpec::bool("on").describe("Whether emission is on"),
            PropertySpec::float("power_setpoint_mw", 0.0, max)
                .quantity(Quantity::LaserPower)
                .describe("Power the laser emits when on"),
            PropertySpec::float("power_mw", 0.0, max)
                .unit("mW")
                .read_only()
                .describe("Power the laser reports emitting now (0 when off)"),
            PropertySpec::float("max_power_mw", max, max)
                .quantity(Quantity::MaxLaserPower)
                .read_only()
                .describe("Highest power setpoint"),
            PropertySpec::float("wavelength_nm", nm, nm)
                .unit("nm")
                .read_only()
                .describe("Emission wavelength"),
            self.fault.spec(),
        ];
        if let Some(alias) = &self.settings.power_alias {
            specs.push(
                PropertySpec::float(alias, 0.0, max)
                    .quantity(Quantity::LaserPower)
                    .describe("The power setpoint under a second name (power_alias, a test hook)"),
            );
        }
        specs
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.fault.check_unless(name)?;
        Ok(match name {
            "on" => Value::Bool(self.state().on),
            "power_setpoint_mw" => Value::Float(self.state().power_mw),
            "power_mw" => Value::Float(self.emitted()),
            "max_power_mw" => Value::Float(self.settings.max_power_mw),
            "wavelength_nm" => Value::Float(self.settings.wavelength_nm),
            FAULT_PROPERTY => self.fault.get(),
            _ if self.is_alias(name) => Value::Float(self.state().power_mw),
            _ => return Err(props::unknown(&self.properties(), name, DEVICE)),
        })
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        if name == FAULT_PROPERTY {
            return self.fault.set(value);
        }
        self.fault.check()?;
        let value = props::check_write(&self.properties(), name, value, DEVICE)?;
        match name {
            "on" => {
                let on = props::boolean(name, &value)?;
                self.update(|l| l.on = on);
                Ok(())
            }
            "power_setpoint_mw" => self.set_power_checked(props::float(name, &value)?),
            _ if self.is_alias(name) => self.set_power_checked(props::float(name, &value)?),
            _ => Err(props::unknown(&self.properties(), name, DEVICE)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.fault.check()
    }

    fn make_safe(&mut self) -> Result<()> {
        // A safety action is attempted whatever fault is armed: it must not be the call
        // that an injected fault swallows.
        self.update(|l| l.on = false);
        Ok(())
    }
}

impl Laser for SimLaser {
    fn wavelength_nm(&mut self) -> Result<f64> {
        self.fault.check()?;
        Ok(self.settings.wavelength_nm)
    }

    fn is_on(&mut self) -> Result<bool> {
        self.fault.check()?;
        Ok(self.state().on)
    }

    fn set_on(&mut self, on: bool) -> Result<()> {
        self.fault.check()?;
        self.update(|l| l.on = on);
        Ok(())
    }

    fn power_setpoint_mw(&mut self) -> Result<f64> {
        self.fault.check()?;
        Ok(self.state().power_mw)
    }

    fn set_power_mw(&mut self, power: f64) -> Result<()> {
        self.fault.check()?;
        self.set_power_checked(power)
    }

    fn power_mw(&mut self) -> Result<f64> {
        self.fault.check()?;
        Ok(self.emitted())
    }

    fn max_power_mw(&mut self) -> Result<f64> {
        self.fault.check()?;
        Ok(self.settings.max_power_mw)
    }
}
