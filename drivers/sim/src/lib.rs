//! A simulated microscope for microscoped: camera, XY and focus stages, lasers, filter wheel or
//! turret, and shutter, implementing the driver traits of `microscoped-driver-api`.
//!
//! # The world model
//!
//! The devices of one simulated instrument share a [`SimWorld`], created from a seed. Each device
//! registers its state there when it is built, and the camera renders what the others make of the
//! sample:
//!
//! - The sample is a field of fluorescent beads fixed in stage coordinates, generated lazily from
//!   the seed on square tiles, so it is the same whenever the stage returns to a place and equally
//!   dense over the whole travel. Each bead carries one of three dyes: blue (excited at 405 nm,
//!   emitting at 460), green (488/510) or red (561/610).
//! - The camera's field of view is centred on the first [`SimXYStage`]; sensor column `j` images
//!   stage x + (j - width/2) * pixel size, row `i` likewise in y.
//! - A bead's light is the sum over lasers that are on of power * exp(-((laser - excitation)/25
//!   nm)^2), times the emission filter's transmission (1 inside the passband of the current
//!   position of the first [`SimStateDevice`] that declares passbands, 0.02 outside, 1 when none
//!   does), times the exposure. Nothing is lit while any [`SimShutter`] is closed. A 10 mW matched
//!   laser at 10 ms gives an in-focus peak of about 2000 counts above the offset.
//! - Beads are Gaussian spots whose width grows with the distance of the first [`SimStage`] (the
//!   focus axis) from its `focus_z_um`; the light of a spot is conserved as it blurs.
//! - Motion is time-based: a move records where it started, where it goes, when it started and
//!   how long it takes at the configured speed, so positions follow real time with no threads.
//!   A wheel or turret takes `switch_ms` to change position.
//!
//! The camera adds its offset, shot noise and read noise, and clips to its bit depth. Besides
//! beads it can show a moving diagonal gradient or noise alone (the `pattern` setting).
//!
//! # Fault injection
//!
//! Every device has a `sim_fault` property for tests of the daemon's error handling. Setting it
//! to `"error"` makes the device's next call, whatever it is, fail with a hardware fault; setting
//! it to `"hang"` makes the next call block for the device's `hang_ms` and then fail with a
//! timeout. Either fires once and returns to `"none"`; reading or writing `sim_fault` itself never
//! fires it, so a client can set the hook and read it back.
//!
//! # Layout
//!
//! Each device lives in its own module with its settings struct ([`SimCameraSettings`] and so
//! on), which the daemon deserializes from the device's TOML table and which every constructor
//! validates, reporting the offending key in a [`SettingError`]. `world` holds the shared state,
//! `beads` the sample, `render` the image synthesis, `motion` the time-based moves, `fault` the
//! fault injection, `props` the property plumbing and `rng` a small seedable generator.

#![warn(missing_docs)]

mod beads;
mod camera;
mod fault;
mod laser;
mod motion;
mod props;
mod render;
mod rng;
mod setting;
mod shutter;
mod stage;
mod stamp;
mod state;
mod world;

#[cfg(test)]
mod tests;

pub use camera::{SimCamera, SimCameraSettings, SimPattern};
pub use laser::{SimLaser, SimLaserSettings};
pub use setting::SettingError;
pub use shutter::{SimShutter, SimShutterSettings};
pub use stage::{SimStage, SimStageSettings, SimXYStage, SimXYStageSettings};
pub use stamp::{Stamp, STAMP_PIXELS};
pub use state::{SimStateDevice, SimStateDeviceSettings};
pub use world::SimWorld;
