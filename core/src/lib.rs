//! microscoped-core: the domain of the microscoped daemon, without the wire.
//!
//! This crate knows nothing of gRPC or the terminal (no tonic, prost, hyper, tower, clap): the
//! root package `microscoped` holds the server, the client and the CLI, and converts at its
//! boundary. The crate boundary is what keeps prost types out of the domain.
//!
//! # Layout
//! - [`config`]: the instrument config (TOML), parsed, validated, errors with file:line:key.
//! - [`access`]: users and roles, tokens, the control lease, dataset readers, the audit log.
//! - [`error`]: the domain's refusal (a kind and a message) the server maps to a status.
//! - [`limits`]: facility safety limits wrapped around the drivers.
//! - [`drivers`]: turns device configs into running drivers.
//! - [`check`]: `microscoped check`: what `serve` would refuse, found without the hardware.
//! - [`host`]: the device host: one thread per device, command channel, timeouts, faults.
//! - [`ring`]: the preallocated frame ring between a camera and its consumers.
//! - [`priority`]: the frame path's threads yield to the control path's.
//! - [`acquire`]: the acquisition engine (sequences and plans), events, live rings.
//! - [`plan`]: useq-schema plans: parsed, expanded into events, validated, written back.
//! - [`presets`]: the config's presets, checked against the drivers and applied.
//! - [`storage`]: the streaming OME-TIFF writer, its sidecar and crash recovery.
//!
//! Leaves (they import nothing of the crate, so every module may use them):
//! - [`names`]: dataset, user and device name rules.
//! - [`role`]: what a user may do.
//! - [`time`]: microseconds since the epoch and ISO-8601.
//! - [`token`]: bearer tokens and their SHA-256.

pub mod access;
pub mod acquire;
pub mod check;
pub mod config;
pub mod drivers;
pub mod error;
pub mod host;
pub mod limits;
pub mod names;
pub mod plan;
pub mod presets;
pub mod priority;
pub mod registry;
pub mod ring;
pub mod role;
pub mod storage;
pub mod time;
pub mod token;
