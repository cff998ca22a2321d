//! The typed property model every device exposes.

use std::fmt;

use crate::{DeviceError, Result};

/// A property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// On/off, open/closed.
    Bool(bool),
    /// Whole numbers: binning, counts, positions.
    Int(i64),
    /// Real numbers: exposure, power, speed.
    Float(f64),
    /// Text, and the chosen member of an enumeration.
    String(String),
}

impl Value {
    /// The name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Bool(_) => "bool",
            Self::Int(_) => "integer",
            Self::Float(_) => "float",
            Self::String(_) => "string",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(v) => write!(f, "{v}"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::String(v) => f.write_str(v),
        }
    }
}

/// The type of a property, with its limits.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyType {
    /// A boolean.
    Bool,
    /// An integer within inclusive limits.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A float within inclusive limits.
    Float {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// Free text.
    String,
    /// One of a fixed list of strings.
    Enum {
        /// The allowed values, in the order a user interface should show them.
        allowed: Vec<String>,
    },
}

/// An axis a stage moves along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// The X axis of an XY stage.
    X,
    /// The Y axis of an XY stage.
    Y,
    /// The one axis of a single-axis stage (a focus drive, mostly).
    Z,
}

impl Axis {
    /// "x", "y" or "z", for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X => "x",
            Self::Y => "y",
            Self::Z => "z",
        }
    }
}

/// The physical quantity a property's value is, for the daemon's facility safety limits: a
/// limit is checked on the quantity, so a property that sets laser power is capped whatever the
/// driver calls it. A driver tags every property whose value is one of these (with
/// [`PropertySpec::quantity`]); the value is then in the quantity's [`unit`](Quantity::unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// A laser's power setpoint, mW: writing it changes the power the laser emits.
    LaserPower,
    /// The highest power setpoint a laser accepts, mW (a cap below it lowers it).
    MaxLaserPower,
    /// A camera's exposure time, ms.
    Exposure,
    /// A stage's position along one axis, um: writing it moves the stage there.
    Position(Axis),
}

impl Quantity {
    /// The unit a tagged property's value is in.
    pub fn unit(self) -> &'static str {
        match self {
            Self::LaserPower | Self::MaxLaserPower => "mW",
            Self::Exposure => "ms",
            Self::Position(_) => "um",
        }
    }
}

/// What a property is: its name, type, unit and whether it can be written.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertySpec {
    /// The property's name, unique within its device.
    pub name: String,
    /// Its type and limits.
    pub ty: PropertyType,
    /// Unit of measure, if any ("ms", "um", "mW").
    pub unit: Option<String>,
    /// True when the property can only be read.
    pub read_only: bool,
    /// One sentence for people browsing the instrument.
    pub description: String,
    /// The limited quantity the value is, if any (see [`Quantity`]).
    pub quantity: Option<Quantity>,
}

impl PropertySpec {
    fn new(name: &str, ty: PropertyType) -> Self {
        Self {
            name: name.to_owned(),
            ty,
            unit: None,
            read_only: false,
            description: String::new(),
            quantity: None,
        }
    }

    /// A writable boolean property.
    pub fn bool(name: &str) -> Self {
        Self::new(name, PropertyType::Bool)
    }

    /// A writable integer property with inclusive limits.
    pub fn int(name: &str, min: i64, max: i64) -> Self {
        Self::new(name, PropertyType::Int { min, max })
    }

    /// A writable float property with inclusive limits.
    pub fn float(name: &str, min: f64, max: f64) -> Self {
        Self::new(name, PropertyType::Float { min, max })
    }

    /// A writable free-text property.
    pub fn string(name: &str) -> Self {
        Self::new(name, PropertyType::String)
    }

    /// A writable enumeration property.
    pub fn enumeration<S: AsRef<str>>(name: &str, allowed: &[S]) -> Self {
        let allowed = allowed.iter().map(|s| s.as_ref().to_owned()).collect();
        Self::new(name, PropertyType::Enum { allowed })
    }

    /// A state device's `position` (0-based) and `label` properties for its `labels`: every
    /// state driver lists these, and the daemon checks a config against them before the
    /// hardware answers (`microscoped check`).
    pub fn state(labels: &[String]) -> [Self; 2] {
        let last = labels.len() as i64 - 1;
        [
            Self::int("position", 0, last).describe("Current position, from 0"),
            Self::enumeration("label", labels)
                .describe("Label of the current position; setting it moves there"),
        ]
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = Some(unit.to_owned());
        self
    }

    /// Tags the property with the quantity its value is, and sets the unit to the quantity's:
    /// the daemon's safety limits then apply to it whatever its name.
    pub fn quantity(mut self, quantity: Quantity) -> Self {
        self.unit = Some(quantity.unit().to_owned());
        self.quantity = Some(quantity);
        self
    }

    /// Marks the property read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Sets the description.
    pub fn describe(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// Checks `value` against this spec and returns it in the spec's own type: an integer given
    /// for a float property is widened, anything else of the wrong type or outside the limits is
    /// an error whose message states what is allowed. Read-only is not checked here: the caller
    /// decides whether it is writing.
    pub fn coerce(&self, value: &Value) -> Result<Value> {
        let unit = self
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        match (&self.ty, value) {
            (PropertyType::Bool, Value::Bool(_)) => Ok(value.clone()),
            (PropertyType::Int { min, max }, Value::Int(v)) => {
                if v < min || v > max {
                    Err(DeviceError::out_of_range(format!(
                        "{} = {v} is out of range: allowed {min}..={max}{unit}",
                        self.name
                    )))
                } else {
                    Ok(value.clone())
                }
            }
            (PropertyType::Float { min, max }, Value::Float(_) | Value::Int(_)) => {
                let v = match value {
                    Value::Float(v) => *v,
                    Value::Int(v) => *v as f64,
                    _ => unreachable!("matched above"),
                };
                if !v.is_finite() || v < *min || v > *max {
                    Err(DeviceError::out_of_range(format!(
                        "{} = {v} is out of range: allowed {min}..={max}{unit}",
                        self.name
                    )))
                } else {
                    Ok(Value::Float(v))
                }
            }
            (PropertyType::String, Value::String(_)) => Ok(value.clone()),
            (PropertyType::Enum { allowed }, Value::String(s)) => {
                if allowed.iter().any(|a| a == s) {
                    Ok(value.clone())
                } else {
                    Err(DeviceError::invalid(format!(
                        "{} = {s:?} is not allowed: choose one of {}",
                        self.name,
                        allowed.join(", ")
                    )))
                }
            }
            (ty, v) => Err(DeviceError::invalid(format!(
                "{} takes {}, not {} ({v})",
                self.name,
                type_label(ty),
                v.type_name()
            ))),
        }
    }
}

/// The error for a property name a device does not have, listing the ones it has. `device`
/// names the device for people ("OBIS laser", "simulated camera").
pub fn unknown_property(specs: &[PropertySpec], name: &str, device: &str) -> DeviceError {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    DeviceError::not_found(format!(
        "the {device} has no property {name:?}; it has: {}",
        names.join(", ")
    ))
}

/// Checks a write against a device's own specs and returns the value in the spec's type. The
/// daemon checks before it calls, but a driver does not trust its caller with its limits.
pub fn check_write(
    specs: &[PropertySpec],
    name: &str,
    value: &Value,
    device: &str,
) -> Result<Value> {
    let spec = specs
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| unknown_property(specs, name, device))?;
    if spec.read_only {
        return Err(DeviceError::new(
            crate::ErrorKind::ReadOnly,
            format!("{name} is read-only on the {device}"),
        ));
    }
    spec.coerce(value)
}

impl Value {
    fn wrong_type(&self, name: &str, expected: &str) -> DeviceError {
        DeviceError::invalid(format!(
            "{name} takes {expected}, not {} ({self})",
            self.type_name()
        ))
    }

    /// The number in a value [`check_write`] returned for a float property (`name` is for the
    /// error message).
    pub fn as_f64(&self, name: &str) -> Result<f64> {
        match self {
            Self::Float(v) => Ok(*v),
            Self::Int(v) => Ok(*v as f64),
            _ => Err(self.wrong_type(name, "a number")),
        }
    }

    /// The integer in a value returned for an integer property.
    pub fn as_i64(&self, name: &str) -> Result<i64> {
        match self {
            Self::Int(v) => Ok(*v),
            _ => Err(self.wrong_type(name, "an integer")),
        }
    }

    /// The bool in a value returned for a bool property.
    pub fn as_bool(&self, name: &str) -> Result<bool> {
        match self {
            Self::Bool(v) => Ok(*v),
            _ => Err(self.wrong_type(name, "a bool")),
        }
    }

    /// The text in a value returned for a string or enum property.
    pub fn as_str(&self, name: &str) -> Result<&str> {
        match self {
            Self::String(v) => Ok(v),
            _ => Err(self.wrong_type(name, "a string")),
        }
    }
}

fn type_label(ty: &PropertyType) -> &'static str {
    match ty {
        PropertyType::Bool => "a bool",
        PropertyType::Int { .. } => "an integer",
        PropertyType::Float { .. } => "a number",
        PropertyType::String => "a string",
        PropertyType::Enum { .. } => "one of its allowed strings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn coerce_checks_type_and_limits() {
        let exposure = PropertySpec::float("exposure", 0.01, 1000.0).unit("ms");
        assert_eq!(exposure.coerce(&Value::Int(5)).unwrap(), Value::Float(5.0));
        let err = exposure.coerce(&Value::Float(2000.0)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::OutOfRange);
        assert!(err.message.contains("0.01..=1000 ms"), "{}", err.message);
        let err = exposure.coerce(&Value::Float(f64::NAN)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::OutOfRange);
        let err = exposure.coerce(&Value::String("x".into())).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidValue);

        let mode = PropertySpec::enumeration("mode", &["a", "b"]);
        assert!(mode.coerce(&Value::String("b".into())).is_ok());
        let err = mode.coerce(&Value::String("c".into())).unwrap_err();
        assert!(err.message.contains("a, b"), "{}", err.message);

        let bin = PropertySpec::int("binning", 1, 4);
        assert_eq!(
            bin.coerce(&Value::Int(5)).unwrap_err().kind,
            ErrorKind::OutOfRange
        );
        assert_eq!(
            bin.coerce(&Value::Float(2.0)).unwrap_err().kind,
            ErrorKind::InvalidValue
        );
    }
}
