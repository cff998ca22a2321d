//! A single axis (a Z focus drive, usually) of an ASI MS-2000 or Tiger controller.

use std::time::Duration;

use microscoped_driver_api::{
    Axis, Device, DeviceError, PropertySpec, Quantity, Result, Stage, Value,
};
use microscoped_driver_api::{SettingError, Settings};
use microscoped_serial::Port;
use serde::Deserialize;

use crate::axes::{check, Axes};

/// Settings of an [`AsiStage`], from the config's device table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsiStageSettings {
    /// The controller's letter for the axis.
    pub axis: String,
    /// The Tiger card address of the axis's card ("1" to "9"); leave unset on an MS-2000. With
    /// it, stop halts only this card instead of every axis of the controller.
    pub card: Option<char>,
    /// Soft travel [min, max] in um; moves outside it are refused before anything is sent.
    pub travel_um: [f64; 2],
    /// Speed to set at start, mm/s; unset keeps the controller's own.
    pub speed_mm_s: Option<f64>,
    /// Highest speed the `speed_mm_s` property accepts, mm/s.
    pub max_speed_mm_s: f64,
    /// How long the controller may take to acknowledge HOME, ms.
    pub home_timeout_ms: u64,
}

impl Default for AsiStageSettings {
    fn default() -> Self {
        Self {
            axis: "Z".into(),
            card: None,
            travel_um: [-10_000.0, 10_000.0],
            speed_mm_s: None,
            max_speed_mm_s: 7.5,
            home_timeout_ms: 2000,
        }
    }
}

impl Settings for AsiStageSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        check::axis("axis", &self.axis)?;
        check::card(self.card)?;
        check::travel("travel_um", self.travel_um)?;
        check::speeds(self.speed_mm_s, self.max_speed_mm_s)?;
        check::home_timeout(self.home_timeout_ms)
    }
}

/// One axis of an ASI MS-2000 or Tiger TG-1000 controller, such as the Z focus drive.
/// Positions are micrometres; the controller counts tenths of a micron.
pub struct AsiStage {
    axes: Axes,
}

impl AsiStage {
    /// A stage on `port`, after validating `settings` and checking that the controller answers
    /// for the axis (and, on a Tiger, that the card exists).
    pub fn new(port: Port, settings: AsiStageSettings) -> Result<Self> {
        settings
            .validate()
            .map_err(|e| DeviceError::invalid(format!("ASI stage: {}: {}", e.key, e.message)))?;
        // Validated above: one letter.
        let axis = settings.axis.chars().next().unwrap_or('Z');
        let axes = Axes {
            port,
            who: format!("ASI stage ({axis})"),
            letters: vec![axis],
            travel: vec![settings.travel_um],
            card: settings.card,
            max_speed_mm_s: settings.max_speed_mm_s,
            home_timeout: Duration::from_millis(settings.home_timeout_ms),
        };
        axes.verify(settings.speed_mm_s)?;
        Ok(Self { axes })
    }
}

impl Device for AsiStage {
    fn properties(&self) -> Vec<PropertySpec> {
        let [min, max] = self.axes.travel[0];
        vec![
            self.axes.speed_spec(),
            PropertySpec::float("position_um", min, max)
                .quantity(Quantity::Position(Axis::Z))
                .read_only()
                .describe("Current position"),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        match name {
            "speed_mm_s" => Ok(Value::Float(self.axes.speed()?)),
            "position_um" => Ok(Value::Float(self.position_um()?)),
            _ => Err(self.axes.unknown_property(&self.properties(), name)),
        }
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        let value = self.axes.check_write(&self.properties(), name, value)?;
        match name {
            "speed_mm_s" => self.axes.set_speed(value.as_f64("speed_mm_s")?),
            _ => Err(self.axes.unknown_property(&self.properties(), name)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.axes.positions().map(|_| ())
    }

    fn make_safe(&mut self) -> Result<()> {
        self.axes.stop()
    }
}

impl Stage for AsiStage {
    fn position_um(&mut self) -> Result<f64> {
        self.axes.positions()?.first().copied().ok_or_else(|| {
            DeviceError::new(
                microscoped_driver_api::ErrorKind::Other,
                format!("{}: no position", self.axes.who),
            )
        })
    }

    fn move_absolute_um(&mut self, position: f64) -> Result<()> {
        self.axes.move_absolute(&[position])
    }

    fn move_relative_um(&mut self, distance: f64) -> Result<()> {
        self.axes.move_relative(&[distance])
    }

    fn is_busy(&mut self) -> Result<bool> {
        self.axes.busy()
    }

    fn stop(&mut self) -> Result<()> {
        self.axes.stop()
    }

    fn home(&mut self) -> Result<()> {
        self.axes.home()
    }

    fn travel_um(&mut self) -> Result<(f64, f64)> {
        let [min, max] = self.axes.travel[0];
        Ok((min, max))
    }
}
