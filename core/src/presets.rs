//! What the config says about the optics: presets (config groups) and the pixel size.
//!
//! A preset is a named list of device settings (`[presets.Channel.DAPI]`). The config parser
//! checks that its devices exist; [`Presets::new`] checks each property and value against the
//! running drivers, so a typo or a power over a laser's cap stops the daemon at start with the
//! config's file, line and key, not halfway through someone's time-lapse.

use std::time::Duration;

use microscoped_driver_api::{check_write, AnyDevice, DeviceKind, PropertySpec, Value};

use crate::config::{Config, ConfigError, InstrumentInfo, PixelSize, Preset, PresetGroup};
use crate::host::{Claim, DeviceHandle, DeviceHost, HostError};
use crate::names::quote;

/// How long applying a preset waits for filter wheels and turrets it moved to arrive.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// The config's presets, checked against the devices.
#[derive(Debug, Clone, Default)]
pub struct Presets {
    groups: Vec<PresetGroup>,
}

/// A preset that does not exist.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct UnknownPreset(pub String);

/// What is known of a device's properties when its presets are checked.
#[derive(Debug, Clone, Copy)]
pub enum Known<'a> {
    /// Every property, from the running driver (wrapped in its limits).
    All(&'a [PropertySpec]),
    /// Only these, from what the settings declare (a state device's labels): the device needs
    /// its hardware to say the rest, so a setting of another property is left to `serve`.
    Only(&'a [PropertySpec]),
    /// Nothing: the device needs its hardware to say.
    Nothing,
}

/// Checks every setting of every preset of `config` against what is known of its device's
/// properties (`known`, by device name): the property exists and is writable, and the value fits
/// its type and range and the device's facility safety limits (the error then names where the
/// limit is configured); values come back coerced, so `1` becomes `1.0` for a float property.
/// The one check of presets, for `serve` (against the running devices) and `check` (against the
/// devices it can build without the hardware).
pub fn check_presets<'a>(
    config: &Config,
    known: impl Fn(&str) -> Known<'a>,
) -> Result<Vec<PresetGroup>, ConfigError> {
    let mut groups = config.presets.clone();
    for g in &mut groups {
        for p in &mut g.presets {
            for s in &mut p.settings {
                let key = format!("presets.{}.{}.{}.{}", g.name, p.name, s.device, s.property);
                let error = |message: String| ConfigError {
                    file: config.source.clone(),
                    line: Some(s.at.0),
                    column: Some(s.at.1),
                    key: Some(key.clone()),
                    message,
                };
                let specs = match known(&s.device) {
                    Known::All(specs) => specs,
                    Known::Only(specs) if specs.iter().any(|p| p.name == s.property) => specs,
                    Known::Only(_) | Known::Nothing => continue,
                };
                if let Some(spec) = specs.iter().find(|p| p.name == s.property) {
                    let limits = config
                        .devices
                        .iter()
                        .find(|d| d.name == s.device)
                        .map(|d| &d.limits);
                    if let Some(limits) = limits {
                        crate::limits::check_property(limits, spec, &s.value)
                            .map_err(|e| error(e.message))?;
                    }
                }
                s.value = check_write(specs, &s.property, &s.value, &s.device)
                    .map_err(|e| error(e.message))?;
            }
        }
    }
    Ok(groups)
}

impl Presets {
    /// Checks every setting of every preset against the running devices ([`check_presets`]).
    /// The devices' specs are fixed once the daemon runs, so a preset accepted here is never
    /// refused for its values later.
    pub fn new(config: &Config, host: &DeviceHost) -> Result<Presets, ConfigError> {
        let groups = check_presets(config, |name| match host.get(name) {
            Ok(d) => Known::All(d.properties()),
            // The config parser checked that every preset's device exists.
            Err(_) => Known::Nothing,
        })?;
        Ok(Presets { groups })
    }

    /// The groups, in config order.
    pub fn groups(&self) -> &[PresetGroup] {
        &self.groups
    }

    /// Every preset as (group, name), for plan validation.
    pub fn names(&self) -> Vec<(String, String)> {
        self.groups
            .iter()
            .flat_map(|g| g.presets.iter().map(|p| (g.name.clone(), p.name.clone())))
            .collect()
    }

    /// The preset `name` of `group`; the error lists what exists.
    pub fn find(&self, group: &str, name: &str) -> Result<&Preset, UnknownPreset> {
        let Some(g) = self.groups.iter().find(|g| g.name == group) else {
            let known: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
            return Err(UnknownPreset(if known.is_empty() {
                format!(
                    "no preset group {}: this instrument's config has no presets",
                    quote(group)
                )
            } else {
                format!(
                    "no preset group {}; the groups are {}",
                    quote(group),
                    known.join(", ")
                )
            }));
        };
        g.presets.iter().find(|p| p.name == name).ok_or_else(|| {
            UnknownPreset(format!(
                "no preset {} in group {}; its presets are {}",
                quote(name),
                quote(group),
                g.presets
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Applies a preset's settings in order, waits for the filter wheels and turrets it moved
    /// to arrive, and returns each setting as read back. `claimed` is a camera the caller holds
    /// for an acquisition: its settings go through the claim instead of the queue.
    pub async fn apply(
        host: &DeviceHost,
        preset: &Preset,
        claimed: Option<&Claim>,
    ) -> Result<Vec<(String, String, Value)>, HostError> {
        let mut moved = Vec::new();
        for s in &preset.settings {
            let device = host.get(&s.device)?;
            let (property, value) = (s.property.clone(), s.value.clone());
            run(device, claimed, move |d| {
                d.device().set_property(&property, &value)
            })
            .await?;
            if device.kind() == DeviceKind::State && !moved.contains(&s.device) {
                moved.push(s.device.clone());
            }
        }
        for name in &moved {
            host.get(name)?.wait_for_idle(SETTLE_LIMIT).await?;
        }
        let mut applied = Vec::with_capacity(preset.settings.len());
        for s in &preset.settings {
            let device = host.get(&s.device)?;
            let property = s.property.clone();
            let value = run(device, claimed, move |d| d.device().get_property(&property)).await?;
            applied.push((s.device.clone(), s.property.clone(), value));
        }
        Ok(applied)
    }
}

/// Runs `f` on `device`, through `claimed` when that is the device's claim.
async fn run<R, F>(device: &DeviceHandle, claimed: Option<&Claim>, f: F) -> Result<R, HostError>
where
    R: Send + 'static,
    F: FnOnce(&mut AnyDevice) -> Result<R, microscoped_driver_api::DeviceError> + Send + 'static,
{
    match claimed {
        Some(c) if c.device().name() == device.name() => device.run_claimed(c, f).await,
        _ => device.call(f).await,
    }
}

/// The objective in place: the label of the turret `instrument.objective` names, if any.
pub async fn objective_label(instrument: &InstrumentInfo, host: &DeviceHost) -> Option<String> {
    state_label(host, instrument.objective.as_deref()?).await
}

/// The label of the position the state device `name` is at, if it answers.
pub async fn state_label(host: &DeviceHost, name: &str) -> Option<String> {
    host.get(name)
        .ok()?
        .with_state(|s| {
            let labels = s.labels()?;
            Ok(labels
                .get(s.position()? as usize)
                .cloned()
                .unwrap_or_default())
        })
        .await
        .ok()
}

/// µm of sample per unbinned camera pixel: the config's size for the objective in place (or
/// its one size), else the camera's own `pixel_size_um` property. `claimed` as for
/// [`Presets::apply`].
pub async fn pixel_size_um(
    instrument: &InstrumentInfo,
    host: &DeviceHost,
    camera: &DeviceHandle,
    claimed: Option<&Claim>,
) -> Option<f64> {
    match &instrument.pixel_size {
        PixelSize::Fixed(um) => Some(*um),
        PixelSize::PerObjective(sizes) => {
            let label = objective_label(instrument, host).await?;
            sizes.iter().find(|(l, _)| *l == label).map(|(_, um)| *um)
        }
        PixelSize::Camera => {
            if !camera
                .properties()
                .iter()
                .any(|p| p.name == "pixel_size_um")
            {
                return None;
            }
            match run(camera, claimed, |d| {
                d.device().get_property("pixel_size_um")
            })
            .await
            {
                Ok(Value::Float(um)) => Some(um),
                _ => None,
            }
        }
    }
}
