//! The instrument config: TOML parsed into its own serde types, validated, then turned into the
//! domain types the daemon runs on. Every error names the file, the line and the key.
//!
//! ```toml
//! [instrument]
//! name = "demo"
//!
//! [server]
//! listen = "127.0.0.1:50051"
//!
//! [devices.Camera]          # the table name is the device name
//! driver = "sim.camera"     # which driver runs it
//! timeout_ms = 2000         # how long a command may take before the device is faulted
//! width = 512               # everything else is the driver's own settings
//!
//! [users.alice]             # who may use the instrument (see README.md, "Shared instruments")
//! role = "operator"
//! token_sha256 = "..."      # `microscoped token new` makes a token and this hash
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use microscoped_asi as asi;
use microscoped_cobolt as cobolt;
use microscoped_driver_api::{DeviceKind, Value};
use microscoped_obis as obis;
use microscoped_prior as prior;
use microscoped_serial::PortSettings;
use microscoped_sim as sim;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub use crate::ring::OverflowPolicy;

pub use crate::role::Role;

/// The simulated instrument, embedded so `microscoped serve` runs with no file at all.
pub const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");
/// The name the embedded demo config goes by in messages.
pub const DEMO_CONFIG_NAME: &str = "<embedded demo config>";

/// The address the daemon listens on when neither the config nor the command line says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// How long a device command may take when the config does not say.
pub const DEFAULT_DEVICE_TIMEOUT: Duration = Duration::from_millis(2000);

/// A validated instrument config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from, for messages.
    pub source: String,
    /// Who the instrument is.
    pub instrument: InstrumentInfo,
    /// Where the daemon listens.
    pub listen: SocketAddr,
    /// The serial ports, in config order.
    pub ports: Vec<PortConfig>,
    /// The devices, in config order.
    pub devices: Vec<DeviceConfig>,
    /// Where datasets go and how frames are buffered on their way.
    pub storage: StorageConfig,
    /// Preset groups (config groups), in config order.
    pub presets: Vec<PresetGroup>,
    /// Who may use the instrument.
    pub access: AccessConfig,
    /// The audit log of who did what.
    pub audit: AuditConfig,
    /// The server's certificate and key; `None` serves plaintext.
    pub tls: Option<TlsFiles>,
}

/// Who may use the instrument: `[users.NAME]` tables and `server.anonymous_loopback_admin`.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// The users, in config order.
    pub users: Vec<UserConfig>,
    /// Unauthenticated clients connecting from a loopback address act as the admin
    /// [`ANONYMOUS_USER`] (a single-user bench setup).
    pub anonymous_loopback_admin: bool,
}

/// The user an anonymous loopback client acts as; reserved, so no `[users.local]`.
pub const ANONYMOUS_USER: &str = "local";

/// One user of the instrument.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// The name: also the folder under the data root that holds the user's datasets.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// SHA-256 of the user's bearer token.
    pub token_sha256: [u8; 32],
    /// Whose datasets the user may list and read besides their own ("*": everyone's).
    pub can_read: Vec<String>,
}

/// The audit log: where, and how it rotates.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The current file; rotated files are `PATH.1` (newest) to `PATH.KEEP`.
    pub path: PathBuf,
    /// The current file is rotated before it grows past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files are kept.
    pub keep: u32,
}

/// The audit log's size limit when the config does not say, in MiB.
pub const DEFAULT_AUDIT_MB: u64 = 16;
/// Rotated audit files kept when the config does not say.
pub const DEFAULT_AUDIT_KEEP: u32 = 5;

/// The server's TLS certificate chain and private key, read (and checked) when the config is.
#[derive(Clone)]
pub struct TlsFiles {
    /// Where the certificate chain (PEM) came from.
    pub cert_path: PathBuf,
    /// Where the private key (PEM) came from.
    pub key_path: PathBuf,
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself: configs end up in logs.
        f.debug_struct("TlsFiles")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

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

/// A named group of presets, e.g. `Channel` with `DAPI`, `GFP`, `mCherry`.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetGroup {
    /// The group's name.
    pub name: String,
    /// Its presets, in config order.
    pub presets: Vec<Preset>,
}

/// A named set of device settings, applied together.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// The preset's name.
    pub name: String,
    /// Its settings, in the order they are applied (config order).
    pub settings: Vec<PresetSetting>,
}

/// One setting of a preset: a property of a device and the value to give it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetSetting {
    /// The device, a name from `[devices]`.
    pub device: String,
    /// The property.
    pub property: String,
    /// The value as written; checked against the property once the devices exist.
    pub value: Value,
    /// Where it is written, for errors found once the devices exist: (line, column).
    pub at: (usize, usize),
}

/// The µm of sample one (unbinned) camera pixel covers.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PixelSize {
    /// Not configured: the camera's own `pixel_size_um` property, if it has one.
    #[default]
    Camera,
    /// One size, for an instrument without an objective turret.
    Fixed(f64),
    /// A size for each objective, by its label on the turret named by `instrument.objective`.
    PerObjective(Vec<(String, f64)>),
}

/// Where datasets land and how the frame ring is sized.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Every dataset is a folder under this one.
    pub data_root: PathBuf,
    /// Memory for the frame ring of one acquisition, in bytes.
    pub ring_bytes: u64,
    /// The ring has at least this many slots whatever the budget.
    pub min_slots: usize,
    /// What happens when the writer falls behind and the ring is full.
    pub overflow: OverflowPolicy,
}

/// The ring budget when the config does not say: 1 GiB holds 128 full 2048x2048 16-bit frames.
pub const DEFAULT_RING_MB: u64 = 1024;
/// The minimum slot count when the config does not say.
pub const DEFAULT_MIN_SLOTS: usize = 8;

/// The instrument's identity, shown to clients.
#[derive(Debug, Clone)]
pub struct InstrumentInfo {
    /// Short name ("confocal-2").
    pub name: String,
    /// Free text for people (room, owner, objective list).
    pub description: String,
    /// The state device whose current label names the objective in use ("60x/1.4 oil").
    pub objective: Option<String>,
    /// Sample-plane size of a camera pixel.
    pub pixel_size: PixelSize,
    /// The illumination shutter plans open for each exposure and close after it (unless the
    /// plan keeps it open across an axis), as Micro-Manager's auto-shutter does.
    pub shutter: Option<String>,
}

/// A serial port shared by the devices that name it.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// The name devices use in their `port` key.
    pub name: String,
    /// How to open it. With `emulate`, the path is the emulator's, filled in at start.
    pub settings: PortSettings,
    /// Run a built-in protocol emulator instead of opening real hardware.
    pub emulate: Option<Emulator>,
}

/// The protocol emulators a port can run, for trying the real drivers with no hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// An ASI MS-2000 with X, Y and Z.
    Asi,
    /// A Prior ProScan III with XY, Z, filter wheels and shutters.
    Prior,
    /// A Coherent OBIS laser.
    Obis,
    /// A Cobolt 06-series laser.
    Cobolt,
}

impl Emulator {
    const NAMES: &'static str = "asi, prior, obis, cobolt";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "asi" => Some(Self::Asi),
            "prior" => Some(Self::Prior),
            "obis" => Some(Self::Obis),
            "cobolt" => Some(Self::Cobolt),
            _ => None,
        }
    }
}

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

/// A config error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or [`DEMO_CONFIG_NAME`]).
    pub file: String,
    /// 1-based line, when the error has a place in the file.
    pub line: Option<usize>,
    /// 1-based column, when the error has a place in the file.
    pub column: Option<usize>,
    /// The dotted key ("devices.Camera.width"), when the error is about one.
    pub key: Option<String>,
    /// What is wrong and, where it helps, what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            key: None,
            message: format!("cannot read the config: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// The embedded demo config.
    pub fn demo() -> Self {
        Self::parse(DEMO_CONFIG, DEMO_CONFIG_NAME)
            .unwrap_or_else(|e| panic!("the embedded demo config is invalid: {e}"))
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Parser { text, file }.parse()
    }
}

/// The top level of the file, less `devices`, which is read table by table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    instrument: RawInstrument,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    path: Option<PathBuf>,
    max_mb: Option<u64>,
    keep: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    role: String,
    token_sha256: String,
    can_read: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default = "default_data_root")]
    data_root: PathBuf,
    #[serde(default = "default_ring_mb")]
    ring_mb: u64,
    #[serde(default = "default_min_slots")]
    min_slots: usize,
    #[serde(default = "default_overflow")]
    overflow: OverflowPolicy,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            data_root: default_data_root(),
            ring_mb: DEFAULT_RING_MB,
            min_slots: DEFAULT_MIN_SLOTS,
            overflow: default_overflow(),
        }
    }
}

fn default_data_root() -> PathBuf {
    PathBuf::from("data")
}
fn default_ring_mb() -> u64 {
    DEFAULT_RING_MB
}
fn default_min_slots() -> usize {
    DEFAULT_MIN_SLOTS
}
fn default_overflow() -> OverflowPolicy {
    OverflowPolicy::Drop
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstrument {
    name: String,
    #[serde(default)]
    description: String,
    objective: Option<String>,
    #[serde(default)]
    pixel_size_um: Option<RawPixelSize>,
    #[serde(default)]
    shutter: Option<String>,
}

/// `pixel_size_um = 0.65`, or `pixel_size_um = { "10x/0.3" = 0.65, "60x/1.4 oil" = 0.108 }`.
enum RawPixelSize {
    Fixed(f64),
    PerObjective(Vec<(String, f64)>),
}

impl<'de> Deserialize<'de> for RawPixelSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawPixelSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("µm per pixel as a number, or a table of objective label = µm")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawPixelSize, E> {
                Ok(RawPixelSize::Fixed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawPixelSize, E> {
                Ok(RawPixelSize::Fixed(v as f64))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawPixelSize, A::Error> {
                let mut sizes = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, f64>()? {
                    sizes.push((k, v));
                }
                Ok(RawPixelSize::PerObjective(sizes))
            }
        }
        d.deserialize_any(V)
    }
}

/// A preset setting's value as TOML writes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    anonymous_loopback_admin: bool,
}

/// Keys every device table has, whatever its driver.
const COMMON_DEVICE_KEYS: &[&str] = &["driver", "description", "timeout_ms", "port"];

/// Facility safety limits a device table may have, and the kind of device each is for.
const LIMIT_KEYS: &[(&str, DeviceKind)] = &[
    ("limit_power_mw", DeviceKind::Laser),
    ("limit_exposure_ms", DeviceKind::Camera),
    ("soft_limits_um", DeviceKind::Stage),
    ("soft_limits_x_um", DeviceKind::XYStage),
    ("soft_limits_y_um", DeviceKind::XYStage),
];

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

struct Parser<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Parser<'a> {
    fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: String,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = line_col(self.text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key,
            message,
        }
    }

    /// Turns a serde error met under `prefix` (the dotted key of the table being read) into a
    /// config error at the right line and with the full key.
    fn serde_error(
        &self,
        prefix: &str,
        fallback: Range<usize>,
        err: serde_path_to_error::Error<toml::de::Error>,
    ) -> ConfigError {
        let inner = err.inner();
        let mut message = inner.message().trim().to_owned();
        let mut key = join_key(prefix, &err.path().to_string());
        // Name the unknown field itself when the path stops at the table holding it.
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            if !key.ends_with(field) {
                key = join_key(&key, field);
            }
        }
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            key = join_key(&key, field);
            message.push_str(" (a required setting)");
        }
        self.error(Some(inner.span().unwrap_or(fallback)), Some(key), message)
    }

    fn parse(&self) -> Result<Config, ConfigError> {
        let root = DeTable::parse(self.text).map_err(|e| {
            let key = e.span().and_then(|span| key_on_line(self.text, span.start));
            self.error(
                e.span(),
                key,
                format!("invalid TOML: {}", e.message().trim()),
            )
        })?;
        let root_span = root.span();
        let mut table = root.into_inner();
        let devices = remove_key(&mut table, "devices");
        let ports_table = remove_key(&mut table, "ports");
        let presets_table = remove_key(&mut table, "presets");
        let users_table = remove_key(&mut table, "users");

        let top: RawTop = self.deserialize("", root_span.clone(), DeValue::Table(table))?;
        let listen_text = top
            .server
            .listen
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| {
            self.error(
                self.find_key(&["server", "listen"]),
                Some("server.listen".into()),
                format!(
                    "{listen_text:?} is not an address: write IP:PORT, e.g. \"127.0.0.1:50051\""
                ),
            )
        })?;
        if top.instrument.name.trim().is_empty() {
            return Err(self.error(
                self.find_key(&["instrument", "name"]),
                Some("instrument.name".into()),
                "must not be empty".into(),
            ));
        }

        let storage = self.storage(top.storage)?;
        let audit = self.audit(top.audit, &storage)?;
        let tls = self.tls(top.server.tls_cert, top.server.tls_key)?;
        let access = AccessConfig {
            users: self.users(users_table)?,
            anonymous_loopback_admin: top.server.anonymous_loopback_admin,
        };
        let mut ports = Vec::new();
        if let Some(p) = ports_table {
            let span = p.span();
            let DeValue::Table(p) = p.into_inner() else {
                return Err(self.error(
                    Some(span),
                    Some("ports".into()),
                    "must be a table of serial ports, e.g. [ports.ASI]".into(),
                ));
            };
            for (name, value) in p {
                ports.push(self.port(name, value)?);
            }
        }
        let mut parsed = Vec::new();
        if let Some(devices) = devices {
            let span = devices.span();
            let DeValue::Table(devices) = devices.into_inner() else {
                return Err(self.error(
                    Some(span),
                    Some("devices".into()),
                    "must be a table of devices, e.g. [devices.Camera]".into(),
                ));
            };
            for (name, value) in devices {
                parsed.push(self.device(name, value, &ports)?);
            }
        }
        if let Some(obj) = &top.instrument.objective {
            if !parsed
                .iter()
                .any(|d: &DeviceConfig| &d.name == obj && d.kind() == DeviceKind::State)
            {
                return Err(self.error(
                    self.find_key(&["instrument", "objective"]),
                    Some("instrument.objective".into()),
                    format!(
                        "{obj:?} must name a state device (an objective turret) of this config"
                    ),
                ));
            }
        }
        let pixel_size = self.pixel_size(&top.instrument, &parsed)?;
        if let Some(name) = &top.instrument.shutter {
            if !parsed
                .iter()
                .any(|d| &d.name == name && d.kind() == DeviceKind::Shutter)
            {
                return Err(self.error(
                    self.find_key(&["instrument", "shutter"]),
                    Some("instrument.shutter".into()),
                    format!("{name:?} must name a shutter of this config"),
                ));
            }
        }
        let presets = match presets_table {
            Some(p) => self.presets(p, &parsed)?,
            None => Vec::new(),
        };
        // Last, so a mistake elsewhere is reported first.
        if access.users.is_empty() && !access.anonymous_loopback_admin {
            return Err(self.error(
                None,
                Some("users".into()),
                "nobody could use this instrument: add [users.NAME] tables (make a token and its \
                 hash with `microscoped token new`), or set server.anonymous_loopback_admin = true \
                 for a single-user bench"
                    .into(),
            ));
        }
        Ok(Config {
            source: self.file.to_owned(),
            instrument: InstrumentInfo {
                name: top.instrument.name,
                description: top.instrument.description,
                objective: top.instrument.objective,
                shutter: top.instrument.shutter,
                pixel_size,
            },
            listen,
            ports,
            devices: parsed,
            storage,
            presets,
            access,
            audit,
            tls,
        })
    }

    fn users(&self, table: Option<Spanned<DeValue<'a>>>) -> Result<Vec<UserConfig>, ConfigError> {
        let Some(table) = table else {
            return Ok(Vec::new());
        };
        let span = table.span();
        let DeValue::Table(table) = table.into_inner() else {
            return Err(self.error(
                Some(span),
                Some("users".into()),
                "must be a table of users, e.g. [users.alice]".into(),
            ));
        };
        let mut users: Vec<UserConfig> = Vec::new();
        for (name, value) in table {
            let name_span = name.span();
            let name = name.into_inner().into_owned();
            let prefix = format!("users.{name}");
            if let Err(why) = crate::names::validate_dataset_name(&name) {
                // The name is a folder under the data root: the dataset rules apply.
                return Err(self.error(
                    Some(name_span),
                    Some(prefix),
                    why.replace("dataset name", "user name"),
                ));
            }
            if name == ANONYMOUS_USER {
                return Err(self.error(
                    Some(name_span),
                    Some(prefix),
                    format!(
                        "{ANONYMOUS_USER:?} is reserved for anonymous loopback access \
                         (server.anonymous_loopback_admin); choose another name"
                    ),
                ));
            }
            let vspan = value.span();
            let raw: RawUser = self.deserialize(&prefix, vspan.clone(), value.into_inner())?;
            let at = |key: &str, message: String| {
                self.error(
                    self.find_key(&["users", &name, key])
                        .or(Some(vspan.clone())),
                    Some(format!("{prefix}.{key}")),
                    message,
                )
            };
            let role = Role::from_name(&raw.role).ok_or_else(|| {
                at(
                    "role",
                    format!(
                        "{:?} is not a role: choose admin, operator or observer",
                        raw.role
                    ),
                )
            })?;
            let token_sha256 =
                crate::token::parse_sha256_hex(&raw.token_sha256).ok_or_else(|| {
                    at(
                        "token_sha256",
                        "must be the SHA-256 of the user's token as 64 hex digits \
                         (`microscoped token new` prints it)"
                            .into(),
                    )
                })?;
            if let Some(other) = users.iter().find(|u| u.token_sha256 == token_sha256) {
                return Err(at(
                    "token_sha256",
                    format!(
                        "the same token hash as users.{}: every user needs a token of their own",
                        other.name
                    ),
                ));
            }
            if role == Role::Admin && raw.can_read.is_some() {
                return Err(at(
                    "can_read",
                    "admins read every dataset already; remove can_read".into(),
                ));
            }
            users.push(UserConfig {
                name,
                role,
                token_sha256,
                can_read: raw.can_read.unwrap_or_default(),
            });
        }
        // Checked once every user is known, so a typo cannot silently grant nothing.
        for u in &users {
            for entry in &u.can_read {
                let known = entry == "*"
                    || entry == ANONYMOUS_USER
                    || users.iter().any(|o| &o.name == entry);
                if !known {
                    return Err(self.error(
                        self.find_key(&["users", &u.name, "can_read"]),
                        Some(format!("users.{}.can_read", u.name)),
                        format!(
                            "{entry:?} is not a user of this config: name users (or {ANONYMOUS_USER:?}), \
                             or \"*\" for everyone's datasets"
                        ),
                    ));
                }
            }
        }
        Ok(users)
    }

    fn tls(
        &self,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, ConfigError> {
        let at = |key: &str, message: String| {
            self.error(
                self.find_key(&["server", key]),
                Some(format!("server.{key}")),
                message,
            )
        };
        let (cert_path, key_path) = match (cert, key) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            (Some(_), None) => {
                return Err(at(
                    "tls_cert",
                    "give tls_key too: TLS needs both the certificate and its private key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(at(
                    "tls_key",
                    "give tls_cert too: TLS needs both the certificate and its private key".into(),
                ))
            }
        };
        // Relative paths are the config file's neighbours, wherever the daemon is started.
        let base = Path::new(self.file).parent().unwrap_or(Path::new(""));
        let cert_path = base.join(cert_path);
        let key_path = base.join(key_path);
        let read = |key: &str, path: &Path| {
            std::fs::read(path).map_err(|e| at(key, format!("cannot read {}: {e}", path.display())))
        };
        let cert_pem = read("tls_cert", &cert_path)?;
        let key_pem = read("tls_key", &key_path)?;
        let unusable = |key: &str, why: String| {
            at(
                key,
                format!(
                    "{} and {} are not a usable certificate and key: {why}",
                    cert_path.display(),
                    key_path.display()
                ),
            )
        };
        // Parsed and matched the way the server's rustls will, so a file that passes here
        // serves.
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable("tls_cert", format!("the certificate: {e}")))?;
        if chain.is_empty() {
            return Err(at(
                "tls_cert",
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    cert_path.display()
                ),
            ));
        }
        let private_key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(k) => k,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err(at(
                    "tls_key",
                    format!(
                        "{} holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
                        key_path.display()
                    ),
                ))
            }
            Err(e) => return Err(unusable("tls_key", format!("the private key: {e}"))),
        };
        let provider = rustls::crypto::ring::default_provider();
        if let Err(e) = CertifiedKey::from_der(chain, private_key, &provider) {
            return Err(match e {
                rustls::Error::InconsistentKeys(_) => unusable(
                    "tls_key",
                    "the private key does not belong to the (first) certificate".into(),
                ),
                rustls::Error::General(why) => {
                    unusable("tls_key", format!("the private key: {why}"))
                }
                e => unusable("tls_cert", format!("the certificate: {e}")),
            });
        }
        Ok(Some(TlsFiles {
            cert_path,
            key_path,
            cert_pem,
            key_pem,
        }))
    }

    fn audit(&self, raw: RawAudit, storage: &StorageConfig) -> Result<AuditConfig, ConfigError> {
        let at = |key: &str, message: String| {
            self.error(
                self.find_key(&["audit", key]),
                Some(format!("audit.{key}")),
                message,
            )
        };
        let path = match raw.path {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(at("path", "must name a file".into()))
            }
            Some(p) => p,
            None => storage.data_root.join(".audit").join("audit.jsonl"),
        };
        let max_mb = raw.max_mb.unwrap_or(DEFAULT_AUDIT_MB);
        if !(1..=1 << 16).contains(&max_mb) {
            return Err(at(
                "max_mb",
                format!("must be from 1 to 65536 MiB, got {max_mb}"),
            ));
        }
        let keep = raw.keep.unwrap_or(DEFAULT_AUDIT_KEEP);
        if !(1..=1000).contains(&keep) {
            return Err(at("keep", format!("must be from 1 to 1000, got {keep}")));
        }
        Ok(AuditConfig {
            path,
            max_bytes: max_mb << 20,
            keep,
        })
    }

    /// `instrument.pixel_size_um`: positive, and per objective only with a turret whose labels
    /// (when the config lists them) include every objective named.
    fn pixel_size(
        &self,
        raw: &RawInstrument,
        devices: &[DeviceConfig],
    ) -> Result<PixelSize, ConfigError> {
        let at = |path: &[&str], message: String| {
            let mut full = vec!["instrument", "pixel_size_um"];
            full.extend_from_slice(path);
            self.error(self.find_key(&full), Some(full.join(".")), message)
        };
        let check = |path: &[&str], um: f64| {
            if um.is_finite() && um > 0.0 && um <= 1000.0 {
                Ok(())
            } else {
                Err(at(
                    path,
                    format!("must be a size in µm above 0 and at most 1000, got {um}"),
                ))
            }
        };
        match &raw.pixel_size_um {
            None => Ok(PixelSize::Camera),
            Some(RawPixelSize::Fixed(um)) => {
                check(&[], *um)?;
                Ok(PixelSize::Fixed(*um))
            }
            Some(RawPixelSize::PerObjective(sizes)) => {
                let Some(turret) = &raw.objective else {
                    return Err(at(
                        &[],
                        "a size per objective needs `instrument.objective` to name the turret; give one number otherwise".into(),
                    ));
                };
                let labels = devices
                    .iter()
                    .find(|d| &d.name == turret)
                    .and_then(|d| d.settings.labels());
                for (label, um) in sizes {
                    check(&[label], *um)?;
                    if let Some(labels) = labels {
                        if !labels.iter().any(|l| l == label) {
                            return Err(at(
                                &[label],
                                format!(
                                    "{label:?} is not a position of the turret {turret:?}; its labels are {}",
                                    labels.join(", ")
                                ),
                            ));
                        }
                    }
                }
                Ok(PixelSize::PerObjective(sizes.clone()))
            }
        }
    }

    /// `[presets.GROUP.PRESET]` tables of `DEVICE.property = value`. Devices must exist here;
    /// properties and values are checked against the drivers once the devices are built
    /// ([`crate::presets::Presets::new`]).
    fn presets(
        &self,
        value: Spanned<DeValue<'a>>,
        devices: &[DeviceConfig],
    ) -> Result<Vec<PresetGroup>, ConfigError> {
        let table = |v: Spanned<DeValue<'a>>, key: &str, what: &str| {
            let span = v.span();
            match v.into_inner() {
                DeValue::Table(t) => Ok(t),
                _ => Err(self.error(Some(span), Some(key.to_owned()), format!("must be {what}"))),
            }
        };
        let mut groups = Vec::new();
        for (group, presets) in table(
            value,
            "presets",
            "a table of preset groups, e.g. [presets.Channel.DAPI]",
        )? {
            let group_name = group.get_ref().to_string();
            let gkey = format!("presets.{group_name}");
            if !crate::names::valid_device_name(&group_name) {
                return Err(self.error(
                    Some(group.span()),
                    Some(gkey),
                    "a group name is 1 to 64 letters, digits, '_', '-' or '.'".into(),
                ));
            }
            let mut list = Vec::new();
            for (preset, settings) in table(
                presets,
                &gkey,
                "a table of presets, e.g. [presets.Channel.DAPI]",
            )? {
                let preset_name = preset.get_ref().to_string();
                let pkey = format!("{gkey}.{preset_name}");
                if preset_name.trim().is_empty()
                    || preset_name.len() > 64
                    || preset_name.chars().any(char::is_control)
                {
                    return Err(self.error(
                        Some(preset.span()),
                        Some(pkey),
                        "a preset name is 1 to 64 printable characters".into(),
                    ));
                }
                let mut out = Vec::new();
                let span = settings.span();
                for (device, props) in table(
                    settings,
                    &pkey,
                    "a table of settings, e.g. FilterWheel.label = \"DAPI\"",
                )? {
                    let device_name = device.get_ref().to_string();
                    let dkey = format!("{pkey}.{device_name}");
                    if !devices.iter().any(|d| d.name == device_name) {
                        return Err(self.error(
                            Some(device.span()),
                            Some(dkey),
                            format!(
                                "no device is named {device_name:?}; the devices are {}",
                                devices
                                    .iter()
                                    .map(|d| d.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                    for (property, v) in table(
                        props,
                        &dkey,
                        "a table of property = value, e.g. Laser488.power_mw = 10.0",
                    )? {
                        let key = format!("{dkey}.{property}", property = property.get_ref());
                        let at = line_col(self.text, v.span().start);
                        let vspan = v.span();
                        let value = match self.deserialize::<RawScalar>(
                            &key,
                            vspan.clone(),
                            v.into_inner(),
                        ) {
                            Ok(RawScalar::Bool(b)) => Value::Bool(b),
                            Ok(RawScalar::Int(i)) => Value::Int(i),
                            Ok(RawScalar::Float(f)) => Value::Float(f),
                            Ok(RawScalar::Str(s)) => Value::String(s),
                            Err(_) => {
                                return Err(self.error(
                                    Some(vspan),
                                    Some(key),
                                    "a setting is a boolean, number or string".into(),
                                ))
                            }
                        };
                        out.push(PresetSetting {
                            device: device_name.clone(),
                            property: property.get_ref().to_string(),
                            value,
                            at,
                        });
                    }
                }
                if out.is_empty() {
                    return Err(self.error(
                        Some(span),
                        Some(pkey),
                        "a preset needs at least one setting".into(),
                    ));
                }
                list.push(Preset {
                    name: preset_name,
                    settings: out,
                });
            }
            groups.push(PresetGroup {
                name: group_name,
                presets: list,
            });
        }
        Ok(groups)
    }

    fn storage(&self, raw: RawStorage) -> Result<StorageConfig, ConfigError> {
        let at = |key: &str, message: String| {
            self.error(
                self.find_key(&["storage", key]),
                Some(format!("storage.{key}")),
                message,
            )
        };
        if raw.data_root.as_os_str().is_empty() {
            return Err(at("data_root", "must name a folder".into()));
        }
        if !(1..=1 << 20).contains(&raw.ring_mb) {
            return Err(at(
                "ring_mb",
                format!("must be from 1 to 1048576 MiB, got {}", raw.ring_mb),
            ));
        }
        if !(2..=100_000).contains(&raw.min_slots) {
            return Err(at(
                "min_slots",
                format!("must be from 2 to 100000, got {}", raw.min_slots),
            ));
        }
        Ok(StorageConfig {
            data_root: raw.data_root,
            ring_bytes: raw.ring_mb << 20,
            min_slots: raw.min_slots,
            overflow: raw.overflow,
        })
    }

    fn deserialize<T: DeserializeOwned>(
        &self,
        prefix: &str,
        span: Range<usize>,
        value: DeValue<'a>,
    ) -> Result<T, ConfigError> {
        let de = Spanned::new(span.clone(), value).into_deserializer();
        serde_path_to_error::deserialize(de).map_err(|e| self.serde_error(prefix, span, e))
    }

    fn device(
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

    /// Reads a device's safety limits; each must suit the device's kind and make sense on its
    /// own. Whether it lies inside the hardware's range is checked when the daemon starts.
    fn limits(
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

    fn port(
        &self,
        name: Spanned<std::borrow::Cow<'a, str>>,
        value: Spanned<DeValue<'a>>,
    ) -> Result<PortConfig, ConfigError> {
        let name = name.into_inner().into_owned();
        let prefix = format!("ports.{name}");
        let span = value.span();
        let DeValue::Table(mut table) = value.into_inner() else {
            return Err(self.error(
                Some(span),
                Some(prefix),
                "a port must be a table with a `path` (or `emulate`) key".into(),
            ));
        };
        let emulate = match remove_key(&mut table, "emulate") {
            None => None,
            Some(v) => {
                let (espan, text) = self.string(&prefix, "emulate", v)?;
                Some(Emulator::from_name(&text).ok_or_else(|| {
                    self.error(
                        Some(espan),
                        Some(format!("{prefix}.emulate")),
                        format!("no emulator {text:?}: choose one of {}", Emulator::NAMES),
                    )
                })?)
            }
        };
        let settings: PortSettings =
            self.deserialize(&prefix, span.clone(), DeValue::Table(table.clone()))?;
        let checked = match emulate {
            // The emulator makes the path; everything else still has to make sense.
            Some(_) if !settings.path.as_os_str().is_empty() => {
                Err(("path", "give either a path or emulate, not both".to_owned()))
            }
            Some(_) => PortSettings {
                path: "/emulated".into(),
                ..settings.clone()
            }
            .validate(),
            None => settings.validate(),
        };
        checked.map_err(|(key, message)| {
            let at = table
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|(_, v)| v.span())
                .unwrap_or(span);
            self.error(Some(at), Some(format!("{prefix}.{key}")), message)
        })?;
        Ok(PortConfig {
            name,
            settings,
            emulate,
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

    fn string(
        &self,
        prefix: &str,
        key: &str,
        value: Spanned<DeValue<'a>>,
    ) -> Result<(Range<usize>, String), ConfigError> {
        let span = value.span();
        match value.get_ref().as_str() {
            Some(s) => Ok((span, s.to_owned())),
            None => Err(self.error(
                Some(span),
                Some(format!("{prefix}.{key}")),
                format!("must be a string, not {}", value.get_ref().type_str()),
            )),
        }
    }

    /// The span of a key's value, found by walking the document again; used for errors found
    /// after deserializing, when the spans are gone.
    fn find_key(&self, path: &[&str]) -> Option<Range<usize>> {
        let root = DeTable::parse(self.text).ok()?;
        let mut span = root.span();
        let mut value = DeValue::Table(root.into_inner());
        for part in path {
            let DeValue::Table(t) = value else {
                return None;
            };
            let (_, v) = t.into_iter().find(|(k, _)| k.get_ref().as_ref() == *part)?;
            span = v.span();
            value = v.into_inner();
        }
        Some(span)
    }
}

fn remove_key<'a>(table: &mut DeTable<'a>, key: &str) -> Option<Spanned<DeValue<'a>>> {
    let k = table.keys().find(|k| k.get_ref().as_ref() == key)?.clone();
    table.remove(&k)
}

fn join_key(prefix: &str, path: &str) -> String {
    let prefix = if prefix == "." { "" } else { prefix };
    match (prefix.is_empty(), path.is_empty() || path == ".") {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// The key a TOML syntax error is about, read from its line: a table header names its table
/// (`[devices.Camera]` → `devices.Camera`), an assignment its key.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    let key = if let Some(header) = line.strip_prefix('[') {
        header.trim_start_matches('[').split(']').next()?.trim()
    } else {
        line.split('=').next()?.trim()
    };
    (!key.is_empty()).then(|| key.to_owned())
}

fn port_names(ports: &[PortConfig]) -> String {
    if ports.is_empty() {
        "this config has none".into()
    } else {
        ports
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn driver_names() -> String {
    DRIVERS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        Config::parse(text, "bad.toml").expect_err("config should be refused")
    }

    const HEAD: &str = "[instrument]\nname = \"t\"\n";

    #[test]
    fn demo_config_parses() {
        let c = Config::demo();
        assert!(c.devices.len() >= 7, "{:?}", c.devices);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn syntax_error_names_line() {
        let e = err("[instrument]\nname = \"t\"\n\nbroken = = 1\n");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("bad.toml:4:"), "{e}");
    }

    #[test]
    fn unknown_top_level_key() {
        let e = err("[instrument]\nnmae = \"t\"\n");
        assert_eq!(e.key.as_deref(), Some("instrument.nmae"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn missing_required_setting() {
        let e = err("[server]\nlisten = \"127.0.0.1:1\"\n");
        assert_eq!(e.key.as_deref(), Some("instrument"), "{e}");
        assert!(e.message.contains("required"), "{e}");
        let e = err("[instrument]\ndescription = \"no name\"\n");
        assert_eq!(e.key.as_deref(), Some("instrument.name"), "{e}");
    }

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
    fn bad_timeout_and_listen() {
        let e = err(&format!(
            "{HEAD}\n[devices.A]\ndriver = \"sim.shutter\"\ntimeout_ms = 0\n"
        ));
        assert_eq!(e.key.as_deref(), Some("devices.A.timeout_ms"), "{e}");
        let e = err(&format!("{HEAD}[server]\nlisten = \"nowhere\"\n"));
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("server.listen"), Some(4)),
            "{e}"
        );
    }

    #[test]
    fn storage_settings() {
        let c = Config::parse(
            &format!(
                "{HEAD}[server]\nanonymous_loopback_admin = true\n[storage]\ndata_root = \"/tmp/x\"\nring_mb = 64\noverflow = \"stop\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.storage.ring_bytes, 64 << 20);
        assert_eq!(c.storage.overflow, OverflowPolicy::Stop);
        let e = err(&format!("{HEAD}[storage]\noverflow = \"maybe\"\n"));
        assert_eq!(e.key.as_deref(), Some("storage.overflow"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        let e = err(&format!("{HEAD}[storage]\nmin_slots = 1\n"));
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("storage.min_slots"), Some(4)),
            "{e}"
        );
    }

    #[test]
    fn missing_driver() {
        let e = err(&format!("{HEAD}\n[devices.A]\ntimeout_ms = 5\n"));
        assert_eq!(e.key.as_deref(), Some("devices.A.driver"), "{e}");
    }

    #[test]
    fn presets_keep_their_order_and_name_unknown_devices() {
        let c = Config::demo();
        let channel = &c.presets[0];
        assert_eq!(channel.name, "Channel");
        let names: Vec<_> = channel.presets.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["DAPI", "GFP", "mCherry"]);
        let first = &channel.presets[0].settings[0];
        assert_eq!(
            (first.device.as_str(), first.property.as_str()),
            ("Laser488", "on")
        );
        assert_eq!(first.value, Value::Bool(false));

        let text = format!(
            "{HEAD}[devices.Cam]\ndriver = \"sim.camera\"\n\n[presets.Channel.DAPI]\nCamera.exposure_ms = 5.0\n"
        );
        let e = err(&text);
        assert_eq!(e.key.as_deref(), Some("presets.Channel.DAPI.Camera"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
        assert!(e.message.contains("Cam"), "{e}");
        let e = err(&format!("{HEAD}[presets.Channel.Empty]\n"));
        assert_eq!(e.key.as_deref(), Some("presets.Channel.Empty"), "{e}");
    }

    #[test]
    fn the_auto_shutter_must_be_a_shutter() {
        let e = err(
            "[instrument]\nname = \"t\"\nshutter = \"Cam\"\n[devices.Cam]\ndriver = \"sim.camera\"\n",
        );
        assert_eq!(e.key.as_deref(), Some("instrument.shutter"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("shutter"), "{e}");
    }

    #[test]
    fn pixel_sizes_per_objective_name_real_turret_labels() {
        let turret = "[devices.T]\ndriver = \"sim.state\"\nlabels = [\"10x\", \"60x\"]\n";
        let ok = Config::parse(
            &format!("[instrument]\nname = \"t\"\nobjective = \"T\"\npixel_size_um = {{ \"10x\" = 0.65, \"60x\" = 0.108 }}\n[server]\nanonymous_loopback_admin = true\n{turret}"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            ok.instrument.pixel_size,
            PixelSize::PerObjective(vec![("10x".into(), 0.65), ("60x".into(), 0.108)])
        );
        let e = err(&format!(
            "[instrument]\nname = \"t\"\nobjective = \"T\"\npixel_size_um = {{ \"20x\" = 0.3 }}\n{turret}"
        ));
        assert_eq!(
            e.key.as_deref(),
            Some("instrument.pixel_size_um.20x"),
            "{e}"
        );
        assert!(e.message.contains("10x, 60x"), "{e}");
        let e = err(&format!("{HEAD}pixel_size_um = {{ \"20x\" = 0.3 }}\n"));
        assert!(e.message.contains("instrument.objective"), "{e}");
        let e = err(&format!("{HEAD}pixel_size_um = -1\n"));
        assert_eq!(e.key.as_deref(), Some("instrument.pixel_size_um"), "{e}");
    }

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn users_and_roles() {
        let c = Config::parse(
            &format!(
                "{HEAD}[users.alice]\nrole = \"operator\"\ntoken_sha256 = \"{H1}\"\n\
                 [users.bob]\nrole = \"observer\"\ntoken_sha256 = \"{H2}\"\ncan_read = [\"alice\"]\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert!(!c.access.anonymous_loopback_admin);
        let names: Vec<_> = c
            .access
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.role))
            .collect();
        assert_eq!(names, [("alice", Role::Operator), ("bob", Role::Observer)]);
        assert_eq!(c.access.users[1].can_read, ["alice"]);
        assert_eq!(c.access.users[0].token_sha256, [0x11; 32]);
        assert_eq!(c.audit.path, Path::new("data/.audit/audit.jsonl"));
        assert_eq!(c.audit.max_bytes, DEFAULT_AUDIT_MB << 20);
    }

    #[test]
    fn nobody_could_use_it() {
        let e = err(HEAD);
        assert_eq!(e.key.as_deref(), Some("users"), "{e}");
        assert!(e.message.contains("token new"), "{e}");
    }

    #[test]
    fn bad_users() {
        let user = |name: &str, body: &str| format!("{HEAD}\n[users.\"{name}\"]\n{body}");
        let ok_body = format!("role = \"operator\"\ntoken_sha256 = \"{H1}\"\n");
        for (text, key, line, says) in [
            (user("a/b", &ok_body), "users.a/b", 4, "not allowed"),
            (user("local", &ok_body), "users.local", 4, "reserved"),
            (user(".audit", &ok_body), "users..audit", 4, "start with"),
            (
                user("a", &format!("role = \"boss\"\ntoken_sha256 = \"{H1}\"\n")),
                "users.a.role",
                5,
                "admin, operator or observer",
            ),
            (
                user("a", "role = \"admin\"\ntoken_sha256 = \"secret\"\n"),
                "users.a.token_sha256",
                6,
                "64 hex",
            ),
            (
                user("a", "role = \"admin\"\n"),
                "users.a.token_sha256",
                4,
                "missing",
            ),
            (
                user("a", &format!("{ok_body}token = \"x\"\n")),
                "users.a.token",
                7,
                "unknown field",
            ),
            (
                format!(
                    "{}[users.b]\nrole = \"observer\"\ntoken_sha256 = \"{H1}\"\n",
                    user("a", &ok_body)
                ),
                "users.b.token_sha256",
                9,
                "the same token hash as users.a",
            ),
            (
                user("a", &format!("{ok_body}can_read = [\"alcie\"]\n")),
                "users.a.can_read",
                7,
                "not a user",
            ),
            (
                user(
                    "a",
                    &format!("role = \"admin\"\ntoken_sha256 = \"{H1}\"\ncan_read = [\"*\"]\n"),
                ),
                "users.a.can_read",
                7,
                "admins read every dataset",
            ),
        ] {
            let e = err(&text);
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn tls_files_are_checked_when_the_config_is() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("inst.toml");
        let file = cfg.display().to_string();
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
        let head = format!("{HEAD}[server]\nanonymous_loopback_admin = true\n");
        for (server, key, says) in [
            (
                "tls_cert = \"c.pem\"\n",
                "server.tls_cert",
                "give tls_key too",
            ),
            (
                "tls_key = \"k.pem\"\n",
                "server.tls_key",
                "give tls_cert too",
            ),
            (
                "tls_cert = \"missing.pem\"\ntls_key = \"k.pem\"\n",
                "server.tls_cert",
                "cannot read",
            ),
            (
                "tls_cert = \"junk.pem\"\ntls_key = \"junk.pem\"\n",
                "server.tls_cert",
                "no PEM certificate",
            ),
        ] {
            let e = Config::parse(&format!("{head}{server}"), &file).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.message.contains(says), "{e}");
            assert!(e.line.is_some(), "{e}");
        }
        // Relative to the config's folder, whatever the working folder.
        let e = Config::parse(
            &format!("{head}tls_cert = \"junk.pem\"\ntls_key = \"junk.pem\"\n"),
            &file,
        )
        .unwrap_err();
        assert!(
            e.message
                .contains(&dir.path().join("junk.pem").display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn tls_certificate_and_key_are_parsed_and_must_belong_together() {
        // A self-signed certificate and two unrelated keys, made for this test only.
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("inst.toml");
        let file = cfg.display().to_string();
        for (name, pem) in [
            ("cert.pem", include_str!("../../testdata/tls/cert.pem")),
            ("key.pem", include_str!("../../testdata/tls/key.pem")),
            (
                "other_key.pem",
                include_str!("../../testdata/tls/other_key.pem"),
            ),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        let mangled = include_str!("../../testdata/tls/cert.pem").replacen("MII", "M!I", 1);
        std::fs::write(dir.path().join("mangled.pem"), mangled).unwrap();
        let head = format!("{HEAD}[server]\nanonymous_loopback_admin = true\n");
        let server =
            |cert: &str, key: &str| format!("{head}tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n");
        let c = Config::parse(&server("cert.pem", "key.pem"), &file).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.key_path, dir.path().join("key.pem"));
        for (cert, key, at, says) in [
            (
                "cert.pem",
                "other_key.pem",
                "server.tls_key",
                "does not belong",
            ),
            ("mangled.pem", "key.pem", "server.tls_cert", "not a usable"),
            (
                "cert.pem",
                "cert.pem",
                "server.tls_key",
                "no PEM private key",
            ),
            (
                "key.pem",
                "key.pem",
                "server.tls_cert",
                "no PEM certificate",
            ),
        ] {
            let e = Config::parse(&server(cert, key), &file).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(at), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn audit_settings() {
        let head = format!("{HEAD}[server]\nanonymous_loopback_admin = true\n");
        let c = Config::parse(
            &format!("{head}[audit]\npath = \"/var/log/m.jsonl\"\nmax_mb = 2\nkeep = 3\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!((c.audit.max_bytes, c.audit.keep), (2 << 20, 3));
        for (text, key) in [
            ("[audit]\nmax_mb = 0\n", "audit.max_mb"),
            ("[audit]\nkeep = 0\n", "audit.keep"),
            ("[audit]\nsize = 1\n", "audit.size"),
        ] {
            let e = err(&format!("{head}{text}"));
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(6), "{e}");
        }
    }

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

    #[test]
    fn example_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if cfg!(not(feature = "genicam")) && path.ends_with("genicam.toml") {
                continue;
            }
            if let Err(e) = Config::load(&path) {
                panic!("{e}");
            }
        }
    }
}
