//! The drivers the daemon knows, one entry each: the name a config gives, what it makes, whether
//! it talks through a serial port, how its settings are read and checked, and how it is built.
//! The protocol emulators a port can run are listed here too. Adding a driver family is a new
//! crate under `drivers/`, its dependency in `core/Cargo.toml`, and its lines here; config
//! parsing (`config`), `microscoped check` and the device builder (`drivers`) all read this
//! table.
//!
//! It uses nothing of the crate (config reads it; see `core/tests/boundaries.rs`).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use microscoped_asi as asi;
use microscoped_cobolt as cobolt;
use microscoped_driver_api::{AnyDevice, DeviceError, DeviceKind, SettingError, Settings};
use microscoped_obis as obis;
use microscoped_prior as prior;
use microscoped_serial::emulate::Emulated;
use microscoped_serial::Port;
use microscoped_sim as sim;
use serde::de::DeserializeOwned;

/// One driver: what a config's `driver = "..."` names.
pub struct Driver {
    /// The name a config gives (`"sim.camera"`).
    pub name: &'static str,
    /// For people, in `microscoped check` and error messages.
    pub description: &'static str,
    /// The kind of device it makes.
    pub kind: DeviceKind,
    /// Whether the device talks through one of the config's `[ports.NAME]`.
    pub needs_port: bool,
    /// Whether the device is built with no hardware attached (the simulator), so
    /// `microscoped check` builds it as `serve` does. A serial device is too when its port is
    /// emulated.
    pub offline: bool,
    /// Reads the settings from the device's table (less the keys every device has) and checks
    /// them; `None` when this build cannot make the driver (a cargo feature left out).
    decode: Option<Decode>,
    /// Builds the device from its checked settings.
    build: Build,
    /// Why this build cannot make the driver, when `decode` is `None`.
    missing: &'static str,
    /// Settings keys this driver once took under another name, as (old, new): refused with a
    /// message naming the new one, so an old config says what to change.
    renamed: &'static [(&'static str, &'static str)],
    /// The protocol emulator ([`EMULATORS`]) that speaks this serial driver's protocol: what
    /// `check` builds the driver against to learn its properties when the hardware is away.
    pub emulator: Option<&'static str>,
}

/// The one name of a stage's travel and home in every driver, and what the simulator and the
/// Prior drivers called them before.
const XY_RENAMED: &[(&str, &str)] = &[
    ("x_range", "x_travel_um"),
    ("y_range", "y_travel_um"),
    ("x_range_um", "x_travel_um"),
    ("y_range_um", "y_travel_um"),
    ("home", "home_um"),
];
/// A laser's wavelength, which the driver checks the laser reports, as Cobolt's has always been.
const OBIS_RENAMED: &[(&str, &str)] = &[("expected_wavelength_nm", "wavelength_nm")];
const STAGE_RENAMED: &[(&str, &str)] = &[
    ("range", "travel_um"),
    ("range_um", "travel_um"),
    ("home", "home_um"),
];

/// Reads and checks one driver's settings from a deserializer of the device's table.
type Decode = fn(Table<'_>) -> Result<Arc<dyn AnySettings>, Decoded>;

/// Builds one device from the settings `decode` made.
type Build = fn(&DriverSettings, &mut Resources<'_>) -> Result<AnyDevice, BuildError>;

/// The deserializer config hands a driver's `decode`: the device's table, with spans.
pub type Table<'a> = toml::Spanned<toml::de::DeValue<'a>>;

/// Why a driver's settings were not accepted.
pub enum Decoded {
    /// The table does not deserialize into the settings (unknown or missing key, wrong type);
    /// the path says where.
    Serde(serde_path_to_error::Error<toml::de::Error>),
    /// The settings deserialize but one of them cannot be used.
    Invalid(SettingError),
    /// This build cannot make the driver.
    Missing(&'static str),
}

/// What building a device may need besides its settings.
pub struct Resources<'a> {
    /// The simulated instrument the simulated devices share.
    pub world: &'a sim::SimWorld,
    /// The device's serial port, opened, for drivers that need one.
    pub port: Option<Port>,
}

impl Resources<'_> {
    fn port(&mut self) -> Result<Port, BuildError> {
        self.port.take().ok_or(BuildError::NoPort)
    }
}

/// Why a device could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// A setting the driver refuses when it builds the device.
    Setting(SettingError),
    /// The device did not start (no answer, wrong firmware, ...).
    Start(DeviceError),
    /// A serial driver was given no port.
    NoPort,
}

impl From<SettingError> for BuildError {
    fn from(e: SettingError) -> Self {
        Self::Setting(e)
    }
}

impl From<DeviceError> for BuildError {
    fn from(e: DeviceError) -> Self {
        Self::Start(e)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setting(e) => write!(f, "invalid setting {}: {}", e.key, e.message),
            Self::Start(e) => write!(f, "could not be started: {}", e.message),
            Self::NoPort => f.write_str("no serial port was opened for it"),
        }
    }
}

/// A driver's checked settings, of the driver's own type, with the entry that reads them.
#[derive(Clone)]
pub struct DriverSettings {
    driver: &'static Driver,
    settings: Arc<dyn AnySettings>,
}

/// Settings the registry can hold without knowing their type.
trait AnySettings: Settings + fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Settings + fmt::Debug + Send + Sync + 'static> AnySettings for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl fmt::Debug for DriverSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(self.driver.name)
            .field(&self.settings)
            .finish()
    }
}

impl DriverSettings {
    /// The driver these settings are for.
    pub fn driver(&self) -> &'static Driver {
        self.driver
    }

    /// The kind of device these settings make.
    pub fn kind(&self) -> DeviceKind {
        self.driver.kind
    }

    /// Whether the driver talks through a serial port.
    pub fn needs_port(&self) -> bool {
        self.driver.needs_port
    }

    /// What a state device's settings declare of its properties: `position` and `label` for
    /// the labels they list, as its driver will give them (see [`PropertySpec::state`]), so a
    /// config is checked against them without the hardware. `None` for other devices.
    ///
    /// [`PropertySpec::state`]: microscoped_driver_api::PropertySpec::state
    pub fn declared_properties(&self) -> Option<Vec<microscoped_driver_api::PropertySpec>> {
        if self.kind() != DeviceKind::State {
            return None;
        }
        Some(microscoped_driver_api::PropertySpec::state(self.labels()?).to_vec())
    }

    /// A state device's labels, when its settings list them.
    pub fn labels(&self) -> Option<&[String]> {
        self.settings.labels()
    }

    /// Builds the device.
    pub fn build(&self, resources: &mut Resources<'_>) -> Result<AnyDevice, BuildError> {
        (self.driver.build)(self, resources)
    }

    /// The settings as the driver's own type. Only the entry's `build` asks, with its own type.
    fn get<T: Clone + 'static>(&self) -> T {
        self.settings
            .as_any()
            .downcast_ref::<T>()
            .cloned()
            .expect("a driver's build reads the settings type its decode made")
    }
}

impl Driver {
    /// Reads and checks this driver's settings from the device's table.
    pub fn decode(&'static self, table: Table<'_>) -> Result<DriverSettings, Decoded> {
        if let toml::de::DeValue::Table(t) = table.get_ref() {
            for (old, new) in self.renamed {
                if t.keys().any(|k| k.get_ref().as_ref() == *old) {
                    return Err(Decoded::Invalid(SettingError::new(
                        old,
                        format!(
                            "this setting is now called `{new}` (one name per meaning in every \
                             driver): rename `{old}` to `{new}`"
                        ),
                    )));
                }
            }
        }
        match self.decode {
            Some(decode) => decode(table).map(|settings| DriverSettings {
                driver: self,
                settings,
            }),
            None => Err(Decoded::Missing(self.missing)),
        }
    }
}

/// The generic half of every entry's `decode`: deserialize into `T` (the path names the key at
/// fault), then the driver's own checks.
fn decode<T>(table: Table<'_>) -> Result<Arc<dyn AnySettings>, Decoded>
where
    T: DeserializeOwned + Settings + fmt::Debug + Send + Sync + 'static,
{
    use serde::de::IntoDeserializer;
    let settings: T =
        serde_path_to_error::deserialize(table.into_deserializer()).map_err(Decoded::Serde)?;
    settings.validate().map_err(Decoded::Invalid)?;
    Ok(Arc::new(settings))
}

/// An entry whose settings are `T`.
const fn entry<T>(
    name: &'static str,
    description: &'static str,
    kind: DeviceKind,
    needs_port: bool,
    build: Build,
) -> Driver
where
    T: DeserializeOwned + Settings + fmt::Debug + Send + Sync + 'static,
{
    Driver {
        name,
        description,
        kind,
        needs_port,
        offline: !needs_port,
        decode: Some(decode::<T>),
        build,
        missing: "",
        renamed: &[],
        emulator: None,
    }
}

impl Driver {
    /// The entry of a device that is hardware without a serial port (a network camera).
    /// Only GenICam is, so a build without it has no use for this.
    #[cfg(feature = "genicam")]
    const fn on_hardware(mut self) -> Self {
        self.offline = false;
        self
    }

    /// The entry of a serial driver whose protocol the emulator `name` speaks.
    const fn emulated_by(mut self, name: &'static str) -> Self {
        self.emulator = Some(name);
        self
    }

    /// The entry, refusing `renamed` keys (old, new) with the new name.
    const fn renamed(mut self, renamed: &'static [(&'static str, &'static str)]) -> Self {
        self.renamed = renamed;
        self
    }
}

/// Every driver, in the order `microscoped check` lists them.
pub static DRIVERS: &[Driver] = &[
    entry::<sim::SimCameraSettings>(
        "sim.camera",
        "simulated camera (noise, gradient or fluorescent beads)",
        DeviceKind::Camera,
        false,
        |s, r| {
            Ok(AnyDevice::Camera(Box::new(sim::SimCamera::new(
                r.world,
                s.get(),
            )?)))
        },
    ),
    entry::<sim::SimXYStageSettings>(
        "sim.xy_stage",
        "simulated XY stage",
        DeviceKind::XYStage,
        false,
        |s, r| {
            Ok(AnyDevice::XYStage(Box::new(sim::SimXYStage::new(
                r.world,
                s.get(),
            )?)))
        },
    )
    .renamed(XY_RENAMED),
    entry::<sim::SimStageSettings>(
        "sim.stage",
        "simulated single-axis stage (focus)",
        DeviceKind::Stage,
        false,
        |s, r| {
            Ok(AnyDevice::Stage(Box::new(sim::SimStage::new(
                r.world,
                s.get(),
            )?)))
        },
    )
    .renamed(STAGE_RENAMED),
    entry::<sim::SimLaserSettings>(
        "sim.laser",
        "simulated laser",
        DeviceKind::Laser,
        false,
        |s, r| {
            Ok(AnyDevice::Laser(Box::new(sim::SimLaser::new(
                r.world,
                s.get(),
            )?)))
        },
    ),
    entry::<sim::SimStateDeviceSettings>(
        "sim.state",
        "simulated filter wheel or turret",
        DeviceKind::State,
        false,
        |s, r| {
            Ok(AnyDevice::State(Box::new(sim::SimStateDevice::new(
                r.world,
                s.get(),
            )?)))
        },
    ),
    entry::<sim::SimShutterSettings>(
        "sim.shutter",
        "simulated shutter",
        DeviceKind::Shutter,
        false,
        |s, r| {
            Ok(AnyDevice::Shutter(Box::new(sim::SimShutter::new(
                r.world,
                s.get(),
            )?)))
        },
    ),
    entry::<asi::AsiXYStageSettings>(
        "asi.xy_stage",
        "ASI MS-2000 / Tiger XY stage (serial)",
        DeviceKind::XYStage,
        true,
        |s, r| {
            Ok(AnyDevice::XYStage(Box::new(asi::AsiXYStage::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("asi"),
    entry::<asi::AsiStageSettings>(
        "asi.stage",
        "ASI MS-2000 / Tiger single axis, e.g. Z focus (serial)",
        DeviceKind::Stage,
        true,
        |s, r| {
            Ok(AnyDevice::Stage(Box::new(asi::AsiStage::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("asi"),
    entry::<prior::PriorXYStageSettings>(
        "prior.xy_stage",
        "Prior ProScan III XY stage (serial)",
        DeviceKind::XYStage,
        true,
        |s, r| {
            Ok(AnyDevice::XYStage(Box::new(prior::PriorXYStage::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("prior")
    .renamed(XY_RENAMED),
    entry::<prior::PriorZSettings>(
        "prior.stage",
        "Prior ProScan III Z drive (serial)",
        DeviceKind::Stage,
        true,
        |s, r| {
            Ok(AnyDevice::Stage(Box::new(prior::PriorZ::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("prior")
    .renamed(STAGE_RENAMED),
    entry::<prior::PriorFilterWheelSettings>(
        "prior.filter_wheel",
        "Prior ProScan III filter wheel (serial)",
        DeviceKind::State,
        true,
        |s, r| {
            Ok(AnyDevice::State(Box::new(prior::PriorFilterWheel::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("prior"),
    entry::<prior::PriorShutterSettings>(
        "prior.shutter",
        "Prior ProScan III shutter (serial)",
        DeviceKind::Shutter,
        true,
        |s, r| {
            Ok(AnyDevice::Shutter(Box::new(prior::PriorShutter::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("prior"),
    entry::<obis::ObisSettings>(
        "obis.laser",
        "Coherent OBIS laser (serial, SCPI)",
        DeviceKind::Laser,
        true,
        |s, r| {
            Ok(AnyDevice::Laser(Box::new(obis::ObisLaser::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("obis")
    .renamed(OBIS_RENAMED),
    entry::<cobolt::CoboltSettings>(
        "cobolt.laser",
        "Cobolt 06-series laser (serial)",
        DeviceKind::Laser,
        true,
        |s, r| {
            Ok(AnyDevice::Laser(Box::new(cobolt::CoboltLaser::new(
                r.port()?,
                s.get(),
            )?)))
        },
    )
    .emulated_by("cobolt"),
    #[cfg(feature = "genicam")]
    entry::<microscoped_genicam::GenicamSettings>(
        "genicam.camera",
        "GenICam / GigE Vision camera through aravis (needs the genicam feature)",
        DeviceKind::Camera,
        false,
        |s, _| {
            Ok(AnyDevice::Camera(Box::new(
                microscoped_genicam::GenicamCamera::new(s.get())?,
            )))
        },
    )
    .on_hardware(),
    #[cfg(not(feature = "genicam"))]
    Driver {
        name: "genicam.camera",
        description: "GenICam / GigE Vision camera through aravis (needs the genicam feature)",
        kind: DeviceKind::Camera,
        needs_port: false,
        offline: false,
        decode: None,
        build: |_, _| unreachable!("a driver without decode has no settings to build from"),
        missing: "this microscoped was built without GenICam support: build it with \
                  `cargo build --release --features genicam` (needs libaravis-dev)",
        renamed: &[],
        emulator: None,
    },
];

/// The driver a config names.
pub fn driver(name: &str) -> Option<&'static Driver> {
    DRIVERS.iter().find(|d| d.name == name)
}

/// Every driver's name, for messages.
pub fn driver_names() -> String {
    DRIVERS
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A protocol emulator a port can run (`emulate = "asi"`), for trying the real drivers with no
/// hardware.
pub struct EmulatorEntry {
    /// The name a config gives.
    pub name: &'static str,
    /// For people.
    pub description: &'static str,
    /// The [`EmulatorSettings`] it takes, by key; a config giving another is refused.
    pub settings: &'static [&'static str],
    /// Starts it as `settings` describe (what is unset keeps the emulator's default); the
    /// emulated device speaks its own framing ([`Emulated::framing`]).
    pub start: fn(&EmulatorSettings) -> std::io::Result<Emulated>,
}

/// What an `emulate` port may say about the emulated device, for rehearsing the head a bench
/// really has (`emulate = { kind = "obis", wavelength_nm = 405.0, max_power_mw = 100.0 }`).
/// Each emulator takes the keys its device has ([`EmulatorEntry::settings`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorSettings {
    /// A laser head's wavelength, nm.
    #[serde(default)]
    pub wavelength_nm: Option<f64>,
    /// A laser head's maximum power, mW.
    #[serde(default)]
    pub max_power_mw: Option<f64>,
}

/// Wavelengths the config accepts, nm: an emulated laser head's and a filter's emission band.
pub const WAVELENGTH_NM: (f64, f64) = (200.0, 2000.0);
/// Most power an emulated head may have, mW.
const EMULATED_MAX_POWER_MW: f64 = 100_000.0;

impl EmulatorSettings {
    /// Checks the values and that `entry` takes every key given; the error names the key.
    pub fn validate(&self, entry: &EmulatorEntry) -> Result<(), SettingError> {
        for (key, given) in [
            ("wavelength_nm", self.wavelength_nm.is_some()),
            ("max_power_mw", self.max_power_mw.is_some()),
        ] {
            if given && !entry.settings.contains(&key) {
                let takes = if entry.settings.is_empty() {
                    "no settings".to_owned()
                } else {
                    entry.settings.join(", ")
                };
                return Err(SettingError::new(
                    key,
                    format!(
                        "the {} emulator ({}) takes {takes}",
                        entry.name, entry.description
                    ),
                ));
            }
        }
        let (lo, hi) = WAVELENGTH_NM;
        if let Some(nm) = self
            .wavelength_nm
            .filter(|nm| !(nm.is_finite() && (lo..=hi).contains(nm)))
        {
            return Err(SettingError::new(
                "wavelength_nm",
                format!("must be a wavelength from {lo} to {hi} nm, got {nm}"),
            ));
        }
        if let Some(mw) = self
            .max_power_mw
            .filter(|mw| !(mw.is_finite() && *mw > 0.0 && *mw <= EMULATED_MAX_POWER_MW))
        {
            return Err(SettingError::new(
                "max_power_mw",
                format!("must be above 0 and at most {EMULATED_MAX_POWER_MW} mW, got {mw}"),
            ));
        }
        Ok(())
    }
}

/// An OBIS head as `s` describes it: the wavelength and power also in what `*IDN?` answers.
fn obis_head(s: &EmulatorSettings) -> obis::emulator::ObisEmulatorConfig {
    let default = obis::emulator::ObisEmulatorConfig::default();
    let wavelength_nm = s.wavelength_nm.unwrap_or(default.wavelength_nm);
    let max_power_mw = s.max_power_mw.unwrap_or(default.max_power_mw);
    obis::emulator::ObisEmulatorConfig {
        wavelength_nm,
        max_power_mw,
        nominal_power_mw: Some(max_power_mw),
        identity: format!("Coherent, Inc - OBIS {wavelength_nm}nm LX {max_power_mw}mW - EMULATOR"),
        ..default
    }
}

/// A Cobolt head as `s` describes it: the wavelength is in its model number, as on the real
/// laser (`0405-06-01-0100-100`).
fn cobolt_head(s: &EmulatorSettings) -> cobolt::emulator::CoboltEmulatorConfig {
    let default = cobolt::emulator::CoboltEmulatorConfig::default();
    let max_power_mw = s.max_power_mw.unwrap_or(default.max_power_mw);
    let nm = s.wavelength_nm.unwrap_or(488.0);
    cobolt::emulator::CoboltEmulatorConfig {
        model: Some(format!(
            "{:04}-06-01-{:04}-100",
            nm.round() as u32,
            max_power_mw.round() as u32
        )),
        max_power_mw,
        ..default
    }
}

impl fmt::Debug for EmulatorEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for EmulatorEntry {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Every protocol emulator.
pub static EMULATORS: &[EmulatorEntry] = &[
    EmulatorEntry {
        name: "asi",
        description: "an ASI MS-2000 with X, Y and Z",
        settings: &[],
        start: |_| asi::emulator::start(Default::default()),
    },
    EmulatorEntry {
        name: "prior",
        description: "a Prior ProScan III with XY, Z, filter wheels and shutters",
        settings: &[],
        start: |_| prior::emulator::start(Default::default()),
    },
    EmulatorEntry {
        name: "obis",
        description: "a Coherent OBIS laser (488 nm, 150 mW unless set)",
        settings: &["wavelength_nm", "max_power_mw"],
        start: |s| obis::emulator::start(obis_head(s)),
    },
    EmulatorEntry {
        name: "cobolt",
        description: "a Cobolt 06-series laser (488 nm, 60 mW unless set)",
        settings: &["wavelength_nm", "max_power_mw"],
        start: |s| cobolt::emulator::start(cobolt_head(s)),
    },
];

/// The emulator a config names.
pub fn emulator(name: &str) -> Option<&'static EmulatorEntry> {
    EMULATORS.iter().find(|e| e.name == name)
}

/// Every emulator's name, for messages.
pub fn emulator_names() -> String {
    EMULATORS
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once_and_found() {
        for (i, d) in DRIVERS.iter().enumerate() {
            assert!(
                DRIVERS[i + 1..].iter().all(|o| o.name != d.name),
                "driver {} listed twice",
                d.name
            );
            assert!(std::ptr::eq(driver(d.name).unwrap(), d));
            // A config names a driver family first: `sim.camera`, `asi.stage`.
            assert!(d.name.contains('.'), "{}", d.name);
        }
        for (i, e) in EMULATORS.iter().enumerate() {
            assert!(EMULATORS[i + 1..].iter().all(|o| o.name != e.name));
            assert_eq!(emulator(e.name), Some(e));
        }
        assert!(driver("sim.cmaera").is_none());
        for d in DRIVERS.iter().filter(|d| d.needs_port) {
            let e = d
                .emulator
                .unwrap_or_else(|| panic!("{} names no emulator", d.name));
            assert!(emulator(e).is_some(), "{}: no emulator {e}", d.name);
        }
    }

    #[test]
    fn settings_come_back_as_the_drivers_type() {
        let table: Table<'_> = toml::Spanned::new(
            0..0,
            toml::de::DeValue::Table(
                toml::de::DeTable::parse("labels = [\"a\", \"b\"]")
                    .unwrap()
                    .into_inner(),
            ),
        );
        let s = driver("sim.state").unwrap().decode(table).ok().unwrap();
        assert_eq!(s.kind(), DeviceKind::State);
        assert!(!s.needs_port());
        assert_eq!(s.labels(), Some(&["a".to_owned(), "b".to_owned()][..]));
        let world = sim::SimWorld::new(1);
        let mut r = Resources {
            world: &world,
            port: None,
        };
        assert!(matches!(s.build(&mut r), Ok(AnyDevice::State(_))));
    }
}
