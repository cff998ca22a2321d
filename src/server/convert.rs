//! Conversions between the domain types and the generated protobuf types, and from domain errors
//! to gRPC statuses. The only place besides the service itself that sees prost types.

use microscoped_driver_api::{DeviceKind, PixelType, PropertySpec, PropertyType, Value};
use tonic::{Code, Status};

use crate::error::{Error, Kind};
use crate::host::Health;
use crate::pb;

/// The gRPC status a domain refusal stands for: the one mapping from domain errors (host,
/// acquisition and driver errors convert into [`Error`] in the core crate) to gRPC.
pub fn error_status(e: impl Into<Error>) -> Status {
    let e = e.into();
    Status::new(code(e.kind), crate::names::cap_message(e.message))
}

/// The gRPC code a kind of domain failure stands for.
pub fn code(kind: Kind) -> Code {
    match kind {
        Kind::InvalidArgument => Code::InvalidArgument,
        Kind::NotFound => Code::NotFound,
        Kind::AlreadyExists => Code::AlreadyExists,
        Kind::FailedPrecondition => Code::FailedPrecondition,
        Kind::PermissionDenied => Code::PermissionDenied,
        Kind::Unauthenticated => Code::Unauthenticated,
        Kind::ResourceExhausted => Code::ResourceExhausted,
        Kind::Unavailable => Code::Unavailable,
        Kind::DeadlineExceeded => Code::DeadlineExceeded,
        Kind::OutOfRange => Code::OutOfRange,
        Kind::DataLoss => Code::DataLoss,
        Kind::Unknown => Code::Unknown,
    }
}

/// A device kind as the API names it.
pub fn kind(k: DeviceKind) -> pb::DeviceKind {
    match k {
        DeviceKind::Camera => pb::DeviceKind::Camera,
        DeviceKind::Stage => pb::DeviceKind::Stage,
        DeviceKind::XYStage => pb::DeviceKind::XyStage,
        DeviceKind::Laser => pb::DeviceKind::Laser,
        DeviceKind::State => pb::DeviceKind::State,
        DeviceKind::Shutter => pb::DeviceKind::Shutter,
    }
}

/// A device's health as the API names it, with the fault reason.
pub fn health(h: Health) -> (pb::DeviceHealth, String) {
    match h {
        Health::Ok => (pb::DeviceHealth::Ok, String::new()),
        Health::Faulted(reason) => (pb::DeviceHealth::Faulted, reason),
    }
}

/// A pixel type as the API names it.
pub fn pixel_type(p: PixelType) -> pb::PixelType {
    match p {
        PixelType::U8 => pb::PixelType::U8,
        PixelType::U16 => pb::PixelType::U16,
    }
}

/// A property spec for the API.
pub fn property_spec(s: &PropertySpec) -> pb::PropertySpec {
    use pb::property_spec::Type;
    let ty = match &s.ty {
        PropertyType::Bool => Type::BoolType(pb::BoolType {}),
        PropertyType::Int { min, max } => Type::IntType(pb::IntType {
            min: *min,
            max: *max,
        }),
        PropertyType::Float { min, max } => Type::FloatType(pb::FloatType {
            min: *min,
            max: *max,
        }),
        PropertyType::String => Type::StringType(pb::StringType {}),
        PropertyType::Enum { allowed } => Type::EnumType(pb::EnumType {
            allowed: allowed.clone(),
        }),
    };
    pb::PropertySpec {
        name: s.name.clone(),
        r#type: Some(ty),
        unit: s.unit.clone().unwrap_or_default(),
        read_only: s.read_only,
        description: s.description.clone(),
    }
}

/// A property value for the API.
pub fn value_to_pb(v: Value) -> pb::Value {
    v.into()
}

/// A property value as JSON, for the audit log (null when absent).
pub fn value_json(v: &Option<pb::Value>) -> serde_json::Value {
    use pb::value::Kind;
    match v.as_ref().and_then(|v| v.kind.as_ref()) {
        Some(Kind::BoolValue(b)) => (*b).into(),
        Some(Kind::IntValue(i)) => (*i).into(),
        Some(Kind::FloatValue(f)) => (*f).into(),
        Some(Kind::StringValue(s)) => s.clone().into(),
        None => serde_json::Value::Null,
    }
}

/// A property value from the API; an absent value is the client's mistake, and so is a float
/// that is not a finite number.
pub fn value_from_pb(v: Option<pb::Value>, what: &str) -> Result<Value, Status> {
    let v = v.and_then(pb::Value::into_domain).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{what}: a value is required (bool_value, int_value, float_value or string_value)"
        ))
    })?;
    if let Value::Float(f) = v {
        finite(what, f)?;
    }
    Ok(v)
}

/// A float of a request, refused unless it is a finite number: the one check every handler
/// makes on a float the client sent. Protobuf carries NaN and infinities, and JSON (which plans
/// pass through) would turn them into `null`, a value "not set"; so a non-finite value is
/// refused with the field's name, never read as a default.
pub fn finite(field: &str, v: f64) -> Result<f64, Status> {
    if v.is_finite() {
        return Ok(v);
    }
    let what = if v.is_nan() {
        "NaN is not a number".to_owned()
    } else {
        format!("{v} is not finite")
    };
    Err(Status::invalid_argument(format!(
        "{field}: {what}; give a finite value"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscoped_driver_api::ErrorKind;

    #[test]
    fn user_mistakes_are_not_internal() {
        for kind in [
            ErrorKind::OutOfRange,
            ErrorKind::InvalidValue,
            ErrorKind::NotFound,
            ErrorKind::ReadOnly,
        ] {
            let code = code(kind.into());
            assert_ne!(code, Code::Internal);
            assert_ne!(code, Code::Unknown);
        }
        assert_eq!(code(ErrorKind::Timeout.into()), Code::DeadlineExceeded);
    }

    #[test]
    fn values_round_trip() {
        for v in [
            Value::Bool(true),
            Value::Int(-3),
            Value::Float(2.5),
            Value::String("GFP".into()),
        ] {
            assert_eq!(value_from_pb(Some(value_to_pb(v.clone())), "x").unwrap(), v);
        }
        let e = value_from_pb(None, "Camera.exposure_ms").unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
    }

    #[test]
    fn non_finite_floats_are_refused_by_name() {
        assert_eq!(finite("x", -0.5).unwrap(), -0.5);
        let e = finite("stage_positions[0].x", f64::NAN).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "stage_positions[0].x: NaN is not a number; give a finite value"
        );
        let e = finite("power_mw", f64::NEG_INFINITY).unwrap_err();
        assert_eq!(
            e.message(),
            "power_mw: -inf is not finite; give a finite value"
        );
        let e = value_from_pb(
            Some(value_to_pb(Value::Float(f64::INFINITY))),
            "Cam.exposure_ms",
        )
        .unwrap_err();
        assert!(e.message().starts_with("Cam.exposure_ms: inf"), "{e:?}");
    }
}
