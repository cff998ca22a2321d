//! microscoped drivers for ASI (Applied Scientific Instrumentation) MS-2000 and Tiger TG-1000
//! controllers: [`AsiXYStage`] for the XY stage and [`AsiStage`] for a single axis such as the
//! Z focus drive. Several devices of one controller share one [`microscoped_serial::Port`].
//!
//! # Protocol
//!
//! From ASI's serial command documentation (asiimaging.com/docs: commands MOVE, MOVREL, WHERE,
//! HALT, HOME, STATUS, RDSTAT, RDSBYTE, SPEED, SETHOME; the TG-1000 manual's "Error Codes" and
//! "TG-1000 and MS-2000's instruction set differences"), cross-checked against Micro-Manager's
//! ASIStage adapter:
//!
//! * Commands end with `\r`, replies with `\r\n`.
//! * Positions are tenths of a micron: `M X=12345 Y=-100` moves to (1234.5 um, -10 um), `R`
//!   moves by a distance, both answer `:A`. `W X` answers `:A 12345` (decimals possible).
//! * Errors are `:N-<code>`; see [`protocol::describe_error`] for the codes and the
//!   [`ErrorKind`](microscoped_driver_api::ErrorKind) each becomes.
//! * `RS X` (RDSTAT) answers the axis status byte in decimal; bit 0 is set while a commanded
//!   move (MOVE, MOVREL, HOME) runs. The driver uses it rather than `/` (STATUS), which reports
//!   every axis of the controller, so an XY stage is not "busy" while the focus drive moves.
//! * `\` (HALT) stops all motors, answering `:A`, or `:N-21` when it interrupted a move (which
//!   the driver takes as success). On a Tiger `<card>HALT` stops one card only.
//! * `! X Y` (HOME) answers `:A` and runs the axes to the home position, which by default lies
//!   beyond the positive travel, so they stop at the upper limit switch.
//! * `S X=1.5` sets the speed in mm/s; `S X?` answers `:A X=1.500000`.
//! * On a Tiger, axis-specific commands (M, R, W, !, S, RS) take no card address; card-addressed
//!   ones (HALT, BUILD) are prefixed with it (`2HALT`).
//!
//! Not confirmed from ASI's documents, and assumed: that a move beyond the controller's own
//! limits is refused with `:N-4` (it may instead run to the limit and stop); that a Tiger
//! answers an unknown command with `:N-6` (its manual says it never sends `:N-1`); that
//! `<card>BU` answers an unknown card with `:N-7`; Tiger card addresses beyond "9". The driver
//! needs the default (MS-2000) reply syntax, not Tiger's `VB F` syntax.

#![warn(missing_docs)]

mod axes;
pub mod emulator;
pub mod protocol;
mod stage;
mod xy;

pub use stage::{AsiStage, AsiStageSettings};
pub use xy::{AsiXYStage, AsiXYStageSettings};

#[cfg(test)]
mod tests;
