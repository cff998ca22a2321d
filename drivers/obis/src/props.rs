//! Property plumbing: the driver API's, named for the OBIS laser.

use microscoped_driver_api::{DeviceError, PropertySpec, Result, Value};

/// The error for a property name the laser does not have, listing the ones it has.
pub(crate) fn unknown(specs: &[PropertySpec], name: &str) -> DeviceError {
    microscoped_driver_api::unknown_property(specs, name, "OBIS laser")
}

/// Checks a write against the specs; see [`microscoped_driver_api::check_write`].
pub(crate) fn check_write(specs: &[PropertySpec], name: &str, value: &Value) -> Result<Value> {
    microscoped_driver_api::check_write(specs, name, value, "OBIS laser")
}

/// The float in a checked float value.
pub(crate) fn float(name: &str, value: &Value) -> Result<f64> {
    value.as_f64(name)
}

/// The bool in a checked bool value.
pub(crate) fn boolean(name: &str, value: &Value) -> Result<bool> {
    value.as_bool(name)
}

/// The string in a checked string or enum value.
pub(crate) fn string<'a>(name: &str, value: &'a Value) -> Result<&'a str> {
    value.as_str(name)
}
