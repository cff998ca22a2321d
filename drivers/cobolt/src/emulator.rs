//! A stateful Cobolt (06-01 command set) on a pseudo-terminal: for tests and for running the
//! daemon without hardware.
//!
//! It answers the commands [`crate::CoboltLaser`] uses as the laser does: `OK` after a command,
//! the value after a query, `Syntax error: illegal command` for anything else, each line ending
//! with `\r\n`. Tests open the interlock, latch faults and make the next reply garbage, truncated
//! or missing with [`CoboltEmulator::inject`].
//!
//! Where the laser's behaviour is not known the emulator picks something plausible: `l1` with the
//! interlock open answers `OK`, stays off and latches fault 3 (interlock error); a power outside
//! 0..=max answers `Syntax error: value out of range`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use microscoped_serial::emulate::{Emulated, LineDevice, Reply};

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

/// The misbehaviours a test can put in the next reply (the runner's shared kind).
pub use microscoped_serial::emulate::Glitch;

#[derive(Debug)]
struct State {
    config: CoboltEmulatorConfig,
    on: bool,
    setpoint_w: f64,
    mode: RunMode,
    autostart: bool,
    interlock_open: bool,
    fault: u8,
    glitches: VecDeque<Glitch>,
    log: Vec<String>,
}

/// An emulated Cobolt. Clones share one laser, so a test keeps one to steer the copy that runs.
#[derive(Debug, Clone)]
pub struct CoboltEmulator {
    state: Arc<Mutex<State>>,
}

/// Starts an emulated Cobolt built from `config` behind a new pseudo-terminal.
pub fn start(config: CoboltEmulatorConfig) -> std::io::Result<Emulated> {
    CoboltEmulator::new(config).start()
}

impl CoboltEmulator {
    /// A laser that is off, at 10% of its maximum, in constant power mode, autostart off,
    /// interlock closed, no fault.
    pub fn new(config: CoboltEmulatorConfig) -> Self {
        let state = State {
            on: false,
            setpoint_w: config.max_power_mw / 1000.0 / 10.0,
            mode: RunMode::ConstantPower,
            autostart: false,
            interlock_open: false,
            fault: 0,
            glitches: VecDeque::new(),
            log: Vec::new(),
            config,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Runs this laser (shared with `self`) behind a new pseudo-terminal.
    pub fn start(&self) -> std::io::Result<Emulated> {
        Emulated::start(self.clone(), "\r", "\r\n")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves the state usable for the rest.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens or closes the interlock. Opening it while emitting stops emission and latches
    /// fault 3 (interlock error), which stays until cleared with `cf`.
    pub fn set_interlock_open(&self, open: bool) {
        let mut s = self.lock();
        s.interlock_open = open;
        if open && s.on {
            s.on = false;
            s.fault = 3;
        }
    }

    /// Latches a fault code (`f?`); anything but 0 stops emission.
    pub fn set_fault(&self, fault: u8) {
        let mut s = self.lock();
        s.fault = fault;
        if fault != 0 {
            s.on = false;
        }
    }

    /// The latched fault code.
    pub fn fault(&self) -> u8 {
        self.lock().fault
    }

    /// Queues a misbehaviour for the next command's reply.
    pub fn inject(&self, glitch: Glitch) {
        self.lock().glitches.push_back(glitch);
    }

    /// Every command received so far, as received.
    pub fn commands(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// Forgets the commands received so far.
    pub fn clear_commands(&self) {
        self.lock().log.clear();
    }

    /// Whether emission is on.
    pub fn is_on(&self) -> bool {
        self.lock().on
    }

    /// The power setpoint, mW.
    pub fn setpoint_mw(&self) -> f64 {
        self.lock().setpoint_w * 1000.0
    }

    /// The run mode.
    pub fn mode(&self) -> RunMode {
        self.lock().mode
    }

    /// Whether autostart is on.
    pub fn autostart(&self) -> bool {
        self.lock().autostart
    }
}

impl LineDevice for CoboltEmulator {
    fn respond(&mut self, command: &str) -> Reply {
        let mut s = self.lock();
        s.log.push(command.to_owned());
        let glitch = s.glitches.pop_front();
        if glitch == Some(Glitch::Silent) {
            return Reply::Silent;
        }
        let reply = s.answer(command.trim());
        match glitch {
            Some(g) => g.apply(reply, "\r\n"),
            None => reply,
        }
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

impl State {
    fn answer(&mut self, command: &str) -> Reply {
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

    #[test]
    fn answers_like_the_laser() {
        let mut e = CoboltEmulator::new(CoboltEmulatorConfig::default());
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
        e.set_interlock_open(true);
        assert_eq!(e.respond("l1"), Reply::Line("OK".into()));
        assert!(!e.is_on());
        assert_eq!(e.respond("f?"), Reply::Line("3".into()));
        e.inject(Glitch::Truncated);
        assert_eq!(e.respond("ilk?"), Reply::Raw(b"\r\n".to_vec()));
    }
}
