//! The far end of a pseudo-terminal pair and the read loop that feeds an emulator commands.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serialport::{SerialPort as _, TTYPort};

use super::{Framing, Reply};

/// An emulator running on the far end of a pseudo-terminal. Dropping it stops the emulator.
pub struct Emulated {
    /// The path the driver opens.
    path: PathBuf,
    /// The protocol's terminators, for a port opened on `path`.
    framing: Framing,
    /// Tells the emulator thread to stop and close its end.
    stop: Arc<AtomicBool>,
    /// The emulator thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Emulated {
    /// Opens a pseudo-terminal pair and serves commands framed by `framing` with `respond` on
    /// a thread of its own.
    pub(super) fn spawn(
        framing: Framing,
        respond: impl FnMut(&str) -> Reply + Send + 'static,
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
            std::thread::Builder::new()
                .name("emulator".into())
                .spawn(move || serve(&mut master, respond, framing, &stop))?
        };
        Ok(Self {
            path,
            framing,
            stop,
            thread: Some(thread),
        })
    }

    /// The path a driver opens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The terminators a port opened on [`Emulated::path`] must use.
    pub fn framing(&self) -> Framing {
        self.framing
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

/// The read loop: splits what arrives into commands and writes back each reply.
fn serve(
    port: &mut TTYPort,
    mut respond: impl FnMut(&str) -> Reply,
    framing: Framing,
    stop: &AtomicBool,
) {
    let cmd_term = framing.command.as_bytes();
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
            let bytes = respond(command.trim_matches(['\n', '\r'])).into_bytes(framing.reply);
            if bytes.is_empty() {
                continue;
            }
            if port.write_all(&bytes).and_then(|_| port.flush()).is_err() {
                break;
            }
        }
    }
}
