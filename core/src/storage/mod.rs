//! Storage: the streaming OME-TIFF writer, its crash-recovery sidecar, `recover`, and reading
//! planes back (`read.rs`: one entry point per operation, dispatching on the image's format).
//!
//! [`OmeTiffWriter`] writes one image series as an uncompressed little-endian BigTIFF
//! (`.ome.tiff`), one strip and one IFD per plane, OME-XML (2016-06) in IFD 0's
//! ImageDescription. The TIFF structures are written directly (not with the `tiff` crate's
//! encoder) so that IFD 0 can be patched at finish and each plane costs one `pwrite` of the
//! caller's buffer plus three small ones.
//!
//! **The file is valid after every plane.** A plane's pixel data and its IFD are appended first;
//! only then is the previous IFD's next pointer (or the header's) patched to link it. A process
//! killed at any point leaves a TIFF whose chain holds every linked plane. Each plane's metadata
//! goes to an append-only sidecar `<file>.frames.jsonl` after the link; [`recover`] rebuilds
//! the OME-XML from it.
//!
//! **The XML is corrected at finish.** IFD 0 starts with the planned dataset;
//! [`OmeTiffWriter::finish`] appends XML describing exactly the planes written, patches IFD 0's
//! tag-270 entry to point to it, fsyncs, and removes the sidecar. Nothing is fsynced per plane.
//! In a plain sequence (SizeC = SizeZ = 1) plane i is T = i and SizeT = planes written. In a
//! multi-dimensional run SizeT = time points started; a run that fills the plan exactly gets one
//! `TiffData`, any other (stopped early, frames dropped) one `TiffData` per plane with explicit
//! FirstT/FirstC/FirstZ, so each plane keeps its true index (details in `xml.rs`).

mod layout;
mod ometiff;
mod read;
mod recover;
mod sidecar;
mod xml;

#[cfg(test)]
mod tests;

pub use ometiff::OmeTiffWriter;
pub use read::{describe, read_plane, Format, ImageInfo, PlaneAddress, PlaneData, ReadError};
pub use recover::{recover, RecoverReport};
pub use sidecar::sidecar_path;
// Re-exported from their leaf module for the callers that name them through storage.
pub use crate::time::{iso8601, unix_us};

use std::path::PathBuf;
use std::time::SystemTime;

use microscoped_driver_api::PixelType;

/// What is known about a dataset when it starts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DatasetMeta {
    /// The image name (the dataset name).
    pub name: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Pixel type.
    #[serde(with = "pixel_type_serde")]
    pub pixel_type: PixelType,
    /// Significant bits per pixel (e.g. 12 in u16).
    pub significant_bits: u32,
    /// Planned sizes; the written file is corrected at finish to what was written.
    pub size_t: u32,
    /// Planned channel count (each channel named in `channels`).
    pub size_c: u32,
    /// Planned z count.
    pub size_z: u32,
    /// OME DimensionOrder, e.g. "XYZCT" or "XYCZT".
    pub dimension_order: String,
    /// Sample-plane size of one (binned) pixel in micrometres, when known.
    pub physical_size_um: Option<f64>,
    /// The channels, `size_c` of them: name and light.
    pub channels: Vec<ChannelMeta>,
    /// Distance between z planes in micrometres (the plan's z step), for a z stack.
    #[serde(default)]
    pub physical_size_z_um: Option<f64>,
    /// Where on the stage the image was taken: the plan's position (and grid tile).
    #[serde(default)]
    pub stage_label: Option<StageLabel>,
    /// The instrument as OME describes it.
    pub instrument: InstrumentMeta,
    /// When the acquisition started.
    pub acquisition_date: SystemTime,
}

/// One channel: its name and the light the instrument used for it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(from = "RawChannel")]
pub struct ChannelMeta {
    /// The channel's name (a plan's channel preset, or the camera for a sequence).
    pub name: String,
    /// Excitation wavelength in nm: the laser's, when exactly one excites the channel.
    pub excitation_nm: Option<f64>,
    /// Emission wavelength in nm: the centre of the emission filter's band.
    pub emission_nm: Option<f64>,
}

impl ChannelMeta {
    /// A channel of which only the name is known.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// A channel as sidecars store it: a bare name in sidecars written before channels had light.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RawChannel {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        excitation_nm: Option<f64>,
        #[serde(default)]
        emission_nm: Option<f64>,
    },
}

impl From<RawChannel> for ChannelMeta {
    fn from(raw: RawChannel) -> Self {
        match raw {
            RawChannel::Name(name) => ChannelMeta::named(name),
            RawChannel::Full {
                name,
                excitation_nm,
                emission_nm,
            } => ChannelMeta {
                name,
                excitation_nm,
                emission_nm,
            },
        }
    }
}

/// The OME StageLabel of an image: the position's name and where it is, in micrometres.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageLabel {
    /// The plan position's name, or `p000` (with `_g000` for a grid tile).
    pub name: String,
    /// Stage X in µm.
    pub x_um: Option<f64>,
    /// Stage Y in µm.
    pub y_um: Option<f64>,
    /// Stage Z in µm.
    pub z_um: Option<f64>,
}

/// The instrument, for the OME Instrument element.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct InstrumentMeta {
    /// The camera, as an OME Detector (id "Detector:0").
    pub detector_model: String,
    /// The lasers, as OME Laser light sources.
    pub lasers: Vec<LaserMeta>,
    /// The objective, when configured.
    pub objective: Option<ObjectiveMeta>,
}

/// One laser light source.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LaserMeta {
    /// Device name.
    pub name: String,
    /// Wavelength in nm.
    pub wavelength_nm: f64,
    /// Power setpoint in mW at the start of the acquisition.
    pub power_mw: f64,
}

/// One objective.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ObjectiveMeta {
    /// Model / label ("60x/1.4 oil").
    pub model: String,
    /// Nominal magnification.
    pub magnification: Option<f64>,
    /// Numerical aperture.
    pub numerical_aperture: Option<f64>,
}

/// The most light sources whose power is recorded per plane. A fixed number keeps
/// [`PlaneMeta`] `Copy`, so the frame path never allocates for it.
pub const MAX_LIGHTS: usize = 8;

/// What is known about one plane when it is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlaneMeta {
    /// T index.
    pub the_t: u32,
    /// C index.
    pub the_c: u32,
    /// Z index.
    pub the_z: u32,
    /// Seconds since the first frame of the acquisition.
    pub delta_t_s: f64,
    /// Exposure in ms.
    pub exposure_ms: f64,
    /// Stage X in um.
    pub position_x_um: Option<f64>,
    /// Stage Y in um.
    pub position_y_um: Option<f64>,
    /// Stage Z in um.
    pub position_z_um: Option<f64>,
    /// The power each light source emitted, read back from the device, in mW; entry `i` is
    /// `DatasetMeta::instrument.lasers[i]` (0 when off). Written as a per-plane MapAnnotation.
    #[serde(default)]
    pub light_mw: [Option<f32>; MAX_LIGHTS],
}

/// Frame accounting stored in the dataset's metadata at finish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Frames the camera delivered.
    pub received: u64,
    /// Frames written to the file.
    pub written: u64,
    /// Frames lost (ring full, or lost in the camera/transport).
    pub dropped: u64,
}

/// Where a finished file ended up.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The .ome.tiff path.
    pub path: PathBuf,
    /// Planes in the file.
    pub planes: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

mod pixel_type_serde {
    use microscoped_driver_api::PixelType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &PixelType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match p {
            PixelType::U8 => "uint8",
            PixelType::U16 => "uint16",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PixelType, D::Error> {
        match String::deserialize(d)?.as_str() {
            "uint8" => Ok(PixelType::U8),
            "uint16" => Ok(PixelType::U16),
            other => Err(serde::de::Error::custom(format!(
                "unknown pixel type {other}"
            ))),
        }
    }
}
