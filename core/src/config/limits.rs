//! A device table's facility safety limits (`limit_power_mw`, `soft_limits_um`, ...).

use microscoped_driver_api::DeviceKind;
use toml::de::DeValue;
use toml::Spanned;

use super::{ConfigError, Parser};

/// Facility safety limits of one device, narrower than what the hardware allows. The daemon
/// enforces them whatever a client asks (see [`crate::limits`]).
#[derive(Debug, Clone, Default)]
pub struct DeviceLimits {
    /// Lasers: the highest power setpoint, mW (`limit_power_mw`).
    pub power_mw: Option<Limit<f64>>,
    /// Cameras: the longest exposure, ms (`limit_exposure_ms`).
    pub exposure_ms: Option<Limit<f64>>,
    /// Single-axis stages: the positions a move may target, um (`soft_limits_um`).
    pub z_um: Option<Limit<(f64, f64)>>,
    /// XY stages: X positions a move may target, um (`soft_limits_x_um`).
    pub x_um: Option<Limit<(f64, f64)>>,
    /// XY stages: Y positions a move may target, um (`soft_limits_y_um`).
    pub y_um: Option<Limit<(f64, f64)>>,
}

impl DeviceLimits {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        self.power_mw.is_none()
            && self.exposure_ms.is_none()
            && self.z_um.is_none()
            && self.x_um.is_none()
            && self.y_um.is_none()
    }
}

/// One configured limit and where it is configured, so messages can send people there.
#[derive(Debug, Clone)]
pub struct Limit<T> {
    /// The limit.
    pub value: T,
    /// The place in the config (file, line, key); its message is empty.
    pub origin: ConfigError,
}

impl<T> Limit<T> {
    /// A config error at the limit's place.
    pub fn error(&self, message: String) -> ConfigError {
        ConfigError {
            message,
            ..self.origin.clone()
        }
    }

    /// "devices.Laser488.limit_power_mw (instrument.toml:40)", for messages to clients.
    pub fn place(&self) -> String {
        let o = &self.origin;
        let key = o.key.as_deref().unwrap_or("?");
        match o.line {
            Some(line) => format!("{key} ({}:{line})", o.file),
            None => format!("{key} ({})", o.file),
        }
    }
}

/// Facility safety limits a device table may have, and the kind of device each is for.
pub(super) const LIMIT_KEYS: &[(&str, DeviceKind)] = &[
    ("limit_power_mw", DeviceKind::Laser),
    ("limit_exposure_ms", DeviceKind::Camera),
    ("soft_limits_um", DeviceKind::Stage),
    ("soft_limits_x_um", DeviceKind::XYStage),
    ("soft_limits_y_um", DeviceKind::XYStage),
];

impl<'a> Parser<'a> {
    /// Reads a device's safety limits; each must suit the device's kind and make sense on its
    /// own. Whether it lies inside the hardware's range is checked when the daemon starts.
    pub(super) fn limits(
        &self,
        prefix: &str,
        kind: DeviceKind,
        raw: Vec<(&str, DeviceKind, Spanned<DeValue<'a>>)>,
    ) -> Result<DeviceLimits, ConfigError> {
        let mut limits = DeviceLimits::default();
        for (key, for_kind, value) in raw {
            let span = value.span();
            let full = format!("{prefix}.{key}");
            let origin = self.error(Some(span.clone()), Some(full.clone()), String::new());
            let bad = |message: String| ConfigError {
                message,
                ..origin.clone()
            };
            if kind != for_kind {
                return Err(bad(format!(
                    "{key} is for a {}; this device is a {}",
                    for_kind.as_str(),
                    kind.as_str()
                )));
            }
            if key.starts_with("soft_limits") {
                let (lo, hi): (f64, f64) =
                    self.deserialize(&full, span.clone(), value.into_inner())?;
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(bad(format!(
                        "must be [low, high] in micrometres with low < high, got [{lo}, {hi}]"
                    )));
                }
                let limit = Some(Limit {
                    value: (lo, hi),
                    origin,
                });
                match key {
                    "soft_limits_um" => limits.z_um = limit,
                    "soft_limits_x_um" => limits.x_um = limit,
                    _ => limits.y_um = limit,
                }
            } else {
                let v: f64 = self.deserialize(&full, span.clone(), value.into_inner())?;
                let ok = match key {
                    "limit_power_mw" => v.is_finite() && v >= 0.0,
                    _ => v.is_finite() && v > 0.0,
                };
                if !ok {
                    return Err(bad(format!(
                        "must be a number {} 0, got {v}",
                        if key == "limit_power_mw" { ">=" } else { ">" }
                    )));
                }
                let limit = Some(Limit { value: v, origin });
                match key {
                    "limit_power_mw" => limits.power_mw = limit,
                    _ => limits.exposure_ms = limit,
                }
            }
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::Config;

    #[test]
    fn safety_limit_keys() {
        let head = format!("{HEAD}[server]\nanonymous_loopback_admin = true\n");
        let c = Config::parse(
            &format!(
                "{head}[devices.L]\ndriver = \"sim.laser\"\nlimit_power_mw = 20\n\
                 [devices.XY]\ndriver = \"sim.xy_stage\"\nsoft_limits_x_um = [-100, 100.5]\n"
            ),
            "t.toml",
        )
        .unwrap();
        let l = c.devices[0].limits.power_mw.as_ref().unwrap();
        assert_eq!(l.value, 20.0);
        assert_eq!(l.place(), "devices.L.limit_power_mw (t.toml:7)");
        assert_eq!(
            c.devices[1].limits.x_um.as_ref().unwrap().value,
            (-100.0, 100.5)
        );
        assert!(c.devices[1].limits.y_um.is_none());
        for (text, key, says) in [
            (
                "[devices.C]\ndriver = \"sim.camera\"\nlimit_power_mw = 5\n",
                "devices.C.limit_power_mw",
                "for a laser",
            ),
            (
                "[devices.Z]\ndriver = \"sim.stage\"\nsoft_limits_um = [10, 5]\n",
                "devices.Z.soft_limits_um",
                "low < high",
            ),
            (
                "[devices.Z]\ndriver = \"sim.stage\"\nsoft_limits_um = 5\n",
                "devices.Z.soft_limits_um",
                "",
            ),
            (
                "[devices.C]\ndriver = \"sim.camera\"\nlimit_exposure_ms = 0\n",
                "devices.C.limit_exposure_ms",
                "> 0",
            ),
        ] {
            let e = err(&format!("{head}{text}"));
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(7), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }
}
