//! Turning aravis errors into driver errors of the right kind.

use aravis::glib;
use microscoped_driver_api::{DeviceError, ErrorKind};

/// Maps an aravis error to a [`DeviceError`], with `what` (the operation) in the message.
///
/// GenICam node errors (`ArvGcError`) come from the camera's feature description: a value
/// outside a node's limits, a read-only node, a missing node. Device errors (`ArvDeviceError`)
/// come from the transport: timeouts, lost links, protocol failures.
pub(crate) fn map(what: &str, err: &glib::Error) -> DeviceError {
    let kind = if let Some(gc) = err.kind::<aravis::GcError>() {
        match gc {
            aravis::GcError::OutOfRange | aravis::GcError::InvalidLength => ErrorKind::OutOfRange,
            aravis::GcError::ReadOnly => ErrorKind::ReadOnly,
            aravis::GcError::NodeNotFound | aravis::GcError::PropertyNotDefined => {
                ErrorKind::NotFound
            }
            aravis::GcError::EnumEntryNotFound | aravis::GcError::EmptyEnumeration => {
                ErrorKind::InvalidValue
            }
            _ => ErrorKind::Protocol,
        }
    } else if let Some(dev) = err.kind::<aravis::DeviceError>() {
        match dev {
            aravis::DeviceError::Timeout => ErrorKind::Timeout,
            aravis::DeviceError::NotConnected | aravis::DeviceError::NotFound => {
                ErrorKind::Disconnected
            }
            aravis::DeviceError::FeatureNotFound => ErrorKind::NotFound,
            aravis::DeviceError::WrongFeature | aravis::DeviceError::InvalidParameter => {
                ErrorKind::InvalidValue
            }
            // Another application holds the control channel: it must let go first.
            aravis::DeviceError::NotController => ErrorKind::Busy,
            aravis::DeviceError::ProtocolError
            | aravis::DeviceError::TransferError
            | aravis::DeviceError::GenicamNotFound
            | aravis::DeviceError::NoStreamChannel => ErrorKind::Protocol,
            _ => ErrorKind::Other,
        }
    } else {
        ErrorKind::Other
    };
    DeviceError::new(kind, format!("{what}: {}", err.message()))
}

/// Shorthand for `.map_err(|e| map(what, &e))`.
pub(crate) trait Context<T> {
    /// Maps the error with [`map`].
    fn context(self, what: &str) -> Result<T, DeviceError>;
}

impl<T> Context<T> for Result<T, glib::Error> {
    fn context(self, what: &str) -> Result<T, DeviceError> {
        self.map_err(|e| map(what, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_error_domain() {
        let e = glib::Error::new(aravis::GcError::OutOfRange, "too big");
        let mapped = map("set Width", &e);
        assert_eq!(mapped.kind, ErrorKind::OutOfRange);
        assert_eq!(mapped.message, "set Width: too big");
        let e = glib::Error::new(aravis::DeviceError::Timeout, "no answer");
        assert_eq!(map("read", &e).kind, ErrorKind::Timeout);
        let e = glib::Error::new(aravis::DeviceError::NotController, "x");
        assert_eq!(map("write", &e).kind, ErrorKind::Busy);
        let e = glib::Error::new(glib::FileError::Noent, "x");
        assert_eq!(map("other", &e).kind, ErrorKind::Other);
    }
}
