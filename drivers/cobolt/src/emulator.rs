//! A stateful Cobolt (06-01 command set) on a pseudo-terminal: for tests and for running the
//! daemon without hardware.
//!
//! It answers the commands [`crate::CoboltLaser`] uses as the laser does: `OK` after a command,
//! the value after a query, `Syntax error: illegal command` for anything else, each line ending
//! with `\r\n`. Tests open the interlock, latch faults and make the next reply garbage, truncated
//! or missing with [`Emulator::inject`].
//!
//! Where the laser's behaviour is not known the emulator picks something plausible: `l1` with the
//! interlock open answers `OK`, stays off and latches fault 3 (interlock error); a power outside
//! 0..=max answers `Syntax error: value out of range`.
//!
//! [`Cobolt`] is only the laser; the fault injection, command log and pseudo-terminal are
//! [`Emulator`]'s, as for every family.

use microscoped_serial::emulate::{Emulated, Emulator, Framing, Reply, Responder};

use crate::RunMode;

/// How the emulated laser is built.
#[derive(Debug, Clone, PartialEq)]
pub struct CoboltEmulatorConfig {
    /// Model number (`glm?`); `None` makes the query unknown, as on older firmware.
    pub model: Option<String>,
    /// Serial number (`gsn?`).
    pub serial_number: String,
    /// Maximum power (`gmlp?`), mW.
    pub max_power_mw: f64,
}

impl Default for CoboltEmulatorConfig {
    fn default() -> Self {
        Self {
            model: Some("0488-06-01-0060-100".into()),
            serial_number: "12345".into(),
            max_power_mw: 60.0,
        }
    }
}

/// An emulated Cobolt: the laser's state and replies. Run it with
/// [`Emulator::new`]`(Cobolt::new(config))` and [`Emulator::start`], or with [`start`].
#[derive(Debug)]
pub struct Cobolt {
    /// How it is built.
    config: CoboltEmulatorConfig,
    /// Whether it emits.
    on: bool,
    /// The power setpoint, W.
    setpoint_w: f64,
    /// The run mode.
    mode: RunMode,
    /// Whether it starts emitting at power-on (`@cobas`).
    autostart: bool,
    /// Whether the interlock is open.
    interlock_open: bool,
    /// The latched fault code, 0 for none.
    fault: u8,
}

/// Starts an emulated Cobolt built from `config` behind a new pseudo-terminal.
pub fn start(config: CoboltEmulatorConfig) -> std::io::Result<Emulated> {
    Emulator::new(Cobolt::new(config)).start()
}

impl Responder for Cobolt {
    const FRAMING: Framing = Framing {
        command: "\r",
        reply: "\r\n",
    };

    fn answer(&mut self, command: &str) -> Reply {
        self.execute(command.trim())
    }
}

impl Cobolt {
    /// A laser that is off, at 10% of its maximum, in constant power mode, autostart off,
    /// interlock closed, no fault.
    pub fn new(config: CoboltEmulatorConfig) -> Self {
        Self {
            on: false,
            setpoint_w: config.max_power_mw / 1000.0 / 10.0,
            mode: RunMode::ConstantPower,
            autostart: false,
            interlock_open: false,
            fault: 0,
            config,
        }
    }

    /// Opens or closes the interlock. Opening it while emitting stops emission and latches
    /// fault 3 (interlock error), which stays until cleared with `cf`.
    pub fn set_interlock_open(&mut self, open: bool) {
        self.interlock_open = open;
        if open && self.on {
            self.on = false;
            self.fault = 3;
        }
    }

    /// Latches a fault code (`f?`); anything but 0 stops emission.
    pub fn set_fault(&mut self, fault: u8) {
        self.fault = fault;
        if fault != 0 {
            self.on = false;
        }
    }

    /// The latched fault code.
    pub fn fault(&self) -> u8 {
        self.fault
    }

    /// Whether emission is on.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The power setpoint, mW.
    pub fn setpoint_mw(&self) -> f64 {
        self.setpoint_w * 1000.0
    }

    /// The run mode.
    pub fn mode(&self) -> RunMode {
        self.mode
    }

    /// Whether autostart is on.
    pub fn autostart(&self) -> bool {
        self.autostart
    }
}

fn ok() -> Reply {
    Reply::Line("OK".into())
}

fn illegal() -> Reply {
    Reply::Line("Syntax error: illegal command".into())
}

fn value(v: impl std::fmt::Display) -> Reply {
    Reply::Line(v.to_string())
}

fn flag(b: bool) -> Reply {
    value(if b { "1" } else { "0" })
}

impl Cobolt {
    fn execute(&mut self, command: &str) -> Reply {
        let (word, arg) = match command.split_once(char::is_whitespace) {
            Some((w, a)) => (w, Some(a.trim())),
            None => (command, None),
        };
        match (word, arg) {
            ("l?", None) => flag(self.on),
            ("l1", None) | ("@cob1", None) => {
                if self.interlock_open {
                    self.fault = 3;
                } else if self.fault == 0 {
                    self.on = true;
                }
                ok()
            }
            ("l0", None) | ("@cob0", None) => {
                self.on = false;
                ok()
            }
            ("p?", None) => value(format!("{:.4}", self.setpoint_w)),
            ("p", Some(a)) => match a.parse::<f64>() {
                Ok(w)
                    if w.is_finite() && (0.0..=self.config.max_power_mw / 1000.0).contains(&w) =>
                {
                    self.setpoint_w = w;
                    ok()
                }
                Ok(_) => value("Syntax error: value out of range"),
                Err(_) => illegal(),
            },
            ("pa?", None) => {
                let w = if self.on { self.setpoint_w } else { 0.0 };
                value(format!("{w:.4}"))
            }
            ("ilk?", None) => flag(self.interlock_open),
            ("f?", None) => value(self.fault),
            ("cf", None) => {
                self.fault = 0;
                ok()
            }
            ("gsn?", None) | ("sn?", None) => value(self.config.serial_number.clone()),
            ("glm?", None) => match &self.config.model {
                Some(m) => value(m.clone()),
                None => illegal(),
            },
            ("gmlp?", None) => value(format!("{:.1}", self.config.max_power_mw)),
            ("gam?", None) => value(match self.mode {
                RunMode::ConstantCurrent => 0,
                RunMode::ConstantPower => 1,
                RunMode::Modulation => 2,
            }),
            ("ecc", None) | ("ci", None) => self.enter(RunMode::ConstantCurrent),
            ("ecp", None) | ("cp", None) => self.enter(RunMode::ConstantPower),
            ("em", None) => self.enter(RunMode::Modulation),
            ("gom?", None) => value(if self.fault != 0 {
                5
            } else if !self.on {
                0
            } else if self.mode == RunMode::Modulation {
                4
            } else {
                2
            }),
            ("@cobas?", None) => flag(self.autostart),
            ("@cobas", Some("0")) => {
                self.autostart = false;
                ok()
            }
            ("@cobas", Some("1")) => {
                self.autostart = true;
                ok()
            }
            ("hrs?", None) => value("1234.56"),
            _ => illegal(),
        }
    }

    fn enter(&mut self, mode: RunMode) -> Reply {
        self.mode = mode;
        ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscoped_serial::emulate::Fault;

    #[test]
    fn answers_like_the_laser() {
        let e = Emulator::new(Cobolt::new(CoboltEmulatorConfig::default()));
        assert_eq!(e.respond("l?"), Reply::Line("0".into()));
        assert_eq!(e.respond("p 0.02"), Reply::Line("OK".into()));
        assert_eq!(e.respond("p?"), Reply::Line("0.0200".into()));
        assert_eq!(
            e.respond("p 1"),
            Reply::Line("Syntax error: value out of range".into())
        );
        assert_eq!(
            e.respond("zap"),
            Reply::Line("Syntax error: illegal command".into())
        );
        e.device().set_interlock_open(true);
        assert_eq!(e.respond("l1"), Reply::Line("OK".into()));
        assert!(!e.device().is_on());
        assert_eq!(e.respond("f?"), Reply::Line("3".into()));
        e.inject(Fault::Truncated);
        assert_eq!(e.respond("ilk?"), Reply::Raw(b"\r\n".to_vec()));
    }
}
