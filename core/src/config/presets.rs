//! `[presets.GROUP.PRESET]`: named sets of device settings (config groups).

use microscoped_driver_api::Value;
use toml::de::DeValue;
use toml::Spanned;

use serde::Deserialize;

use super::{line_col, ConfigError, DeviceConfig, Parser};

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

/// A preset setting's value as TOML writes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl<'a> Parser<'a> {
    /// `[presets.GROUP.PRESET]` tables of `DEVICE.property = value`. Devices must exist here;
    /// properties and values are checked against the drivers once the devices are built
    /// ([`crate::presets::Presets::new`]).
    pub(super) fn presets(
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::Config;
    use super::*;

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
}
