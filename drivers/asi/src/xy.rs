//! The XY stage of an ASI MS-2000 or Tiger controller.

use std::time::Duration;

use microscoped_driver_api::{
    Axis, Device, DeviceError, PropertySpec, Quantity, Result, Value, XYStage,
};
use microscoped_driver_api::{SettingError, Settings};
use microscoped_serial::Port;
use serde::Deserialize;

use crate::axes::{check, Axes};

/// Settings of an [`AsiXYStage`], from the config's device table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsiXYStageSettings {
    /// The controller's letter for the X axis.
    pub x_axis: String,
    /// The controller's letter for the Y axis.
    pub y_axis: String,
    /// The Tiger card address of the XY card ("1" to "9"); leave unset on an MS-2000. With it,
    /// stop halts only this card instead of every axis of the controller.
    pub card: Option<char>,
    /// Soft X travel [min, max] in um; moves outside it are refused before anything is sent.
    pub x_travel_um: [f64; 2],
    /// Soft Y travel [min, max] in um.
    pub y_travel_um: [f64; 2],
    /// Speed to set at start, mm/s; unset keeps the controller's own.
    pub speed_mm_s: Option<f64>,
    /// Highest speed the `speed_mm_s` property accepts, mm/s.
    pub max_speed_mm_s: f64,
    /// How long the controller may take to acknowledge HOME, ms.
    pub home_timeout_ms: u64,
}

impl Default for AsiXYStageSettings {
    fn default() -> Self {
        Self {
            x_axis: "X".into(),
            y_axis: "Y".into(),
            card: None,
            x_travel_um: [-50_000.0, 50_000.0],
            y_travel_um: [-50_000.0, 50_000.0],
            speed_mm_s: None,
            max_speed_mm_s: 7.5,
            home_timeout_ms: 2000,
        }
    }
}

impl Settings for AsiXYStageSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        let x = check::axis("x_axis", &self.x_axis)?;
        let y = check::axis("y_axis", &self.y_axis)?;
        if x == y {
            return Err(SettingError::new(
                "y_axis",
                format!("must differ from x_axis, both are {x:?}"),
            ));
        }
        check::card(self.card)?;
        check::travel("x_travel_um", self.x_travel_um)?;
        check::travel("y_travel_um", self.y_travel_um)?;
        check::speeds(self.speed_mm_s, self.max_speed_mm_s)?;
        check::home_timeout(self.home_timeout_ms)
    }
}

/// The XY stage of an ASI MS-2000 or Tiger TG-1000 controller. Positions are micrometres; the
/// controller counts tenths of a micron.
pub struct AsiXYStage {
    axes: Axes,
}

impl AsiXYStage {
    /// An XY stage on `port`, after validating `settings` and checking that the controller
    /// answers for both axes (and, on a Tiger, that the card exists).
    pub fn new(port: Port, settings: AsiXYStageSettings) -> Result<Self> {
        settings
            .validate()
            .map_err(|e| DeviceError::invalid(format!("ASI XY stage: {}: {}", e.key, e.message)))?;
        // Validated above: each is one letter.
        let x = settings.x_axis.chars().next().unwrap_or('X');
        let y = settings.y_axis.chars().next().unwrap_or('Y');
        let axes = Axes {
            port,
            who: format!("ASI XY stage ({x}, {y})"),
            letters: vec![x, y],
            travel: vec![settings.x_travel_um, settings.y_travel_um],
            card: settings.card,
            max_speed_mm_s: settings.max_speed_mm_s,
            home_timeout: Duration::from_millis(settings.home_timeout_ms),
        };
        axes.verify(settings.speed_mm_s)?;
        Ok(Self { axes })
    }
}

impl Device for AsiXYStage {
    fn properties(&self) -> Vec<PropertySpec> {
        let [x0, x1] = self.axes.travel[0];
        let [y0, y1] = self.axes.travel[1];
        vec![
            self.axes.speed_spec(),
            PropertySpec::float("position_x_um", x0, x1)
                .quantity(Quantity::Position(Axis::X))
                .read_only()
                .describe("Current X position"),
            PropertySpec::float("position_y_um", y0, y1)
                .quantity(Quantity::Position(Axis::Y))
                .read_only()
                .describe("Current Y position"),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        match name {
            "speed_mm_s" => Ok(Value::Float(self.axes.speed()?)),
            "position_x_um" => Ok(Value::Float(self.position_um()?.0)),
            "position_y_um" => Ok(Value::Float(self.position_um()?.1)),
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

impl XYStage for AsiXYStage {
    fn position_um(&mut self) -> Result<(f64, f64)> {
        match self.axes.positions()?.as_slice() {
            [x, y] => Ok((*x, *y)),
            other => Err(DeviceError::new(
                microscoped_driver_api::ErrorKind::Other,
                format!(
                    "{}: expected 2 positions, got {}",
                    self.axes.who,
                    other.len()
                ),
            )),
        }
    }

    fn move_absolute_um(&mut self, x: f64, y: f64) -> Result<()> {
        self.axes.move_absolute(&[x, y])
    }

    fn move_relative_um(&mut self, dx: f64, dy: f64) -> Result<()> {
        self.axes.move_relative(&[dx, dy])
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

    fn travel_um(&mut self) -> Result<((f64, f64), (f64, f64))> {
        let [x0, x1] = self.axes.travel[0];
        let [y0, y1] = self.axes.travel[1];
        Ok(((x0, x1), (y0, y1)))
    }
}
