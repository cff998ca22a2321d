//! `microscoped check FILE`: what `serve` would refuse, found without the hardware. The config
//! is read as `serve` reads it; the devices that need no hardware (simulated, or behind an
//! emulated port) are built and wrapped in their limits as `serve` builds them; the presets are
//! checked by the same code against those devices, and against what the settings of the others
//! declare (a state device's labels). One check, one verdict: every refusal here is the one
//! `serve` gives, word for word. What needs the hardware (that it answers, its own ranges, the
//! properties its driver reads from it) is listed, for `serve` to check.

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
    /// Devices that need their hardware, with what they need (a serial port and its path, a
    /// camera); their settings were checked, their presets only as far as the settings tell.
    pub on_hardware: Vec<(String, String)>,
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
                if let Some(declared) = dc.settings.declared_properties() {
                    specs.insert(&dc.name, (false, declared));
                }
                let needs = drivers::hardware(config, dc).unwrap_or_default();
                report.on_hardware.push((dc.name.clone(), needs));
            }
        }
    }
    check_presets(config, |name| match specs.get(name) {
        Some((true, s)) => Known::All(s),
        Some((false, s)) => Known::Some(s),
        None => Known::Nothing,
    })?;
    Ok(report)
}
