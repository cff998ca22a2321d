//! `[ports.NAME]`: the serial ports devices share, real or emulated.

use microscoped_driver_api::SettingError;
use microscoped_serial::PortSettings;
use toml::de::DeValue;
use toml::Spanned;

pub use crate::registry::EmulatorEntry;

use super::{remove_key, ConfigError, Parser};

/// A serial port shared by the devices that name it.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// The name devices use in their `port` key.
    pub name: String,
    /// How to open it. With `emulate`, the path is the emulator's, filled in at start.
    pub settings: PortSettings,
    /// Run a built-in protocol emulator instead of opening real hardware.
    pub emulate: Option<&'static EmulatorEntry>,
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
                Some(crate::registry::emulator(&text).ok_or_else(|| {
                    self.error(
                        Some(espan),
                        Some(format!("{prefix}.emulate")),
                        format!(
                            "no emulator {text:?}: choose one of {}",
                            crate::registry::emulator_names()
                        ),
                    )
                })?)
            }
        };
        let settings: PortSettings =
            self.deserialize(&prefix, span.clone(), DeValue::Table(table.clone()))?;
        let checked = match emulate {
            // The emulator makes the path; everything else still has to make sense.
            Some(_) if !settings.path.as_os_str().is_empty() => Err(SettingError::new(
                "path",
                "give either a path or emulate, not both",
            )),
            Some(_) => PortSettings {
                path: "/emulated".into(),
                ..settings.clone()
            }
            .validate(),
            None => settings.validate(),
        };
        checked.map_err(|e| self.setting_error(&prefix, &table, span, e))?;
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
