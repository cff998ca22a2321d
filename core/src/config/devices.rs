//! `[devices.NAME]`: each device's driver, common keys and the driver's own settings.

use std::ops::Range;
use std::time::Duration;

use microscoped_asi as asi;
use microscoped_cobolt as cobolt;
use microscoped_driver_api::DeviceKind;
use microscoped_obis as obis;
use microscoped_prior as prior;
use microscoped_sim as sim;
use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

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
}

impl DeviceConfig {
    /// The kind of device the driver makes.
    pub fn kind(&self) -> DeviceKind {
        self.settings.kind()
    }
}

/// The settings of each driver the daemon knows.
#[derive(Debug, Clone)]
pub enum DriverSettings {
    /// `sim.camera`
    SimCamera(sim::SimCameraSettings),
    /// `sim.xy_stage`
    SimXYStage(sim::SimXYStageSettings),
    /// `sim.stage`
    SimStage(sim::SimStageSettings),
    /// `sim.laser`
    SimLaser(sim::SimLaserSettings),
    /// `sim.state`
    SimState(sim::SimStateDeviceSettings),
    /// `sim.shutter`
    SimShutter(sim::SimShutterSettings),
    /// `asi.xy_stage`
    AsiXYStage(asi::AsiXYStageSettings),
    /// `asi.stage`
    AsiStage(asi::AsiStageSettings),
    /// `prior.xy_stage`
    PriorXYStage(prior::PriorXYStageSettings),
    /// `prior.stage`
    PriorZ(prior::PriorZSettings),
    /// `prior.filter_wheel`
    PriorFilterWheel(prior::PriorFilterWheelSettings),
    /// `prior.shutter`
    PriorShutter(prior::PriorShutterSettings),
    /// `obis.laser`
    Obis(obis::ObisSettings),
    /// `cobolt.laser`
    Cobolt(cobolt::CoboltSettings),
    /// `genicam.camera`
    #[cfg(feature = "genicam")]
    Genicam(microscoped_genicam::GenicamSettings),
}

impl DriverSettings {
    /// The kind of device these settings make.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Self::SimCamera(_) => DeviceKind::Camera,
            Self::SimXYStage(_) => DeviceKind::XYStage,
            Self::SimStage(_) => DeviceKind::Stage,
            Self::SimLaser(_) => DeviceKind::Laser,
            Self::SimState(_) => DeviceKind::State,
            Self::SimShutter(_) => DeviceKind::Shutter,
            Self::AsiXYStage(_) | Self::PriorXYStage(_) => DeviceKind::XYStage,
            Self::AsiStage(_) | Self::PriorZ(_) => DeviceKind::Stage,
            Self::PriorFilterWheel(_) => DeviceKind::State,
            Self::PriorShutter(_) => DeviceKind::Shutter,
            Self::Obis(_) | Self::Cobolt(_) => DeviceKind::Laser,
            #[cfg(feature = "genicam")]
            Self::Genicam(_) => DeviceKind::Camera,
        }
    }

    /// A state device's labels, when its settings list them.
    pub fn labels(&self) -> Option<&[String]> {
        match self {
            Self::SimState(s) => Some(&s.labels),
            Self::PriorFilterWheel(s) => Some(&s.labels),
            _ => None,
        }
    }

    /// Whether the driver talks through a serial port.
    pub fn needs_port(&self) -> bool {
        #[cfg(feature = "genicam")]
        if matches!(self, Self::Genicam(_)) {
            return false;
        }
        !matches!(
            self,
            Self::SimCamera(_)
                | Self::SimXYStage(_)
                | Self::SimStage(_)
                | Self::SimLaser(_)
                | Self::SimState(_)
                | Self::SimShutter(_)
        )
    }
}

/// The drivers a config may name, with one line each for `check` and error messages.
pub const DRIVERS: &[(&str, &str)] = &[
    (
        "sim.camera",
        "simulated camera (noise, gradient or fluorescent beads)",
    ),
    ("sim.xy_stage", "simulated XY stage"),
    ("sim.stage", "simulated single-axis stage (focus)"),
    ("sim.laser", "simulated laser"),
    ("sim.state", "simulated filter wheel or turret"),
    ("sim.shutter", "simulated shutter"),
    ("asi.xy_stage", "ASI MS-2000 / Tiger XY stage (serial)"),
    (
        "asi.stage",
        "ASI MS-2000 / Tiger single axis, e.g. Z focus (serial)",
    ),
    ("prior.xy_stage", "Prior ProScan III XY stage (serial)"),
    ("prior.stage", "Prior ProScan III Z drive (serial)"),
    (
        "prior.filter_wheel",
        "Prior ProScan III filter wheel (serial)",
    ),
    ("prior.shutter", "Prior ProScan III shutter (serial)"),
    ("obis.laser", "Coherent OBIS laser (serial, SCPI)"),
    ("cobolt.laser", "Cobolt 06-series laser (serial)"),
    (
        "genicam.camera",
        "GenICam / GigE Vision camera through aravis (needs the genicam feature)",
    ),
];

/// Keys every device table has, whatever its driver.
const COMMON_DEVICE_KEYS: &[&str] = &["driver", "description", "timeout_ms", "port"];

/// Lets the parser validate driver settings the same way for every driver: the offending
/// key and what is wrong with it.
trait Validate {
    fn check(&self) -> Result<(), (String, String)>;
}

macro_rules! validate_sim {
    ($($t:ty),*) => {$(
        impl Validate for $t {
            fn check(&self) -> Result<(), (String, String)> {
                self.validate().map_err(|e| (e.key, e.message))
            }
        }
    )*};
}
validate_sim!(
    sim::SimCameraSettings,
    sim::SimXYStageSettings,
    sim::SimStageSettings,
    sim::SimLaserSettings,
    sim::SimStateDeviceSettings,
    sim::SimShutterSettings
);

macro_rules! validate_serial {
    ($($t:ty),*) => {$(
        impl Validate for $t {
            fn check(&self) -> Result<(), (String, String)> {
                self.validate().map_err(|(k, m)| (k.to_owned(), m))
            }
        }
    )*};
}
validate_serial!(
    asi::AsiXYStageSettings,
    asi::AsiStageSettings,
    prior::PriorXYStageSettings,
    prior::PriorZSettings,
    prior::PriorFilterWheelSettings,
    prior::PriorShutterSettings,
    obis::ObisSettings,
    cobolt::CoboltSettings
);
#[cfg(feature = "genicam")]
validate_serial!(microscoped_genicam::GenicamSettings);

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
        let settings = match driver.as_str() {
            "sim.camera" => {
                DriverSettings::SimCamera(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "sim.xy_stage" => {
                DriverSettings::SimXYStage(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "sim.stage" => {
                DriverSettings::SimStage(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "sim.laser" => {
                DriverSettings::SimLaser(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "sim.state" => {
                DriverSettings::SimState(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "sim.shutter" => {
                DriverSettings::SimShutter(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "asi.xy_stage" => {
                DriverSettings::AsiXYStage(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "asi.stage" => {
                DriverSettings::AsiStage(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "prior.xy_stage" => {
                DriverSettings::PriorXYStage(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "prior.stage" => {
                DriverSettings::PriorZ(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "prior.filter_wheel" => DriverSettings::PriorFilterWheel(self.settings(
                &prefix,
                &table,
                span.clone(),
                rest,
            )?),
            "prior.shutter" => {
                DriverSettings::PriorShutter(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "obis.laser" => {
                DriverSettings::Obis(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            "cobolt.laser" => {
                DriverSettings::Cobolt(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            #[cfg(feature = "genicam")]
            "genicam.camera" => {
                DriverSettings::Genicam(self.settings(&prefix, &table, span.clone(), rest)?)
            }
            #[cfg(not(feature = "genicam"))]
            "genicam.camera" => {
                return Err(self.error(
                    Some(driver_span),
                    Some(format!("{prefix}.driver")),
                    "this microscoped was built without GenICam support: build it with \
                     `cargo build --release --features genicam` (needs libaravis-dev)"
                        .into(),
                ))
            }
            other => {
                return Err(self.error(
                    Some(driver_span),
                    Some(format!("{prefix}.driver")),
                    format!("unknown driver {other:?}: choose one of {}", driver_names()),
                ))
            }
        };
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
        Ok(DeviceConfig {
            name,
            driver,
            description,
            timeout,
            port,
            settings,
            limits,
        })
    }

    /// Reads a driver's settings from what is left of the device table, then validates them.
    fn settings<T: DeserializeOwned + Validate>(
        &self,
        prefix: &str,
        table: &DeTable<'a>,
        span: Range<usize>,
        rest: DeValue<'a>,
    ) -> Result<T, ConfigError> {
        let settings: T = self
            .deserialize(prefix, span.clone(), rest)
            .map_err(|mut e| {
                if e.message.starts_with("unknown field") {
                    e.message = format!(
                        "{}; every device also takes {}",
                        e.message,
                        COMMON_DEVICE_KEYS.join(", ")
                    );
                }
                e
            })?;
        settings.check().map_err(|(key, message)| {
            let at = table
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|(_, v)| v.span())
                .unwrap_or(span);
            self.error(Some(at), Some(format!("{prefix}.{key}")), message)
        })?;
        Ok(settings)
    }
}

fn driver_names() -> String {
    DRIVERS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
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
