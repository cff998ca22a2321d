//! Settings of a [`GenicamCamera`](crate::GenicamCamera), as they appear in the daemon's config.

use microscoped_driver_api::{SettingError, Settings};
use serde::Deserialize;

/// The pixel formats the driver delivers: unpacked monochrome only, because the daemon's frame
/// path knows u8 and little-endian u16 pixels and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum GenicamPixelFormat {
    /// 8 bits per pixel, one byte each.
    #[default]
    Mono8,
    /// 10 bits of data in a little-endian u16.
    Mono10,
    /// 12 bits of data in a little-endian u16.
    Mono12,
    /// 16 bits per pixel, little-endian u16.
    Mono16,
}

impl GenicamPixelFormat {
    /// Every format the driver knows, in the order a user interface should show them.
    pub const ALL: [GenicamPixelFormat; 4] =
        [Self::Mono8, Self::Mono10, Self::Mono12, Self::Mono16];

    /// The GenICam (PFNC) name, as in the `PixelFormat` feature and the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mono8 => "Mono8",
            Self::Mono10 => "Mono10",
            Self::Mono12 => "Mono12",
            Self::Mono16 => "Mono16",
        }
    }

    /// The format with GenICam name `name`, if the driver knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Bits of real data per pixel.
    pub fn bit_depth(self) -> u32 {
        match self {
            Self::Mono8 => 8,
            Self::Mono10 => 10,
            Self::Mono12 => 12,
            Self::Mono16 => 16,
        }
    }

    /// The pixel type of the frames in this format.
    pub fn pixel_type(self) -> microscoped_driver_api::PixelType {
        match self {
            Self::Mono8 => microscoped_driver_api::PixelType::U8,
            _ => microscoped_driver_api::PixelType::U16,
        }
    }

    /// The aravis pixel format code, to check what a buffer holds.
    pub(crate) fn aravis(self) -> aravis::PixelFormat {
        match self {
            Self::Mono8 => aravis::PixelFormat::MONO_8,
            Self::Mono10 => aravis::PixelFormat::MONO_10,
            Self::Mono12 => aravis::PixelFormat::MONO_12,
            Self::Mono16 => aravis::PixelFormat::MONO_16,
        }
    }
}

/// Settings of a GenICam camera.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenicamSettings {
    /// Which camera: an aravis device id ("Aravis-Fake-GV01", "Basler-21234567"), or for GigE
    /// Vision an IP address. None opens the first camera discovery finds.
    pub device_id: Option<String>,
    /// GigE Vision stream packet size in bytes, set explicitly at open
    /// (576..=16384; clamped to the camera's own limits). Aravis's automatic negotiation settles
    /// on 1400 bytes, which roughly halves the throughput a jumbo-frame link could carry. Ignored
    /// for USB3 Vision cameras.
    pub packet_size: u32,
    /// Stream buffers allocated once per stream (2..=1024): how many frames may wait between the
    /// network and `next_frame` before the camera's frames are dropped as underruns.
    pub buffers: usize,
    /// Pixel format at open.
    pub pixel_format: GenicamPixelFormat,
    /// Exposure at open, ms.
    pub exposure_ms: f64,
    /// Gain at open, in the camera's own unit; None leaves the camera's gain alone.
    pub gain: Option<f64>,
    /// Free-run frame rate at open, Hz; None leaves the camera's rate alone.
    pub frame_rate_hz: Option<f64>,
    /// Trigger at open: "off" (free run), "software", or the name of one of the camera's
    /// trigger sources such as "line0" (case does not matter).
    pub trigger: String,
    /// How long `snap` and `next_frame` wait for a frame before giving up, ms (1..=3600000).
    /// Not `timeout_ms`: that is every device's command timeout, read before the driver's own
    /// settings.
    pub frame_timeout_ms: u64,
}

impl Default for GenicamSettings {
    fn default() -> Self {
        Self {
            device_id: None,
            packet_size: DEFAULT_PACKET_SIZE,
            buffers: 16,
            pixel_format: GenicamPixelFormat::Mono8,
            exposure_ms: 10.0,
            gain: None,
            frame_rate_hz: None,
            trigger: "off".to_owned(),
            frame_timeout_ms: 5000,
        }
    }
}

/// The default GigE packet size: fits a 9000-byte jumbo-frame MTU with room for headers.
pub const DEFAULT_PACKET_SIZE: u32 = 8000;
/// Smallest packet size accepted: the smallest datagram every IPv4 host must take.
pub const MIN_PACKET_SIZE: u32 = 576;
/// Largest packet size accepted.
pub const MAX_PACKET_SIZE: u32 = 16_384;
/// Stream buffer limits.
const BUFFERS: std::ops::RangeInclusive<usize> = 2..=1024;
/// Longest exposure accepted in the settings, ms; the camera's own limit applies too.
const MAX_EXPOSURE_MS: f64 = 1e6;
/// Longest frame timeout accepted, ms (one hour).
const MAX_TIMEOUT_MS: u64 = 3_600_000;

impl Settings for GenicamSettings {
    /// Checks every setting that can be checked without the camera; the error names the first
    /// key at fault and says why. Limits that depend on the camera (exposure range, trigger
    /// sources) are checked when it opens.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        if let Some(id) = &self.device_id {
            if id.trim().is_empty() {
                return Err(SettingError::new(
                    "device_id",
                    "must not be empty: leave it out to open the first camera found",
                ));
            }
        }
        if !(MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(&self.packet_size) {
            return Err(SettingError::new(
                "packet_size",
                format!(
                    "must be within {MIN_PACKET_SIZE}..={MAX_PACKET_SIZE} bytes, got {}",
                    self.packet_size
                ),
            ));
        }
        if !BUFFERS.contains(&self.buffers) {
            return Err(SettingError::new(
                "buffers",
                format!(
                    "must be within {}..={}, got {}",
                    BUFFERS.start(),
                    BUFFERS.end(),
                    self.buffers
                ),
            ));
        }
        if !(self.exposure_ms.is_finite()
            && self.exposure_ms > 0.0
            && self.exposure_ms <= MAX_EXPOSURE_MS)
        {
            return Err(SettingError::new(
                "exposure_ms",
                format!(
                    "must be above 0 and at most {MAX_EXPOSURE_MS} ms, got {}",
                    self.exposure_ms
                ),
            ));
        }
        if let Some(gain) = self.gain {
            if !gain.is_finite() {
                return Err(SettingError::new(
                    "gain",
                    format!("must be a finite number, got {gain}"),
                ));
            }
        }
        if let Some(rate) = self.frame_rate_hz {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(SettingError::new(
                    "frame_rate_hz",
                    format!("must be a positive number of Hz, got {rate}"),
                ));
            }
        }
        if self.trigger.trim().is_empty() {
            return Err(SettingError::new(
                "trigger",
                "must be \"off\", \"software\" or a trigger source of the camera",
            ));
        }
        if self.frame_timeout_ms == 0 || self.frame_timeout_ms > MAX_TIMEOUT_MS {
            return Err(SettingError::new(
                "frame_timeout_ms",
                format!(
                    "must be within 1..={MAX_TIMEOUT_MS} ms, got {}",
                    self.frame_timeout_ms
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        GenicamSettings::default().validate().unwrap();
        let bad = [
            GenicamSettings {
                packet_size: 100,
                ..Default::default()
            },
            GenicamSettings {
                buffers: 1,
                ..Default::default()
            },
            GenicamSettings {
                exposure_ms: f64::NAN,
                ..Default::default()
            },
            GenicamSettings {
                frame_rate_hz: Some(0.0),
                ..Default::default()
            },
            GenicamSettings {
                frame_timeout_ms: 0,
                ..Default::default()
            },
            GenicamSettings {
                device_id: Some(" ".into()),
                ..Default::default()
            },
        ];
        let keys: Vec<_> = bad.iter().map(|s| s.validate().unwrap_err().key).collect();
        assert_eq!(
            keys,
            [
                "packet_size",
                "buffers",
                "exposure_ms",
                "frame_rate_hz",
                "frame_timeout_ms",
                "device_id"
            ]
        );
    }

    #[test]
    fn pixel_format_names_round_trip() {
        for f in GenicamPixelFormat::ALL {
            assert_eq!(GenicamPixelFormat::from_name(f.as_str()), Some(f));
        }
        assert_eq!(GenicamPixelFormat::from_name("RGB8"), None);
        assert_eq!(GenicamPixelFormat::Mono12.bit_depth(), 12);
    }
}
