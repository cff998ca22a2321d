//! What the OBIS replies mean: error codes, fault and status words, values.
//!
//! Sources: the error-code table in the UT Southwestern ASLM OBIS driver (quoting the OBIS LX/LS
//! operator's manual), the fault and status bit layout in the ISIS "chtobisr" OBIS emulator
//! (ISISComputingGroup/EPICS-DeviceEmulator), the handshake behaviour ("OK" after every command)
//! in python-microscope's `microscope/lights/obis.py`.

use microscoped_driver_api::{DeviceError, ErrorKind, Result};

/// The error a reply of the form `ERR-nnn` stands for, or `None` when the reply is no error.
pub(crate) fn device_error(command: &str, reply: &str) -> Option<DeviceError> {
    let rest = reply.strip_prefix("ERR")?;
    let (kind, meaning) = match rest.trim().parse::<i32>() {
        Ok(code) => classify(code),
        Err(_) => (
            ErrorKind::Protocol,
            "an error reply without a readable code",
        ),
    };
    Some(DeviceError::new(
        kind,
        format!("the OBIS laser refused {command:?}: {reply} ({meaning})"),
    ))
}

/// Maps an OBIS error code to a kind and a short meaning.
fn classify(code: i32) -> (ErrorKind, &'static str) {
    match code {
        -100 => (ErrorKind::Protocol, "unrecognized command or query"),
        -102 => (ErrorKind::Protocol, "syntax error"),
        -109 => (ErrorKind::Protocol, "parameter missing"),
        -200 => (
            ErrorKind::Busy,
            "execution error: the laser refuses this in its present state, e.g. while emitting",
        ),
        -203 => (ErrorKind::ReadOnly, "command protected"),
        -220 => (ErrorKind::InvalidValue, "invalid parameter"),
        -221 => (
            ErrorKind::Busy,
            "settings conflict with the laser's present state",
        ),
        -241 => (
            ErrorKind::Disconnected,
            "device unavailable: no laser answers at this device index",
        ),
        -256 | -257 => (ErrorKind::Other, "file error"),
        -310 => (ErrorKind::Hardware, "system error"),
        -321 => (ErrorKind::Hardware, "out of memory"),
        -350 => (
            ErrorKind::Busy,
            "queue overflow: commands came faster than the laser handles them",
        ),
        -400 => (ErrorKind::Protocol, "query unavailable"),
        500 => (ErrorKind::Hardware, "CCB fault"),
        510 => (ErrorKind::Hardware, "I2C bus fault"),
        520 => (ErrorKind::Hardware, "controller time out"),
        900 => (ErrorKind::Hardware, "CCB message timed out"),
        _ => (ErrorKind::Other, "an error code this driver does not know"),
    }
}

/// A reply the driver cannot use.
pub(crate) fn garbled(command: &str, reply: &str, expected: &str) -> DeviceError {
    DeviceError::new(
        ErrorKind::Protocol,
        format!("the OBIS laser answered {command:?} with {reply:?}, expected {expected}"),
    )
}

/// A finite number, as the laser prints watts, nanometres and the like.
pub(crate) fn number(command: &str, reply: &str) -> Result<f64> {
    reply
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| garbled(command, reply, "a number"))
}

/// `ON` or `OFF`.
pub(crate) fn on_off(command: &str, reply: &str) -> Result<bool> {
    match reply.trim().to_ascii_uppercase().as_str() {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(garbled(command, reply, "ON or OFF")),
    }
}

/// A 32-bit word printed in hexadecimal, as `SYST:FAUL?` and `SYST:STAT?` answer.
pub(crate) fn hex_word(command: &str, reply: &str) -> Result<u32> {
    let t = reply.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if digits.is_empty() || digits.len() > 8 {
        return Err(garbled(command, reply, "a hexadecimal word"));
    }
    u32::from_str_radix(digits, 16).map_err(|_| garbled(command, reply, "a hexadecimal word"))
}

/// The bits of the `SYST:FAUL?` word.
pub(crate) const FAULT_BITS: &[(u32, &str)] = &[
    (0x0000_0001, "base plate temperature fault"),
    (0x0000_0002, "diode temperature fault"),
    (0x0000_0004, "internal temperature fault"),
    (0x0000_0008, "laser power supply fault"),
    (0x0000_0010, "I2C error"),
    (0x0000_0020, "over current"),
    (0x0000_0040, "laser checksum error"),
    (0x0000_0080, "checksum recovery"),
    (0x0000_0100, "buffer overflow"),
    (0x0000_0200, "warm-up limit fault"),
    (0x0000_0400, "TEC driver error"),
    (0x0000_0800, "CCB error"),
    (0x0000_1000, "diode temperature limit error"),
    (0x0000_2000, "laser ready fault"),
    (0x0000_4000, "photodiode fault"),
    (0x0000_8000, "fatal fault"),
    (0x0001_0000, "startup fault"),
    (0x0002_0000, "watchdog timer reset"),
    (0x0004_0000, "field calibration fault"),
    (0x0010_0000, "over power"),
    (0x4000_0000, "controller checksum fault"),
    (0x8000_0000, "controller status fault"),
];

/// The bits of the `SYST:STAT?` word.
pub(crate) const STATUS_BITS: &[(u32, &str)] = &[
    (0x0000_0001, "laser fault"),
    (0x0000_0002, "emission"),
    (0x0000_0004, "ready"),
    (0x0000_0008, "standby"),
    (0x0000_0010, "CDRH delay"),
    (0x0000_0020, "hardware fault"),
    (0x0000_0040, "error"),
    (0x0000_0080, "power calibration"),
    (0x0000_0100, "warm-up"),
    (0x0000_0200, "noise"),
    (0x0000_0400, "external operating mode"),
    (0x0000_0800, "field calibration"),
    (0x0000_1000, "laser power voltage"),
    (0x0200_0000, "controller standby"),
    (0x0400_0000, "controller interlock"),
    (0x0800_0000, "controller enumeration"),
    (0x1000_0000, "controller error"),
    (0x2000_0000, "controller fault"),
    (0x4000_0000, "remote active"),
    (0x8000_0000, "controller indicator"),
];

/// `word` as hex followed by the names of its set bits, or "none" for 0.
pub(crate) fn describe(word: u32, bits: &[(u32, &str)]) -> String {
    if word == 0 {
        return "none".into();
    }
    let mut names: Vec<String> = bits
        .iter()
        .filter(|(bit, _)| word & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let known = bits.iter().fold(0u32, |acc, (bit, _)| acc | bit);
    if word & !known != 0 {
        names.push(format!("unknown bits 0x{:08X}", word & !known));
    }
    format!("0x{word:08X}: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_carry_kind_and_code() {
        let e = device_error("X?", "ERR-100").unwrap();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.contains("ERR-100"), "{e}");
        let e = device_error("X", "ERR-350").unwrap();
        assert_eq!(e.kind, ErrorKind::Busy);
        assert!(e.message.contains("queue overflow"), "{e}");
        assert_eq!(
            device_error("X", "ERR500").unwrap().kind,
            ErrorKind::Hardware
        );
        assert!(device_error("X", "OK").is_none());
    }

    #[test]
    fn words_are_hex_and_described() {
        assert_eq!(hex_word("F", "00000003").unwrap(), 3);
        assert_eq!(hex_word("F", "0x80000000").unwrap(), 0x8000_0000);
        assert!(hex_word("F", "zz").is_err());
        assert!(hex_word("F", "123456789").is_err());
        assert_eq!(describe(0, FAULT_BITS), "none");
        let d = describe(0x0000_0003, FAULT_BITS);
        assert!(
            d.contains("base plate") && d.contains("diode temperature"),
            "{d}"
        );
        assert!(describe(0x0020_0000, FAULT_BITS).contains("unknown bits"));
    }

    #[test]
    fn numbers_and_switches() {
        assert_eq!(number("P?", "0.05000").unwrap(), 0.05);
        assert_eq!(number("P?", "5.0E-02").unwrap(), 0.05);
        assert!(number("P?", "nan").is_err());
        assert!(on_off("S?", "on").unwrap());
        assert_eq!(on_off("S?", "O").unwrap_err().kind, ErrorKind::Protocol);
    }
}
