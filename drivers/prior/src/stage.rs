//! The ProScan XY stage and focus (Z) drive.

use microscoped_driver_api::Settings;
use microscoped_driver_api::{
    Axis, Device, DeviceError, PropertySpec, Quantity, Result, Stage, Value, XYStage,
};
use microscoped_serial::Port;
use serde::Deserialize;

use crate::props::{self, SettingError};
use crate::protocol::{check_target, to_steps, Controller, STATUS_X, STATUS_Y, STATUS_Z};

/// Settings of a [`PriorXYStage`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorXYStageSettings {
    /// Soft X travel [min, max] in um, relative to the controller's zero. Moves outside it are
    /// refused before anything is sent.
    pub x_travel_um: [f64; 2],
    /// Soft Y travel [min, max] in um.
    pub y_travel_um: [f64; 2],
    /// Micrometres per controller position unit on X (the controller's `RES,s` resolution;
    /// 1.0 when positions are reported in microns).
    pub x_um_per_step: f64,
    /// Micrometres per controller position unit on Y.
    pub y_um_per_step: f64,
    /// Where `home` goes, [x, y] in um, inside the travel.
    pub home_um: [f64; 2],
}

impl Default for PriorXYStageSettings {
    fn default() -> Self {
        Self {
            x_travel_um: [-50_000.0, 50_000.0],
            y_travel_um: [-35_000.0, 35_000.0],
            x_um_per_step: 1.0,
            y_um_per_step: 1.0,
            home_um: [0.0, 0.0],
        }
    }
}

impl Settings for PriorXYStageSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        props::check_interval("x_travel_um", self.x_travel_um)?;
        props::check_interval("y_travel_um", self.y_travel_um)?;
        props::check_step("x_um_per_step", self.x_um_per_step)?;
        props::check_step("y_um_per_step", self.y_um_per_step)?;
        props::check_units("x_travel_um", self.x_travel_um, self.x_um_per_step)?;
        props::check_units("y_travel_um", self.y_travel_um, self.y_um_per_step)?;
        props::check_inside("home_um", self.home_um[0], self.x_travel_um)?;
        props::check_inside("home_um", self.home_um[1], self.y_travel_um)
    }
}

const XY: &str = "XY stage";

/// The XY stage of a ProScan III: `G` and `GR` moves, `PS` position, `$` for motion, `K` to
/// stop, `SMS` speed.
///
/// `stop` and `make_safe` send `K`, which the controller applies to every axis: stopping the XY
/// stage stops the focus drive too (the protocol has no per-axis stop outside its OEM axes).
pub struct PriorXYStage {
    ctl: Controller,
    settings: PriorXYStageSettings,
}

impl PriorXYStage {
    /// Validates `settings`, puts the controller in standard mode (`COMP,0`) and checks it
    /// reports a stage position (`PS`).
    pub fn new(port: Port, settings: PriorXYStageSettings) -> Result<Self> {
        settings
            .validate()
            .map_err(|e| props::setting_error(XY, e))?;
        let ctl = Controller::new(port);
        ctl.standard_mode(XY)?;
        ctl.query_ints("PS", 2)?;
        Ok(Self { ctl, settings })
    }

    /// Makes the current position the controller's XY zero (`PS,0,0`). The soft travel stays
    /// where it is in the new coordinates.
    pub fn set_origin(&mut self) -> Result<()> {
        self.ctl.command_0("PS,0,0")
    }

    fn steps(&self) -> Result<(i64, i64)> {
        let v = self.ctl.query_ints("PS", 2)?;
        Ok((v[0], v[1]))
    }
}

impl Device for PriorXYStage {
    fn properties(&self) -> Vec<PropertySpec> {
        let [x0, x1] = self.settings.x_travel_um;
        let [y0, y1] = self.settings.y_travel_um;
        vec![
            props::speed_spec("SMS"),
            PropertySpec::float("position_x_um", x0, x1)
                .quantity(Quantity::Position(Axis::X))
                .read_only()
                .describe("Current X position"),
            PropertySpec::float("position_y_um", y0, y1)
                .quantity(Quantity::Position(Axis::Y))
                .read_only()
                .describe("Current Y position"),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        match name {
            "speed_percent" => Ok(Value::Int(self.ctl.query_int("SMS")?)),
            "position_x_um" => Ok(Value::Float(self.position_um()?.0)),
            "position_y_um" => Ok(Value::Float(self.position_um()?.1)),
            _ => Err(props::unknown(&self.properties(), name, XY)),
        }
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        let value = props::check_write(&self.properties(), name, value, XY)?;
        match name {
            "speed_percent" => {
                let v = props::int(name, &value)?;
                self.ctl.command_0(&format!("SMS,{v}"))
            }
            _ => Err(props::unknown(&self.properties(), name, XY)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.ctl.status().map(|_| ())
    }

    fn make_safe(&mut self) -> Result<()> {
        self.ctl.command_r("K")
    }
}

impl XYStage for PriorXYStage {
    fn position_um(&mut self) -> Result<(f64, f64)> {
        let (x, y) = self.steps()?;
        Ok((
            x as f64 * self.settings.x_um_per_step,
            y as f64 * self.settings.y_um_per_step,
        ))
    }

    fn move_absolute_um(&mut self, x: f64, y: f64) -> Result<()> {
        check_target("X", x, self.settings.x_travel_um)?;
        check_target("Y", y, self.settings.y_travel_um)?;
        let sx = to_steps(x, self.settings.x_um_per_step);
        let sy = to_steps(y, self.settings.y_um_per_step);
        self.ctl.command_r(&format!("G,{sx},{sy}"))
    }

    fn move_relative_um(&mut self, dx: f64, dy: f64) -> Result<()> {
        if !dx.is_finite() || !dy.is_finite() {
            return Err(DeviceError::invalid(format!(
                "relative move ({dx}, {dy}) um is not a finite distance"
            )));
        }
        // The travel is checked against where the move would end, so the position is read
        // first; the move itself goes as GR so it is relative to where the stage really is.
        let (x, y) = self.position_um()?;
        check_target("X", x + dx, self.settings.x_travel_um)?;
        check_target("Y", y + dy, self.settings.y_travel_um)?;
        let sx = to_steps(dx, self.settings.x_um_per_step);
        let sy = to_steps(dy, self.settings.y_um_per_step);
        self.ctl.command_r(&format!("GR,{sx},{sy}"))
    }

    fn is_busy(&mut self) -> Result<bool> {
        Ok(self.ctl.status()? & (STATUS_X | STATUS_Y) != 0)
    }

    fn stop(&mut self) -> Result<()> {
        self.ctl.command_r("K")
    }

    fn home(&mut self) -> Result<()> {
        // Home is the configured reference position, reached with an ordinary move. The
        // controller's own SIS drives to the hardware limits and re-zeroes the coordinates,
        // which would silently shift the soft travel; it is deliberately not used.
        let [x, y] = self.settings.home_um;
        self.move_absolute_um(x, y)
    }

    fn travel_um(&mut self) -> Result<((f64, f64), (f64, f64))> {
        let [x0, x1] = self.settings.x_travel_um;
        let [y0, y1] = self.settings.y_travel_um;
        Ok(((x0, x1), (y0, y1)))
    }
}

/// Settings of a [`PriorZ`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorZSettings {
    /// Soft travel [min, max] in um, relative to the controller's Z zero.
    pub travel_um: [f64; 2],
    /// Micrometres per controller Z unit (the focus resolution; 1.0 when Z is in microns).
    pub um_per_step: f64,
    /// Where `home` goes, um, inside the travel.
    pub home_um: f64,
}

impl Default for PriorZSettings {
    fn default() -> Self {
        Self {
            travel_um: [-10_000.0, 10_000.0],
            um_per_step: 1.0,
            home_um: 0.0,
        }
    }
}

impl Settings for PriorZSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        props::check_interval("travel_um", self.travel_um)?;
        props::check_step("um_per_step", self.um_per_step)?;
        props::check_units("travel_um", self.travel_um, self.um_per_step)?;
        props::check_inside("home_um", self.home_um, self.travel_um)
    }
}

const Z: &str = "focus drive";

/// The focus (Z) drive of a ProScan III: `V` absolute and `U`/`D` relative moves, `PZ`
/// position, `$` for motion, `K` to stop (all axes, as for the XY stage), `SMZ` speed.
pub struct PriorZ {
    ctl: Controller,
    settings: PriorZSettings,
}

impl PriorZ {
    /// Validates `settings`, puts the controller in standard mode (`COMP,0`) and checks it
    /// reports a focus position (`PZ`; a controller without focus drive answers `E,7`).
    pub fn new(port: Port, settings: PriorZSettings) -> Result<Self> {
        settings
            .validate()
            .map_err(|e| props::setting_error(Z, e))?;
        let ctl = Controller::new(port);
        ctl.standard_mode(Z)?;
        ctl.query_int("PZ")?;
        Ok(Self { ctl, settings })
    }

    /// Makes the current position the controller's Z zero (`PZ,0`).
    pub fn set_origin(&mut self) -> Result<()> {
        self.ctl.command_0("PZ,0")
    }
}

impl Device for PriorZ {
    fn properties(&self) -> Vec<PropertySpec> {
        let [lo, hi] = self.settings.travel_um;
        vec![
            props::speed_spec("SMZ"),
            PropertySpec::float("position_um", lo, hi)
                .quantity(Quantity::Position(Axis::Z))
                .read_only()
                .describe("Current focus position"),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        match name {
            "speed_percent" => Ok(Value::Int(self.ctl.query_int("SMZ")?)),
            "position_um" => Ok(Value::Float(self.position_um()?)),
            _ => Err(props::unknown(&self.properties(), name, Z)),
        }
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        let value = props::check_write(&self.properties(), name, value, Z)?;
        match name {
            "speed_percent" => {
                let v = props::int(name, &value)?;
                self.ctl.command_0(&format!("SMZ,{v}"))
            }
            _ => Err(props::unknown(&self.properties(), name, Z)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.ctl.status().map(|_| ())
    }

    fn make_safe(&mut self) -> Result<()> {
        self.ctl.command_r("K")
    }
}

impl Stage for PriorZ {
    fn position_um(&mut self) -> Result<f64> {
        Ok(self.ctl.query_int("PZ")? as f64 * self.settings.um_per_step)
    }

    fn move_absolute_um(&mut self, position: f64) -> Result<()> {
        check_target("Z", position, self.settings.travel_um)?;
        let steps = to_steps(position, self.settings.um_per_step);
        self.ctl.command_r(&format!("V,{steps}"))
    }

    fn move_relative_um(&mut self, distance: f64) -> Result<()> {
        if !distance.is_finite() {
            return Err(DeviceError::invalid(format!(
                "relative move {distance} um is not a finite distance"
            )));
        }
        let here = self.position_um()?;
        check_target("Z", here + distance, self.settings.travel_um)?;
        let steps = to_steps(distance, self.settings.um_per_step);
        // U moves up (positive), D down, each by a non-negative count.
        if steps >= 0 {
            self.ctl.command_r(&format!("U,{steps}"))
        } else {
            self.ctl.command_r(&format!("D,{}", -steps))
        }
    }

    fn is_busy(&mut self) -> Result<bool> {
        Ok(self.ctl.status()? & STATUS_Z != 0)
    }

    fn stop(&mut self) -> Result<()> {
        self.ctl.command_r("K")
    }

    fn home(&mut self) -> Result<()> {
        self.move_absolute_um(self.settings.home_um)
    }

    fn travel_um(&mut self) -> Result<(f64, f64)> {
        Ok((self.settings.travel_um[0], self.settings.travel_um[1]))
    }
}
