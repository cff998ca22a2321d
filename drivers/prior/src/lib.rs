//! Drivers for the Prior ProScan III controller: its XY stage ([`PriorXYStage`]), focus drive
//! ([`PriorZ`]), filter wheels ([`PriorFilterWheel`]) and shutters ([`PriorShutter`]), all
//! able to share one [`microscoped_serial::Port`].
//!
//! The port must use the ProScan's framing: `\r` as both write and read terminator (the
//! controller ends its replies with a bare carriage return), 9600 baud unless the controller's
//! `BAUD` was changed. Each constructor puts the controller in standard mode (`COMP,0`),
//! whose replies these drivers parse, and checks that its device is there.
//!
//! Refusals come back as `E,n`; [`error_kind`] maps the code to an
//! [`microscoped_driver_api::ErrorKind`] and every such error message carries the code and its
//! meaning from [`error_meaning`]. A reply the driver cannot parse is
//! [`microscoped_driver_api::ErrorKind::Protocol`] with the raw text in the message.
//!
//! [`emulator`] holds an emulated ProScan III for tests and demos.

#![warn(missing_docs)]

pub mod emulator;
mod props;
mod protocol;
mod stage;
mod wheel;

pub use props::SettingError;
pub use protocol::{error_kind, error_meaning};
pub use stage::{PriorXYStage, PriorXYStageSettings, PriorZ, PriorZSettings};
pub use wheel::{PriorFilterWheel, PriorFilterWheelSettings, PriorShutter, PriorShutterSettings};

#[cfg(test)]
mod tests;
