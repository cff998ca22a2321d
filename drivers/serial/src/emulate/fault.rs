//! The one set of faults every emulator can put into a reply.

use super::Reply;

/// A one-shot misbehaviour for the next command, for fault tests. Queue it with
/// [`Emulator::inject`](super::Emulator::inject); the emulator applies it the same way whatever
/// the device. (A port that vanishes altogether is [`Emulated::vanish`](super::Emulated::vanish).)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Line noise instead of the reply, terminated so the driver reads it (the command still
    /// takes effect).
    Garbage,
    /// The first half of the reply's first line, then the terminator (the command still takes
    /// effect).
    Truncated,
    /// The first half of the reply's first line and no terminator: the rest was lost (the
    /// command still takes effect).
    Cut,
    /// No reply at all, and the command is not carried out: it was lost on the way.
    Silent,
}

impl Fault {
    /// What the device sends instead of `reply`, whose lines end with `terminator`.
    pub(super) fn apply(self, reply: Reply, terminator: &str) -> Reply {
        let bytes = reply.into_bytes(terminator);
        let first_line = bytes
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .map_or(&bytes[..], |end| &bytes[..end]);
        let mut half = first_line[..first_line.len() / 2].to_vec();
        match self {
            Self::Garbage => {
                let mut noise = b"\x15#\xfe%?@~".to_vec();
                noise.extend_from_slice(terminator.as_bytes());
                Reply::Raw(noise)
            }
            Self::Truncated => {
                half.extend_from_slice(terminator.as_bytes());
                Reply::Raw(half)
            }
            Self::Cut => Reply::Raw(half),
            Self::Silent => Reply::Silent,
        }
    }
}
