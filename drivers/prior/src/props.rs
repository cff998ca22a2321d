//! Property plumbing and settings checks shared by the Prior devices.

use std::collections::HashSet;

use microscoped_driver_api::{DeviceError, PropertySpec, Result, Value};

/// A settings error: the key at fault and what is wrong with it.
pub use microscoped_driver_api::SettingError;

/// The error for a property name the device does not have, listing the ones it has.
pub(crate) fn unknown(specs: &[PropertySpec], name: &str, device: &str) -> DeviceError {
    microscoped_driver_api::unknown_property(specs, name, &format!("Prior {device}"))
}

/// Checks a write against the device's own specs; see [`microscoped_driver_api::check_write`].
pub(crate) fn check_write(
    specs: &[PropertySpec],
    name: &str,
    value: &Value,
    device: &str,
) -> Result<Value> {
    microscoped_driver_api::check_write(specs, name, value, &format!("Prior {device}"))
}

/// The integer in a checked integer value.
pub(crate) fn int(name: &str, value: &Value) -> Result<i64> {
    value.as_i64(name)
}

/// The bool in a checked bool value.
pub(crate) fn boolean(name: &str, value: &Value) -> Result<bool> {
    value.as_bool(name)
}

/// The string in a checked string or enum value.
pub(crate) fn string<'a>(name: &str, value: &'a Value) -> Result<&'a str> {
    value.as_str(name)
}

/// The `speed_percent` property: ProScan speeds are a percentage of the stage's maximum.
pub(crate) fn speed_spec(command: &str) -> PropertySpec {
    PropertySpec::int("speed_percent", 1, 100)
        .unit("%")
        .describe(&format!(
            "Maximum speed of the next moves, percent of the drive's top speed ({command})"
        ))
}

/// Turns a settings error into the constructor's error.
pub(crate) fn setting_error(device: &str, e: SettingError) -> DeviceError {
    DeviceError::invalid(format!("Prior {device} setting {}: {}", e.key, e.message))
}

/// Checks a `[min, max]` travel.
pub(crate) fn check_interval(
    key: &'static str,
    range: [f64; 2],
) -> std::result::Result<(), SettingError> {
    let [min, max] = range;
    if !min.is_finite() || !max.is_finite() || min >= max {
        return Err(SettingError::new(
            key,
            format!("must be [min, max] with finite min below max, got [{min}, {max}]"),
        ));
    }
    Ok(())
}

/// Checks a step size: finite, positive, not absurd.
pub(crate) fn check_step(key: &'static str, value: f64) -> std::result::Result<(), SettingError> {
    if value.is_finite() && value > 0.0 && value <= 1000.0 {
        Ok(())
    } else {
        Err(SettingError::new(
            key,
            format!("must be above 0 and at most 1000 um, got {value}"),
        ))
    }
}

/// Checks that a position lies inside a travel.
pub(crate) fn check_inside(
    key: &'static str,
    value: f64,
    range: [f64; 2],
) -> std::result::Result<(), SettingError> {
    if value.is_finite() && value >= range[0] && value <= range[1] {
        Ok(())
    } else {
        Err(SettingError::new(
            key,
            format!(
                "must lie inside the travel [{}, {}] um, got {value}",
                range[0], range[1]
            ),
        ))
    }
}

/// Checks a travel in micrometres maps onto controller units that fit the firmware's 32-bit
/// positions.
pub(crate) fn check_units(
    key: &'static str,
    range: [f64; 2],
    um_per_step: f64,
) -> std::result::Result<(), SettingError> {
    let limit = f64::from(i32::MAX);
    if range.iter().any(|v| (v / um_per_step).abs() > limit) {
        return Err(SettingError::new(key,
            format!("[{}, {}] um does not fit the controller's position counter at {um_per_step} um per unit", range[0], range[1]),
        ));
    }
    Ok(())
}

/// Checks a 1-based device number on the controller.
pub(crate) fn check_number(
    key: &'static str,
    value: u8,
    max: u8,
) -> std::result::Result<(), SettingError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(SettingError::new(
            key,
            format!("must be 1 to {max}, got {value}"),
        ))
    }
}

/// Checks position labels: 2..=64, non-empty, unique.
pub(crate) fn check_labels(labels: &[String]) -> std::result::Result<(), SettingError> {
    let n = labels.len();
    if !(2..=64).contains(&n) {
        return Err(SettingError::new(
            "labels",
            format!("must have 2..=64 entries, got {n}"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, label) in labels.iter().enumerate() {
        if label.trim().is_empty() {
            return Err(SettingError::new(
                "labels",
                format!("label {i} is empty: every position needs a name"),
            ));
        }
        if !seen.insert(label.as_str()) {
            return Err(SettingError::new(
                "labels",
                format!("label {label:?} appears more than once: labels must be unique"),
            ));
        }
    }
    Ok(())
}
