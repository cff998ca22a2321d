//! The simulated XY stage and single-axis (focus) stage.

use std::time::Instant;

use microscoped_driver_api::Settings;
use microscoped_driver_api::{
    Axis, Device, DeviceError, PropertySpec, Quantity, Result, Stage, Value, XYStage,
};
use serde::Deserialize;

use crate::fault::{Fault, FAULT_PROPERTY};
use crate::motion::Motion;
use crate::props;
use crate::setting::{check_hang, check_inside, check_interval, check_range, SettingError};
use crate::world::{SimWorld, ZAxis};

/// Slowest speed accepted, um/s.
const MIN_SPEED: f64 = 0.001;
/// Fastest speed accepted, um/s.
const MAX_SPEED: f64 = 1e6;

fn speed_spec() -> PropertySpec {
    PropertySpec::float("speed_um_s", MIN_SPEED, MAX_SPEED)
        .unit("um/s")
        .describe("Speed of the next moves; a move in progress keeps its speed")
}

fn check_target(axis: &str, value: f64, range: [f64; 2]) -> Result<()> {
    if !value.is_finite() {
        return Err(DeviceError::invalid(format!(
            "{axis} target {value} is not a finite position"
        )));
    }
    if value < range[0] || value > range[1] {
        return Err(DeviceError::out_of_range(format!(
            "{axis} target {value} um is outside the travel [{}, {}] um",
            range[0], range[1]
        )));
    }
    Ok(())
}

/// Settings of a [`SimXYStage`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimXYStageSettings {
    /// X travel [min, max], um.
    pub x_travel_um: [f64; 2],
    /// Y travel [min, max], um.
    pub y_travel_um: [f64; 2],
    /// Speed along the path of a move, um/s.
    pub speed_um_s: f64,
    /// Home position [x, y], um; the stage starts there.
    pub home_um: [f64; 2],
    /// How long an injected hang (`sim_fault = "hang"`) blocks, ms.
    pub hang_ms: u64,
}

impl Default for SimXYStageSettings {
    fn default() -> Self {
        Self {
            x_travel_um: [-25_000.0, 25_000.0],
            y_travel_um: [-25_000.0, 25_000.0],
            speed_um_s: 5000.0,
            home_um: [0.0, 0.0],
            hang_ms: 5000,
        }
    }
}

impl Settings for SimXYStageSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        check_interval("x_travel_um", self.x_travel_um)?;
        check_interval("y_travel_um", self.y_travel_um)?;
        check_range("speed_um_s", self.speed_um_s, MIN_SPEED, MAX_SPEED)?;
        check_inside("home_um", self.home_um[0], "x_travel_um", self.x_travel_um)?;
        check_inside("home_um", self.home_um[1], "y_travel_um", self.y_travel_um)?;
        check_hang(self.hang_ms)
    }
}

/// A simulated motorised XY stage. Moves go in a straight line at `speed_um_s` and take real
/// time; the first XY stage built in a world carries the sample the camera looks at.
#[derive(Debug)]
pub struct SimXYStage {
    world: SimWorld,
    id: usize,
    settings: SimXYStageSettings,
    fault: Fault,
}

impl SimXYStage {
    /// An XY stage in `world`, at home, after validating `settings`.
    pub fn new(
        world: &SimWorld,
        settings: SimXYStageSettings,
    ) -> std::result::Result<SimXYStage, SettingError> {
        settings.validate()?;
        let id = {
            let mut w = world.lock();
            w.xy.push(Motion::at_rest(settings.home_um));
            w.xy.len() - 1
        };
        Ok(SimXYStage {
            world: world.clone(),
            id,
            fault: Fault::new(settings.hang_ms),
            settings,
        })
    }

    fn with_motion<T>(&self, f: impl FnOnce(&mut Motion<2>, Instant) -> T) -> T {
        let mut w = self.world.lock();
        f(&mut w.xy[self.id], Instant::now())
    }

    fn go(&mut self, x: f64, y: f64) -> Result<()> {
        check_target("x", x, self.settings.x_travel_um)?;
        check_target("y", y, self.settings.y_travel_um)?;
        let speed = self.settings.speed_um_s;
        self.with_motion(|m, now| m.start(now, [x, y], speed));
        Ok(())
    }
}

const XY_DEVICE: &str = "XY stage";

impl Device for SimXYStage {
    fn properties(&self) -> Vec<PropertySpec> {
        let [x0, x1] = self.settings.x_travel_um;
        let [y0, y1] = self.settings.y_travel_um;
        vec![
            speed_spec(),
            PropertySpec::float("position_x_um", x0, x1)
                .quantity(Quantity::Position(Axis::X))
                .read_only()
                .describe("Current X position"),
            PropertySpec::float("position_y_um", y0, y1)
                .quantity(Quantity::Position(Axis::Y))
                .read_only()
                .describe("Current Y position"),
            self.fault.spec(),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.fault.check_unless(name)?;
        Ok(match name {
            "speed_um_s" => Value::Float(self.settings.speed_um_s),
            "position_x_um" => Value::Float(self.with_motion(|m, now| m.position(now))[0]),
            "position_y_um" => Value::Float(self.with_motion(|m, now| m.position(now))[1]),
            FAULT_PROPERTY => self.fault.get(),
            _ => return Err(props::unknown(&self.properties(), name, XY_DEVICE)),
        })
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        if name == FAULT_PROPERTY {
            return self.fault.set(value);
        }
        self.fault.check()?;
        let value = props::check_write(&self.properties(), name, value, XY_DEVICE)?;
        match name {
            "speed_um_s" => {
                self.settings.speed_um_s = props::float(name, &value)?;
                Ok(())
            }
            _ => Err(props::unknown(&self.properties(), name, XY_DEVICE)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.fault.check()
    }

    fn make_safe(&mut self) -> Result<()> {
        // A safety action is attempted whatever fault is armed: it must not be the call
        // that an injected fault swallows.
        self.with_motion(|m, now| m.stop(now));
        Ok(())
    }
}

impl XYStage for SimXYStage {
    fn position_um(&mut self) -> Result<(f64, f64)> {
        self.fault.check()?;
        let [x, y] = self.with_motion(|m, now| m.position(now));
        Ok((x, y))
    }

    fn move_absolute_um(&mut self, x: f64, y: f64) -> Result<()> {
        self.fault.check()?;
        self.go(x, y)
    }

    fn is_busy(&mut self) -> Result<bool> {
        self.fault.check()?;
        Ok(self.with_motion(|m, now| m.is_busy(now)))
    }

    fn stop(&mut self) -> Result<()> {
        self.fault.check()?;
        self.with_motion(|m, now| m.stop(now));
        Ok(())
    }

    fn home(&mut self) -> Result<()> {
        self.fault.check()?;
        let [x, y] = self.settings.home_um;
        self.go(x, y)
    }

    fn travel_um(&mut self) -> Result<((f64, f64), (f64, f64))> {
        self.fault.check()?;
        let [x0, x1] = self.settings.x_travel_um;
        let [y0, y1] = self.settings.y_travel_um;
        Ok(((x0, x1), (y0, y1)))
    }
}

/// Settings of a [`SimStage`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimStageSettings {
    /// Travel [min, max], um.
    pub travel_um: [f64; 2],
    /// Speed, um/s.
    pub speed_um_s: f64,
    /// Home position, um; the stage starts there.
    pub home_um: f64,
    /// Position at which the beads are in focus, um (inside `travel_um`); used when this stage is
    /// the world's focus axis.
    pub focus_z_um: f64,
    /// How long an injected hang (`sim_fault = "hang"`) blocks, ms.
    pub hang_ms: u64,
}

impl Default for SimStageSettings {
    fn default() -> Self {
        Self {
            travel_um: [0.0, 200.0],
            speed_um_s: 500.0,
            home_um: 0.0,
            focus_z_um: 100.0,
            hang_ms: 5000,
        }
    }
}

impl Settings for SimStageSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        check_interval("travel_um", self.travel_um)?;
        check_range("speed_um_s", self.speed_um_s, MIN_SPEED, MAX_SPEED)?;
        check_inside("home_um", self.home_um, "travel_um", self.travel_um)?;
        check_inside("focus_z_um", self.focus_z_um, "travel_um", self.travel_um)?;
        check_hang(self.hang_ms)
    }
}

/// A simulated single-axis stage. The first one built in a world is its focus (Z) axis: the
/// beads blur as it moves away from `focus_z_um`. Later ones move but do not affect the image.
#[derive(Debug)]
pub struct SimStage {
    world: SimWorld,
    id: usize,
    settings: SimStageSettings,
    fault: Fault,
}

impl SimStage {
    /// A stage in `world`, at home, after validating `settings`.
    pub fn new(
        world: &SimWorld,
        settings: SimStageSettings,
    ) -> std::result::Result<SimStage, SettingError> {
        settings.validate()?;
        let id = {
            let mut w = world.lock();
            w.z.push(ZAxis {
                motion: Motion::at_rest([settings.home_um]),
                focus_z_um: settings.focus_z_um,
            });
            w.z.len() - 1
        };
        Ok(SimStage {
            world: world.clone(),
            id,
            fault: Fault::new(settings.hang_ms),
            settings,
        })
    }

    fn with_motion<T>(&self, f: impl FnOnce(&mut Motion<1>, Instant) -> T) -> T {
        let mut w = self.world.lock();
        f(&mut w.z[self.id].motion, Instant::now())
    }

    fn go(&mut self, position: f64) -> Result<()> {
        check_target("Z", position, self.settings.travel_um)?;
        let speed = self.settings.speed_um_s;
        self.with_motion(|m, now| m.start(now, [position], speed));
        Ok(())
    }
}

const Z_DEVICE: &str = "stage";

impl Device for SimStage {
    fn properties(&self) -> Vec<PropertySpec> {
        let [lo, hi] = self.settings.travel_um;
        vec![
            speed_spec(),
            PropertySpec::float("position_um", lo, hi)
                .quantity(Quantity::Position(Axis::Z))
                .read_only()
                .describe("Current position"),
            self.fault.spec(),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.fault.check_unless(name)?;
        Ok(match name {
            "speed_um_s" => Value::Float(self.settings.speed_um_s),
            "position_um" => Value::Float(self.with_motion(|m, now| m.position(now))[0]),
            FAULT_PROPERTY => self.fault.get(),
            _ => return Err(props::unknown(&self.properties(), name, Z_DEVICE)),
        })
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        if name == FAULT_PROPERTY {
            return self.fault.set(value);
        }
        self.fault.check()?;
        let value = props::check_write(&self.properties(), name, value, Z_DEVICE)?;
        match name {
            "speed_um_s" => {
                self.settings.speed_um_s = props::float(name, &value)?;
                Ok(())
            }
            _ => Err(props::unknown(&self.properties(), name, Z_DEVICE)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.fault.check()
    }

    fn make_safe(&mut self) -> Result<()> {
        // A safety action is attempted whatever fault is armed: it must not be the call
        // that an injected fault swallows.
        self.with_motion(|m, now| m.stop(now));
        Ok(())
    }
}

impl Stage for SimStage {
    fn position_um(&mut self) -> Result<f64> {
        self.fault.check()?;
        Ok(self.with_motion(|m, now| m.position(now))[0])
    }

    fn move_absolute_um(&mut self, position: f64) -> Result<()> {
        self.fault.check()?;
        self.go(position)
    }

    fn is_busy(&mut self) -> Result<bool> {
        self.fault.check()?;
        Ok(self.with_motion(|m, now| m.is_busy(now)))
    }

    fn stop(&mut self) -> Result<()> {
        self.fault.check()?;
        self.with_motion(|m, now| m.stop(now));
        Ok(())
    }

    fn home(&mut self) -> Result<()> {
        self.fault.check()?;
        self.go(self.settings.home_um)
    }

    fn travel_um(&mut self) -> Result<(f64, f64)> {
        self.fault.check()?;
        Ok((self.settings.travel_um[0], self.settings.travel_um[1]))
    }
}
