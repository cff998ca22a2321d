//! Driver for Cobolt lasers with the 06-01 series serial command set (06-MLD, 06-DPL and
//! relatives).
//!
//! Commands are short lower-case words ending with `\r`: `l1`/`l0` switch emission, `p <W>` sets
//! the power in watts, queries end with `?`. Every command is answered with `OK`, every query with
//! its value, and an unknown command with `Syntax error: illegal command`. Cobolt's manual says
//! replies end with `\r`; QMI's driver notes the lasers send `\r\n`. The driver reads up to `\r`
//! and trims, which works for both (see [`port_settings`]).
//!
//! Powers cross the wire in watts (`p`, `p?`, `pa?`); the maximum (`gmlp?`) is in milliwatts.
//! Before switching emission on the driver asks `ilk?` (interlock) and `f?` (fault), so a laser
//! that cannot emit says why instead of staying dark.
//!
//! The laser has no wavelength query: the driver reads it from the model number (`glm?`, e.g.
//! `0488-06-01-0060-100`) or takes [`CoboltSettings::wavelength_nm`].
//!
//! [`emulator`] runs a stateful Cobolt on a pseudo-terminal, for tests and instrument-free demos.

#![warn(missing_docs)]

pub mod emulator;
mod props;
mod protocol;

use std::path::PathBuf;

use microscoped_driver_api::{
    Device, DeviceError, ErrorKind, Laser, PropertySpec, Quantity, Result, Value,
};
use microscoped_driver_api::{SettingError, Settings};
use microscoped_serial::{Port, PortSettings};
use serde::Deserialize;

/// Highest software power cap accepted, mW: beyond this a setting is surely a unit mistake.
const MAX_POWER_LIMIT_MW: f64 = 100_000.0;
/// How far the model number's wavelength may be from `wavelength_nm`, nm.
const WAVELENGTH_TOLERANCE_NM: f64 = 5.0;

/// Serial settings for a Cobolt on `path`: 115200 baud 8N1, commands end with `\r`, replies are
/// read up to `\r` (a `\n` behind it is trimmed or discarded).
pub fn port_settings(path: impl Into<PathBuf>) -> PortSettings {
    PortSettings {
        path: path.into(),
        baud: 115_200,
        write_terminator: "\r".into(),
        read_terminator: "\r".into(),
        ..PortSettings::default()
    }
}

/// What the driver does to emission when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtConnect {
    /// Switch emission off: the daemon starts from a known, safe state.
    Off,
    /// Leave emission as it is, for reconnecting to a laser in use.
    Leave,
}

/// The run modes (`gam?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Constant current (`ecc`).
    ConstantCurrent,
    /// Constant power (`ecp`).
    ConstantPower,
    /// Modulation (`em`), digital or analog as the laser is set up.
    Modulation,
}

impl RunMode {
    /// Every mode, in the order a user interface shows them.
    pub const ALL: [RunMode; 3] = [Self::ConstantCurrent, Self::ConstantPower, Self::Modulation];

    /// The name the property shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConstantCurrent => "constant_current",
            Self::ConstantPower => "constant_power",
            Self::Modulation => "modulation",
        }
    }

    /// The mode a property name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name.trim())
    }

    /// The mode `gam?` reports as `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::ConstantCurrent),
            1 => Some(Self::ConstantPower),
            2 => Some(Self::Modulation),
            _ => None,
        }
    }

    /// The command entering this mode.
    fn command(self) -> &'static str {
        match self {
            Self::ConstantCurrent => "ecc",
            Self::ConstantPower => "ecp",
            Self::Modulation => "em",
        }
    }
}

/// Settings of a [`CoboltLaser`], from the device's config table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoboltSettings {
    /// Software cap on the power setpoint, mW. The lower of this and the laser's own maximum
    /// (`gmlp?`) applies. Unset: the laser's maximum.
    pub max_power_mw: Option<f64>,
    /// Power setpoint applied at connect, mW. Unset: the laser keeps its own.
    pub power_mw: Option<f64>,
    /// Run mode applied at connect. Unset: the laser keeps its own.
    pub mode: Option<RunMode>,
    /// What to do to emission at connect.
    pub at_connect: AtConnect,
    /// The emission wavelength, nm. Unset: read from the model number. Set: checked against the
    /// model number when the laser reports one, so a swapped port fails at connect.
    pub wavelength_nm: Option<f64>,
    /// Sets the laser's (persistent) autostart at connect (`@cobas 0|1`). Unset: left alone.
    /// With autostart on, the laser runs its warm-up sequence at power-up and key turn.
    pub autostart: Option<bool>,
}

impl Default for CoboltSettings {
    fn default() -> Self {
        Self {
            max_power_mw: None,
            power_mw: None,
            mode: None,
            at_connect: AtConnect::Off,
            wavelength_nm: None,
            autostart: None,
        }
    }
}

impl Settings for CoboltSettings {
    /// Checks the settings; the error names the offending key.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        if let Some(max) = self.max_power_mw {
            if !(max.is_finite() && max > 0.0 && max <= MAX_POWER_LIMIT_MW) {
                return Err(SettingError::new(
                    "max_power_mw",
                    format!("must be above 0 and at most {MAX_POWER_LIMIT_MW}, got {max}"),
                ));
            }
        }
        if let Some(p) = self.power_mw {
            let max = self.max_power_mw.unwrap_or(MAX_POWER_LIMIT_MW);
            if !(p.is_finite() && p >= 0.0 && p <= max) {
                return Err(SettingError::new(
                    "power_mw",
                    format!("must be within 0..={max}, got {p}"),
                ));
            }
        }
        if let Some(nm) = self.wavelength_nm {
            if !(nm.is_finite() && (200.0..=2000.0).contains(&nm)) {
                return Err(SettingError::new(
                    "wavelength_nm",
                    format!("must be within 200..=2000, got {nm}"),
                ));
            }
        }
        Ok(())
    }
}

/// A Cobolt laser on a serial port.
pub struct CoboltLaser {
    port: Port,
    settings: CoboltSettings,
    /// What `gsn?` answered at connect.
    serial_number: String,
    /// What `glm?` answered at connect, if the laser knows the command.
    model: Option<String>,
    /// The laser's own maximum, mW.
    laser_max_mw: f64,
    /// Emission wavelength, nm.
    wavelength_nm: f64,
}

impl std::fmt::Debug for CoboltLaser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoboltLaser")
            .field("port", &self.port.path())
            .field("serial_number", &self.serial_number)
            .field("model", &self.model)
            .field("laser_max_mw", &self.laser_max_mw)
            .field("wavelength_nm", &self.wavelength_nm)
            .finish()
    }
}

impl CoboltLaser {
    /// Connects to the laser on `port` (opened with settings like [`port_settings`]): checks
    /// `settings`, reads serial number, maximum power and model, then applies what `settings`
    /// asks for at connect.
    pub fn new(port: Port, settings: CoboltSettings) -> Result<Self> {
        settings.validate().map_err(|e| {
            DeviceError::invalid(format!("Cobolt setting {}: {}", e.key, e.message))
        })?;
        let mut laser = Self {
            port,
            settings,
            serial_number: String::new(),
            model: None,
            laser_max_mw: 0.0,
            wavelength_nm: 0.0,
        };
        laser.connect()?;
        Ok(laser)
    }

    fn connect(&mut self) -> Result<()> {
        self.serial_number = self.query("gsn?")?;

        self.laser_max_mw = match self.query("gmlp?") {
            Ok(reply) => protocol::number("gmlp?", &reply)?,
            // Some firmware lacks the query; a configured cap then stands in for it.
            Err(e) if e.kind == ErrorKind::Protocol && self.settings.max_power_mw.is_some() => {
                self.settings.max_power_mw.unwrap_or_default()
            }
            Err(e) => return Err(e),
        };
        if self.laser_max_mw <= 0.0 {
            return Err(protocol::garbled(
                "gmlp?",
                &self.laser_max_mw.to_string(),
                "a positive power",
            ));
        }

        self.model = match self.query("glm?") {
            Ok(model) => Some(model),
            Err(e) if e.kind == ErrorKind::Protocol => None,
            Err(e) => return Err(e),
        };
        let from_model = self
            .model
            .as_deref()
            .and_then(protocol::wavelength_from_model);
        self.wavelength_nm = match (self.settings.wavelength_nm, from_model) {
            (Some(set), Some(read)) if (set - read).abs() > WAVELENGTH_TOLERANCE_NM => {
                return Err(DeviceError::invalid(format!(
                    "the laser on {} is a {read} nm model ({}) but wavelength_nm is {set}: wrong port?",
                    self.port.path(),
                    self.model.as_deref().unwrap_or_default()
                )));
            }
            (Some(set), _) => set,
            (None, Some(read)) => read,
            (None, None) => {
                return Err(DeviceError::not_found(format!(
                    "the laser on {} reports no wavelength in its model number ({:?}): set wavelength_nm",
                    self.port.path(),
                    self.model
                )));
            }
        };

        if let Some(p) = self.settings.power_mw {
            // Checked now, before anything changes, so a bad setting leaves the laser untouched.
            self.check_power(p)?;
        }
        if let Some(on) = self.settings.autostart {
            self.command(if on { "@cobas 1" } else { "@cobas 0" })?;
        }
        if self.settings.at_connect == AtConnect::Off {
            self.command("l0")?;
        }
        if let Some(mode) = self.settings.mode {
            self.command(mode.command())?;
        }
        if let Some(p) = self.settings.power_mw {
            self.set_power_mw(p)?;
        }
        Ok(())
    }

    /// What the laser answered to `gsn?` at connect.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }

    /// Clears a latched fault (`cf`). The cause (an open interlock, say) must be gone first.
    pub fn clear_fault(&mut self) -> Result<()> {
        self.command("cf")
    }

    /// Sends a query and returns its value, or the error the laser answered.
    fn query(&self, command: &str) -> Result<String> {
        let mut reply = self.port.query(command)?;
        if reply.trim().is_empty() {
            // An empty line is the tail of an earlier reply's `\r\n` arriving late (the
            // python-microscope driver sees such empty answers too): the value follows it.
            reply = self.port.query(command)?;
        }
        let reply = reply.trim();
        if let Some(e) = protocol::device_error(command, reply) {
            return Err(e);
        }
        if reply.is_empty() || reply == "OK" {
            return Err(protocol::garbled(command, reply, "a value"));
        }
        Ok(reply.to_owned())
    }

    /// Sends a command and expects `OK`.
    fn command(&self, command: &str) -> Result<()> {
        let reply = self.port.query(command)?;
        let reply = reply.trim();
        if reply == "OK" {
            return Ok(());
        }
        Err(protocol::device_error(command, reply)
            .unwrap_or_else(|| protocol::garbled(command, reply, "OK")))
    }

    /// The highest setpoint allowed: the laser's maximum or the software cap, the lower.
    fn effective_max_mw(&self) -> f64 {
        match self.settings.max_power_mw {
            Some(cap) => cap.min(self.laser_max_mw),
            None => self.laser_max_mw,
        }
    }

    fn check_power(&self, power: f64) -> Result<()> {
        microscoped_driver_api::check_power_mw(power, self.effective_max_mw())
    }

    /// True when the interlock is open (emission impossible).
    fn interlock_open(&self) -> Result<bool> {
        protocol::flag("ilk?", &self.query("ilk?")?)
    }

    fn fault(&self) -> Result<u8> {
        protocol::code("f?", &self.query("f?")?)
    }

    fn mode(&self) -> Result<RunMode> {
        let reply = self.query("gam?")?;
        protocol::code("gam?", &reply)
            .ok()
            .and_then(RunMode::from_code)
            .ok_or_else(|| protocol::garbled("gam?", &reply, "0, 1 or 2"))
    }

    fn watts(&self, command: &str) -> Result<f64> {
        Ok(protocol::number(command, &self.query(command)?)? * 1000.0)
    }
}

const PROP_MODE: &str = "mode";
const PROP_INTERLOCK: &str = "interlock";
const PROP_FAULT: &str = "fault";
const PROP_CLEAR_FAULT: &str = "clear_fault";
const PROP_STATE: &str = "operating_state";
const PROP_SERIAL: &str = "serial_number";
const PROP_MODEL: &str = "model";

impl Device for CoboltLaser {
    fn properties(&self) -> Vec<PropertySpec> {
        let max = self.effective_max_mw();
        let nm = self.wavelength_nm;
        let modes: Vec<&str> = RunMode::ALL.iter().map(|m| m.as_str()).collect();
        vec![
            PropertySpec::bool("on").describe("Whether emission is on"),
            PropertySpec::float("power_setpoint_mw", 0.0, max)
                .quantity(Quantity::LaserPower)
                .describe("Power the laser emits when on (constant power mode)"),
            PropertySpec::float("power_mw", 0.0, max)
                .unit("mW")
                .read_only()
                .describe("Power the laser reports emitting now (0 when off)"),
            PropertySpec::float("max_power_mw", max, max)
                .quantity(Quantity::MaxLaserPower)
                .read_only()
                .describe("Highest power setpoint: the laser's maximum or the software cap"),
            PropertySpec::float("wavelength_nm", nm, nm)
                .unit("nm")
                .read_only()
                .describe("Emission wavelength"),
            PropertySpec::enumeration(PROP_MODE, &modes)
                .describe("Run mode: constant current, constant power or modulation"),
            PropertySpec::enumeration(PROP_INTERLOCK, &["closed", "open"])
                .read_only()
                .describe("Interlock state; open prevents emission"),
            PropertySpec::string(PROP_FAULT)
                .read_only()
                .describe("Latched fault (f?), or none"),
            PropertySpec::bool(PROP_CLEAR_FAULT)
                .describe("Write true to clear a latched fault (cf); reads false"),
            PropertySpec::string(PROP_STATE)
                .read_only()
                .describe("Operating state (gom?): off, waiting for key, continuous, fault..."),
            PropertySpec::string(PROP_SERIAL)
                .read_only()
                .describe("Serial number"),
            PropertySpec::string(PROP_MODEL)
                .read_only()
                .describe("Model number"),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        Ok(match name {
            "on" => Value::Bool(self.is_on()?),
            "power_setpoint_mw" => Value::Float(self.power_setpoint_mw()?),
            "power_mw" => Value::Float(self.power_mw()?),
            "max_power_mw" => Value::Float(self.effective_max_mw()),
            "wavelength_nm" => Value::Float(self.wavelength_nm),
            PROP_MODE => Value::String(self.mode()?.as_str().into()),
            PROP_INTERLOCK => Value::String(
                if self.interlock_open()? {
                    "open"
                } else {
                    "closed"
                }
                .into(),
            ),
            PROP_FAULT => Value::String(protocol::fault_name(self.fault()?)),
            PROP_CLEAR_FAULT => Value::Bool(false),
            PROP_STATE => {
                let reply = self.query("gom?")?;
                Value::String(protocol::state_name(protocol::code("gom?", &reply)?))
            }
            PROP_SERIAL => Value::String(self.serial_number.clone()),
            PROP_MODEL => Value::String(self.model.clone().unwrap_or_else(|| "unknown".into())),
            _ => return Err(props::unknown(&self.properties(), name)),
        })
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        let value = props::check_write(&self.properties(), name, value)?;
        match name {
            "on" => self.set_on(props::boolean(name, &value)?),
            "power_setpoint_mw" => self.set_power_mw(props::float(name, &value)?),
            PROP_MODE => {
                let s = props::string(name, &value)?;
                let mode = RunMode::parse(s)
                    .ok_or_else(|| DeviceError::invalid(format!("{s:?} is no Cobolt run mode")))?;
                self.command(mode.command())
            }
            PROP_CLEAR_FAULT => {
                if props::boolean(name, &value)? {
                    self.clear_fault()
                } else {
                    Ok(())
                }
            }
            _ => Err(props::unknown(&self.properties(), name)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.query("l?").map(|_| ())
    }

    fn make_safe(&mut self) -> Result<()> {
        self.command("l0")
    }
}

impl Laser for CoboltLaser {
    fn wavelength_nm(&mut self) -> Result<f64> {
        Ok(self.wavelength_nm)
    }

    fn is_on(&mut self) -> Result<bool> {
        protocol::flag("l?", &self.query("l?")?)
    }

    fn set_on(&mut self, on: bool) -> Result<()> {
        if on {
            // The laser would accept `l1` and stay dark (or latch a fault); say why instead.
            if self.interlock_open()? {
                return Err(DeviceError::hardware(
                    "the Cobolt interlock is open (ilk? = 1): close it before switching emission on",
                ));
            }
            let fault = self.fault()?;
            if fault != 0 {
                return Err(DeviceError::hardware(format!(
                    "the Cobolt laser reports fault {fault} ({}): clear it (clear_fault) once the cause is gone",
                    protocol::fault_name(fault)
                )));
            }
        }
        self.command(if on { "l1" } else { "l0" })
    }

    fn power_setpoint_mw(&mut self) -> Result<f64> {
        self.watts("p?")
    }

    fn set_power_mw(&mut self, power: f64) -> Result<()> {
        self.check_power(power)?;
        self.command(&format!("p {:.6}", power / 1000.0))
    }

    fn power_mw(&mut self) -> Result<f64> {
        // Off, the power monitor still reads its noise floor; the trait promises 0.
        if !self.is_on()? {
            return Ok(0.0);
        }
        self.watts("pa?")
    }

    fn max_power_mw(&mut self) -> Result<f64> {
        Ok(self.effective_max_mw())
    }
}

#[cfg(test)]
mod tests;
