//! Where a dataset goes and what its files say of it: the dataset name rules, the folder
//! under the data root, and the instrument as OME describes it.

use std::path::PathBuf;
use std::time::SystemTime;

use microscoped_driver_api::{DeviceKind, Value};
use tracing::warn;

use super::{AcqError, Acquisitions};
use crate::storage::{ChannelMeta, InstrumentMeta, LaserMeta, ObjectiveMeta, MAX_LIGHTS};

impl Acquisitions {
    /// A name for a dataset the client did not name: `prefix`, the time, and a counter if
    /// taken.
    pub(super) fn fresh_name(&self, owner: &str, prefix: &str) -> String {
        let base = format!("{prefix}-{}", utc_stamp(SystemTime::now()));
        let root = self.0.storage.data_root.join(owner);
        (0..)
            .map(|i| {
                if i == 0 {
                    base.clone()
                } else {
                    format!("{base}-{i}")
                }
            })
            .find(|n| !root.join(n).exists())
            .unwrap_or(base)
    }

    /// Makes the dataset's folder, `data_root/<owner>/<name>`; never reuses an existing one.
    ///
    /// The owner's folder must be a real folder, not a symbolic link someone planted to send
    /// datasets elsewhere; the dataset folder is made with a single `mkdir` of that exact path,
    /// which fails rather than following a link or reusing what is there.
    pub(super) fn dataset_dir(&self, owner: &str, name: &str) -> Result<PathBuf, AcqError> {
        // Owner names come from the config, which checks them; checked again because a path
        // is made of it.
        validate_dataset_name(owner).map_err(AcqError::Precondition)?;
        let root = &self.0.storage.data_root;
        std::fs::create_dir_all(root).map_err(|e| {
            AcqError::Precondition(format!(
                "cannot use the data root {}: {e}; fix its permissions or set storage.data_root",
                root.display()
            ))
        })?;
        let user_dir = root.join(owner);
        match std::fs::create_dir(&user_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(AcqError::Precondition(format!(
                    "cannot create the folder {} for {owner}'s datasets: {e}",
                    user_dir.display()
                )))
            }
        }
        match std::fs::symlink_metadata(&user_dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                warn!(path = %user_dir.display(), "a user's dataset folder is not a real folder; refusing to write there");
                return Err(AcqError::Precondition(format!(
                    "{} is not a real folder (a link or a file): the daemon does not write \
                     datasets there; an admin must remove it",
                    user_dir.display()
                )));
            }
            Err(e) => {
                return Err(AcqError::Precondition(format!(
                    "cannot use the folder {}: {e}",
                    user_dir.display()
                )))
            }
        }
        let dir = user_dir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(AcqError::AlreadyExists(format!(
                    "dataset {name:?} already exists in {}; choose another name",
                    user_dir.display()
                )))
            }
            Err(e) => Err(AcqError::Precondition(format!(
                "cannot create the dataset folder {}: {e}",
                dir.display()
            ))),
        }
    }

    /// The instrument as OME describes it, read from the devices now; best effort, since a
    /// faulted laser must not stop an acquisition that does not use it.
    pub(super) async fn instrument_meta(&self, camera: &str) -> InstrumentMeta {
        let mut lasers = Vec::new();
        // Per-plane power is kept for a fixed number of lasers: the frame path stays Copy.
        for l in self.0.host.of_kind(DeviceKind::Laser).take(MAX_LIGHTS) {
            if let Ok((wavelength_nm, power_mw)) = l
                .with_laser(|l| Ok((l.wavelength_nm()?, l.power_setpoint_mw()?)))
                .await
            {
                lasers.push(LaserMeta {
                    name: l.name().to_owned(),
                    wavelength_nm,
                    power_mw,
                });
            }
        }
        let objective = crate::presets::objective_label(&self.0.instrument, &self.0.host)
            .await
            .map(|label| objective_meta(&label));
        InstrumentMeta {
            detector_model: camera.to_owned(),
            lasers,
            objective,
        }
    }
}

impl Acquisitions {
    /// A channel called `name` lit as the instrument is now: the laser that is on (when
    /// exactly one is) and the emission filter in place. For runs without channel presets.
    pub(super) async fn current_channel(&self, name: &str) -> ChannelMeta {
        let mut on = Vec::new();
        for l in self.0.host.of_kind(DeviceKind::Laser) {
            if let Ok((true, nm)) = l.with_laser(|l| Ok((l.is_on()?, l.wavelength_nm()?))).await {
                on.push(nm);
            }
        }
        let label = match &self.0.instrument.emission_filter {
            Some(wheel) => crate::presets::state_label(&self.0.host, wheel).await,
            None => None,
        };
        self.channel_meta(name, on, label)
    }

    /// The channel a plan's preset `config` of `group` makes: the lasers its settings switch
    /// on (`on = true`; one switched off again does not count) and the emission filter label
    /// (or position) it selects on the instrument's emission filter wheel. What the preset
    /// leaves alone is not known from it, so it is not claimed.
    pub(super) async fn preset_channel(&self, group: &str, config: &str) -> ChannelMeta {
        let Ok(preset) = self.0.presets.find(group, config) else {
            return ChannelMeta::named(config);
        };
        let host = &self.0.host;
        let mut on: Vec<String> = Vec::new();
        let mut label = None;
        for s in &preset.settings {
            let Ok(device) = host.get(&s.device) else {
                continue;
            };
            match (device.kind(), s.property.as_str(), &s.value) {
                (DeviceKind::Laser, "on", Value::Bool(true)) if !on.contains(&s.device) => {
                    on.push(s.device.clone());
                }
                (DeviceKind::Laser, "on", Value::Bool(false)) => on.retain(|n| n != &s.device),
                (DeviceKind::State, "label", Value::String(l))
                    if self.0.instrument.emission_filter.as_ref() == Some(&s.device) =>
                {
                    label = Some(l.clone());
                }
                (DeviceKind::State, "position", Value::Int(p))
                    if self.0.instrument.emission_filter.as_ref() == Some(&s.device) =>
                {
                    let p = *p;
                    label = device
                        .with_state(move |w| Ok(w.labels()?.get(p as usize).cloned()))
                        .await
                        .ok()
                        .flatten();
                }
                _ => {}
            }
        }
        let mut wavelengths = Vec::with_capacity(on.len());
        for name in on {
            if let Ok(l) = host.get(&name) {
                if let Ok(nm) = l.with_laser(|l| l.wavelength_nm()).await {
                    wavelengths.push(nm);
                }
            }
        }
        self.channel_meta(config, wavelengths, label)
    }

    /// A channel lit by lasers of `wavelengths` (nm) through the emission filter `label`. OME
    /// gives a channel one excitation wavelength: with several lasers it is left out (each
    /// plane's laser powers are in its annotation).
    fn channel_meta(
        &self,
        name: &str,
        wavelengths: Vec<f64>,
        label: Option<String>,
    ) -> ChannelMeta {
        let excitation_nm = match wavelengths.as_slice() {
            [nm] => Some(*nm),
            _ => None,
        };
        ChannelMeta {
            name: name.to_owned(),
            excitation_nm,
            emission_nm: label.and_then(|l| self.0.instrument.emission_nm(&l)),
        }
    }
}

// Dataset names are checked in a leaf module, which config (user names) uses as well.
pub use crate::names::validate_dataset_name;

/// An objective as OME describes it, from a turret label such as "60x/1.4 oil".
fn objective_meta(label: &str) -> ObjectiveMeta {
    let mut magnification = None;
    let mut numerical_aperture = None;
    if let Some((mag, rest)) = label.split_once(['x', 'X']) {
        magnification = mag.trim().parse().ok();
        let na = rest
            .trim_start_matches('/')
            .split_whitespace()
            .next()
            .unwrap_or("");
        numerical_aperture = na.parse().ok();
    }
    ObjectiveMeta {
        model: label.to_owned(),
        magnification,
        numerical_aperture,
    }
}

/// "20261122-134501" in UTC, for dataset names: the file metadata's own ISO-8601 time, with
/// the characters a name does not allow left out.
fn utc_stamp(t: SystemTime) -> String {
    let iso = crate::storage::iso8601(t);
    let digits = |r: std::ops::Range<usize>| iso[r].replace([':', '-'], "");
    format!("{}-{}", digits(0..10), digits(11..19))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn objective_labels() {
        let o = objective_meta("60x/1.4 oil");
        assert_eq!(
            (o.magnification, o.numerical_aperture),
            (Some(60.0), Some(1.4))
        );
        let o = objective_meta("custom");
        assert_eq!((o.magnification, o.numerical_aperture), (None, None));
    }

    #[test]
    fn utc_stamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_268_701);
        assert_eq!(utc_stamp(t), "20261121-134501");
        assert_eq!(utc_stamp(SystemTime::UNIX_EPOCH), "19700101-000000");
    }
}
