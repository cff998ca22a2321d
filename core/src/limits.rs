//! Facility safety limits, enforced whatever a client asks.
//!
//! A device with limits in its config (`limit_power_mw`, `soft_limits_um`,
//! `soft_limits_x_um` / `soft_limits_y_um`, `limit_exposure_ms`) is wrapped, when the daemon
//! starts, in a driver of its own kind that checks every command against them before the real
//! driver sees it. Every path to the hardware (property writes, moves, snaps, acquisitions,
//! plans) goes through the driver traits, so none can get past: the limit is enforced in one
//! place, below the server, and a refusal is [`ErrorKind::OutOfRange`] (INVALID_ARGUMENT) naming
//! the limit and where it is configured. The wrapped device reports the narrowed ranges in its
//! property specs, its travel and its exposure range, so clients and plan validation see them.

use microscoped_driver_api::{
    AnyDevice, Camera, Device, DeviceError, FrameInfo, FrameShape, Laser, PropertySpec,
    PropertyType, Result, Roi, Stage, Value, XYStage,
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
            AnyDevice::Laser(Box::new(LimitedLaser { inner, cap }))
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
            AnyDevice::Camera(Box::new(LimitedCamera { inner, cap }))
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
            AnyDevice::Stage(Box::new(LimitedStage { inner, soft }))
        }
        AnyDevice::XYStage(mut inner) => {
            let (tx, ty) = inner.travel_um().map_err(hw)?;
            if let Some(x) = &limits.x_um {
                inside_travel(x, tx)?;
            }
            if let Some(y) = &limits.y_um {
                inside_travel(y, ty)?;
            }
            AnyDevice::XYStage(Box::new(LimitedXY {
                inner,
                x: limits.x_um.clone(),
                y: limits.y_um.clone(),
            }))
        }
        // The config parser accepts limits only on the kinds above.
        other => other,
    })
}

/// "the facility safety limit set by devices.Laser488.limit_power_mw (t.toml:40)" when a
/// property's range is narrowed by one of `limits`.
pub fn note_for(limits: &DeviceLimits, property: &str) -> Option<String> {
    let place = match property {
        "power_setpoint_mw" => limits.power_mw.as_ref().map(Limit::place),
        "exposure_ms" => limits.exposure_ms.as_ref().map(Limit::place),
        "position_um" => limits.z_um.as_ref().map(Limit::place),
        "position_x_um" => limits.x_um.as_ref().map(Limit::place),
        "position_y_um" => limits.y_um.as_ref().map(Limit::place),
        _ => None,
    }?;
    Some(format!("the facility safety limit set by {place}"))
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

struct LimitedLaser {
    inner: Box<dyn Laser>,
    cap: Limit<f64>,
}

impl LimitedLaser {
    fn check(&self, power: f64) -> Result<()> {
        check_cap(&self.cap, power, "power", "mW")
    }
}

impl Device for LimitedLaser {
    fn properties(&self) -> Vec<PropertySpec> {
        let place = self.cap.place();
        let mut specs = self.inner.properties();
        for s in &mut specs {
            if s.name == "power_setpoint_mw" || s.name == "max_power_mw" {
                narrow(s, None, self.cap.value, &place);
            }
            if s.name == "max_power_mw" {
                if let PropertyType::Float { min, .. } = &mut s.ty {
                    *min = self.cap.value;
                }
            }
        }
        specs
    }
    fn get_property(&mut self, name: &str) -> Result<Value> {
        match name {
            "max_power_mw" => Ok(Value::Float(self.max_power_mw()?)),
            _ => self.inner.get_property(name),
        }
    }
    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        if name == "power_setpoint_mw" {
            if let Some(p) = number(value) {
                self.check(p)?;
            }
        }
        self.inner.set_property(name, value)
    }
    fn ping(&mut self) -> Result<()> {
        self.inner.ping()
    }
    fn make_safe(&mut self) -> Result<()> {
        self.inner.make_safe()
    }
}

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
        self.check(power)?;
        self.inner.set_power_mw(power)
    }
    fn power_mw(&mut self) -> Result<f64> {
        self.inner.power_mw()
    }
    /// The facility cap: the most this laser may be set to here.
    fn max_power_mw(&mut self) -> Result<f64> {
        Ok(self.inner.max_power_mw()?.min(self.cap.value))
    }
}

struct LimitedCamera {
    inner: Box<dyn Camera>,
    cap: Limit<f64>,
}

impl LimitedCamera {
    fn check(&self, exposure: f64) -> Result<()> {
        check_cap(&self.cap, exposure, "exposure", "ms")
    }
}

impl Device for LimitedCamera {
    fn properties(&self) -> Vec<PropertySpec> {
        let place = self.cap.place();
        let mut specs = self.inner.properties();
        for s in specs.iter_mut().filter(|s| s.name == "exposure_ms") {
            narrow(s, None, self.cap.value, &place);
        }
        specs
    }
    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.inner.get_property(name)
    }
    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        if name == "exposure_ms" {
            if let Some(e) = number(value) {
                self.check(e)?;
            }
        }
        self.inner.set_property(name, value)
    }
    fn ping(&mut self) -> Result<()> {
        self.inner.ping()
    }
    fn make_safe(&mut self) -> Result<()> {
        self.inner.make_safe()
    }
}

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
        self.check(exposure_ms)?;
        self.inner.set_exposure_ms(exposure_ms)
    }
    fn exposure_range_ms(&mut self) -> Result<(f64, f64)> {
        let (min, max) = self.inner.exposure_range_ms()?;
        Ok((min, max.min(self.cap.value)))
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
    soft: Limit<(f64, f64)>,
}

impl Device for LimitedStage {
    fn properties(&self) -> Vec<PropertySpec> {
        let place = self.soft.place();
        let mut specs = self.inner.properties();
        for s in specs.iter_mut().filter(|s| s.name == "position_um") {
            narrow(s, Some(self.soft.value.0), self.soft.value.1, &place);
        }
        specs
    }
    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.inner.get_property(name)
    }
    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        if name == "position_um" {
            if let Some(p) = number(value) {
                check_range("target", p, &self.soft)?;
            }
        }
        self.inner.set_property(name, value)
    }
    fn ping(&mut self) -> Result<()> {
        self.inner.ping()
    }
    fn make_safe(&mut self) -> Result<()> {
        self.inner.make_safe()
    }
}

impl Stage for LimitedStage {
    fn position_um(&mut self) -> Result<f64> {
        self.inner.position_um()
    }
    fn move_absolute_um(&mut self, position: f64) -> Result<()> {
        check_range("target", position, &self.soft)?;
        self.inner.move_absolute_um(position)
    }
    fn move_relative_um(&mut self, distance: f64) -> Result<()> {
        let target = self.inner.position_um()? + distance;
        check_range("target", target, &self.soft)?;
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
    x: Option<Limit<(f64, f64)>>,
    y: Option<Limit<(f64, f64)>>,
}

impl LimitedXY {
    fn check(&self, x: f64, y: f64) -> Result<()> {
        if let Some(l) = &self.x {
            check_range("target x", x, l)?;
        }
        if let Some(l) = &self.y {
            check_range("target y", y, l)?;
        }
        Ok(())
    }
}

impl Device for LimitedXY {
    fn properties(&self) -> Vec<PropertySpec> {
        let mut specs = self.inner.properties();
        for s in &mut specs {
            let limit = match s.name.as_str() {
                "position_x_um" => &self.x,
                "position_y_um" => &self.y,
                _ => continue,
            };
            if let Some(l) = limit {
                narrow(s, Some(l.value.0), l.value.1, &l.place());
            }
        }
        specs
    }
    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.inner.get_property(name)
    }
    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        let limit = match name {
            "position_x_um" => self.x.as_ref().map(|l| ("target x", l)),
            "position_y_um" => self.y.as_ref().map(|l| ("target y", l)),
            _ => None,
        };
        if let (Some((what, l)), Some(p)) = (limit, number(value)) {
            check_range(what, p, l)?;
        }
        self.inner.set_property(name, value)
    }
    fn ping(&mut self) -> Result<()> {
        self.inner.ping()
    }
    fn make_safe(&mut self) -> Result<()> {
        self.inner.make_safe()
    }
}

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
        Ok((
            self.x.as_ref().map_or(x, |l| l.value),
            self.y.as_ref().map_or(y, |l| l.value),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn laser_cap_refuses_before_the_device_and_narrows_specs() {
        let text = crate::config::DEMO_CONFIG.replace(
            "max_power_mw = 100.0\npower_mw = 10.0\n",
            "max_power_mw = 100.0\npower_mw = 80.0\nlimit_power_mw = 50.0\n",
        );
        let config = Config::parse(&text, "t.toml").unwrap();
        let host = crate::host::DeviceHost::start(&config).unwrap();
        let l = host.get("Laser488").unwrap();
        // Brought down to the cap at start.
        assert_eq!(l.with_laser(|l| l.power_setpoint_mw()).await.unwrap(), 50.0);
        let e = l.with_laser(|l| l.set_power_mw(60.0)).await.unwrap_err();
        let m = e.to_string();
        assert!(m.contains("limit_power_mw") && m.contains("t.toml:"), "{m}");
        assert_eq!(l.with_laser(|l| l.power_setpoint_mw()).await.unwrap(), 50.0);
        assert_eq!(l.with_laser(|l| l.max_power_mw()).await.unwrap(), 50.0);
        let spec = l
            .properties()
            .iter()
            .find(|s| s.name == "power_setpoint_mw")
            .unwrap();
        assert_eq!(
            spec.ty,
            PropertyType::Float {
                min: 0.0,
                max: 50.0
            }
        );
        l.with_laser(|l| l.set_power_mw(50.0)).await.unwrap();
    }

    #[tokio::test]
    async fn soft_limits_refuse_moves_absolute_and_relative() {
        let text = crate::config::DEMO_CONFIG.replace(
            "home = 100.0\n",
            "home = 100.0\nsoft_limits_um = [50.0, 150.0]\n",
        );
        let config = Config::parse(&text, "t.toml").unwrap();
        let host = crate::host::DeviceHost::start(&config).unwrap();
        let z = host.get("Z").unwrap();
        assert!(z.with_stage(|s| s.move_absolute_um(160.0)).await.is_err());
        assert!(z.with_stage(|s| s.move_relative_um(-60.0)).await.is_err());
        assert_eq!(z.with_stage(|s| s.position_um()).await.unwrap(), 100.0);
        assert_eq!(
            z.with_stage(|s| s.travel_um()).await.unwrap(),
            (50.0, 150.0)
        );
        z.with_stage(|s| s.move_relative_um(-40.0)).await.unwrap();
    }

    #[test]
    fn limits_outside_the_hardware_are_config_errors() {
        for (from, to, key) in [
            (
                "max_power_mw = 100.0\npower_mw = 10.0\n",
                "max_power_mw = 100.0\npower_mw = 10.0\nlimit_power_mw = 150.0\n",
                "limit_power_mw",
            ),
            (
                "home = 100.0\n",
                "home = 100.0\nsoft_limits_um = [-5.0, 150.0]\n",
                "soft_limits_um",
            ),
            (
                "speed_um_s = 5000.0\n",
                "speed_um_s = 5000.0\nsoft_limits_x_um = [-30000.0, 0.0]\n",
                "soft_limits_x_um",
            ),
            (
                "pattern = \"beads\"\n",
                "pattern = \"beads\"\nlimit_exposure_ms = 20000.0\n",
                "limit_exposure_ms",
            ),
        ] {
            let text = crate::config::DEMO_CONFIG.replacen(from, to, 1);
            assert_ne!(text, crate::config::DEMO_CONFIG, "{from:?} not found");
            let config = Config::parse(&text, "t.toml").unwrap();
            let e = crate::host::DeviceHost::start(&config)
                .err()
                .expect("refused at start")
                .to_string();
            assert!(e.contains(key) && e.starts_with("t.toml:"), "{e}");
        }
    }
}
