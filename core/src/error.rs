//! The domain's refusal: what kind of failure it is and a message for a person. The server maps
//! the kind to a gRPC status in one place (`src/server/convert.rs` in the `microscoped` package);
//! nothing here knows of gRPC.

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
