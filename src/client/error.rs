//! The one error of the client side: a daemon that cannot be reached, a request it refused, or
//! anything else (files, what was typed in).

use std::fmt;

/// Why a request to the daemon (or the work around it) failed.
#[derive(Debug)]
pub enum Error {
    /// The daemon could not be reached, or went away during a request (killed, stopped, the
    /// network gone).
    Connect(String),
    /// The daemon refused or failed the request.
    Refused {
        /// The gRPC code's canonical upper-case name ("NOT_FOUND"), as people search for it.
        code: &'static str,
        /// The daemon's own words.
        message: String,
    },
    /// Anything else: files, bad input on the command line.
    Other(anyhow::Error),
}

/// What the client side's calls return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The daemon's message for a refusal, or the whole text of any other error.
    pub fn message(&self) -> String {
        match self {
            Self::Refused { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(m) => f.write_str(m),
            Self::Refused { code, message } => write!(f, "{message} ({code})"),
            Self::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        // A status the daemon sent carries no source; one this side made from a broken
        // connection carries the transport's error (hyper, h2, io). The latter is no refusal:
        // "h2 protocol error ... (UNKNOWN)" told a user nothing.
        if std::error::Error::source(&s).is_some() {
            return Self::Connect(format!(
                "lost the connection to microscoped: the daemon went away (stopped or killed) or \
                 the network failed ({})",
                s.message()
            ));
        }
        Self::Refused {
            code: code_name(s.code()),
            message: s.message().to_owned(),
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Other(e.into())
    }
}

/// The gRPC code's canonical upper-case name.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_the_message_and_the_code() {
        let e = Error::from(tonic::Status::not_found("no device \"X\""));
        assert_eq!(e.to_string(), "no device \"X\" (NOT_FOUND)");
        assert_eq!(e.message(), "no device \"X\"");
    }

    #[test]
    fn a_broken_connection_is_no_refusal() {
        let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = Error::from(tonic::Status::from_error(Box::new(broken)));
        assert!(
            matches!(&e, Error::Connect(m) if m.contains("the daemon went away")),
            "{e}"
        );
    }
}
