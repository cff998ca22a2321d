//! `microscoped check FILE`: what `serve` would refuse, found without the hardware. The config
//! is read as `serve` reads it; the devices that need no hardware (simulated, or behind an
//! emulated port) are built and wrapped in their limits as `serve` builds them; the presets are
//! checked by the same code against those devices, and against what is known of the others: their
//! driver built against its protocol's emulator (property names, types, quantities, so facility
//! limits) and what their settings declare (a state device's labels). One check, one verdict:
//! every refusal here is the one `serve` gives, word for word. What needs the hardware (that it
//! answers, its own ranges) is listed, for `serve` to check.

use std::collections::HashMap;

use microscoped_driver_api::PropertySpec;

use crate::config::Config;
use crate::drivers::{self, Reach};
use crate::presets::{check_presets, Known};

/// What `check` found: the devices it built, and those only `serve` can reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Devices built as `serve` builds them, their limits and presets checked against them.
    pub built: Vec<String>,
    /// Devices that need their hardware; their settings were checked, their presets as far as
    /// can be without it.
    pub on_hardware: Vec<OnHardware>,
}

/// A device `check` could not build: it needs its hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnHardware {
    /// The device.
    pub name: String,
    /// What it needs, for people: a serial port and its path, a camera.
    pub needs: String,
    /// Whether its driver was built against its protocol's emulator, so its presets' property
    /// names, types and facility limits were checked (their ranges are the hardware's); if not,
    /// only what its settings declare (a filter wheel's labels).
    pub properties_known: bool,
}

/// Checks `config` as far as it can be without the hardware; the error is the one `serve`
/// would stop with.
pub fn check(config: &Config) -> anyhow::Result<Report> {
    let built = drivers::build_all(config, Reach::Offline)?;
    let mut report = Report::default();
    let mut specs: HashMap<&str, (bool, Vec<PropertySpec>)> = HashMap::new();
    for (dc, device) in config.devices.iter().zip(built.devices) {
        match device {
            Some(device) => {
                let mut device = crate::limits::apply(&dc.name, device, &dc.limits)?;
                specs.insert(&dc.name, (true, device.device().properties()));
                report.built.push(dc.name.clone());
            }
            None => {
                let declared = dc.settings.declared_properties().unwrap_or_default();
                let on_emulator = drivers::properties_on_emulator(dc);
                let properties_known = on_emulator.is_some();
                match on_emulator {
                    Some(mut all) => {
                        // What the settings say (labels) is exact; the emulator only shapes.
                        for spec in &mut all {
                            if let Some(d) = declared.iter().find(|d| d.name == spec.name) {
                                *spec = d.clone();
                            }
                        }
                        specs.insert(&dc.name, (true, all));
                    }
                    None if !declared.is_empty() => {
                        specs.insert(&dc.name, (false, declared));
                    }
                    None => {}
                }
                report.on_hardware.push(OnHardware {
                    name: dc.name.clone(),
                    needs: drivers::hardware(config, dc).unwrap_or_default(),
                    properties_known,
                });
            }
        }
    }
    check_presets(config, |name| match specs.get(name) {
        Some((true, s)) => Known::All(s),
        Some((false, s)) => Known::Only(s),
        None => Known::Nothing,
    })?;
    Ok(report)
}
