//! `[instrument]`: who the instrument is, its objective turret, pixel sizes, auto-shutter and
//! emission filter wheel.

use std::fmt;

use microscoped_driver_api::DeviceKind;
use serde::Deserialize;

use super::{ConfigError, DeviceConfig, Parser};

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
    /// The state device whose labels are the emission filters, for the channels' emission
    /// wavelength in the OME metadata.
    pub emission_filter: Option<String>,
    /// The emission wavelength (the band's centre, nm) of labels of the emission filter wheel,
    /// as the config gives them; see [`InstrumentInfo::emission_nm`].
    pub emission_nm: Vec<(String, f64)>,
}

impl InstrumentInfo {
    /// The emission wavelength in nm that the emission filter labelled `label` selects: the
    /// config's `emission_nm` for it, else the band in its name when the name is one
    /// ([`band_centre_nm`]: "525/50", "FF01-525/45-25"), else unknown. A dye's name ("GFP")
    /// is not read as a band: a filter named after a dye may pass any of several.
    pub fn emission_nm(&self, label: &str) -> Option<f64> {
        self.emission_nm
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, nm)| *nm)
            .or_else(|| band_centre_nm(label))
    }
}

/// The centre of a band-pass filter named by its band, "centre/width" in nm ("525/50",
/// "ET 525/50m", "FF01-525/45-25"): exactly one such pair in the name, centre 300 to 1100 nm
/// and width 1 to 200 nm. Anything else (a dye, a multi-band "405/488/561", "Empty") is
/// `None`: better no wavelength in the file than a wrong one.
pub fn band_centre_nm(label: &str) -> Option<f64> {
    let mut found = None;
    for token in label.split(|c: char| c.is_whitespace() || c == '-' || c == '_' || c == ',') {
        if !token.contains('/') {
            continue;
        }
        let mut parts = token.split('/');
        let (Some(centre), Some(width), None) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        // A letter after the width is a vendor's suffix ("525/50m": emitter).
        let width = width.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let (Ok(centre), Ok(width)) = (centre.parse::<u32>(), width.parse::<u32>()) else {
            return None;
        };
        if !(300..=1100).contains(&centre) || !(1..=200).contains(&width) || found.is_some() {
            return None;
        }
        found = Some(f64::from(centre));
    }
    found
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstrument {
    pub(super) name: String,
    #[serde(default)]
    description: String,
    objective: Option<String>,
    #[serde(default)]
    pixel_size_um: Option<RawPixelSize>,
    #[serde(default)]
    shutter: Option<String>,
    #[serde(default)]
    emission_filter: Option<String>,
    #[serde(default)]
    emission_nm: Option<std::collections::BTreeMap<String, f64>>,
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

impl<'a> Parser<'a> {
    /// `[instrument]` once the devices are known: the turret and shutter it names must exist
    /// and be of their kind, and the pixel sizes must fit the turret.
    pub(super) fn instrument(
        &self,
        raw: RawInstrument,
        parsed: &[DeviceConfig],
    ) -> Result<InstrumentInfo, ConfigError> {
        if let Some(obj) = &raw.objective {
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
        let pixel_size = self.pixel_size(&raw, parsed)?;
        if let Some(name) = &raw.shutter {
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
        let emission_nm = self.emission(&raw, parsed)?;
        Ok(InstrumentInfo {
            name: raw.name,
            description: raw.description,
            objective: raw.objective,
            shutter: raw.shutter,
            pixel_size,
            emission_filter: raw.emission_filter,
            emission_nm,
        })
    }

    /// `instrument.emission_filter` names a state device; `instrument.emission_nm` gives
    /// wavelengths from 200 to 2000 nm to labels that wheel has (when the config lists them).
    fn emission(
        &self,
        raw: &RawInstrument,
        devices: &[DeviceConfig],
    ) -> Result<Vec<(String, f64)>, ConfigError> {
        let at = |path: &[&str], message: String| {
            let mut full = vec!["instrument"];
            full.extend_from_slice(path);
            self.error(self.find_key(&full), Some(full.join(".")), message)
        };
        let wheel = match &raw.emission_filter {
            Some(name) => match devices.iter().find(|d| &d.name == name) {
                Some(d) if d.kind() == DeviceKind::State => Some(d),
                _ => {
                    return Err(at(
                        &["emission_filter"],
                        format!(
                            "{name:?} must name a state device (a filter wheel) of this config"
                        ),
                    ))
                }
            },
            None => None,
        };
        let Some(table) = &raw.emission_nm else {
            return Ok(Vec::new());
        };
        let Some(wheel) = wheel else {
            return Err(at(
                &["emission_nm"],
                "wavelengths per filter need `instrument.emission_filter` to name the filter wheel"
                    .into(),
            ));
        };
        let labels = wheel.settings.labels();
        let mut out = Vec::with_capacity(table.len());
        for (label, &nm) in table {
            let (lo, hi) = crate::registry::WAVELENGTH_NM;
            if !(nm.is_finite() && (lo..=hi).contains(&nm)) {
                return Err(at(
                    &["emission_nm", label],
                    format!("must be a wavelength in nm from {lo} to {hi}, got {nm}"),
                ));
            }
            if let Some(labels) = labels {
                if !labels.iter().any(|l| l == label) {
                    return Err(at(
                        &["emission_nm", label],
                        format!(
                            "{label:?} is not a position of the filter wheel {:?}; its labels are {}",
                            wheel.name,
                            labels.join(", ")
                        ),
                    ));
                }
            }
            out.push((label.clone(), nm));
        }
        Ok(out)
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::Config;
    use super::*;

    #[test]
    fn band_names_are_read_conservatively() {
        for (label, nm) in [
            ("525/50", Some(525.0)),
            ("ET 525/50m", Some(525.0)),
            ("FF01-525/45-25", Some(525.0)),
            ("GFP", None),
            ("Empty", None),
            ("405/488/561", None),
            ("525/50 + 600/50", None),
            ("60x/1.4", None),
            ("1.5/2", None),
        ] {
            assert_eq!(band_centre_nm(label), nm, "{label}");
        }
    }

    #[test]
    fn emission_wavelengths_name_the_wheel_and_its_labels() {
        let wheel =
            "[devices.W]\ndriver = \"sim.state\"\nlabels = [\"GFP\", \"600/50\", \"Empty\"]\n";
        let ok = Config::parse(
            &format!("[instrument]\nname = \"t\"\nemission_filter = \"W\"\nemission_nm = {{ GFP = 525.0 }}\n[server]\nanonymous_loopback_admin = true\n{wheel}"),
            "t.toml",
        )
        .unwrap();
        let i = &ok.instrument;
        assert_eq!(i.emission_filter.as_deref(), Some("W"));
        assert_eq!(
            (
                i.emission_nm("GFP"),
                i.emission_nm("600/50"),
                i.emission_nm("Empty")
            ),
            (Some(525.0), Some(600.0), None)
        );
        let e = err(&format!(
            "[instrument]\nname = \"t\"\nemission_filter = \"W\"\nemission_nm = {{ RFP = 600.0 }}\n{wheel}"
        ));
        assert_eq!(e.key.as_deref(), Some("instrument.emission_nm.RFP"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("GFP, 600/50, Empty"), "{e}");
        let e = err(&format!(
            "[instrument]\nname = \"t\"\nemission_filter = \"W\"\nemission_nm = {{ GFP = 52.5 }}\n{wheel}"
        ));
        assert!(e.message.contains("200 to 2000"), "{e}");
        let e = err(&format!("{HEAD}emission_nm = {{ GFP = 525.0 }}\n{wheel}"));
        assert!(e.message.contains("instrument.emission_filter"), "{e}");
        let e = err(&format!("{HEAD}emission_filter = \"Nope\"\n{wheel}"));
        assert_eq!(e.key.as_deref(), Some("instrument.emission_filter"), "{e}");
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
}
