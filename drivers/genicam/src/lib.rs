//! GenICam cameras (GigE Vision, USB3 Vision) for microscoped, through
//! [aravis](https://github.com/AravisProject/aravis).
//!
//! [`GenicamCamera`] implements the driver API's `Camera`. [`discover`] lists the cameras
//! aravis can see. [`testing`] starts aravis's own fake GigE Vision camera on the loopback
//! interface, so tests and benchmarks exercise the real GVCP/GVSP path without hardware.
//!
//! Needs libaravis 0.8 (Debian: `libaravis-dev`) to build.

#![warn(missing_docs)]

mod camera;
mod error;
mod frames;
mod settings;
pub mod testing;

use std::sync::Mutex;

use microscoped_driver_api::{DeviceError, ErrorKind, Result};

pub use camera::GenicamCamera;
pub use settings::{
    GenicamPixelFormat, GenicamSettings, DEFAULT_PACKET_SIZE, MAX_PACKET_SIZE, MIN_PACKET_SIZE,
};

/// aravis keeps its list of interfaces and devices in process-wide state that is not
/// thread-safe; every call that touches it (discovery, opening a device) holds this lock.
static ARAVIS_GLOBAL: Mutex<()> = Mutex::new(());

fn global_lock() -> std::sync::MutexGuard<'static, ()> {
    // The guarded state is aravis's, not ours: a panic elsewhere does not make it unusable.
    ARAVIS_GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A camera discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredCamera {
    /// The id to put in [`GenicamSettings::device_id`].
    pub id: String,
    /// Vendor name.
    pub vendor: String,
    /// Model name.
    pub model: String,
    /// Transport: "GigEVision" or "USB3Vision".
    pub protocol: String,
    /// Network address for GigE Vision cameras (also accepted as a device id).
    pub address: String,
}

/// Lists the cameras aravis finds now, with details. GigE Vision discovery broadcasts on every
/// network interface and waits for answers, so this takes up to about a second.
pub fn discover_details() -> Vec<DiscoveredCamera> {
    let _guard = global_lock();
    // SAFETY: `get_device_list` reads aravis's global device list, which is not thread-safe;
    // this crate is the process's only aravis user and serialises every such call on
    // ARAVIS_GLOBAL.
    let list = unsafe { aravis::get_device_list() };
    list.into_iter()
        .map(|d| DiscoveredCamera {
            id: d.id.to_string_lossy().into_owned(),
            vendor: d.vendor.to_string_lossy().into_owned(),
            model: d.model.to_string_lossy().into_owned(),
            protocol: d.protocol.to_string_lossy().into_owned(),
            address: d.address.to_string_lossy().into_owned(),
        })
        .collect()
}

/// Lists the device ids of the cameras aravis finds now (see [`discover_details`]).
pub fn discover() -> Vec<String> {
    discover_details().into_iter().map(|d| d.id).collect()
}

/// Opens a camera by id or address, or the first one found.
fn open(device_id: Option<&str>) -> Result<aravis::Camera> {
    let opened = {
        let _guard = global_lock();
        // Discover first, always. Opened from a stale list, aravis still reaches a GigE camera
        // but may pick the wrong local interface for the stream: with the fake camera on
        // 127.0.0.1 the control channel worked and no frame ever arrived. A fresh discovery
        // records which interface answered, and the stream goes there.
        // SAFETY: aravis's global device list is only touched under ARAVIS_GLOBAL (see
        // `discover_details`).
        let _ = unsafe { aravis::get_device_list() };
        aravis::Camera::new(device_id)
    };
    opened.map_err(|e| {
        let found = discover_details();
        let listing = if found.is_empty() {
            "discovery found no cameras".to_owned()
        } else {
            let ids: Vec<String> = found
                .iter()
                .map(|d| format!("{} ({} {}, {})", d.id, d.vendor, d.model, d.address))
                .collect();
            format!("discovery found: {}", ids.join("; "))
        };
        let which = device_id.map_or("any camera".to_owned(), |id| format!("camera {id:?}"));
        let mut err = error::map(&format!("cannot open {which}"), &e);
        // Not finding the camera is a missing link, whatever aravis calls it.
        if err.kind != ErrorKind::Busy {
            err.kind = ErrorKind::Disconnected;
        }
        DeviceError::new(err.kind, format!("{}; {listing}", err.message))
    })
}
