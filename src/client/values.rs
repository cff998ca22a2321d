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
        Some(Value::Float(f)) => show_number(*f),
        Some(Value::String(s)) => s.clone(),
        None => "(none)".into(),
    }
}

/// A number as a person reads it: at most 12 significant digits (a float's binary noise, as in
/// 0.30000000000000004, is not the device's precision), no trailing zeros, and scientific
/// notation when very large or very small (`1.79769e308`, not 309 digits).
pub fn show_number(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        // "inf", "-inf", "NaN", and "0" for -0.0.
        return if x == 0.0 { "0".into() } else { x.to_string() };
    }
    let magnitude = x.abs().log10().floor();
    if !(-4.0..15.0).contains(&magnitude) {
        let s = format!("{x:.5e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    let decimals = (11.0 - magnitude).max(0.0) as usize;
    let s = trim_zeros(&format!("{x:.decimals$}")).to_owned();
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// "1.2500" -> "1.25", "3.000" -> "3"; a number without a point is left alone.
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
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

    #[test]
    fn numbers_read_as_people_write_them() {
        for (x, shown) in [
            (2.5, "2.5"),
            (100.0, "100"),
            (0.1 + 0.2, "0.3"),
            (99.99999999999999, "100"),
            (-125.5, "-125.5"),
            (1234567.891, "1234567.891"),
            (0.00012, "0.00012"),
            (-0.0, "0"),
            (f64::MAX, "1.79769e308"),
            (1e-9, "1e-9"),
            (6.02214076e23, "6.02214e23"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(show_number(x), shown, "{x:?}");
        }
    }
}
