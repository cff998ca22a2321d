//! `[devices.NAME]`: each device's driver, common keys and the driver's own settings.

use std::ops::Range;
use std::time::Duration;

use microscoped_driver_api::DeviceKind;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub use crate::registry::{DriverSettings, DRIVERS};

use super::limits::LIMIT_KEYS;
use super::ports::port_names;
use super::{remove_key, ConfigError, DeviceLimits, Parser, PortConfig};

/// How long a device command may take when the config does not say.
pub const DEFAULT_DEVICE_TIMEOUT: Duration = Duration::from_millis(2000);

/// One device: its name, its driver and the driver's settings.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Unique name clients use to address the device.
    pub name: String,
    /// The driver name as written in the config ("sim.camera").
    pub driver: String,
    /// Free text for people.
    pub description: String,
    /// How long one command may take before the device is marked faulted.
    pub timeout: Duration,
    /// The serial port it talks through, for serial drivers.
    pub port: Option<String>,
    /// The driver's own, validated settings.
    pub settings: DriverSettings,
    /// Facility safety limits, checked against the hardware when the daemon starts.
    pub limits: DeviceLimits,
    /// Where the device's table is (file, line, key `devices.NAME`); its message is empty.
    pub origin: ConfigError,
}

impl DeviceConfig {
    /// The kind of device the driver makes.
    pub fn kind(&self) -> DeviceKind {
        self.settings.kind()
    }

    /// A config error at the device's table, or at its setting `key` when given: for what is
    /// found wrong when the device is built (a driver refusing a setting, a device that does
    /// not start), so even that names the file, line and key.
    pub fn error(&self, key: Option<&str>, message: String) -> ConfigError {
        let mut e = ConfigError {
            message,
            ..self.origin.clone()
        };
        if let (Some(key), Some(table)) = (key, &e.key) {
            e.key = Some(format!("{table}.{key}"));
        }
        e
    }
}

/// Keys every device table has, whatever its driver.
const COMMON_DEVICE_KEYS: &[&str] = &["driver", "description", "timeout_ms", "port"];

impl<'a> Parser<'a> {
    pub(super) fn device(
        &self,
        name: Spanned<std::borrow::Cow<'a, str>>,
        value: Spanned<DeValue<'a>>,
        ports: &[PortConfig],
    ) -> Result<DeviceConfig, ConfigError> {
        let name_span = name.span();
        let name = name.into_inner().into_owned();
        let prefix = format!("devices.{name}");
        if !crate::names::valid_device_name(&name) {
            return Err(self.error(
                Some(name_span),
                Some(prefix),
                "a device name is 1 to 64 letters, digits, '_', '-' or '.'".into(),
            ));
        }
        let span = value.span();
        let DeValue::Table(mut table) = value.into_inner() else {
            return Err(self.error(
                Some(span),
                Some(prefix),
                "a device must be a table with at least a `driver` key".into(),
            ));
        };
        let driver = match remove_key(&mut table, "driver") {
            None => {
                return Err(self.error(
                    Some(span),
                    Some(format!("{prefix}.driver")),
                    format!(
                        "missing: every device names its driver, one of {}",
                        driver_names()
                    ),
                ))
            }
            Some(v) => self.string(&prefix, "driver", v)?,
        };
        let description = match remove_key(&mut table, "description") {
            None => String::new(),
            Some(v) => self.string(&prefix, "description", v)?.1,
        };
        let timeout = match remove_key(&mut table, "timeout_ms") {
            None => DEFAULT_DEVICE_TIMEOUT,
            Some(v) => {
                let vspan = v.span();
                match v
                    .get_ref()
                    .as_integer()
                    .and_then(|i| i.as_str().parse::<u64>().ok())
                {
                    Some(ms) if (1..=600_000).contains(&ms) => Duration::from_millis(ms),
                    _ => {
                        return Err(self.error(
                            Some(vspan),
                            Some(format!("{prefix}.timeout_ms")),
                            "must be a whole number of milliseconds from 1 to 600000".into(),
                        ))
                    }
                }
            }
        };
        let port = match remove_key(&mut table, "port") {
            None => None,
            Some(v) => Some(self.string(&prefix, "port", v)?),
        };
        let raw_limits: Vec<_> = LIMIT_KEYS
            .iter()
            .filter_map(|&(key, kind)| remove_key(&mut table, key).map(|v| (key, kind, v)))
            .collect();
        let (driver_span, driver) = driver;
        let rest = DeValue::Table(table.clone());
        let Some(entry) = crate::registry::driver(&driver) else {
            return Err(self.error(
                Some(driver_span),
                Some(format!("{prefix}.driver")),
                format!(
                    "unknown driver {driver:?}: choose one of {}",
                    driver_names()
                ),
            ));
        };
        let settings = self.settings(entry, &prefix, &table, span.clone(), driver_span, rest)?;
        let port = match (settings.needs_port(), port) {
            (true, Some((pspan, p))) => {
                if !ports.iter().any(|q| q.name == p) {
                    return Err(self.error(
                        Some(pspan),
                        Some(format!("{prefix}.port")),
                        format!(
                            "no [ports.{p}] table: name one of the config's ports ({})",
                            port_names(ports)
                        ),
                    ));
                }
                Some(p)
            }
            (true, None) => {
                return Err(self.error(
                    Some(span),
                    Some(format!("{prefix}.port")),
                    format!(
                        "missing: a serial device names the [ports.NAME] it talks through ({})",
                        port_names(ports)
                    ),
                ))
            }
            (false, Some((pspan, _))) => {
                return Err(self.error(
                    Some(pspan),
                    Some(format!("{prefix}.port")),
                    format!("driver {driver:?} takes no port"),
                ))
            }
            (false, None) => None,
        };
        let limits = self.limits(&prefix, settings.kind(), raw_limits)?;
        let origin = self.error(Some(name_span), Some(prefix), String::new());
        Ok(DeviceConfig {
            name,
            driver,
            description,
            timeout,
            port,
            settings,
            limits,
            origin,
        })
    }

    /// Reads a driver's settings from what is left of the device table, then validates them,
    /// through the driver's registry entry.
    fn settings(
        &self,
        entry: &'static crate::registry::Driver,
        prefix: &str,
        table: &DeTable<'a>,
        span: Range<usize>,
        driver_span: Range<usize>,
        rest: DeValue<'a>,
    ) -> Result<DriverSettings, ConfigError> {
        use crate::registry::Decoded;
        entry
            .decode(Spanned::new(span.clone(), rest))
            .map_err(|e| match e {
                Decoded::Serde(e) => {
                    let mut e = self.serde_error(prefix, span, e);
                    if e.message.starts_with("unknown field") {
                        e.message = format!(
                            "{}; every device also takes {}",
                            e.message,
                            COMMON_DEVICE_KEYS.join(", ")
                        );
                    }
                    e
                }
                Decoded::Invalid(e) => self.setting_error(prefix, table, span, e),
                Decoded::Missing(why) => self.error(
                    Some(driver_span),
                    Some(format!("{prefix}.driver")),
                    why.to_owned(),
                ),
            })
    }
}

fn driver_names() -> String {
    crate::registry::driver_names()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};

    #[test]
    fn unknown_driver() {
        let e = err(&format!("{HEAD}\n[devices.Cam]\ndriver = \"acme.cam\"\n"));
        assert_eq!(e.key.as_deref(), Some("devices.Cam.driver"));
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("sim.camera"), "{e}");
    }

    #[test]
    fn unknown_device_key() {
        let e = err(&format!(
            "{HEAD}\n[devices.Cam]\ndriver = \"sim.camera\"\nwidht = 5\n"
        ));
        assert_eq!(e.key.as_deref(), Some("devices.Cam.widht"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");
    }

    #[test]
    fn wrong_type() {
        let e = err(&format!(
            "{HEAD}\n[devices.Cam]\ndriver = \"sim.camera\"\nwidth = \"big\"\n"
        ));
        assert_eq!(e.key.as_deref(), Some("devices.Cam.width"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");
    }

    #[test]
    fn out_of_range_value() {
        let e = err(&format!(
            "{HEAD}\n[devices.L]\ndriver = \"sim.laser\"\n\nmax_power_mw = 10.0\npower_mw = 50.0\n"
        ));
        assert!(
            e.key.as_deref().unwrap_or("").starts_with("devices.L."),
            "{e}"
        );
        assert!(matches!(e.line, Some(7) | Some(8)), "{e}");
    }

    #[test]
    fn duplicate_device() {
        let e = err(&format!(
            "{HEAD}\n[devices.A]\ndriver = \"sim.shutter\"\n[devices.A]\ndriver = \"sim.shutter\"\n"
        ));
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.message.contains("duplicate") || e.message.contains("defined"),
            "{e}"
        );
    }

    #[test]
    fn missing_driver() {
        let e = err(&format!("{HEAD}\n[devices.A]\ntimeout_ms = 5\n"));
        assert_eq!(e.key.as_deref(), Some("devices.A.driver"), "{e}");
    }
}
