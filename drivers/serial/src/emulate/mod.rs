//! The one emulator skeleton every serial driver family's protocol emulator runs on, so that a
//! driver can be tested (and the daemon run) against a controller that is not there.
//!
//! A vendor writes only how its device answers: a [`Responder`] with the device's state, its
//! [`Framing`] and `answer(command) -> Reply`. [`Emulator`] wraps it and owns everything else,
//! the same for every vendor:
//!
//! * the pseudo-terminal pair and the read loop ([`Emulator::start`] returns the running
//!   [`Emulated`], whose path a driver opens as if it were a real port; dropping it or
//!   [`Emulated::vanish`] closes it, as when an adapter is unplugged);
//! * framing: commands split on the command terminator, reply lines sent with the reply
//!   terminator;
//! * fault injection: [`Emulator::inject`] queues a [`Fault`] for the next command;
//! * the command log: [`Emulator::commands`] lists what the device received.
//!
//! A test keeps the [`Emulator`] (a cheap clone of the running one) to inject faults, read the
//! log and look at or change the device through [`Emulator::device`].
//!
//! # Layout
//! `mod.rs`: [`Responder`], [`Reply`], [`Framing`], [`Emulator`]; `fault.rs`: [`Fault`] and how it
//! garbles a reply; `pty.rs`: [`Emulated`], the pseudo-terminal and its read loop.

mod fault;
mod pty;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

pub use fault::Fault;
pub use pty::Emulated;

/// What an emulated device sends back for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// One reply line; the emulator appends the reply terminator.
    Line(String),
    /// Several reply lines (a value, then `OK`), each ended with the reply terminator.
    Lines(Vec<String>),
    /// Bytes exactly as given, for a device that does not frame its replies as lines.
    Raw(Vec<u8>),
    /// Nothing at all (the device ignores the command, or is hung).
    Silent,
}

impl Reply {
    /// The bytes on the wire, each line ended with `terminator`; none for [`Reply::Silent`].
    fn into_bytes(self, terminator: &str) -> Vec<u8> {
        match self {
            Self::Line(line) => [line.as_str(), terminator].concat().into_bytes(),
            Self::Lines(lines) => lines
                .iter()
                .flat_map(|l| [l.as_str(), terminator])
                .collect::<String>()
                .into_bytes(),
            Self::Raw(bytes) => bytes,
            Self::Silent => Vec::new(),
        }
    }
}

/// The line terminators of a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Ends every command the device receives (e.g. `"\r"`).
    pub command: &'static str,
    /// Ends every reply line the device sends (e.g. `"\r\n"`).
    pub reply: &'static str,
}

/// How one kind of device answers commands, as its firmware does: the only part of an emulator
/// a vendor writes.
pub trait Responder: Send + 'static {
    /// The protocol's terminators.
    const FRAMING: Framing;

    /// Carries out one command (without its terminator) and says what the device answers.
    fn answer(&mut self, command: &str) -> Reply;
}

/// A protocol emulator: a [`Responder`] plus its fault queue and command log. Clones share
/// one device, so a test keeps a clone to steer the copy that runs.
pub struct Emulator<R> {
    /// The state shared by every clone and the read loop.
    shared: Arc<Shared<R>>,
}

impl<R> Clone for Emulator<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// What the clones of one [`Emulator`] share.
struct Shared<R> {
    /// The emulated device, locked apart from the script so that a test holding it can still
    /// inject faults and read the log.
    device: Mutex<R>,
    /// The faults to come and the commands received.
    script: Mutex<Script>,
}

/// The part of an emulator that is the same for every device.
#[derive(Default)]
struct Script {
    /// Faults for the next commands, first first.
    faults: VecDeque<Fault>,
    /// Every command received, in order, without terminators.
    commands: Vec<String>,
}

/// Locks `m` even if a thread panicked while holding it: the data behind these locks is plain
/// state that stays usable, and a test that failed must not take the emulator down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R: Responder> Emulator<R> {
    /// An emulator of `device`, not yet running.
    pub fn new(device: R) -> Self {
        Self {
            shared: Arc::new(Shared {
                device: Mutex::new(device),
                script: Mutex::new(Script::default()),
            }),
        }
    }

    /// Runs this emulator (shared with `self`) behind a new pseudo-terminal, with the
    /// responder's framing.
    pub fn start(&self) -> std::io::Result<Emulated> {
        let this = self.clone();
        Emulated::spawn(R::FRAMING, move |command| this.respond(command))
    }

    /// What the device sends back for `command` (without its terminator): logs the command,
    /// then answers it unless a queued fault says otherwise. The read loop calls this for each
    /// command; unit tests of a responder may call it directly.
    pub fn respond(&self, command: &str) -> Reply {
        let fault = {
            let mut script = lock(&self.shared.script);
            script.commands.push(command.to_owned());
            script.faults.pop_front()
        };
        if fault == Some(Fault::Silent) {
            // The command was lost on the way: the device never sees it.
            return Reply::Silent;
        }
        let reply = lock(&self.shared.device).answer(command);
        match fault {
            Some(fault) => fault.apply(reply, R::FRAMING.reply),
            None => reply,
        }
    }

    /// Queues `fault` for the next command that has none yet.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.script).faults.push_back(fault);
    }

    /// Every command received so far, in order, without terminators.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.shared.script).commands.clone()
    }

    /// Forgets the commands received so far.
    pub fn clear_commands(&self) {
        lock(&self.shared.script).commands.clear();
    }

    /// The emulated device, to look at or change its state (a position, an interlock). Holds
    /// the device's lock: commands wait until the guard is dropped.
    pub fn device(&self) -> MutexGuard<'_, R> {
        lock(&self.shared.device)
    }
}
