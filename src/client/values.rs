//! Property values as people type and read them.

use anyhow::{bail, Context};
use microscoped_driver_api::{PropertySpec, PropertyType, Value};

/// Parses what a person typed for a property into the value its spec asks for. Without a spec
/// the text is sent as a string and the daemon judges it.
pub fn parse_value(text: &str, spec: Option<&PropertySpec>) -> anyhow::Result<Value> {
    Ok(match spec.map(|s| &s.ty) {
        Some(PropertyType::Bool) => Value::Bool(match text.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" => false,
            _ => bail!("{text:?} is not a bool: write true/false, on/off, yes/no or 1/0"),
        }),
        Some(PropertyType::Int { .. }) => Value::Int(
            text.parse()
                .with_context(|| format!("{text:?} is not a whole number"))?,
        ),
        Some(PropertyType::Float { .. }) => Value::Float(
            text.parse()
                .with_context(|| format!("{text:?} is not a number"))?,
        ),
        _ => Value::String(text.to_owned()),
    })
}

/// A property value as a person reads it; "(none)" when the daemon sent none.
pub fn show_value(v: Option<&Value>) -> String {
    match v {
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Float(f)) => f.to_string(),
        Some(Value::String(s)) => s.clone(),
        None => "(none)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_value_follows_spec() {
        let spec = |ty| PropertySpec {
            name: "p".into(),
            ty,
            unit: None,
            read_only: false,
            description: String::new(),
            quantity: None,
        };
        let b = spec(PropertyType::Bool);
        assert_eq!(parse_value("on", Some(&b)).unwrap(), Value::Bool(true));
        assert!(parse_value("maybe", Some(&b)).is_err());
        let f = spec(PropertyType::Float { min: 0.0, max: 1.0 });
        assert_eq!(parse_value("2.5", Some(&f)).unwrap(), Value::Float(2.5));
        assert!(parse_value("x", Some(&f)).is_err());
        assert_eq!(
            parse_value("GFP", None).unwrap(),
            Value::String("GFP".into())
        );
    }

    #[test]
    fn values_read_as_typed() {
        assert_eq!(show_value(Some(&Value::Float(2.5))), "2.5");
        assert_eq!(show_value(Some(&Value::Bool(true))), "true");
        assert_eq!(show_value(None), "(none)");
    }
}
