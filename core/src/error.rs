//! The domain's refusal: what kind of failure it is and a message for a person. The server maps
//! the kind to a gRPC status in one place (`src/server/convert.rs` in the `microscoped` package);
//! nothing here knows of gRPC. Every other domain error (device host, acquisitions, drivers)
//! converts into [`Error`] here, so the kind of a failure is decided once.

use microscoped_driver_api::ErrorKind;

use crate::acquire::AcqError;
use crate::host::HostError;
use crate::storage::ReadError;

/// What kind of failure an [`Error`] is, which decides the status a client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request itself is wrong (a bad value, a malformed plan).
    InvalidArgument,
    /// What the request names does not exist.
    NotFound,
    /// What the request would create exists already.
    AlreadyExists,
    /// The request is fine but the state is not (a lease held by someone else, a busy camera).
    FailedPrecondition,
    /// The caller's role may not do this.
    PermissionDenied,
    /// The request carries no identity the daemon accepts.
    Unauthenticated,
    /// Something runs out (disk space).
    ResourceExhausted,
    /// A device is faulted, gone or too busy to take the command now; trying later may work.
    Unavailable,
    /// A device did not answer in time.
    DeadlineExceeded,
    /// The request addresses past what there is (a plane not written yet); asking again
    /// later may work.
    OutOfRange,
    /// Data is lost or damaged (a file whose structure does not hold together).
    DataLoss,
    /// A failure that fits none of the above.
    Unknown,
}

impl From<ErrorKind> for Kind {
    /// What a driver's refusal means for the client: a user's mistake is never a fault.
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::OutOfRange | ErrorKind::InvalidValue => Kind::InvalidArgument,
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::ReadOnly | ErrorKind::Busy => Kind::FailedPrecondition,
            ErrorKind::Timeout => Kind::DeadlineExceeded,
            ErrorKind::Disconnected | ErrorKind::Hardware | ErrorKind::Protocol => {
                Kind::Unavailable
            }
            _ => Kind::Unknown,
        }
    }
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        let kind = match &e {
            HostError::NotFound { .. } => Kind::NotFound,
            HostError::WrongKind { .. } | HostError::NoSuchCamera(_) => Kind::InvalidArgument,
            HostError::Faulted { .. } | HostError::QueueFull { .. } => Kind::Unavailable,
            HostError::Timeout { .. } | HostError::QueueTimeout { .. } => Kind::DeadlineExceeded,
            HostError::InUse { .. } => Kind::FailedPrecondition,
            HostError::Device { error, .. } => error.kind.into(),
        };
        Error::new(kind, e.to_string())
    }
}

impl From<AcqError> for Error {
    fn from(e: AcqError) -> Self {
        match e {
            AcqError::Invalid(m) => Error::new(Kind::InvalidArgument, m),
            AcqError::AlreadyExists(m) => Error::new(Kind::AlreadyExists, m),
            AcqError::NotFound(m) => Error::new(Kind::NotFound, m),
            AcqError::Precondition(m) => Error::new(Kind::FailedPrecondition, m),
            AcqError::Plan(e) => Error::new(Kind::InvalidArgument, format!("invalid plan: {e}")),
            AcqError::NoSpace(m) => Error::new(Kind::ResourceExhausted, m),
            AcqError::Host(h) => h.into(),
        }
    }
}

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Self {
        let kind = match &e {
            ReadError::OutOfRange(_) => Kind::OutOfRange,
            ReadError::NotFound(_) => Kind::NotFound,
            ReadError::Corrupt(_) => Kind::DataLoss,
            ReadError::Unsupported(_) => Kind::FailedPrecondition,
            ReadError::Io(_) => Kind::Unknown,
        };
        Error::new(kind, e.to_string())
    }
}

/// A refusal from the domain: its [`Kind`] and a message that says what is allowed or what to
/// do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure.
    pub kind: Kind,
    /// For a person.
    pub message: String,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
