//! Facility safety limits, enforced whatever a client asks.
//!
//! A device with limits in its config (`limit_power_mw`, `soft_limits_um`,
//! `soft_limits_x_um` / `soft_limits_y_um`, `limit_exposure_ms`) is wrapped, when the daemon
//! starts, in a driver of its own kind that checks every command against them before the real
//! driver sees it. Every path to the hardware (property writes, moves, snaps, presets,
//! acquisitions, plans) goes through the driver traits, so none can get past: the limit is
//! enforced in one place, below the server, and a refusal is [`ErrorKind::OutOfRange`]
//! (INVALID_ARGUMENT) naming the limit and where it is configured. The wrapped device reports the
//! narrowed ranges in its property specs, its travel and its exposure range, so clients and plan
//! validation see them.
//!
//! A limit is on a [`Quantity`] (laser power, exposure, position along an axis), not on a
//! property name: a trait method checks the quantity it changes, and a property write is
//! checked by the quantity its spec is tagged with, whatever the driver calls the property.
//! `tests.rs` builds every driver family and fails if a writable property that looks like a
//! limited quantity is not tagged, or if a tagged one gets past its limit.
//!
//! [`ErrorKind::OutOfRange`]: microscoped_driver_api::ErrorKind::OutOfRange

use microscoped_driver_api::{
    AnyDevice, Axis, Camera, Device, DeviceError, FrameInfo, FrameShape, Laser, PropertySpec,
    PropertyType, Quantity, Result, Roi, Stage, Value, XYStage,
};
use tracing::{info, warn};

use crate::config::{ConfigError, DeviceLimits, Limit};

/// Wraps `device` in its limits after checking them against what the hardware allows (an error
/// names the limit's file, line and key). A laser set above its cap, or a camera exposing longer
/// than its limit, is brought down to it now. A stage outside its soft limits is left where it
/// is (moving hardware unasked is worse); moves back inside are allowed.
pub fn apply(
    name: &str,
    device: AnyDevice,
    limits: &DeviceLimits,
) -> std::result::Result<AnyDevice, ConfigError> {
    if limits.is_empty() {
        return Ok(device);
    }
    let hw = |e: DeviceError| ConfigError {
        file: String::new(),
        line: None,
        column: None,
        key: None,
        message: format!("device {name:?} did not answer while its limits were checked: {e}"),
    };
    Ok(match device {
        AnyDevice::Laser(mut inner) => {
            let Some(cap) = limits.power_mw.clone() else {
                return Ok(AnyDevice::Laser(inner));
            };
            let max = inner.max_power_mw().map_err(hw)?;
            if cap.value > max {
                return Err(cap.error(format!(
                    "{} mW is above what the laser allows ({max} mW): the limit must lie within the hardware's range",
                    cap.value
                )));
            }
            if inner.power_setpoint_mw().map_err(hw)? > cap.value {
                info!(
                    device = name,
                    cap_mw = cap.value,
                    "laser setpoint above its limit: lowered to it"
                );
                inner.set_power_mw(cap.value).map_err(hw)?;
            }
            let guard = Guard::new(limits, inner.properties());
            AnyDevice::Laser(Box::new(LimitedLaser { inner, guard }))
        }
        AnyDevice::Camera(mut inner) => {
            let Some(cap) = limits.exposure_ms.clone() else {
                return Ok(AnyDevice::Camera(inner));
            };
            let (min, max) = inner.exposure_range_ms().map_err(hw)?;
            if cap.value < min || cap.value > max {
                return Err(cap.error(format!(
                    "{} ms is outside the camera's exposure range ({min}..={max} ms)",
                    cap.value
                )));
            }
            if inner.exposure_ms().map_err(hw)? > cap.value {
                info!(
                    device = name,
                    cap_ms = cap.value,
                    "camera exposure above its limit: lowered to it"
                );
                inner.set_exposure_ms(cap.value).map_err(hw)?;
            }
            let guard = Guard::new(limits, inner.properties());
            AnyDevice::Camera(Box::new(LimitedCamera { inner, guard }))
        }
        AnyDevice::Stage(mut inner) => {
            let Some(soft) = limits.z_um.clone() else {
                return Ok(AnyDevice::Stage(inner));
            };
            inside_travel(&soft, inner.travel_um().map_err(hw)?)?;
            let here = inner.position_um().map_err(hw)?;
            if !(soft.value.0..=soft.value.1).contains(&here) {
                warn!(
                    device = name,
                    position_um = here,
                    "stage is outside its soft limits; moves back inside are allowed"
                );
            }
            let guard = Guard::new(limits, inner.properties());
            AnyDevice::Stage(Box::new(LimitedStage { inner, guard, soft }))
        }
        AnyDevice::XYStage(mut inner) => {
            let (tx, ty) = inner.travel_um().map_err(hw)?;
            if let Some(x) = &limits.x_um {
                inside_travel(x, tx)?;
            }
            if let Some(y) = &limits.y_um {
                inside_travel(y, ty)?;
            }
            let guard = Guard::new(limits, inner.properties());
            AnyDevice::XYStage(Box::new(LimitedXY { inner, guard }))
        }
        // The config parser accepts limits only on the kinds above.
        other => other,
    })
}

/// "the facility safety limit set by devices.Laser488.limit_power_mw (t.toml:40)" when the
/// property `spec` describes has its range narrowed by one of `limits` (by its quantity).
pub fn note_for(limits: &DeviceLimits, spec: &PropertySpec) -> Option<String> {
    let place = bound(limits, spec.quantity?)?.place();
    Some(format!("the facility safety limit set by {place}"))
}

/// The one check: refuses `value` of `quantity` past its limit in `limits`, naming where the
/// limit is configured. A quantity without a limit passes.
fn check_quantity(limits: &DeviceLimits, quantity: Quantity, value: f64) -> Result<()> {
    match bound(limits, quantity) {
        None => Ok(()),
        Some(Bound::Cap(cap)) => check_cap(cap, value, label(quantity), quantity.unit()),
        Some(Bound::Range(range)) => check_range(label(quantity), value, range),
    }
}

/// Refuses `value` for the property `spec` describes when it is past one of `limits` (by the
/// quantity the spec is tagged with), naming where the limit is configured: the check every
/// command gets, for a value read from the config (a preset) before any command is sent.
pub fn check_property(limits: &DeviceLimits, spec: &PropertySpec, value: &Value) -> Result<()> {
    match (spec.quantity, number(value)) {
        (Some(q), Some(v)) => check_quantity(limits, q, v),
        _ => Ok(()),
    }
}

/// The limit on one quantity: a cap (laser power, exposure) or a range (a position).
#[derive(Clone, Copy)]
enum Bound<'a> {
    Cap(&'a Limit<f64>),
    Range(&'a Limit<(f64, f64)>),
}

impl Bound<'_> {
    fn place(self) -> String {
        match self {
            Bound::Cap(l) => l.place(),
            Bound::Range(l) => l.place(),
        }
    }
}

/// The limit `limits` set on `quantity`, if any: the one table from quantities to limits.
fn bound(limits: &DeviceLimits, quantity: Quantity) -> Option<Bound<'_>> {
    match quantity {
        Quantity::LaserPower | Quantity::MaxLaserPower => limits.power_mw.as_ref().map(Bound::Cap),
        Quantity::Exposure => limits.exposure_ms.as_ref().map(Bound::Cap),
        Quantity::Position(Axis::X) => limits.x_um.as_ref().map(Bound::Range),
        Quantity::Position(Axis::Y) => limits.y_um.as_ref().map(Bound::Range),
        Quantity::Position(Axis::Z) => limits.z_um.as_ref().map(Bound::Range),
    }
}

/// What a value of `quantity` is called in a refusal ("power 60 mW is beyond ...").
fn label(quantity: Quantity) -> &'static str {
    match quantity {
        Quantity::LaserPower => "power",
        Quantity::MaxLaserPower => "maximum power",
        Quantity::Exposure => "exposure",
        Quantity::Position(Axis::X) => "target x",
        Quantity::Position(Axis::Y) => "target y",
        Quantity::Position(Axis::Z) => "target",
    }
}

/// One device's limits, by quantity, and the inner driver's property specs (fixed while it
/// runs), which tell what quantity a property write changes. Every wrapper below checks through
/// it, trait methods and property writes alike.
struct Guard {
    limits: DeviceLimits,
    specs: Vec<PropertySpec>,
}

impl Guard {
    fn new(limits: &DeviceLimits, specs: Vec<PropertySpec>) -> Self {
        Self {
            limits: limits.clone(),
            specs,
        }
    }

    /// The quantity the property `name` is tagged with, if any.
    fn quantity_of(&self, name: &str) -> Option<Quantity> {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.quantity)
    }

    /// The one check ([`check_quantity`]) against this device's limits.
    fn check(&self, quantity: Quantity, value: f64) -> Result<()> {
        check_quantity(&self.limits, quantity, value)
    }

    /// Checks a property write by the quantity the property's spec is tagged with, whatever its
    /// name; an untagged property changes no limited quantity.
    fn check_write(&self, name: &str, value: &Value) -> Result<()> {
        match (self.quantity_of(name), number(value)) {
            (Some(q), Some(v)) => self.check(q, v),
            // Not a number: the driver's own check refuses it.
            _ => Ok(()),
        }
    }

    /// `value` of `quantity` lowered to its cap, if it has one: what the device may reach here.
    fn capped(&self, quantity: Quantity, value: f64) -> f64 {
        match bound(&self.limits, quantity) {
            Some(Bound::Cap(cap)) => value.min(cap.value),
            _ => value,
        }
    }

    /// The inner driver's specs with every limited quantity's range narrowed to its limit.
    fn properties(&self) -> Vec<PropertySpec> {
        let mut specs = self.specs.clone();
        for s in &mut specs {
            let Some(q) = s.quantity else { continue };
            match bound(&self.limits, q) {
                None => {}
                Some(Bound::Cap(cap)) => {
                    narrow(s, None, cap.value, &cap.place());
                    if q == Quantity::MaxLaserPower {
                        // The maximum is the cap now, not a range up to it.
                        if let PropertyType::Float { min, .. } = &mut s.ty {
                            *min = cap.value;
                        }
                    }
                }
                Some(Bound::Range(range)) => {
                    narrow(s, Some(range.value.0), range.value.1, &range.place());
                }
            }
        }
        specs
    }

    /// A property read, with a maximum lowered to its cap.
    fn read(&self, name: &str, value: Value) -> Value {
        match (self.quantity_of(name), &value) {
            (Some(q @ Quantity::MaxLaserPower), Value::Float(v)) => {
                Value::Float(self.capped(q, *v))
            }
            _ => value,
        }
    }
}

fn inside_travel(
    soft: &Limit<(f64, f64)>,
    (lo, hi): (f64, f64),
) -> std::result::Result<(), ConfigError> {
    let (a, b) = soft.value;
    if a < lo || b > hi {
        return Err(soft.error(format!(
            "[{a}, {b}] um is not inside the hardware's travel [{lo}, {hi}] um: soft limits must lie within it"
        )));
    }
    Ok(())
}

/// The refusal for a value past a limit.
fn beyond(what: String, limit: String, place: String) -> DeviceError {
    DeviceError::out_of_range(format!(
        "{what} is beyond the facility safety limit {limit} set by {place}; nothing was sent to the device"
    ))
}

/// Refuses `v` outside a range, naming where the range is configured.
fn check_range(what: &str, v: f64, limit: &Limit<(f64, f64)>) -> Result<()> {
    let (lo, hi) = limit.value;
    if v.is_finite() && (lo..=hi).contains(&v) {
        return Ok(());
    }
    Err(beyond(
        format!("{what} {v} um"),
        format!("[{lo}, {hi}] um"),
        limit.place(),
    ))
}

/// The spec with a float range narrowed to `[lo, hi]` and a note saying why.
fn narrow(spec: &mut PropertySpec, lo: Option<f64>, hi: f64, place: &str) {
    if let PropertyType::Float { min, max } = &mut spec.ty {
        if let Some(lo) = lo {
            *min = min.max(lo);
        }
        *max = max.min(hi);
    }
    let note = format!("limited by {place}");
    spec.description = if spec.description.is_empty() {
        note
    } else {
        format!("{} ({note})", spec.description)
    };
}

/// A number written to a property, for checking against a limit (the spec check that follows
/// refuses anything that is not one).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Float(v) => Some(*v),
        Value::Int(v) => Some(*v as f64),
        _ => None,
    }
}

/// Refuses `value` above a cap, naming where the cap is configured.
fn check_cap(cap: &Limit<f64>, value: f64, what: &str, unit: &str) -> Result<()> {
    if value <= cap.value || !value.is_finite() {
        // Not finite: the driver's own check says what is wrong.
        return Ok(());
    }
    Err(beyond(
        format!("{what} {value} {unit}"),
        format!("of {} {unit}", cap.value),
        cap.place(),
    ))
}

/// The `Device` methods of a limited wrapper: specs narrowed, reads capped, writes checked by
/// quantity before the inner driver sees them.
macro_rules! limited_device {
    ($ty:ty) => {
        impl Device for $ty {
            fn properties(&self) -> Vec<PropertySpec> {
                self.guard.properties()
            }
            fn get_property(&mut self, name: &str) -> Result<Value> {
                let value = self.inner.get_property(name)?;
                Ok(self.guard.read(name, value))
            }
            fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
                self.guard.check_write(name, value)?;
                self.inner.set_property(name, value)
            }
            fn ping(&mut self) -> Result<()> {
                self.inner.ping()
            }
            fn make_safe(&mut self) -> Result<()> {
                self.inner.make_safe()
            }
        }
    };
}

struct LimitedLaser {
    inner: Box<dyn Laser>,
    guard: Guard,
}

limited_device!(LimitedLaser);

impl Laser for LimitedLaser {
    fn wavelength_nm(&mut self) -> Result<f64> {
        self.inner.wavelength_nm()
    }
    fn is_on(&mut self) -> Result<bool> {
        self.inner.is_on()
    }
    fn set_on(&mut self, on: bool) -> Result<()> {
        self.inner.set_on(on)
    }
    fn power_setpoint_mw(&mut self) -> Result<f64> {
        self.inner.power_setpoint_mw()
    }
    fn set_power_mw(&mut self, power: f64) -> Result<()> {
        self.guard.check(Quantity::LaserPower, power)?;
        self.inner.set_power_mw(power)
    }
    fn power_mw(&mut self) -> Result<f64> {
        self.inner.power_mw()
    }
    /// The facility cap: the most this laser may be set to here.
    fn max_power_mw(&mut self) -> Result<f64> {
        let max = self.inner.max_power_mw()?;
        Ok(self.guard.capped(Quantity::MaxLaserPower, max))
    }
}

struct LimitedCamera {
    inner: Box<dyn Camera>,
    guard: Guard,
}

limited_device!(LimitedCamera);

impl Camera for LimitedCamera {
    fn sensor_size(&mut self) -> Result<(u32, u32)> {
        self.inner.sensor_size()
    }
    fn bit_depth(&mut self) -> Result<u32> {
        self.inner.bit_depth()
    }
    fn frame_shape(&mut self) -> Result<FrameShape> {
        self.inner.frame_shape()
    }
    fn roi(&mut self) -> Result<Roi> {
        self.inner.roi()
    }
    fn set_roi(&mut self, roi: Roi) -> Result<()> {
        self.inner.set_roi(roi)
    }
    fn binning(&mut self) -> Result<u32> {
        self.inner.binning()
    }
    fn set_binning(&mut self, binning: u32) -> Result<()> {
        self.inner.set_binning(binning)
    }
    fn exposure_ms(&mut self) -> Result<f64> {
        self.inner.exposure_ms()
    }
    fn set_exposure_ms(&mut self, exposure_ms: f64) -> Result<()> {
        self.guard.check(Quantity::Exposure, exposure_ms)?;
        self.inner.set_exposure_ms(exposure_ms)
    }
    fn exposure_range_ms(&mut self) -> Result<(f64, f64)> {
        let (min, max) = self.inner.exposure_range_ms()?;
        Ok((min, self.guard.capped(Quantity::Exposure, max)))
    }
    fn snap(&mut self, buf: &mut [u8]) -> Result<FrameInfo> {
        self.inner.snap(buf)
    }
    fn start_sequence(&mut self) -> Result<()> {
        self.inner.start_sequence()
    }
    fn next_frame(&mut self, buf: &mut [u8]) -> Result<FrameInfo> {
        self.inner.next_frame(buf)
    }
    fn stop_sequence(&mut self) -> Result<()> {
        self.inner.stop_sequence()
    }
}

struct LimitedStage {
    inner: Box<dyn Stage>,
    guard: Guard,
    soft: Limit<(f64, f64)>,
}

limited_device!(LimitedStage);

impl Stage for LimitedStage {
    fn position_um(&mut self) -> Result<f64> {
        self.inner.position_um()
    }
    fn move_absolute_um(&mut self, position: f64) -> Result<()> {
        self.guard.check(Quantity::Position(Axis::Z), position)?;
        self.inner.move_absolute_um(position)
    }
    fn move_relative_um(&mut self, distance: f64) -> Result<()> {
        let target = self.inner.position_um()? + distance;
        self.guard.check(Quantity::Position(Axis::Z), target)?;
        self.inner.move_relative_um(distance)
    }
    fn is_busy(&mut self) -> Result<bool> {
        self.inner.is_busy()
    }
    fn stop(&mut self) -> Result<()> {
        self.inner.stop()
    }
    fn home(&mut self) -> Result<()> {
        self.inner.home()
    }
    /// The soft limits: the travel a client may use.
    fn travel_um(&mut self) -> Result<(f64, f64)> {
        Ok(self.soft.value)
    }
}

struct LimitedXY {
    inner: Box<dyn XYStage>,
    guard: Guard,
}

impl LimitedXY {
    fn check(&self, x: f64, y: f64) -> Result<()> {
        self.guard.check(Quantity::Position(Axis::X), x)?;
        self.guard.check(Quantity::Position(Axis::Y), y)
    }
}

limited_device!(LimitedXY);

impl XYStage for LimitedXY {
    fn position_um(&mut self) -> Result<(f64, f64)> {
        self.inner.position_um()
    }
    fn move_absolute_um(&mut self, x: f64, y: f64) -> Result<()> {
        self.check(x, y)?;
        self.inner.move_absolute_um(x, y)
    }
    fn move_relative_um(&mut self, dx: f64, dy: f64) -> Result<()> {
        let (x, y) = self.inner.position_um()?;
        self.check(x + dx, y + dy)?;
        self.inner.move_relative_um(dx, dy)
    }
    fn is_busy(&mut self) -> Result<bool> {
        self.inner.is_busy()
    }
    fn stop(&mut self) -> Result<()> {
        self.inner.stop()
    }
    fn home(&mut self) -> Result<()> {
        self.inner.home()
    }
    /// The soft limits where set: the travel a client may use.
    fn travel_um(&mut self) -> Result<((f64, f64), (f64, f64))> {
        let (x, y) = self.inner.travel_um()?;
        let limits = &self.guard.limits;
        Ok((
            limits.x_um.as_ref().map_or(x, |l| l.value),
            limits.y_um.as_ref().map_or(y, |l| l.value),
        ))
    }
}

#[cfg(test)]
mod tests;
