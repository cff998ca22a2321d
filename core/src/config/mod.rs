//! The instrument config: TOML parsed into its own serde types, validated, then turned into the
//! domain types the daemon runs on. Every error names the file, the line and the key.
//!
//! This file holds loading, the top-level file type, [`ConfigError`] and the span helpers; each
//! section has a file of its own with its types, its validation and its tests, re-exported here.
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
//!
//! [metrics]                 # optional: Prometheus scrapes http://127.0.0.1:9464/metrics
//! listen = "127.0.0.1:9464"
//! ```

mod audit;
mod devices;
mod instrument;
mod limits;
mod metrics;
mod ports;
mod presets;
mod storage;
mod tls;
mod users;

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub use crate::ring::OverflowPolicy;

pub use crate::role::Role;

pub use self::audit::{AuditConfig, DEFAULT_AUDIT_KEEP, DEFAULT_AUDIT_MB};
pub use self::devices::{DeviceConfig, DriverSettings, DEFAULT_DEVICE_TIMEOUT, DRIVERS};
pub use self::instrument::{InstrumentInfo, PixelSize};
pub use self::limits::{DeviceLimits, Limit};
pub use self::metrics::MetricsConfig;
pub use self::ports::{EmulatorEntry, PortConfig};
pub use self::presets::{Preset, PresetGroup, PresetSetting};
pub use self::storage::{StorageConfig, DEFAULT_MIN_SLOTS, DEFAULT_RING_MB};
pub use self::tls::TlsFiles;
pub use self::users::{AccessConfig, UserConfig, ANONYMOUS_USER};

use self::audit::RawAudit;
use self::instrument::RawInstrument;
use self::metrics::RawMetrics;
use self::storage::RawStorage;

/// The simulated instrument, embedded so `microscoped serve` runs with no file at all.
pub const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");
/// The name the embedded demo config goes by in messages.
pub const DEMO_CONFIG_NAME: &str = "<embedded demo config>";

/// The address the daemon listens on when neither the config nor the command line says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

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
    /// The Prometheus metrics endpoint; `None`: not served.
    pub metrics: Option<MetricsConfig>,
}

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
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            key: None,
            message: format!("cannot read the config: {e}"),
        })?;
        let text = Self::utf8(bytes, &file)?;
        Self::parse(&text, &file)
    }

    /// The file's bytes as text; an encoding error names the line and column of the first byte
    /// that is not UTF-8, so it can be found in an editor (a Latin-1 "µ" in a comment, say).
    fn utf8(bytes: Vec<u8>, file: &str) -> Result<String, ConfigError> {
        String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            // Everything before `at` is valid, so line and column count characters of it.
            let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let (line, column) = line_col(before, at);
            ConfigError {
                file: file.to_owned(),
                line: Some(line),
                column: Some(column),
                key: None,
                message: format!(
                    "the byte 0x{:02X} is not UTF-8: a config is UTF-8 text; save the file as \
                     UTF-8 (the character here was probably written in another encoding)",
                    bytes[at]
                ),
            }
        })
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
    metrics: Option<RawMetrics>,
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

struct Parser<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Parser<'a> {
    /// A driver's or port's refused setting, placed at its key in `table` (or at the table
    /// when the key is not written there).
    fn setting_error(
        &self,
        prefix: &str,
        table: &DeTable<'a>,
        span: Range<usize>,
        e: microscoped_driver_api::SettingError,
    ) -> ConfigError {
        let at = table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == e.key)
            .map(|(_, v)| v.span())
            .unwrap_or(span);
        self.error(Some(at), Some(format!("{prefix}.{}", e.key)), e.message)
    }

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

    /// A config that lets nobody in: it lacks `[users.NAME]` tables and does not set
    /// `server.anonymous_loopback_admin`. Placed where the text to add goes (in the `[server]`
    /// table when there is one, else after the file's last line) and showing the lines to add.
    fn no_users(&self) -> ConfigError {
        const USERS: &str = "\n  [users.alice]\n  role = \"admin\"\n  token_sha256 = \"<hash>\"\n";
        let (span, key, bench) = match self.find_key(&["server"]) {
            Some(span) => (
                span,
                "server.anonymous_loopback_admin",
                "in this [server] table:\n\n  anonymous_loopback_admin = true",
            ),
            None => (
                self.text.len()..self.text.len(),
                "users",
                "at the end of the file:\n\n  [server]\n  anonymous_loopback_admin = true",
            ),
        };
        self.error(
            Some(span),
            Some(key.into()),
            format!(
                "nobody could use this instrument: the config has no [users.NAME] table and no \
                 anonymous access. For a shared instrument add a table per user at the end of \
                 the file (make a token and its hash with `microscoped token new alice`):\n\
                 {USERS}\nor, for a single-user bench, add {bench}"
            ),
        )
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

        let metrics = self.metrics(top.metrics, listen)?;
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
        let instrument = self.instrument(top.instrument, &parsed)?;
        let presets = match presets_table {
            Some(p) => self.presets(p, &parsed)?,
            None => Vec::new(),
        };
        // Last, so a mistake elsewhere is reported first.
        if access.users.is_empty() && !access.anonymous_loopback_admin {
            return Err(self.no_users());
        }
        Ok(Config {
            source: self.file.to_owned(),
            instrument,
            listen,
            ports,
            devices: parsed,
            storage,
            presets,
            access,
            audit,
            tls,
            metrics,
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

    pub(super) fn err(text: &str) -> ConfigError {
        Config::parse(text, "bad.toml").expect_err("config should be refused")
    }

    pub(super) const HEAD: &str = "[instrument]\nname = \"t\"\n";

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
    fn a_config_without_users_says_what_to_add_and_where() {
        // No [server] at all: the place is after the last line.
        let e = err(HEAD);
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("users")), "{e}");
        assert!(
            e.message.contains("[users.alice]")
                && e.message
                    .contains("[server]\n  anonymous_loopback_admin = true"),
            "{e}"
        );
        // A [server] table without the setting: the place is that table.
        let e = err(&format!("{HEAD}\n[server]\nlisten = \"127.0.0.1:1\"\n"));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("server.anonymous_loopback_admin")),
            "{e}"
        );
        assert!(e.message.contains("in this [server] table"), "{e}");
    }

    #[test]
    fn a_config_that_is_not_utf8_names_the_line_and_column_of_the_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.toml");
        // "µm" in Latin-1: the byte 0xB5 on line 3, after `# 5 `.
        std::fs::write(&path, b"[instrument]\nname = \"t\"\n# 5 \xB5m per pixel\n").unwrap();
        let e = Config::load(&path).unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(5)), "{e}");
        assert!(
            e.message.contains("0xB5") && e.message.contains("UTF-8"),
            "{e}"
        );
        assert!(e.to_string().contains("latin1.toml:3:5:"), "{e}");
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
