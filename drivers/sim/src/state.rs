//! The simulated state device: filter wheel, objective turret.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use microscoped_driver_api::Settings;
use microscoped_driver_api::{Device, DeviceError, PropertySpec, Result, StateDevice, Value};
use serde::Deserialize;

use crate::fault::{Fault, FAULT_PROPERTY};
use crate::props;
use crate::setting::{check_hang, check_range, SettingError};
use crate::world::{FilterState, SimWorld};

/// Fewest positions accepted.
const MIN_POSITIONS: usize = 2;
/// Most positions accepted.
const MAX_POSITIONS: usize = 64;
/// Longest switch time accepted, ms.
const MAX_SWITCH_MS: f64 = 60_000.0;
/// Smallest objective magnification accepted.
pub(crate) const MIN_MAGNIFICATION: f64 = 0.1;
/// Largest objective magnification accepted.
pub(crate) const MAX_MAGNIFICATION: f64 = 1000.0;

/// Settings of a [`SimStateDevice`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimStateDeviceSettings {
    /// One label per position, unique and non-empty; 2..=64 positions.
    pub labels: Vec<String>,
    /// Emission passband [low, high] of each position, nm. A device with passbands is an emission
    /// filter; the first one built in a world filters what the camera sees. Absent from a config
    /// table it is `None` (a turret, say), even though [`Default`] gives the demo filter wheel's
    /// bands: a config that lists other labels must not inherit four passbands.
    #[serde(default)]
    pub passbands_nm: Option<Vec<[f64; 2]>>,
    /// Magnification of each position. A device with magnifications is an objective turret;
    /// the first one built in a world scales what the camera sees: the camera's `pixel_size_um`
    /// is the size through the first position, and the others divide it by their magnification
    /// relative to that one (field of view and bead size follow).
    #[serde(default)]
    pub magnifications: Option<Vec<f64>>,
    /// Time a position change takes, ms.
    pub switch_ms: f64,
    /// Position at start.
    pub initial: u32,
    /// How long an injected hang (`sim_fault = "hang"`) blocks, ms.
    pub hang_ms: u64,
}

impl Default for SimStateDeviceSettings {
    fn default() -> Self {
        Self {
            labels: ["DAPI", "GFP", "mCherry", "Empty"]
                .map(String::from)
                .to_vec(),
            passbands_nm: Some(vec![
                [435.0, 485.0],
                [500.0, 550.0],
                [590.0, 650.0],
                [380.0, 780.0],
            ]),
            magnifications: None,
            switch_ms: 50.0,
            initial: 0,
            hang_ms: 5000,
        }
    }
}

impl Settings for SimStateDeviceSettings {
    fn labels(&self) -> Option<&[String]> {
        Some(&self.labels)
    }

    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        let n = self.labels.len();
        if !(MIN_POSITIONS..=MAX_POSITIONS).contains(&n) {
            return Err(SettingError::new(
                "labels",
                format!("must have {MIN_POSITIONS}..={MAX_POSITIONS} entries, got {n}"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, label) in self.labels.iter().enumerate() {
            if label.trim().is_empty() {
                return Err(SettingError::new(
                    "labels",
                    format!("label {i} is empty: every position needs a name"),
                ));
            }
            if !seen.insert(label.as_str()) {
                return Err(SettingError::new(
                    "labels",
                    format!("label {label:?} appears more than once: labels must be unique"),
                ));
            }
        }
        if let Some(bands) = &self.passbands_nm {
            if bands.len() != n {
                return Err(SettingError::new(
                    "passbands_nm",
                    format!(
                        "must have one [low, high] entry per label ({n}), got {}",
                        bands.len()
                    ),
                ));
            }
            for (i, [lo, hi]) in bands.iter().enumerate() {
                if !(lo.is_finite() && hi.is_finite() && *lo > 0.0 && lo < hi) {
                    return Err(SettingError::new(
                        "passbands_nm",
                        format!(
                            "entry {i} ({}) must be [low, high] with 0 < low < high, got [{lo}, {hi}]",
                            self.labels[i]
                        ),
                    ));
                }
            }
        }
        if let Some(mags) = &self.magnifications {
            if mags.len() != n {
                return Err(SettingError::new(
                    "magnifications",
                    format!("must have one entry per label ({n}), got {}", mags.len()),
                ));
            }
            for (i, m) in mags.iter().enumerate() {
                if !(m.is_finite() && (MIN_MAGNIFICATION..=MAX_MAGNIFICATION).contains(m)) {
                    return Err(SettingError::new(
                        "magnifications",
                        format!(
                            "entry {i} ({}) must be from {MIN_MAGNIFICATION} to {MAX_MAGNIFICATION}, got {m}",
                            self.labels[i]
                        ),
                    ));
                }
            }
        }
        check_range("switch_ms", self.switch_ms, 0.0, MAX_SWITCH_MS)?;
        if self.initial as usize >= n {
            return Err(SettingError::new(
                "initial",
                format!("must be a position 0..={}, got {}", n - 1, self.initial),
            ));
        }
        check_hang(self.hang_ms)
    }
}

/// A simulated filter wheel or turret. A position change takes `switch_ms`, during which
/// `is_busy` is true and, for an emission filter, the camera sees the opaque wheel between
/// filters. `position` reports the commanded position at once, as most such drivers do.
#[derive(Debug)]
pub struct SimStateDevice {
    world: SimWorld,
    id: usize,
    settings: SimStateDeviceSettings,
    fault: Fault,
}

impl SimStateDevice {
    /// A state device in `world`, at `initial`, after validating `settings`.
    pub fn new(
        world: &SimWorld,
        settings: SimStateDeviceSettings,
    ) -> std::result::Result<SimStateDevice, SettingError> {
        settings.validate()?;
        let id = {
            let mut w = world.lock();
            w.filters.push(FilterState {
                passbands: settings.passbands_nm.clone(),
                magnifications: settings.magnifications.clone(),
                target: settings.initial,
                since: Instant::now(),
                duration: Duration::ZERO,
            });
            w.filters.len() - 1
        };
        Ok(SimStateDevice {
            world: world.clone(),
            id,
            fault: Fault::new(settings.hang_ms),
            settings,
        })
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut FilterState) -> T) -> T {
        f(&mut self.world.lock().filters[self.id])
    }

    fn current(&self) -> u32 {
        self.with_state(|s| s.target)
    }

    fn go(&mut self, position: u32) -> Result<()> {
        let n = self.settings.labels.len();
        if position as usize >= n {
            return Err(DeviceError::out_of_range(format!(
                "position {position} is out of range: allowed 0..={} ({})",
                n - 1,
                self.settings.labels.join(", ")
            )));
        }
        let duration = Duration::from_secs_f64(self.settings.switch_ms / 1000.0);
        self.with_state(|s| {
            let now = Instant::now();
            // Asking for where the device already rests costs no motion.
            if s.target == position && !s.is_busy(now) {
                return;
            }
            s.target = position;
            s.since = now;
            s.duration = duration;
        });
        Ok(())
    }
}

const DEVICE: &str = "state device";

impl Device for SimStateDevice {
    fn properties(&self) -> Vec<PropertySpec> {
        let last = self.settings.labels.len() as i64 - 1;
        vec![
            PropertySpec::int("position", 0, last).describe("Current position, from 0"),
            PropertySpec::enumeration("label", &self.settings.labels)
                .describe("Label of the current position; setting it moves there"),
            self.fault.spec(),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.fault.check_unless(name)?;
        Ok(match name {
            "position" => Value::Int(i64::from(self.current())),
            "label" => {
                let p = self.current() as usize;
                Value::String(self.settings.labels.get(p).cloned().unwrap_or_default())
            }
            FAULT_PROPERTY => self.fault.get(),
            _ => return Err(props::unknown(&self.properties(), name, DEVICE)),
        })
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        if name == FAULT_PROPERTY {
            return self.fault.set(value);
        }
        self.fault.check()?;
        let value = props::check_write(&self.properties(), name, value, DEVICE)?;
        match name {
            "position" => {
                let p = props::int(name, &value)?;
                let p = u32::try_from(p).map_err(|_| {
                    DeviceError::out_of_range(format!("position {p} is out of range"))
                })?;
                self.go(p)
            }
            "label" => {
                let label = props::string(name, &value)?;
                self.go(microscoped_driver_api::position_of_label(
                    &self.settings.labels,
                    label,
                )?)
            }
            _ => Err(props::unknown(&self.properties(), name, DEVICE)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.fault.check()
    }
}

impl StateDevice for SimStateDevice {
    fn labels(&mut self) -> Result<Vec<String>> {
        self.fault.check()?;
        Ok(self.settings.labels.clone())
    }

    fn position(&mut self) -> Result<u32> {
        self.fault.check()?;
        Ok(self.current())
    }

    fn set_position(&mut self, position: u32) -> Result<()> {
        self.fault.check()?;
        self.go(position)
    }

    fn is_busy(&mut self) -> Result<bool> {
        self.fault.check()?;
        Ok(self.with_state(|s| s.is_busy(Instant::now())))
    }
}
