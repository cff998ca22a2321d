//! aravis's fake GigE Vision camera, for tests and benchmarks without hardware.
//!
//! [`start_fake_gige`] starts `ArvGvFakeCamera` in this process, listening on 127.0.0.1. It is
//! a real GigE Vision device as far as the driver can tell: discovery finds it on the loopback
//! interface as `Aravis-Fake-<serial>` (address 127.0.0.1), control goes over GVCP and frames
//! over GVSP on UDP. It draws a test pattern whose
//! brightness scales with exposure and gain (at 1 ms the frames came out constant, so use
//! 10 ms or more when content matters), offers Mono8 and Mono16 (and Bayer and
//! RGB formats the driver does not use), a 2048x2048 sensor with binning up to 16, exposure
//! 0.01..=10000 ms, gain 0..=10, a frame rate of 0.1..=1000 Hz, and software or line triggers.
//!
//! The GVCP port (3956) can only be bound once per address, so only one fake camera runs at a
//! time: [`start_fake_gige`] waits for the previous [`FakeGigE`] of this process to be dropped,
//! which lets parallel tests share the loopback interface safely.

use std::sync::{Mutex, MutexGuard};

use microscoped_driver_api::{DeviceError, ErrorKind, Result};

use crate::GenicamSettings;

/// One fake camera at a time per process (see the module documentation).
static FAKE_SLOT: Mutex<()> = Mutex::new(());

/// The address the fake camera listens on.
pub const FAKE_ADDRESS: &str = "127.0.0.1";

/// A running fake GigE Vision camera; it stops when dropped.
pub struct FakeGigE {
    camera: aravis::GvFakeCamera,
    serial: String,
    _slot: MutexGuard<'static, ()>,
}

impl std::fmt::Debug for FakeGigE {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGigE")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl FakeGigE {
    /// The id discovery lists it under: `Aravis-Fake-<serial>`.
    pub fn device_id(&self) -> String {
        format!("Aravis-Fake-{}", self.serial)
    }

    /// The address it listens on, which also works as a device id.
    pub fn address(&self) -> &'static str {
        FAKE_ADDRESS
    }

    /// Its serial number.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Driver settings that open this camera, otherwise the defaults.
    pub fn settings(&self) -> GenicamSettings {
        GenicamSettings {
            device_id: Some(self.device_id()),
            ..GenicamSettings::default()
        }
    }

    /// Makes the fake camera drop this fraction (0..=1) of its stream packets, to exercise
    /// packet resends and failed frames.
    pub fn set_packet_loss(&self, ratio: f64) {
        self.camera.set_gvsp_lost_ratio(ratio.clamp(0.0, 1.0));
    }

    /// The aravis fake camera itself.
    pub fn aravis(&self) -> &aravis::GvFakeCamera {
        &self.camera
    }
}

/// Starts aravis's fake GigE Vision camera with serial number `serial` on 127.0.0.1 and
/// returns once it listens. Blocks while another [`FakeGigE`] of this process is alive.
/// Failing to listen (port 3956 taken by another process, no loopback interface) is
/// [`ErrorKind::Disconnected`].
pub fn start_fake_gige(serial: &str) -> Result<FakeGigE> {
    if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(DeviceError::invalid(format!(
            "fake camera serial {serial:?} must be non-empty ASCII letters and digits"
        )));
    }
    let slot = FAKE_SLOT.lock().unwrap_or_else(|e| e.into_inner());
    // The default GenICam description is the one built into libaravis.
    let camera = aravis::GvFakeCamera::new_full(Some(FAKE_ADDRESS), Some(serial), None);
    if !camera.is_running() {
        return Err(DeviceError::new(
            ErrorKind::Disconnected,
            format!(
                "aravis fake GigE camera could not listen on {FAKE_ADDRESS}:3956 (GVCP): is the \
                 port taken by another process, or is there no loopback interface?"
            ),
        ));
    }
    Ok(FakeGigE {
        camera,
        serial: serial.to_owned(),
        _slot: slot,
    })
}
