//! `[ports.NAME]`: the serial ports devices share, real or emulated.

use microscoped_driver_api::SettingError;
use microscoped_serial::PortSettings;
use toml::de::DeValue;
use toml::Spanned;

pub use crate::registry::{EmulatorEntry, EmulatorSettings};

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
    /// What the emulated device is (`emulate = { kind = "obis", wavelength_nm = 405.0 }`);
    /// unset keys keep the emulator's defaults.
    pub emulator_settings: EmulatorSettings,
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
        let (emulate, emulator_settings) = match remove_key(&mut table, "emulate") {
            None => (None, EmulatorSettings::default()),
            Some(v) => self.emulate(&prefix, v)?,
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
            emulator_settings,
        })
    }

    /// `emulate = "obis"`, or `emulate = { kind = "obis", wavelength_nm = 405.0, ... }` with
    /// the settings that emulator takes.
    fn emulate(
        &self,
        prefix: &str,
        value: Spanned<DeValue<'a>>,
    ) -> Result<(Option<&'static EmulatorEntry>, EmulatorSettings), ConfigError> {
        let key = format!("{prefix}.emulate");
        let span = value.span();
        let (kind, mut table) = match value.into_inner() {
            DeValue::Table(mut t) => {
                let Some(kind) = remove_key(&mut t, "kind") else {
                    return Err(self.error(
                        Some(span),
                        Some(key),
                        format!(
                            "an emulate table needs `kind`, the emulator: one of {}",
                            crate::registry::emulator_names()
                        ),
                    ));
                };
                (self.string(&key, "kind", kind)?, Some(t))
            }
            other => (
                self.string(prefix, "emulate", Spanned::new(span.clone(), other))?,
                None,
            ),
        };
        let (kspan, text) = kind;
        let entry = crate::registry::emulator(&text).ok_or_else(|| {
            self.error(
                Some(kspan),
                Some(key.clone()),
                format!(
                    "no emulator {text:?}: choose one of {}",
                    crate::registry::emulator_names()
                ),
            )
        })?;
        let settings: EmulatorSettings = match &mut table {
            Some(t) => self.deserialize(&key, span.clone(), DeValue::Table(t.clone()))?,
            None => EmulatorSettings::default(),
        };
        if let Err(e) = settings.validate(entry) {
            let empty = Default::default();
            return Err(self.setting_error(&key, table.as_ref().unwrap_or(&empty), span, e));
        }
        Ok((Some(entry), settings))
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

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::Config;
    use super::*;

    #[test]
    fn an_emulate_table_describes_the_emulated_head() {
        let ok = Config::parse(
            &format!("{HEAD}[server]\nanonymous_loopback_admin = true\n[ports.L]\nemulate = {{ kind = \"obis\", wavelength_nm = 405.0, max_power_mw = 100.0 }}\n"),
            "t.toml",
        )
        .unwrap();
        let port = &ok.ports[0];
        assert_eq!(port.emulate.map(|e| e.name), Some("obis"));
        assert_eq!(
            port.emulator_settings,
            EmulatorSettings {
                wavelength_nm: Some(405.0),
                max_power_mw: Some(100.0)
            }
        );
        // Each mistake names its key and line.
        for (emulate, key, says) in [
            (
                "{ kind = \"asi\", wavelength_nm = 405.0 }",
                "ports.L.emulate.wavelength_nm",
                "takes no settings",
            ),
            (
                "{ kind = \"obis\", wavelength_nm = 40.5 }",
                "ports.L.emulate.wavelength_nm",
                "200 to 2000",
            ),
            (
                "{ kind = \"obis\", max_power_mw = -1.0 }",
                "ports.L.emulate.max_power_mw",
                "above 0",
            ),
            (
                "{ kind = \"obis\", colour = \"violet\" }",
                "ports.L.emulate.colour",
                "unknown field",
            ),
            (
                "{ wavelength_nm = 405.0 }",
                "ports.L.emulate",
                "needs `kind`",
            ),
            ("{ kind = \"obsi\" }", "ports.L.emulate", "obis"),
        ] {
            let e = err(&format!("{HEAD}[ports.L]\nemulate = {emulate}\n"));
            assert_eq!(e.key.as_deref(), Some(key), "{emulate}: {e}");
            assert_eq!(e.line, Some(4), "{emulate}: {e}");
            assert!(e.message.contains(says), "{emulate}: {e}");
        }
    }
}
