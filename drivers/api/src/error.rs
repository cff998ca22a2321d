//! The error every driver method returns.

use std::fmt;

/// What kind of failure a driver reports, so generic code (the device host, the gRPC layer) can
/// react without knowing the driver. Drivers keep the detail in [`DeviceError::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The device did not answer in time.
    Timeout,
    /// The link to the device is gone (cable, port, adapter).
    Disconnected,
    /// A value is outside the device's limits (travel, power, exposure range).
    OutOfRange,
    /// A value has the wrong type or is not one of the allowed values.
    InvalidValue,
    /// The property or setting can be read but not written.
    ReadOnly,
    /// The named property, position label or setting does not exist.
    NotFound,
    /// The device is doing something else that must finish first.
    Busy,
    /// The device answered something the driver does not understand.
    Protocol,
    /// The device reports a fault of its own (interlock, over-temperature, motor fault).
    Hardware,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether this kind of error means the device can no longer be trusted until it is reset:
    /// the device host marks such a device faulted.
    pub fn is_fault(self) -> bool {
        matches!(self, Self::Timeout | Self::Disconnected | Self::Hardware)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Timeout => "timeout",
            Self::Disconnected => "disconnected",
            Self::OutOfRange => "out of range",
            Self::InvalidValue => "invalid value",
            Self::ReadOnly => "read-only",
            Self::NotFound => "not found",
            Self::Busy => "busy",
            Self::Protocol => "protocol error",
            Self::Hardware => "hardware fault",
            Self::Other => "error",
        };
        f.write_str(s)
    }
}

/// A driver error: a kind for generic handling and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    /// The kind, for code that decides what to do.
    pub kind: ErrorKind,
    /// What happened, phrased for the person reading the log or the client's error.
    pub message: String,
}

impl DeviceError {
    /// An error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Shorthand for an [`ErrorKind::OutOfRange`] error.
    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::OutOfRange, message)
    }

    /// Shorthand for an [`ErrorKind::InvalidValue`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidValue, message)
    }

    /// Shorthand for an [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for an [`ErrorKind::Hardware`] error.
    pub fn hardware(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Hardware, message)
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for DeviceError {}

/// The result of every driver call.
pub type Result<T> = std::result::Result<T, DeviceError>;
