//! Driver for Coherent OBIS lasers (LX, LS and relatives) over their serial SCPI-style protocol.
//!
//! Commands end with `\r\n`, and so do replies. The driver turns the laser's handshake on at
//! connect, so every command is answered by `OK` or by an error of the form `ERR-nnn`, and every
//! query by its value followed by `OK` (or by the error alone). A query's value is the first
//! line; the `OK` behind it is discarded with the rest of the input before the next command.
//!
//! Powers cross the wire in watts and are milliwatts everywhere else. Emission is
//! `SOUR:AM:STAT ON|OFF`; the driver asks `SYST:LOCK?` (interlock) and `SYST:FAUL?` (fault word)
//! before switching emission on, so a laser that cannot emit says why instead of staying dark.
//!
//! Several OBIS heads behind one OBIS Remote or laser box are addressed by a numeric suffix on the
//! first node (`SOUR2:AM:STAT?`, `SYST2:LOCK?`, `*IDN2?`): set
//! [`ObisSettings::device_index`]. Without it the commands carry no suffix and reach the first
//! (or only) laser.
//!
//! [`emulator`] runs a stateful OBIS on a pseudo-terminal, for tests and instrument-free demos.

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
/// Highest device index accepted: no OBIS controller we know of holds more heads than this.
const MAX_DEVICE_INDEX: u32 = 16;
/// How far the reported wavelength may be from `wavelength_nm`, nm.
const WAVELENGTH_TOLERANCE_NM: f64 = 5.0;

/// Serial settings for an OBIS on `path`: 115200 baud 8N1, `\r\n` both ways.
pub fn port_settings(path: impl Into<PathBuf>) -> PortSettings {
    PortSettings {
        path: path.into(),
        baud: 115_200,
        write_terminator: "\r\n".into(),
        read_terminator: "\r\n".into(),
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

/// The OBIS operating modes (`SOUR:AM:SOUR?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OperatingMode {
    /// Continuous wave, constant power.
    Cwp,
    /// Continuous wave, constant current.
    Cwc,
    /// External digital modulation.
    Digital,
    /// External analog modulation.
    Analog,
    /// External digital and analog modulation together.
    Mixed,
    /// External digital modulation with power feedback (not on every model).
    Digso,
    /// External mixed modulation with power feedback (not on every model).
    Mixso,
}

impl OperatingMode {
    /// Every mode, in the order a user interface shows them.
    pub const ALL: [OperatingMode; 7] = [
        Self::Cwp,
        Self::Cwc,
        Self::Digital,
        Self::Analog,
        Self::Mixed,
        Self::Digso,
        Self::Mixso,
    ];

    /// The name the laser reports and the property shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cwp => "CWP",
            Self::Cwc => "CWC",
            Self::Digital => "DIGITAL",
            Self::Analog => "ANALOG",
            Self::Mixed => "MIXED",
            Self::Digso => "DIGSO",
            Self::Mixso => "MIXSO",
        }
    }

    /// The mode a name stands for, ignoring case.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }

    /// The tail of the command selecting this mode: internal modes go through `AM:INT`,
    /// external ones through `AM:EXT`.
    fn command_tail(self) -> &'static str {
        match self {
            Self::Cwp => "AM:INT CWP",
            Self::Cwc => "AM:INT CWC",
            Self::Digital => "AM:EXT DIG",
            Self::Analog => "AM:EXT ANAL",
            Self::Mixed => "AM:EXT MIX",
            Self::Digso => "AM:EXT DIGSO",
            Self::Mixso => "AM:EXT MIXSO",
        }
    }
}

/// Settings of an [`ObisLaser`], from the device's config table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObisSettings {
    /// Software cap on the power setpoint, mW. The lower of this and the laser's own maximum
    /// (`SOUR:POW:LIM:HIGH?`) applies. Unset: the laser's maximum.
    pub max_power_mw: Option<f64>,
    /// Power setpoint applied at connect, mW. Unset: the laser keeps its own.
    pub power_mw: Option<f64>,
    /// Operating mode applied at connect. Unset: the laser keeps its own.
    pub operating_mode: Option<OperatingMode>,
    /// What to do to emission at connect.
    pub at_connect: AtConnect,
    /// The numeric suffix addressing one head behind an OBIS Remote or laser box. Unset: no
    /// suffix, the first (or only) laser.
    pub device_index: Option<u32>,
    /// The wavelength the laser on this port must report, nm: connecting to the wrong laser
    /// (ports swapped) fails instead of driving it.
    pub wavelength_nm: Option<f64>,
}

impl Default for ObisSettings {
    fn default() -> Self {
        Self {
            max_power_mw: None,
            power_mw: None,
            operating_mode: None,
            at_connect: AtConnect::Off,
            device_index: None,
            wavelength_nm: None,
        }
    }
}

impl Settings for ObisSettings {
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
        if let Some(i) = self.device_index {
            if i > MAX_DEVICE_INDEX {
                return Err(SettingError::new(
                    "device_index",
                    format!("must be 0 to {MAX_DEVICE_INDEX}, got {i}"),
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

/// A Coherent OBIS laser on a serial port.
pub struct ObisLaser {
    port: Port,
    settings: ObisSettings,
    /// `SOUR` with the device suffix, if any.
    sour: String,
    /// `SYST` with the device suffix, if any.
    syst: String,
    /// What `*IDN?` answered at connect.
    identity: String,
    /// The laser's own maximum, mW.
    laser_max_mw: f64,
    /// The wavelength the laser reported at connect, nm.
    wavelength_nm: f64,
}

impl std::fmt::Debug for ObisLaser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObisLaser")
            .field("port", &self.port.path())
            .field("identity", &self.identity)
            .field("laser_max_mw", &self.laser_max_mw)
            .field("wavelength_nm", &self.wavelength_nm)
            .finish()
    }
}

impl ObisLaser {
    /// Connects to the laser on `port` (opened with settings like [`port_settings`]): checks
    /// `settings`, turns the handshake on, reads identity, wavelength and maximum power, then
    /// applies what `settings` asks for at connect.
    pub fn new(port: Port, settings: ObisSettings) -> Result<Self> {
        settings
            .validate()
            .map_err(|e| DeviceError::invalid(format!("OBIS setting {}: {}", e.key, e.message)))?;
        let suffix = settings
            .device_index
            .map(|i| i.to_string())
            .unwrap_or_default();
        let mut laser = Self {
            port,
            sour: format!("SOUR{suffix}"),
            syst: format!("SYST{suffix}"),
            settings,
            identity: String::new(),
            laser_max_mw: 0.0,
            wavelength_nm: 0.0,
        };
        laser.connect()?;
        Ok(laser)
    }

    fn connect(&mut self) -> Result<()> {
        // With the handshake off the laser answers commands with nothing, so an off handshake
        // shows as a timeout here; it is on afterwards either way.
        let hand = format!("{}:COMM:HAND ON", self.syst);
        match self.port.query(&hand) {
            Ok(reply) => match protocol::device_error(&hand, reply.trim()) {
                Some(e) => return Err(e),
                None if reply.trim() == "OK" => {}
                None => return Err(protocol::garbled(&hand, &reply, "OK")),
            },
            Err(e) if e.kind == ErrorKind::Timeout => {}
            Err(e) => return Err(e),
        }
        let suffix = self
            .settings
            .device_index
            .map(|i| i.to_string())
            .unwrap_or_default();
        self.identity = self.query(&format!("*IDN{suffix}?"))?;

        let wav = format!("{}:INF:WAV?", self.syst);
        self.wavelength_nm = protocol::number(&wav, &self.query(&wav)?)?;
        if let Some(expected) = self.settings.wavelength_nm {
            if (self.wavelength_nm - expected).abs() > WAVELENGTH_TOLERANCE_NM {
                return Err(DeviceError::invalid(format!(
                    "the laser on {} emits {} nm but wavelength_nm is {expected}: wrong port?",
                    self.port.path(),
                    self.wavelength_nm
                )));
            }
        }

        let lim = format!("{}:POW:LIM:HIGH?", self.sour);
        let max_w = protocol::number(&lim, &self.query(&lim)?)?;
        if max_w <= 0.0 {
            return Err(protocol::garbled(
                &lim,
                &max_w.to_string(),
                "a positive power",
            ));
        }
        self.laser_max_mw = max_w * 1000.0;

        if let Some(p) = self.settings.power_mw {
            // Checked now, before anything changes, so a bad setting leaves the laser untouched.
            self.check_power(p)?;
        }
        if self.settings.at_connect == AtConnect::Off {
            self.switch(false)?;
        }
        if let Some(mode) = self.settings.operating_mode {
            self.set_mode(mode)?;
        }
        if let Some(p) = self.settings.power_mw {
            self.set_power_mw(p)?;
        }
        Ok(())
    }

    /// What the laser answered to `*IDN?` at connect.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Sends a query and returns its value, or the error the laser answered.
    fn query(&self, command: &str) -> Result<String> {
        let mut reply = self.port.query(command)?;
        if reply.trim() == "OK" {
            // The acknowledgement behind an earlier query's value can arrive after the port
            // discarded stale input; the value asked for is behind it, so ask again.
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

    fn switch(&self, on: bool) -> Result<()> {
        let state = if on { "ON" } else { "OFF" };
        self.command(&format!("{}:AM:STAT {state}", self.sour))
    }

    /// The interlock state: true when closed (emission allowed).
    fn interlock_closed(&self) -> Result<bool> {
        let cmd = format!("{}:LOCK?", self.syst);
        protocol::on_off(&cmd, &self.query(&cmd)?)
    }

    fn fault_word(&self) -> Result<u32> {
        let cmd = format!("{}:FAUL?", self.syst);
        protocol::hex_word(&cmd, &self.query(&cmd)?)
    }

    fn status_word(&self) -> Result<u32> {
        let cmd = format!("{}:STAT?", self.syst);
        protocol::hex_word(&cmd, &self.query(&cmd)?)
    }

    fn mode(&self) -> Result<OperatingMode> {
        let cmd = format!("{}:AM:SOUR?", self.sour);
        let reply = self.query(&cmd)?;
        OperatingMode::parse(&reply)
            .ok_or_else(|| protocol::garbled(&cmd, &reply, "an operating mode"))
    }

    fn set_mode(&self, mode: OperatingMode) -> Result<()> {
        self.command(&format!("{}:{}", self.sour, mode.command_tail()))
    }

    fn watts(&self, command: &str) -> Result<f64> {
        let cmd = format!("{}:{command}", self.sour);
        Ok(protocol::number(&cmd, &self.query(&cmd)?)? * 1000.0)
    }
}

const PROP_MODE: &str = "operating_mode";
const PROP_INTERLOCK: &str = "interlock";
const PROP_FAULT: &str = "fault";
const PROP_STATUS: &str = "status";
const PROP_NOMINAL: &str = "nominal_power_mw";
const PROP_IDENTITY: &str = "identity";

impl Device for ObisLaser {
    fn properties(&self) -> Vec<PropertySpec> {
        let max = self.effective_max_mw();
        let nm = self.wavelength_nm;
        let modes: Vec<&str> = OperatingMode::ALL.iter().map(|m| m.as_str()).collect();
        vec![
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
                .describe("Highest power setpoint: the laser's maximum or the software cap"),
            PropertySpec::float("wavelength_nm", nm, nm)
                .unit("nm")
                .read_only()
                .describe("Emission wavelength"),
            PropertySpec::enumeration(PROP_MODE, &modes)
                .describe("Operating mode: constant power or current, or external modulation"),
            PropertySpec::enumeration(PROP_INTERLOCK, &["closed", "open"])
                .read_only()
                .describe("Interlock state; open prevents emission"),
            PropertySpec::string(PROP_FAULT)
                .read_only()
                .describe("Active faults (SYST:FAUL?), or none"),
            PropertySpec::string(PROP_STATUS)
                .read_only()
                .describe("Status word (SYST:STAT?) and its set bits"),
            PropertySpec::float(PROP_NOMINAL, 0.0, f64::MAX)
                .unit("mW")
                .read_only()
                .describe("Nominal output power of this model"),
            PropertySpec::string(PROP_IDENTITY)
                .read_only()
                .describe("What the laser answered to *IDN? at connect"),
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
                if self.interlock_closed()? {
                    "closed"
                } else {
                    "open"
                }
                .into(),
            ),
            PROP_FAULT => {
                Value::String(protocol::describe(self.fault_word()?, protocol::FAULT_BITS))
            }
            PROP_STATUS => Value::String(protocol::describe(
                self.status_word()?,
                protocol::STATUS_BITS,
            )),
            PROP_NOMINAL => Value::Float(self.watts("POW:NOM?")?),
            PROP_IDENTITY => Value::String(self.identity.clone()),
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
                let mode = OperatingMode::parse(s)
                    .ok_or_else(|| DeviceError::invalid(format!("{s:?} is no OBIS mode")))?;
                self.set_mode(mode)
            }
            _ => Err(props::unknown(&self.properties(), name)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        let cmd = format!("{}:AM:STAT?", self.sour);
        self.query(&cmd).map(|_| ())
    }

    fn make_safe(&mut self) -> Result<()> {
        self.switch(false)
    }
}

impl Laser for ObisLaser {
    fn wavelength_nm(&mut self) -> Result<f64> {
        Ok(self.wavelength_nm)
    }

    fn is_on(&mut self) -> Result<bool> {
        let cmd = format!("{}:AM:STAT?", self.sour);
        protocol::on_off(&cmd, &self.query(&cmd)?)
    }

    fn set_on(&mut self, on: bool) -> Result<()> {
        if on {
            // The laser would accept the command and stay dark; say why instead.
            if !self.interlock_closed()? {
                return Err(DeviceError::hardware(
                    "the OBIS interlock is open (SYST:LOCK? = OFF): close it before switching emission on",
                ));
            }
            let fault = self.fault_word()?;
            if fault != 0 {
                return Err(DeviceError::hardware(format!(
                    "the OBIS laser reports a fault ({}): emission stays off",
                    protocol::describe(fault, protocol::FAULT_BITS)
                )));
            }
        }
        self.switch(on)
    }

    fn power_setpoint_mw(&mut self) -> Result<f64> {
        self.watts("POW:LEV:IMM:AMPL?")
    }

    fn set_power_mw(&mut self, power: f64) -> Result<()> {
        self.check_power(power)?;
        self.command(&format!(
            "{}:POW:LEV:IMM:AMPL {:.6}",
            self.sour,
            power / 1000.0
        ))
    }

    fn power_mw(&mut self) -> Result<f64> {
        // Off, the power monitor still reads its noise floor; the trait promises 0.
        if !self.is_on()? {
            return Ok(0.0);
        }
        self.watts("POW:LEV?")
    }

    fn max_power_mw(&mut self) -> Result<f64> {
        Ok(self.effective_max_mw())
    }
}

#[cfg(test)]
mod tests;
