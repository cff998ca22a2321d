//! What the Cobolt replies mean.
//!
//! Sources: Cobolt AB's own `pycobolt` (cobolt-lasers/pycobolt) and Micro-Manager adapter
//! (`DeviceAdapters/CoboltOfficial`, legacy 06 command set), the QMI `Cobolt_Laser_06_01` driver
//! and python-microscope's `microscope/lights/cobolt.py`.

use microscoped_driver_api::{DeviceError, ErrorKind, Result};

/// The error a reply stands for, or `None` when it is no error. The laser answers a command it
/// does not know with `Syntax error: illegal command`; other `Syntax error: ...` texts are
/// taken as a refused argument.
pub(crate) fn device_error(command: &str, reply: &str) -> Option<DeviceError> {
    let lower = reply.to_ascii_lowercase();
    if !lower.starts_with("syntax error") && !lower.starts_with("error") {
        return None;
    }
    let kind = if lower.contains("illegal command") {
        ErrorKind::Protocol
    } else if lower.contains("range") {
        ErrorKind::OutOfRange
    } else {
        ErrorKind::InvalidValue
    };
    let hint = if kind == ErrorKind::Protocol {
        ": this model or firmware lacks the command"
    } else {
        ""
    };
    Some(DeviceError::new(
        kind,
        format!("the Cobolt laser refused {command:?}: {reply:?}{hint}"),
    ))
}

/// A reply the driver cannot use.
pub(crate) fn garbled(command: &str, reply: &str, expected: &str) -> DeviceError {
    DeviceError::new(
        ErrorKind::Protocol,
        format!("the Cobolt laser answered {command:?} with {reply:?}, expected {expected}"),
    )
}

/// A finite number.
pub(crate) fn number(command: &str, reply: &str) -> Result<f64> {
    reply
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| garbled(command, reply, "a number"))
}

/// A small whole number, as the state queries answer.
pub(crate) fn code(command: &str, reply: &str) -> Result<u8> {
    reply
        .trim()
        .parse::<u8>()
        .map_err(|_| garbled(command, reply, "a number code"))
}

/// `0` or `1`.
pub(crate) fn flag(command: &str, reply: &str) -> Result<bool> {
    match reply.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(garbled(command, reply, "0 or 1")),
    }
}

/// What a fault code (`f?`) means.
pub(crate) fn fault_name(code: u8) -> String {
    match code {
        0 => "none".into(),
        1 => "temperature error".into(),
        3 => "interlock error".into(),
        4 => "constant power time out".into(),
        n => format!("unknown fault {n}"),
    }
}

/// What an operating state (`gom?`) means.
pub(crate) fn state_name(code: u8) -> String {
    match code {
        0 => "off".into(),
        1 => "waiting for key".into(),
        2 => "continuous".into(),
        3 => "on/off modulation".into(),
        4 => "modulation".into(),
        5 => "fault".into(),
        6 => "aborted".into(),
        n => format!("unknown state {n}"),
    }
}

/// The wavelength in a model number such as `0488-06-01-0060-100`: its first four digits.
pub(crate) fn wavelength_from_model(model: &str) -> Option<f64> {
    let head = model.trim().get(..4)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nm: f64 = head.parse().ok()?;
    (200.0..=2000.0).contains(&nm).then_some(nm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_values() {
        let e = device_error("xyz", "Syntax error: illegal command").unwrap();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.contains("illegal command"), "{e}");
        assert_eq!(
            device_error("p 9", "Syntax error: value out of range")
                .unwrap()
                .kind,
            ErrorKind::OutOfRange
        );
        assert!(device_error("l1", "OK").is_none());
        assert!(flag("l?", "1").unwrap());
        assert!(flag("l?", "2").is_err());
        assert_eq!(code("f?", "3").unwrap(), 3);
        assert_eq!(fault_name(3), "interlock error");
        assert_eq!(wavelength_from_model("0488-06-01-0060-100"), Some(488.0));
        assert_eq!(wavelength_from_model("06-01"), None);
        assert_eq!(wavelength_from_model("0000-06"), None);
    }
}
