//! Property plumbing for the simulated devices: the driver API's, with "simulated" in the names.

use microscoped_driver_api::{DeviceError, PropertySpec, Result, Value};

/// The error for a property name the device does not have, listing the ones it has.
pub(crate) fn unknown(specs: &[PropertySpec], name: &str, device: &str) -> DeviceError {
    microscoped_driver_api::unknown_property(specs, name, &format!("simulated {device}"))
}

/// Checks a write against the device's own specs; see [`microscoped_driver_api::check_write`].
pub(crate) fn check_write(
    specs: &[PropertySpec],
    name: &str,
    value: &Value,
    device: &str,
) -> Result<Value> {
    microscoped_driver_api::check_write(specs, name, value, &format!("simulated {device}"))
}

/// The float in a checked float value.
pub(crate) fn float(name: &str, value: &Value) -> Result<f64> {
    value.as_f64(name)
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
