//! `[ports.NAME]`: the serial ports devices share, real or emulated.

use microscoped_serial::PortSettings;
use toml::de::DeValue;
use toml::Spanned;

use super::{remove_key, ConfigError, Parser};

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

impl<'a> Parser<'a> {
    pub(super) fn port(
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
}

pub(super) fn port_names(ports: &[PortConfig]) -> String {
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
