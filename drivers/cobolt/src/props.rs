//! Property plumbing: lookup, write checks and typed access.

use microscoped_driver_api::{DeviceError, ErrorKind, PropertySpec, Result, Value};

/// The error for a property name the laser does not have, listing the ones it has.
pub(crate) fn unknown(specs: &[PropertySpec], name: &str) -> DeviceError {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    DeviceError::not_found(format!(
        "the Cobolt laser has no property {name:?}; it has: {}",
        names.join(", ")
    ))
}

/// Checks a write against the specs and returns the value in the spec's type. The daemon
/// coerces before calling, but a driver must not trust its caller with the limits.
pub(crate) fn check_write(specs: &[PropertySpec], name: &str, value: &Value) -> Result<Value> {
    let spec = specs
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| unknown(specs, name))?;
    if spec.read_only {
        return Err(DeviceError::new(
            ErrorKind::ReadOnly,
            format!("{name} is read-only on the Cobolt laser"),
        ));
    }
    spec.coerce(value)
}

/// The float in a coerced float value.
pub(crate) fn float(name: &str, value: &Value) -> Result<f64> {
    match value {
        Value::Float(v) => Ok(*v),
        Value::Int(v) => Ok(*v as f64),
        other => Err(wrong_type(name, "a number", other)),
    }
}

/// The bool in a coerced bool value.
pub(crate) fn boolean(name: &str, value: &Value) -> Result<bool> {
    match value {
        Value::Bool(v) => Ok(*v),
        other => Err(wrong_type(name, "a bool", other)),
    }
}

/// The string in a coerced string or enum value.
pub(crate) fn string<'a>(name: &str, value: &'a Value) -> Result<&'a str> {
    match value {
        Value::String(v) => Ok(v),
        other => Err(wrong_type(name, "a string", other)),
    }
}

fn wrong_type(name: &str, expected: &str, got: &Value) -> DeviceError {
    DeviceError::invalid(format!(
        "{name} takes {expected}, not {} ({got})",
        got.type_name()
    ))
}
