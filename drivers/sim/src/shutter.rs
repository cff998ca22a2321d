//! The simulated shutter.

use std::thread;
use std::time::Duration;

use microscoped_driver_api::Settings;
use microscoped_driver_api::{Device, PropertySpec, Result, Shutter, Value};
use serde::Deserialize;

use crate::fault::{Fault, FAULT_PROPERTY};
use crate::props;
use crate::setting::{check_hang, check_range, SettingError};
use crate::world::SimWorld;

/// Longest switch time accepted, ms.
const MAX_SWITCH_MS: f64 = 10_000.0;

/// Settings of a [`SimShutter`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimShutterSettings {
    /// Whether the shutter is open at start.
    pub open: bool,
    /// Time the blades take to open or close, ms.
    pub switch_ms: f64,
    /// How long an injected hang (`sim_fault = "hang"`) blocks, ms.
    pub hang_ms: u64,
}

impl Default for SimShutterSettings {
    fn default() -> Self {
        Self {
            open: false,
            switch_ms: 5.0,
            hang_ms: 5000,
        }
    }
}

impl Settings for SimShutterSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        check_range("switch_ms", self.switch_ms, 0.0, MAX_SWITCH_MS)?;
        check_hang(self.hang_ms)
    }
}

/// A simulated excitation shutter. Light reaches the sample only while every shutter in the
/// world is open. The shutter API has no busy state, so `set_open` returns once the blades have
/// moved (`switch_ms`); opening lets light through only at the end, closing cuts it at once.
#[derive(Debug)]
pub struct SimShutter {
    world: SimWorld,
    id: usize,
    switch: Duration,
    fault: Fault,
}

impl SimShutter {
    /// A shutter in `world`, after validating `settings`.
    pub fn new(
        world: &SimWorld,
        settings: SimShutterSettings,
    ) -> std::result::Result<SimShutter, SettingError> {
        settings.validate()?;
        let id = {
            let mut w = world.lock();
            w.shutters.push(settings.open);
            w.shutters.len() - 1
        };
        Ok(SimShutter {
            world: world.clone(),
            id,
            switch: Duration::from_secs_f64(settings.switch_ms / 1000.0),
            fault: Fault::new(settings.hang_ms),
        })
    }

    fn open_now(&self) -> bool {
        self.world.lock().shutters[self.id]
    }

    fn set(&mut self, open: bool) {
        if open == self.open_now() {
            return;
        }
        if open {
            thread::sleep(self.switch);
            self.world.lock().shutters[self.id] = true;
        } else {
            self.world.lock().shutters[self.id] = false;
            thread::sleep(self.switch);
        }
    }
}

const DEVICE: &str = "shutter";

impl Device for SimShutter {
    fn properties(&self) -> Vec<PropertySpec> {
        vec![
            PropertySpec::bool("open")
                .describe("Whether the shutter lets excitation light through"),
            self.fault.spec(),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.fault.check_unless(name)?;
        Ok(match name {
            "open" => Value::Bool(self.open_now()),
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
            "open" => {
                self.set(props::boolean(name, &value)?);
                Ok(())
            }
            _ => Err(props::unknown(&self.properties(), name, DEVICE)),
        }
    }

    fn ping(&mut self) -> Result<()> {
        self.fault.check()
    }

    fn make_safe(&mut self) -> Result<()> {
        // A safety action is attempted whatever fault is armed: it must not be the call
        // that an injected fault swallows.
        self.set(false);
        Ok(())
    }
}

impl Shutter for SimShutter {
    fn is_open(&mut self) -> Result<bool> {
        self.fault.check()?;
        Ok(self.open_now())
    }

    fn set_open(&mut self, open: bool) -> Result<()> {
        self.fault.check()?;
        self.set(open);
        Ok(())
    }
}
