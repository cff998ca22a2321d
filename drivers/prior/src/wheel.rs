//! ProScan filter wheels and shutters.

use microscoped_driver_api::Settings;
use microscoped_driver_api::{
    Device, DeviceError, PropertySpec, Result, Shutter, StateDevice, Value,
};
use microscoped_serial::Port;
use serde::Deserialize;

use crate::props::{self, SettingError};
use crate::protocol::{wheel_status_bit, Controller};

/// Settings of a [`PriorFilterWheel`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorFilterWheelSettings {
    /// Which wheel on the controller, 1 to 3.
    pub wheel: u8,
    /// One label per wheel position, unique and non-empty; as many as the wheel has
    /// positions (the controller's `FPW` count, checked at start).
    pub labels: Vec<String>,
}

impl Default for PriorFilterWheelSettings {
    fn default() -> Self {
        Self {
            wheel: 1,
            labels: (1..=10).map(|i| format!("Filter-{i}")).collect(),
        }
    }
}

impl Settings for PriorFilterWheelSettings {
    fn labels(&self) -> Option<&[String]> {
        Some(&self.labels)
    }

    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        props::check_number("wheel", self.wheel, 3)?;
        props::check_labels(&self.labels)
    }
}

const WHEEL: &str = "filter wheel";

/// A filter wheel on a ProScan III: `7,w,p` to move (positions 1-based on the wire, 0-based
/// here), `7,w,F` for the current filter, `FPW,w` for the number of positions, `$` for
/// rotation, `SMF,w` speed.
pub struct PriorFilterWheel {
    ctl: Controller,
    settings: PriorFilterWheelSettings,
}

impl PriorFilterWheel {
    /// Validates `settings`, puts the controller in standard mode, checks the wheel is fitted
    /// and that it has as many positions as there are labels.
    pub fn new(port: Port, settings: PriorFilterWheelSettings) -> Result<Self> {
        settings
            .validate()
            .map_err(|e| props::setting_error(WHEEL, e))?;
        let ctl = Controller::new(port);
        ctl.standard_mode(WHEEL)?;
        let w = settings.wheel;
        let fitted = ctl.query_int(&format!("FPW,{w}"))?;
        if fitted != settings.labels.len() as i64 {
            return Err(DeviceError::invalid(format!(
                "Prior filter wheel {w} has {fitted} positions (FPW,{w}) but {} labels are \
                 configured: give one label per position",
                settings.labels.len()
            )));
        }
        let wheel = Self { ctl, settings };
        wheel.current()?;
        Ok(wheel)
    }

    /// The current position, 0-based.
    fn current(&self) -> Result<u32> {
        let cmd = format!("7,{},F", self.settings.wheel);
        let p = self.ctl.query_int(&cmd)?;
        let n = self.settings.labels.len() as i64;
        if !(1..=n).contains(&p) {
            return Err(self.ctl.garbled(
                &cmd,
                &p.to_string(),
                &format!("a filter position 1..={n}"),
            ));
        }
        Ok((p - 1) as u32)
    }

    fn go(&mut self, position: u32) -> Result<()> {
        let n = self.settings.labels.len();
        if position as usize >= n {
            return Err(DeviceError::out_of_range(format!(
                "position {position} is out of range: allowed 0..={} ({})",
                n - 1,
                self.settings.labels.join(", ")
            )));
        }
        self.ctl
            .command_r(&format!("7,{},{}", self.settings.wheel, position + 1))
    }
}

impl Device for PriorFilterWheel {
    fn properties(&self) -> Vec<PropertySpec> {
        let mut specs = PropertySpec::state(&self.settings.labels).to_vec();
        specs.push(props::speed_spec("SMF"));
        specs
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        match name {
            "position" => Ok(Value::Int(i64::from(self.current()?))),
            "label" => {
                let p = self.current()? as usize;
                Ok(Value::String(
                    self.settings.labels.get(p).cloned().unwrap_or_default(),
                ))
            }
            "speed_percent" => Ok(Value::Int(
                self.ctl
                    .query_int(&format!("SMF,{}", self.settings.wheel))?,
            )),
            _ => Err(props::unknown(&self.properties(), name, WHEEL)),
        }
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        let value = props::check_write(&self.properties(), name, value, WHEEL)?;
        match name {
            "position" => {
                let p = props::int(name, &value)?;
                let p = u32::try_from(p).map_err(|_| {
                    DeviceError::out_of_range(format!("position {p} is out of range"))
                })?;
                self.go(p)
            }
            "label" => {
                let label = props::string(name, &value)?;
                self.go(microscoped_driver_api::position_of_label(
                    &self.settings.labels,
                    label,
                )?)
            }
            "speed_percent" => {
                let v = props::int(name, &value)?;
                self.ctl
                    .command_0(&format!("SMF,{},{v}", self.settings.wheel))
            }
            _ => Err(props::unknown(&self.properties(), name, WHEEL)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.current().map(|_| ())
    }
}

impl StateDevice for PriorFilterWheel {
    fn labels(&mut self) -> Result<Vec<String>> {
        Ok(self.settings.labels.clone())
    }

    fn position(&mut self) -> Result<u32> {
        self.current()
    }

    fn set_position(&mut self, position: u32) -> Result<()> {
        self.go(position)
    }

    fn is_busy(&mut self) -> Result<bool> {
        Ok(self.ctl.status()? & wheel_status_bit(self.settings.wheel) != 0)
    }
}

/// Settings of a [`PriorShutter`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorShutterSettings {
    /// Which shutter on the controller, 1 to 3.
    pub shutter: u8,
}

impl Default for PriorShutterSettings {
    fn default() -> Self {
        Self { shutter: 1 }
    }
}

impl Settings for PriorShutterSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        props::check_number("shutter", self.shutter, 3)
    }
}

const SHUTTER: &str = "shutter";

/// A shutter on a ProScan III: `8,s,0` opens, `8,s,1` closes (both answered `R`), `8,s`
/// reports `0` open or `1` closed.
pub struct PriorShutter {
    ctl: Controller,
    settings: PriorShutterSettings,
}

impl PriorShutter {
    /// Validates `settings`, puts the controller in standard mode and checks the shutter is
    /// fitted (a missing one answers `E,20`).
    pub fn new(port: Port, settings: PriorShutterSettings) -> Result<Self> {
        settings
            .validate()
            .map_err(|e| props::setting_error(SHUTTER, e))?;
        let ctl = Controller::new(port);
        ctl.standard_mode(SHUTTER)?;
        let mut shutter = Self { ctl, settings };
        shutter.is_open()?;
        Ok(shutter)
    }
}

impl Device for PriorShutter {
    fn properties(&self) -> Vec<PropertySpec> {
        vec![PropertySpec::bool("open").describe("Whether the shutter is open")]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        match name {
            "open" => Ok(Value::Bool(self.is_open()?)),
            _ => Err(props::unknown(&self.properties(), name, SHUTTER)),
        }
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        let value = props::check_write(&self.properties(), name, value, SHUTTER)?;
        match name {
            "open" => self.set_open(props::boolean(name, &value)?),
            _ => Err(props::unknown(&self.properties(), name, SHUTTER)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.is_open().map(|_| ())
    }

    fn make_safe(&mut self) -> Result<()> {
        self.set_open(false)
    }
}

impl Shutter for PriorShutter {
    fn is_open(&mut self) -> Result<bool> {
        let cmd = format!("8,{}", self.settings.shutter);
        match self.ctl.query(&cmd)?.as_str() {
            "0" => Ok(true),
            "1" => Ok(false),
            other => Err(self.ctl.garbled(&cmd, other, "0 (open) or 1 (closed)")),
        }
    }

    fn set_open(&mut self, open: bool) -> Result<()> {
        let state = if open { 0 } else { 1 };
        self.ctl
            .command_r(&format!("8,{},{state}", self.settings.shutter))
    }
}
