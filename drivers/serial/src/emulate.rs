//! Runs a protocol emulator on one end of a pseudo-terminal pair, so a driver can open the
//! other end by path as if it were a real controller. Used by every family's tests, and by the
//! daemon to run example instruments with no hardware.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serialport::{SerialPort as _, TTYPort};

/// What an emulated device sends back for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A reply line; the emulator appends the terminator.
    Line(String),
    /// Bytes exactly as given: for garbled or truncated replies in fault tests.
    Raw(Vec<u8>),
    /// Nothing at all (the device ignores the command, or is hung).
    Silent,
}

/// A one-shot misbehaviour an emulator puts into its next reply, for fault tests. Every
/// family's emulator queues these and applies them with [`Glitch::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glitch {
    /// Line noise instead of the reply, terminated so the driver reads it (the command still
    /// takes effect).
    Garbage,
    /// The first half of the reply's first line, then the terminator.
    Truncated,
    /// The first half of the reply's first line and no terminator: the rest was lost.
    Cut,
    /// No reply at all, and the command is not carried out: it was lost on the way. An
    /// emulator checks for this before it carries a command out.
    Silent,
}

impl Glitch {
    /// What the device sends instead of `reply`, whose lines end with `terminator`.
    pub fn apply(self, reply: Reply, terminator: &str) -> Reply {
        let bytes = match reply {
            Reply::Line(l) => l.into_bytes(),
            Reply::Raw(b) => b,
            Reply::Silent => Vec::new(),
        };
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

/// A device that answers line commands, as a controller's firmware does.
pub trait LineDevice: Send + 'static {
    /// Answers one command (without its terminator). May sleep to act slow.
    fn respond(&mut self, command: &str) -> Reply;
}

/// An emulator running on the far end of a pseudo-terminal.
pub struct Emulated {
    /// The path the driver opens.
    path: PathBuf,
    /// Tells the emulator thread to stop and close its end.
    stop: Arc<AtomicBool>,
    /// The emulator thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Emulated {
    /// Starts `device` behind a new pseudo-terminal. Commands end with `command_terminator`
    /// (e.g. "\r"); replies get `reply_terminator` (e.g. "\r\n").
    pub fn start(
        device: impl LineDevice,
        command_terminator: &str,
        reply_terminator: &str,
    ) -> std::io::Result<Self> {
        let (mut master, slave) = TTYPort::pair().map_err(std::io::Error::from)?;
        let path = PathBuf::from(
            slave
                .name()
                .ok_or_else(|| std::io::Error::other("pseudo-terminal has no name"))?,
        );
        // Raw mode on the driver's side: no echo, no line editing, bytes as sent.
        drop(slave);
        master
            .set_timeout(Duration::from_millis(50))
            .map_err(std::io::Error::from)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let cmd_term = command_terminator.as_bytes().to_vec();
            let reply_term = reply_terminator.as_bytes().to_vec();
            let mut device = device;
            std::thread::Builder::new()
                .name("emulator".into())
                .spawn(move || serve(&mut master, &mut device, &cmd_term, &reply_term, &stop))?
        };
        Ok(Self {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// The path a driver opens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the emulator and closes its end: the driver's side then fails as when a
    /// USB-serial adapter is unplugged.
    pub fn vanish(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    port: &mut TTYPort,
    device: &mut impl LineDevice,
    cmd_term: &[u8],
    reply_term: &[u8],
    stop: &AtomicBool,
) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        match port.read(&mut chunk) {
            Ok(0) => std::thread::sleep(Duration::from_millis(5)),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO while nobody has the other end open: wait for a driver to open it.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        while let Some(end) = pending.windows(cmd_term.len()).position(|w| w == cmd_term) {
            let command = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..end + cmd_term.len());
            let bytes = match device.respond(command.trim_matches(['\n', '\r'])) {
                Reply::Line(mut l) => {
                    l.push_str(&String::from_utf8_lossy(reply_term));
                    l.into_bytes()
                }
                Reply::Raw(b) => b,
                Reply::Silent => continue,
            };
            if port.write_all(&bytes).and_then(|_| port.flush()).is_err() {
                break;
            }
        }
    }
}
