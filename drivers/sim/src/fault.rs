//! Fault injection shared by every simulated device: the `sim_fault` property.

use std::thread;
use std::time::Duration;

use microscoped_driver_api::{DeviceError, ErrorKind, PropertySpec, Result, Value};

/// The name of the fault-injection property every simulated device has.
pub(crate) const FAULT_PROPERTY: &str = "sim_fault";

const MODES: [&str; 3] = ["none", "error", "hang"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Error,
    Hang,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Error => "error",
            Self::Hang => "hang",
        }
    }
}

/// A pending injected fault. Each device calls [`Fault::check`] first in every method, so an
/// armed fault fires on the very next call, whatever it is, and then disarms itself: the fault is
/// transient, like a glitch on a serial line, which lets tests exercise the daemon's recovery.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    mode: Mode,
    hang: Duration,
}

impl Fault {
    /// An unarmed fault whose hang lasts `hang_ms`.
    pub(crate) fn new(hang_ms: u64) -> Self {
        Self {
            mode: Mode::None,
            hang: Duration::from_millis(hang_ms),
        }
    }

    /// Fires the armed fault, if any: an error fails at once, a hang blocks the calling thread
    /// for the configured time first, as an unresponsive device would.
    pub(crate) fn check(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.mode, Mode::None) {
            Mode::None => Ok(()),
            Mode::Error => Err(DeviceError::hardware(
                "simulated hardware fault (sim_fault=error)",
            )),
            Mode::Hang => {
                thread::sleep(self.hang);
                Err(DeviceError::new(ErrorKind::Timeout, "simulated hang"))
            }
        }
    }

    /// Fires the armed fault unless `property` is the fault hook itself, so reading the hook back
    /// (as the daemon does after every write) neither fires nor disarms it.
    pub(crate) fn check_unless(&mut self, property: &str) -> Result<()> {
        if property == FAULT_PROPERTY {
            Ok(())
        } else {
            self.check()
        }
    }

    /// The property's spec, for the device's `properties()`.
    pub(crate) fn spec(&self) -> PropertySpec {
        PropertySpec::enumeration(FAULT_PROPERTY, &MODES).describe(&format!(
            "Test hook: \"error\" fails the next call with a hardware fault, \"hang\" blocks it \
             for {} ms then times out; either returns to \"none\" by itself",
            self.hang.as_millis()
        ))
    }

    /// The armed mode, as the property reads.
    pub(crate) fn get(&self) -> Value {
        Value::String(self.mode.as_str().to_owned())
    }

    /// Arms (or disarms, with "none") the fault. This never fires the pending fault: setting the
    /// hook must work even while it is armed.
    pub(crate) fn set(&mut self, value: &Value) -> Result<()> {
        let mode = match self.spec().coerce(value)? {
            Value::String(s) if s == "error" => Mode::Error,
            Value::String(s) if s == "hang" => Mode::Hang,
            _ => Mode::None,
        };
        self.mode = mode;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn error_fires_once() {
        let mut f = Fault::new(10);
        f.set(&Value::String("error".into())).unwrap();
        assert_eq!(f.get(), Value::String("error".into()));
        let err = f.check().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Hardware);
        assert!(err.message.contains("sim_fault=error"));
        assert!(f.check().is_ok());
        assert_eq!(f.get(), Value::String("none".into()));
    }

    #[test]
    fn hang_blocks_then_times_out() {
        let mut f = Fault::new(30);
        f.set(&Value::String("hang".into())).unwrap();
        let t = Instant::now();
        assert_eq!(f.check().unwrap_err().kind, ErrorKind::Timeout);
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(f.check().is_ok());
    }

    #[test]
    fn bad_mode_is_refused() {
        let mut f = Fault::new(10);
        let err = f.set(&Value::String("explode".into())).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidValue);
        assert!(f.check().is_ok());
    }
}
