//! The serial transport shared by microscoped's serial drivers.
//!
//! A [`Port`] is a cheap-to-clone handle to one serial port. The port itself lives on a thread
//! of its own, so several devices behind one controller (an XY stage, a focus drive and a
//! filter wheel on one ASI or Prior controller), each on its own device thread, share it
//! safely: their transactions are serialised there, one command and its reply at a time.
//!
//! Controllers of this kind speak line protocols: a command ends with a write terminator
//! (usually `\r`), a reply with a read terminator (`\r\n` or `\r`). Before every command the
//! port discards whatever input is waiting, so a late reply to an earlier command that timed out
//! can never be taken for the answer to this one.
//!
//! When the port fails (a USB-serial adapter unplugged), the handle reports
//! [`ErrorKind::Disconnected`] and every later transaction tries to open the path again, so
//! plugging the adapter back in brings the devices back without restarting the daemon.

pub mod emulate;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use microscoped_driver_api::{DeviceError, ErrorKind, Result, SettingError};
use serde::Deserialize;
use serialport::{SerialPort as _, TTYPort};

/// Parity, as the config names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// How to open and talk to a port, from the config's `[ports.NAME]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortSettings {
    /// The device path, e.g. `/dev/ttyUSB0` or a stable `/dev/serial/by-id/...` link.
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// Data bits, 5 to 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    pub stop_bits: u8,
    /// Appended to every command.
    pub write_terminator: String,
    /// Ends every reply.
    pub read_terminator: String,
    /// How long a reply may take, in milliseconds.
    pub timeout_ms: u64,
    /// Whether to reopen the path after the port fails.
    pub reconnect: bool,
}

impl Default for PortSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            write_terminator: "\r".into(),
            read_terminator: "\r\n".into(),
            timeout_ms: 500,
            reconnect: true,
        }
    }
}

impl PortSettings {
    /// Checks the settings; the error names the offending key.
    pub fn validate(&self) -> std::result::Result<(), SettingError> {
        if self.path.as_os_str().is_empty() {
            return Err(SettingError::new(
                "path",
                "a serial port needs a path, e.g. \"/dev/ttyUSB0\"",
            ));
        }
        if !(50..=4_000_000).contains(&self.baud) {
            return Err(SettingError::new(
                "baud",
                format!("{} is not a baud rate this daemon drives", self.baud),
            ));
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err(SettingError::new(
                "data_bits",
                format!("must be 5 to 8, got {}", self.data_bits),
            ));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Err(SettingError::new(
                "stop_bits",
                format!("must be 1 or 2, got {}", self.stop_bits),
            ));
        }
        if self.read_terminator.is_empty() {
            return Err(SettingError::new(
                "read_terminator",
                "must not be empty: replies end with it",
            ));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(SettingError::new(
                "timeout_ms",
                format!("must be 1 to 60000, got {}", self.timeout_ms),
            ));
        }
        Ok(())
    }

    fn open(&self) -> Result<TTYPort> {
        let path = self.path.to_string_lossy().into_owned();
        let builder = serialport::new(&path, self.baud)
            .data_bits(match self.data_bits {
                5 => serialport::DataBits::Five,
                6 => serialport::DataBits::Six,
                7 => serialport::DataBits::Seven,
                _ => serialport::DataBits::Eight,
            })
            .parity(match self.parity {
                Parity::None => serialport::Parity::None,
                Parity::Odd => serialport::Parity::Odd,
                Parity::Even => serialport::Parity::Even,
            })
            .stop_bits(if self.stop_bits == 2 {
                serialport::StopBits::Two
            } else {
                serialport::StopBits::One
            })
            .timeout(Duration::from_millis(self.timeout_ms));
        TTYPort::open(&builder).map_err(|e| open_error(&path, e))
    }
}

fn open_error(path: &str, e: serialport::Error) -> DeviceError {
    use serialport::ErrorKind as K;
    match e.kind() {
        // On unix serialport reports a port another program holds exclusively (EBUSY from
        // TIOCEXCL, or its lock) as NoDevice; a missing path is Io(NotFound).
        K::NoDevice => DeviceError::new(
            ErrorKind::Busy,
            format!("serial port {path} is in use by another program ({}): close it there first", e.description),
        ),
        K::Io(std::io::ErrorKind::NotFound) => DeviceError::new(
            ErrorKind::Disconnected,
            format!("serial port {path} does not exist: is the controller plugged in and the path right?"),
        ),
        K::Io(std::io::ErrorKind::PermissionDenied) => DeviceError::new(
            ErrorKind::Disconnected,
            format!("no permission to open serial port {path}: add the daemon's user to the port's group (often `dialout`)"),
        ),
        _ => DeviceError::new(
            ErrorKind::Disconnected,
            format!("cannot open serial port {path}: {}", e.description),
        ),
    }
}

/// One transaction for the port thread.
struct Request {
    /// The command, without its terminator.
    command: String,
    /// Whether a reply line is expected.
    expect_reply: bool,
    /// How long the reply may take.
    timeout: Duration,
    /// Where the outcome goes.
    reply: mpsc::SyncSender<Result<String>>,
}

/// A handle to a serial port owned by its own thread.
#[derive(Clone)]
pub struct Port {
    /// Transactions to the port thread.
    tx: mpsc::Sender<Request>,
    /// The path, for messages.
    path: String,
    /// The default reply timeout.
    timeout: Duration,
}

impl Port {
    /// Opens the port now (so a wrong path is reported at start) and starts its thread.
    pub fn open(settings: PortSettings) -> Result<Self> {
        let tty = settings.open()?;
        Ok(Self::start(settings, Some(tty)))
    }

    /// Wraps an already open port, such as one end of a pseudo-terminal pair in tests.
    pub fn from_tty(settings: PortSettings, tty: TTYPort) -> Self {
        Self::start(settings, Some(tty))
    }

    fn start(settings: PortSettings, tty: Option<TTYPort>) -> Self {
        let (tx, rx) = mpsc::channel::<Request>();
        let path = settings.path.display().to_string();
        let timeout = Duration::from_millis(settings.timeout_ms);
        let mut owner = Owner {
            settings,
            tty,
            buf: Vec::with_capacity(256),
        };
        // The thread ends when the last handle is dropped.
        let _ = std::thread::Builder::new()
            .name(format!("port-{path}"))
            .spawn(move || {
                while let Ok(req) = rx.recv() {
                    let outcome = owner.transact(&req);
                    let _ = req.reply.send(outcome);
                }
            });
        Self { tx, path, timeout }
    }

    /// The port's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Sends `command` and returns the reply line, without its terminator.
    pub fn query(&self, command: &str) -> Result<String> {
        self.transact(command, true, self.timeout)
    }

    /// Like [`Port::query`] with a timeout of its own, for commands the controller is slow to
    /// answer (homing, for one).
    pub fn query_timeout(&self, command: &str, timeout: Duration) -> Result<String> {
        self.transact(command, true, timeout)
    }

    /// Sends `command` and expects no reply.
    pub fn send(&self, command: &str) -> Result<()> {
        self.transact(command, false, self.timeout).map(|_| ())
    }

    fn transact(&self, command: &str, expect_reply: bool, timeout: Duration) -> Result<String> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Request {
                command: command.to_owned(),
                expect_reply,
                timeout,
                reply,
            })
            .map_err(|_| self.gone())?;
        answer.recv().map_err(|_| self.gone())?
    }

    fn gone(&self) -> DeviceError {
        DeviceError::new(
            ErrorKind::Disconnected,
            format!("the thread owning serial port {} has stopped", self.path),
        )
    }
}

/// The port thread's state.
struct Owner {
    /// How to (re)open the port.
    settings: PortSettings,
    /// The open port; `None` after a failure, until it is reopened.
    tty: Option<TTYPort>,
    /// The reply being read, reused.
    buf: Vec<u8>,
}

impl Owner {
    fn path(&self) -> String {
        self.settings.path.display().to_string()
    }

    fn transact(&mut self, req: &Request) -> Result<String> {
        if self.tty.is_none() {
            if !self.settings.reconnect {
                return Err(DeviceError::new(
                    ErrorKind::Disconnected,
                    format!("serial port {} is disconnected", self.path()),
                ));
            }
            self.tty = Some(self.settings.open()?);
        }
        let outcome = self.exchange(req);
        if let Err(e) = &outcome {
            if e.kind == ErrorKind::Disconnected {
                // Drop the dead handle; the next transaction reopens the path.
                self.tty = None;
            }
        }
        outcome
    }

    fn exchange(&mut self, req: &Request) -> Result<String> {
        let path = self.path();
        let Some(tty) = self.tty.as_mut() else {
            return Err(DeviceError::new(ErrorKind::Disconnected, "not open"));
        };
        let io = |e: std::io::Error| lost(&path, e);
        // Whatever is waiting is stale: a late reply to a command that timed out.
        let _ = tty.clear(serialport::ClearBuffer::Input);
        let mut line = Vec::with_capacity(req.command.len() + 2);
        line.extend_from_slice(req.command.as_bytes());
        line.extend_from_slice(self.settings.write_terminator.as_bytes());
        tty.write_all(&line).map_err(io)?;
        tty.flush().map_err(io)?;
        if !req.expect_reply {
            return Ok(String::new());
        }
        let term = self.settings.read_terminator.as_bytes();
        self.buf.clear();
        let deadline = Instant::now() + req.timeout;
        let mut byte = [0u8; 64];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DeviceError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no reply to {:?} on {path} within {} ms{}",
                        req.command,
                        req.timeout.as_millis(),
                        if self.buf.is_empty() {
                            String::new()
                        } else {
                            format!(" (got {:?} so far)", String::from_utf8_lossy(&self.buf))
                        }
                    ),
                ));
            }
            let _ = tty.set_timeout(left);
            match tty.read(&mut byte) {
                Ok(0) => return Err(lost(&path, std::io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    self.buf.extend_from_slice(&byte[..n]);
                    if let Some(end) = find(&self.buf, term) {
                        let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                        return Ok(text);
                    }
                    if self.buf.len() > 64 * 1024 {
                        return Err(DeviceError::new(
                            ErrorKind::Protocol,
                            format!(
                                "reply to {:?} on {path} runs past 64 KiB without a terminator",
                                req.command
                            ),
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(lost(&path, e)),
            }
        }
    }
}

fn lost(path: &str, e: std::io::Error) -> DeviceError {
    DeviceError::new(
        ErrorKind::Disconnected,
        format!("serial port {path} failed ({e}): unplugged? It is reopened on the next command"),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
