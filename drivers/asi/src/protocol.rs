//! The ASI high-level serial protocol (MS-2000 reply syntax, which the Tiger TG-1000 also uses
//! by default): reply classification, the `:N-x` error codes and number formatting.

use microscoped_driver_api::{DeviceError, ErrorKind, Result};

/// What an `:N-x` error code means, and the [`ErrorKind`] the driver reports it as.
///
/// The codes and their meanings are ASI's (MS-2000 and TG-1000 programming manuals, "Error
/// Codes"). The kinds are this driver's choice:
///
/// | code | meaning | kind |
/// |---|---|---|
/// | 1 | unknown command | [`ErrorKind::Protocol`] |
/// | 2 | unrecognised axis parameter | [`ErrorKind::NotFound`] |
/// | 3 | missing parameters | [`ErrorKind::Protocol`] |
/// | 4 | parameter out of range | [`ErrorKind::OutOfRange`] |
/// | 5 | operation failed | [`ErrorKind::Hardware`] |
/// | 6 | undefined error | [`ErrorKind::Protocol`] |
/// | 7 | invalid card address (Tiger) | [`ErrorKind::NotFound`] |
/// | 11..=20 | filter wheel errors | [`ErrorKind::Hardware`] |
/// | 21 | serial command halted by HALT | [`ErrorKind::Other`] |
/// | others | reserved | [`ErrorKind::Other`] |
pub fn describe_error(code: u32) -> (ErrorKind, &'static str) {
    match code {
        1 => (ErrorKind::Protocol, "unknown command"),
        2 => (
            ErrorKind::NotFound,
            "unrecognised axis parameter (no such axis on this controller)",
        ),
        3 => (ErrorKind::Protocol, "missing parameters"),
        4 => (ErrorKind::OutOfRange, "parameter out of range"),
        5 => (ErrorKind::Hardware, "operation failed"),
        6 => (
            ErrorKind::Protocol,
            "undefined error (command is incorrect)",
        ),
        7 => (ErrorKind::NotFound, "invalid card address"),
        11..=20 => (ErrorKind::Hardware, "filter wheel error"),
        21 => (
            ErrorKind::Other,
            "serial command halted by the HALT command",
        ),
        _ => (ErrorKind::Other, "reserved error code"),
    }
}

/// The error for an `:N-code` reply to `command`.
pub(crate) fn device_error(code: u32, command: &str, who: &str) -> DeviceError {
    let (kind, meaning) = describe_error(code);
    DeviceError::new(
        kind,
        format!("{who}: the controller refused {command:?} with :N-{code} ({meaning})"),
    )
}

/// The error for a reply the driver cannot read.
pub(crate) fn garbled(raw: &str, command: &str, who: &str, why: &str) -> DeviceError {
    DeviceError::new(
        ErrorKind::Protocol,
        format!("{who}: unexpected reply {raw:?} to {command:?} ({why})"),
    )
}

/// What a reply line is, once its terminator is gone.
#[derive(Debug, PartialEq)]
pub(crate) enum Reply<'a> {
    /// `:A`, with whatever follows it, trimmed.
    Ack(&'a str),
    /// `:N-code`.
    Refused(u32),
}

/// Classifies a reply line; anything that is neither `:A...` nor `:N-<number>` is garbled.
pub(crate) fn classify<'a>(raw: &'a str, command: &str, who: &str) -> Result<Reply<'a>> {
    // Stray whitespace around a reply is harmless (some firmware pads WHERE replies).
    let line = raw.trim();
    if let Some(rest) = line.strip_prefix(":A") {
        // ":A" must stand alone or be followed by a space: ":AB" is not an acknowledgement.
        if rest.is_empty() || rest.starts_with(' ') {
            return Ok(Reply::Ack(rest.trim()));
        }
    }
    if let Some(code) = line.strip_prefix(":N-") {
        if let Ok(code) = code.trim().parse::<u32>() {
            return Ok(Reply::Refused(code));
        }
    }
    Err(garbled(
        raw,
        command,
        who,
        "expected \":A\" or \":N-<code>\"",
    ))
}

/// Reads the one number of a WHERE reply payload, in tenths of a micron, as micrometres.
/// Accepts `1234.5` and the `X=1234.5` form some firmware settings produce.
pub(crate) fn parse_position(payload: &str) -> Option<f64> {
    let mut tokens = payload.split_whitespace();
    let token = tokens.next()?;
    if tokens.next().is_some() {
        return None;
    }
    let number = token.split_once('=').map_or(token, |(_, v)| v);
    let tenths: f64 = number.parse().ok()?;
    tenths.is_finite().then_some(tenths / 10.0)
}

/// Reads a `RDSTAT axis` payload: the axis status byte in decimal.
pub(crate) fn parse_status_byte(payload: &str) -> Option<u8> {
    let token = payload.split_whitespace().next()?;
    let number = token.split_once('=').map_or(token, |(_, v)| v);
    number.parse().ok()
}

/// Reads a `SPEED axis?` payload, `X=1.500000`, as mm/s.
pub(crate) fn parse_speed(payload: &str, axis: char) -> Option<f64> {
    let token = payload.split_whitespace().next()?;
    let (letter, value) = token.split_once('=')?;
    if !letter.eq_ignore_ascii_case(&axis.to_string()) {
        return None;
    }
    let v: f64 = value.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A position in micrometres as the controller's tenths of a micron, to 0.01 um (the finest
/// step the controller reports).
pub(crate) fn tenths(um: f64) -> String {
    format!("{:.1}", um * 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified() {
        assert_eq!(classify(":A", "M", "t").unwrap(), Reply::Ack(""));
        assert_eq!(
            classify(":A 1234 5678 ", "W", "t").unwrap(),
            Reply::Ack("1234 5678")
        );
        assert_eq!(classify(":N-4", "M", "t").unwrap(), Reply::Refused(4));
        assert_eq!(classify(":N-21 ", "\\", "t").unwrap(), Reply::Refused(21));
        for bad in ["", ":", ":AB", ":N-", ":N-x", "A", "garbage"] {
            let e = classify(bad, "W X", "t").unwrap_err();
            assert_eq!(e.kind, ErrorKind::Protocol, "{bad:?}");
            assert!(e.message.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn numbers_are_read_and_written_in_tenths_of_microns() {
        assert_eq!(parse_position("1234.5"), Some(123.45));
        assert_eq!(parse_position("X=-20"), Some(-2.0));
        assert_eq!(parse_position(""), None);
        assert_eq!(parse_position("1 2"), None);
        assert_eq!(parse_position("1x"), None);
        assert_eq!(parse_status_byte("138"), Some(138));
        assert_eq!(parse_status_byte("300"), None);
        assert_eq!(parse_speed("X=1.500000", 'X'), Some(1.5));
        assert_eq!(parse_speed("Y=1.5", 'X'), None);
        assert_eq!(tenths(123.456), "1234.6");
        assert_eq!(tenths(-5.0), "-50.0");
    }

    #[test]
    fn every_code_has_a_kind() {
        assert_eq!(describe_error(1).0, ErrorKind::Protocol);
        assert_eq!(describe_error(2).0, ErrorKind::NotFound);
        assert_eq!(describe_error(4).0, ErrorKind::OutOfRange);
        assert_eq!(describe_error(5).0, ErrorKind::Hardware);
        assert_eq!(describe_error(99).0, ErrorKind::Other);
        let e = device_error(4, "M X=1", "ASI XY stage");
        assert!(e.message.contains(":N-4") && e.message.contains("out of range"));
    }
}
