//! What the daemon tells its service manager, in systemd's notify protocol (through the
//! `sd-notify` crate): `READY=1` once it serves, `STATUS=` lines on the way, `WATCHDOG=1`
//! keep-alives while it responds, `STOPPING=1` when shutdown begins. A daemon started without
//! `NOTIFY_SOCKET` (by hand, or by a test) has no [`Notifier`] and says nothing.
//!
//! The keep-alives are sent by a task on the daemon's runtime, and only after the runtime and
//! the acquisition engine have answered (see `run_notifying` in `lib.rs`): a daemon whose
//! runtime or engine hangs stops sending them, and systemd restarts it. A device that hangs
//! does not: the device host marks it faulted and the daemon goes on.

use std::time::Duration;

use sd_notify::NotifyState;

/// The service manager's end of the notify socket.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// How often to send a keep-alive: half the manager's watchdog timeout, as systemd
    /// advises; `None` when the manager runs no watchdog for this process.
    keep_alive: Option<Duration>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for, with the watchdog `WATCHDOG_USEC` sets (when
    /// `WATCHDOG_PID`, if set, is this process); `None` when nobody listens.
    pub fn from_env() -> Option<Self> {
        std::env::var_os("NOTIFY_SOCKET")?;
        Some(Self {
            keep_alive: sd_notify::watchdog_enabled()
                .filter(|t| !t.is_zero())
                .map(|t| t / 2),
        })
    }

    /// How often [`Notifier::alive`] should be called, if at all.
    pub fn keep_alive_interval(&self) -> Option<Duration> {
        self.keep_alive
    }

    /// `STATUS=`: what the daemon is doing, shown by `systemctl status`.
    pub fn status(&self, text: &str) {
        self.send(&[NotifyState::Status(text)]);
    }

    /// `READY=1` with the status that says where it serves.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `WATCHDOG=1`: the daemon responds.
    pub fn alive(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    fn send(&self, states: &[NotifyState]) {
        // A manager that stopped listening cannot be told; the daemon goes on regardless.
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "could not notify the service manager");
        }
    }
}
