//! A stateful OBIS on a pseudo-terminal: for tests and for running the daemon without hardware.
//!
//! It answers the commands [`crate::ObisLaser`] uses, in short or long SCPI form, with the
//! handshake the real laser has: `OK` after a command, value then `OK` after a query, `ERR-nnn`
//! alone on an error. Tests set the interlock and the fault word, and make the next reply
//! garbage, truncated or missing with [`Emulator::inject`].
//!
//! Where the manual's behaviour is not known, the emulator picks something plausible and says so:
//! switching emission on with the interlock open or a fault active answers `ERR-221`; changing
//! the operating mode while emitting answers `ERR-200`; with the handshake off, errors are
//! still answered.
//!
//! [`Obis`] is only the laser; the fault injection, command log and pseudo-terminal are
//! [`Emulator`]'s, as for every family.

use microscoped_serial::emulate::{Emulated, Emulator, Framing, Reply, Responder};

use crate::OperatingMode;

/// How the emulated laser is built.
#[derive(Debug, Clone, PartialEq)]
pub struct ObisEmulatorConfig {
    /// Wavelength reported by `SYST:INF:WAV?`, nm.
    pub wavelength_nm: f64,
    /// Maximum power (`SOUR:POW:LIM:HIGH?`), mW.
    pub max_power_mw: f64,
    /// Nominal power (`SOUR:POW:NOM?`), mW; `None` makes the query unknown (`ERR-100`), as on
    /// models without it.
    pub nominal_power_mw: Option<f64>,
    /// The device index the laser answers to besides no suffix at all.
    pub index: u32,
    /// Whether the handshake starts on.
    pub handshake: bool,
    /// What `*IDN?` answers.
    pub identity: String,
}

impl Default for ObisEmulatorConfig {
    fn default() -> Self {
        Self {
            wavelength_nm: 488.0,
            max_power_mw: 150.0,
            nominal_power_mw: Some(150.0),
            index: 1,
            handshake: true,
            identity: "Coherent, Inc - OBIS 488nm LX 150mW - EMULATOR".into(),
        }
    }
}

/// An emulated OBIS: the laser's state and replies. Run it with
/// [`Emulator::new`]`(Obis::new(config))` and [`Emulator::start`], or with [`start`].
#[derive(Debug)]
pub struct Obis {
    /// How it is built.
    config: ObisEmulatorConfig,
    /// Whether it emits.
    on: bool,
    /// The power setpoint, W.
    setpoint_w: f64,
    /// The operating mode.
    mode: OperatingMode,
    /// Whether the handshake (`OK` after each command) is on.
    handshake: bool,
    /// Whether the interlock is open.
    interlock_open: bool,
    /// The fault word `SYST:FAUL?` reports.
    fault: u32,
}

/// Starts an emulated OBIS built from `config` behind a new pseudo-terminal.
pub fn start(config: ObisEmulatorConfig) -> std::io::Result<Emulated> {
    Emulator::new(Obis::new(config)).start()
}

impl Responder for Obis {
    const FRAMING: Framing = Framing {
        command: "\r\n",
        reply: "\r\n",
    };

    fn answer(&mut self, command: &str) -> Reply {
        self.execute(command)
    }
}

impl Obis {
    /// A laser that is off, at 10% of its maximum, in CWP mode, interlock closed, no fault.
    pub fn new(config: ObisEmulatorConfig) -> Self {
        Self {
            on: false,
            setpoint_w: config.max_power_mw / 1000.0 / 10.0,
            mode: OperatingMode::Cwp,
            handshake: config.handshake,
            interlock_open: false,
            fault: 0,
            config,
        }
    }

    /// Opens or closes the interlock. Opening it stops emission, as on the real laser.
    pub fn set_interlock_open(&mut self, open: bool) {
        self.interlock_open = open;
        if open {
            self.on = false;
        }
    }

    /// Sets the fault word `SYST:FAUL?` reports. A fault stops emission.
    pub fn set_fault(&mut self, fault: u32) {
        self.fault = fault;
        if fault != 0 {
            self.on = false;
        }
    }

    /// Whether emission is on.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The power setpoint, mW.
    pub fn setpoint_mw(&self) -> f64 {
        self.setpoint_w * 1000.0
    }

    /// The operating mode.
    pub fn mode(&self) -> OperatingMode {
        self.mode
    }

    /// Whether the handshake is on.
    pub fn handshake(&self) -> bool {
        self.handshake
    }
}

/// SCPI nodes the emulator knows: long form and short form.
const NODES: &[(&str, &str)] = &[
    ("SOURCE", "SOUR"),
    ("SYSTEM", "SYST"),
    ("POWER", "POW"),
    ("LEVEL", "LEV"),
    ("IMMEDIATE", "IMM"),
    ("AMPLITUDE", "AMPL"),
    ("STATE", "STAT"),
    ("STATUS", "STAT"),
    ("INFORMATION", "INF"),
    ("WAVELENGTH", "WAV"),
    ("LIMIT", "LIM"),
    ("HIGH", "HIGH"),
    ("NOMINAL", "NOM"),
    ("FAULT", "FAUL"),
    ("LOCK", "LOCK"),
    ("INTERNAL", "INT"),
    ("EXTERNAL", "EXT"),
    ("COMMUNICATE", "COMM"),
    ("HANDSHAKING", "HAND"),
    ("AM", "AM"),
];

/// A command split into its canonical short-form header, device suffix and argument.
struct Parsed {
    header: String,
    suffix: Option<u32>,
    arg: Option<String>,
}

fn parse(command: &str) -> Option<Parsed> {
    let command = command.trim();
    let (head, arg) = match command.split_once(char::is_whitespace) {
        Some((h, a)) => (h, Some(a.trim().to_owned())),
        None => (command, None),
    };
    let query = head.ends_with('?');
    let head = head.trim_end_matches('?').to_ascii_uppercase();
    if let Some(rest) = head.strip_prefix("*IDN") {
        let suffix = if rest.is_empty() {
            None
        } else {
            Some(rest.parse().ok()?)
        };
        return Some(Parsed {
            header: "*IDN?".into(),
            suffix,
            arg,
        });
    }
    let mut suffix = None;
    let mut nodes = Vec::new();
    for (i, node) in head.trim_start_matches(':').split(':').enumerate() {
        let name = node.trim_end_matches(|c: char| c.is_ascii_digit());
        if name.len() != node.len() {
            // Only the first node carries the device suffix.
            if i != 0 {
                return None;
            }
            suffix = Some(node[name.len()..].parse().ok()?);
        }
        let short = NODES
            .iter()
            .find(|(long, short)| name == *long || name == *short)
            .map(|(_, short)| *short)?;
        nodes.push(short);
    }
    let mut header = nodes.join(":");
    if query {
        header.push('?');
    }
    Some(Parsed {
        header,
        suffix,
        arg,
    })
}

impl Obis {
    fn ok(&self) -> Reply {
        if self.handshake {
            Reply::Line("OK".into())
        } else {
            Reply::Silent
        }
    }

    fn value(&self, v: impl std::fmt::Display) -> Reply {
        if self.handshake {
            Reply::Lines(vec![v.to_string(), "OK".into()])
        } else {
            Reply::Line(v.to_string())
        }
    }

    fn execute(&mut self, command: &str) -> Reply {
        let Some(p) = parse(command) else {
            return err(-100);
        };
        if let Some(n) = p.suffix {
            if n != self.config.index {
                return err(-241);
            }
        }
        let arg = p.arg.as_deref().map(str::to_ascii_uppercase);
        match (p.header.as_str(), arg.as_deref()) {
            ("*IDN?", None) => self.value(self.config.identity.clone()),
            ("SYST:COMM:HAND", Some(a)) => match a {
                "ON" => {
                    self.handshake = true;
                    self.ok()
                }
                "OFF" => {
                    self.handshake = false;
                    self.ok()
                }
                _ => err(-220),
            },
            ("SYST:INF:WAV?", None) => self.value(self.config.wavelength_nm),
            ("SOUR:POW:LIM:HIGH?", None) => {
                self.value(format!("{:.5}", self.config.max_power_mw / 1000.0))
            }
            ("SOUR:POW:NOM?", None) => match self.config.nominal_power_mw {
                Some(mw) => self.value(format!("{:.5}", mw / 1000.0)),
                None => err(-100),
            },
            ("SOUR:AM:STAT?", None) => self.value(if self.on { "ON" } else { "OFF" }),
            ("SOUR:AM:STAT", Some("ON")) => {
                if self.interlock_open || self.fault != 0 {
                    err(-221)
                } else {
                    self.on = true;
                    self.ok()
                }
            }
            ("SOUR:AM:STAT", Some("OFF")) => {
                self.on = false;
                self.ok()
            }
            ("SOUR:AM:STAT", Some(_)) => err(-220),
            ("SOUR:POW:LEV:IMM:AMPL?", None) => self.value(format!("{:.5}", self.setpoint_w)),
            ("SOUR:POW:LEV:IMM:AMPL", Some(a)) => match a.parse::<f64>() {
                Ok(w)
                    if w.is_finite() && (0.0..=self.config.max_power_mw / 1000.0).contains(&w) =>
                {
                    self.setpoint_w = w;
                    self.ok()
                }
                Ok(_) => err(-220),
                Err(_) => err(-102),
            },
            ("SOUR:POW:LEV?", None) => {
                let w = if self.on { self.setpoint_w } else { 0.0 };
                self.value(format!("{w:.5}"))
            }
            ("SOUR:AM:SOUR?", None) => self.value(self.mode.as_str()),
            ("SOUR:AM:INT", Some(a)) => {
                let mode = match a {
                    "CWP" => OperatingMode::Cwp,
                    "CWC" => OperatingMode::Cwc,
                    _ => return err(-220),
                };
                self.set_mode(mode)
            }
            ("SOUR:AM:EXT", Some(a)) => {
                let mode = match a {
                    "DIG" | "DIGITAL" => OperatingMode::Digital,
                    "ANAL" | "ANALOG" => OperatingMode::Analog,
                    "MIX" | "MIXED" => OperatingMode::Mixed,
                    "DIGSO" => OperatingMode::Digso,
                    "MIXSO" => OperatingMode::Mixso,
                    _ => return err(-220),
                };
                self.set_mode(mode)
            }
            ("SYST:LOCK?", None) => self.value(if self.interlock_open { "OFF" } else { "ON" }),
            ("SYST:FAUL?", None) => self.value(format!("{:08X}", self.fault)),
            ("SYST:STAT?", None) => {
                let mut word = 0u32;
                if self.fault != 0 {
                    word |= 0x1;
                }
                if self.on {
                    word |= 0x2;
                }
                if !self.interlock_open && self.fault == 0 {
                    word |= 0x4;
                }
                if self.interlock_open {
                    word |= 0x0400_0000;
                }
                self.value(format!("{word:08X}"))
            }
            (h, None) if !h.ends_with('?') => err(-109),
            _ => err(-100),
        }
    }

    fn set_mode(&mut self, mode: OperatingMode) -> Reply {
        if self.on {
            return err(-200);
        }
        self.mode = mode;
        self.ok()
    }
}

fn err(code: i32) -> Reply {
    Reply::Line(format!("ERR{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_forms_and_suffixes_parse_alike() {
        let a = parse("SOURce:POWer:LEVel:IMMediate:AMPLitude 0.1").unwrap();
        let b = parse("sour:pow:lev:imm:ampl 0.1").unwrap();
        assert_eq!(a.header, "SOUR:POW:LEV:IMM:AMPL");
        assert_eq!(a.header, b.header);
        let c = parse("SOUR2:AM:STAT?").unwrap();
        assert_eq!((c.header.as_str(), c.suffix), ("SOUR:AM:STAT?", Some(2)));
        assert_eq!(parse("*IDN3?").unwrap().suffix, Some(3));
        assert!(parse("SOUR:AM2:STAT?").is_none());
        assert!(parse("BOGUS?").is_none());
    }

    #[test]
    fn replies_follow_the_handshake() {
        let e = Emulator::new(Obis::new(ObisEmulatorConfig::default()));
        assert_eq!(
            e.respond("SOUR:AM:STAT?"),
            Reply::Lines(vec!["OFF".into(), "OK".into()])
        );
        assert_eq!(e.respond("SOUR:AM:STAT ON"), Reply::Line("OK".into()));
        assert_eq!(e.respond("NOPE"), Reply::Line("ERR-100".into()));
        assert_eq!(e.respond("SOUR:AM:INT CWC"), Reply::Line("ERR-200".into()));
        assert_eq!(e.respond("SYST:COMM:HAND OFF"), Reply::Silent);
        assert_eq!(e.respond("SOUR:AM:STAT?"), Reply::Line("ON".into()));
    }
}
