//! The ProScan III line protocol as the drivers speak it: command/reply helpers, the `E,n`
//! error table and the `$` status bits.
//!
//! Every command ends with `\r` and every reply is one line ending with `\r`. Property-type
//! commands answer with a value, or `0` when they set something; movement commands (and the
//! wheel and shutter commands) answer `R`; a refused command answers `E,n`.

use microscoped_driver_api::{DeviceError, ErrorKind, Result};
use microscoped_serial::Port;

/// `$` bit: X axis moving.
pub(crate) const STATUS_X: u32 = 1;
/// `$` bit: Y axis moving.
pub(crate) const STATUS_Y: u32 = 2;
/// `$` bit: Z (focus) axis moving.
pub(crate) const STATUS_Z: u32 = 4;

/// The `$` bit that is set while filter wheel `wheel` (1..=3) rotates.
///
/// The manual documents the bits as `F2 F1 A Z Y X` (wheel 1 = 16, wheel 2 = 32); wheel 3 sits
/// where the manual has the fourth axis `A` (8), as Micro-Manager's ProScan adapter observed on
/// real controllers. Not confirmed against hardware here.
pub(crate) fn wheel_status_bit(wheel: u8) -> u32 {
    match wheel {
        1 => 16,
        2 => 32,
        3 => 8,
        _ => 0,
    }
}

/// Error codes the emulator produces, named for readability.
pub(crate) mod code {
    /// NOT IDLE.
    pub const NOT_IDLE: u32 = 2;
    /// STRING PARSE: arguments the controller cannot read.
    pub const STRING_PARSE: u32 = 4;
    /// COMMAND NOT FOUND.
    pub const COMMAND_NOT_FOUND: u32 = 5;
    /// INVALID SHUTTER number.
    pub const INVALID_SHUTTER: u32 = 6;
    /// VALUE OUT OF RANGE.
    pub const OUT_OF_RANGE: u32 = 8;
    /// INVALID WHEEL number.
    pub const INVALID_WHEEL: u32 = 9;
    /// WHEEL NOT FITTED.
    pub const WHEEL_NOT_FITTED: u32 = 17;
    /// SHUTTER NOT FITTED.
    pub const SHUTTER_NOT_FITTED: u32 = 20;
}

/// The meaning the ProScan manual gives an `E,n` error code.
pub fn error_meaning(code: u32) -> &'static str {
    match code {
        1 => "no stage",
        2 => "not idle",
        3 => "no drive",
        4 => "string parse",
        5 => "command not found",
        6 => "invalid shutter",
        7 => "no focus",
        8 => "value out of range",
        9 => "invalid wheel",
        10 => "argument 1 out of range",
        11 => "argument 2 out of range",
        12 => "argument 3 out of range",
        13 => "argument 4 out of range",
        14 => "argument 5 out of range",
        15 => "argument 6 out of range",
        16 => "incorrect state",
        17 => "wheel not fitted",
        18 => "queue full",
        19 => "compatibility mode set",
        20 => "shutter not fitted",
        21 => "invalid checksum",
        60 => "encoder error",
        61 => "encoder run off",
        _ => "unknown error code",
    }
}

/// The [`ErrorKind`] an `E,n` error code maps to:
///
/// | code | meaning | kind |
/// | --- | --- | --- |
/// | 1, 3, 7, 17, 20 | no stage / no drive / no focus / wheel or shutter not fitted | `Hardware`: the configured device is not there |
/// | 2, 18 | not idle / queue full | `Busy` |
/// | 4, 5, 19, 21 | string parse / command not found / compatibility mode / checksum | `Protocol`: driver and firmware disagree |
/// | 6, 9 | invalid shutter / invalid wheel number | `InvalidValue` |
/// | 8, 10–15 | value or argument out of range | `OutOfRange` |
/// | 60, 61 | encoder error / encoder run off | `Hardware` |
/// | 16, others | incorrect state, unknown | `Other` |
pub fn error_kind(code: u32) -> ErrorKind {
    match code {
        1 | 3 | 7 | 17 | 20 | 60 | 61 => ErrorKind::Hardware,
        2 | 18 => ErrorKind::Busy,
        4 | 5 | 19 | 21 => ErrorKind::Protocol,
        6 | 9 => ErrorKind::InvalidValue,
        8 | 10..=15 => ErrorKind::OutOfRange,
        _ => ErrorKind::Other,
    }
}

/// Parses an error reply: `E,8` (the documented form) or `E8` (as the manual's prose writes
/// it). `None` when the line is not an error reply at all; `Some(Err(..))` when it starts like
/// one but is garbled.
fn parse_error_reply(reply: &str) -> Option<std::result::Result<u32, ()>> {
    let rest = reply.strip_prefix('E')?;
    let digits = rest.strip_prefix(',').unwrap_or(rest).trim();
    Some(digits.parse::<u32>().map_err(|_| ()))
}

/// A handle on the controller behind a shared [`Port`].
#[derive(Clone)]
pub(crate) struct Controller {
    port: Port,
}

impl Controller {
    pub(crate) fn new(port: Port) -> Self {
        Self { port }
    }

    pub(crate) fn path(&self) -> &str {
        self.port.path()
    }

    /// The error for a reply the driver cannot use, quoting it raw.
    pub(crate) fn garbled(&self, command: &str, reply: &str, expected: &str) -> DeviceError {
        DeviceError::new(
            ErrorKind::Protocol,
            format!(
                "Prior controller on {} answered {command:?} with {reply:?}, expected {expected}",
                self.path()
            ),
        )
    }

    /// One transaction: sends `command`, returns the trimmed reply, or the controller's refusal
    /// as an error of the mapped kind.
    fn exchange(&self, command: &str) -> Result<String> {
        let raw = self.port.query(command)?;
        let reply = raw.trim();
        match parse_error_reply(reply) {
            None => Ok(reply.to_owned()),
            Some(Ok(code)) => Err(DeviceError::new(
                error_kind(code),
                format!(
                    "Prior controller on {} refused {command:?}: E,{code} ({})",
                    self.path(),
                    error_meaning(code)
                ),
            )),
            Some(Err(())) => Err(self.garbled(command, reply, "an error code E,n")),
        }
    }

    /// A query or setting command (idempotent). The manual has movement commands answer `R`
    /// at the end of the move; should such a late `R` slip in between the port's input flush
    /// and this command's own answer, it is not this command's answer, so the command is
    /// asked once more.
    pub(crate) fn query(&self, command: &str) -> Result<String> {
        let reply = self.exchange(command)?;
        if reply == "R" {
            return self.exchange(command);
        }
        Ok(reply)
    }

    /// A movement, wheel or shutter command, acknowledged with `R`.
    pub(crate) fn command_r(&self, command: &str) -> Result<()> {
        let reply = self.exchange(command)?;
        if reply == "R" {
            Ok(())
        } else {
            Err(self.garbled(command, &reply, "\"R\""))
        }
    }

    /// A setting command, acknowledged with `0`.
    pub(crate) fn command_0(&self, command: &str) -> Result<()> {
        let reply = self.query(command)?;
        if reply == "0" {
            Ok(())
        } else {
            Err(self.garbled(command, &reply, "\"0\""))
        }
    }

    /// A query answered with `n` comma-separated integers.
    pub(crate) fn query_ints(&self, command: &str, n: usize) -> Result<Vec<i64>> {
        let reply = self.query(command)?;
        let values: Vec<i64> = reply
            .split(',')
            .map(|v| v.trim().parse::<i64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| self.garbled(command, &reply, &format!("{n} integer(s)")))?;
        if values.len() != n {
            return Err(self.garbled(command, &reply, &format!("{n} integer(s)")));
        }
        Ok(values)
    }

    /// A query answered with one integer.
    pub(crate) fn query_int(&self, command: &str) -> Result<i64> {
        Ok(self.query_ints(command, 1)?[0])
    }

    /// The `$` motion status bits.
    pub(crate) fn status(&self) -> Result<u32> {
        let v = self.query_int("$")?;
        u32::try_from(v).map_err(|_| self.garbled("$", &v.to_string(), "a status bitfield"))
    }

    /// Puts the controller in standard mode (`COMP,0`, answered `0`), the mode whose replies
    /// these drivers parse. Doubles as the check that a ProScan answers at all.
    pub(crate) fn standard_mode(&self, device: &str) -> Result<()> {
        self.command_0("COMP,0").map_err(|e| {
            let hint = match e.kind {
                ErrorKind::Timeout => {
                    " (is a ProScan connected, at the configured baud (default 9600), and does the \
                     port use \"\\r\" as both write and read terminator?)"
                }
                _ => "",
            };
            DeviceError::new(
                e.kind,
                format!(
                    "cannot start the Prior {device}: the controller did not accept COMP,0: {}{hint}",
                    e.message
                ),
            )
        })
    }
}

/// Converts micrometres to controller units (the nearest whole unit).
pub(crate) fn to_steps(um: f64, um_per_step: f64) -> i64 {
    // Targets were checked against the travel, so the value fits an i64 comfortably.
    (um / um_per_step).round() as i64
}

/// Checks a target against a travel before anything is sent.
pub(crate) fn check_target(axis: &str, value: f64, range: [f64; 2]) -> Result<()> {
    if !value.is_finite() {
        return Err(DeviceError::invalid(format!(
            "{axis} target {value} is not a finite position"
        )));
    }
    if value < range[0] || value > range[1] {
        return Err(DeviceError::out_of_range(format!(
            "{axis} target {value} um is outside the configured travel [{}, {}] um",
            range[0], range[1]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_parse() {
        assert_eq!(parse_error_reply("E,8"), Some(Ok(8)));
        assert_eq!(parse_error_reply("E18"), Some(Ok(18)));
        assert_eq!(parse_error_reply("E,x"), Some(Err(())));
        assert_eq!(parse_error_reply("123"), None);
        assert_eq!(error_kind(8), ErrorKind::OutOfRange);
        assert_eq!(error_kind(5), ErrorKind::Protocol);
        assert_eq!(error_kind(17), ErrorKind::Hardware);
        assert_eq!(error_kind(2), ErrorKind::Busy);
        assert_eq!(error_kind(99), ErrorKind::Other);
    }
}
