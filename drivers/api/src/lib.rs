//! Driver traits for microscoped.
//!
//! Every device kind is a small trait over [`Device`]; every method is blocking, takes
//! `&mut self` and returns [`Result`]. A driver that lacks a capability does not implement the
//! trait (or does not list the property): nothing here returns "not supported" at run time.
//! This crate knows nothing of threads, async runtimes or the network: the daemon's device host
//! owns each driver on a thread of its own and calls these methods there.
//!
//! Positions are micrometres, powers milliwatts, times milliseconds, wavelengths nanometres.

mod error;
mod property;
mod settings;

pub use error::{DeviceError, ErrorKind, Result};
pub use property::{
    check_write, unknown_property, Axis, PropertySpec, PropertyType, Quantity, Value,
};
pub use settings::{SettingError, Settings};

/// What every device has: properties, a liveness check and a safe state.
pub trait Device: Send {
    /// The properties this device exposes. The list does not change while the device runs.
    fn properties(&self) -> Vec<PropertySpec>;

    /// Reads a property by name.
    fn get_property(&mut self, name: &str) -> Result<Value>;

    /// Writes a property by name. The caller has already checked the value against the spec
    /// with [`PropertySpec::coerce`]; the driver still refuses what the hardware refuses.
    fn set_property(&mut self, name: &str, value: &Value) -> Result<()>;

    /// Asks the device whether it answers, without changing anything.
    fn ping(&mut self) -> Result<()>;

    /// Puts the device in its safe state (laser off, stage stopped, shutter closed). Called at
    /// shutdown and after failures; must be harmless when the device is already safe.
    fn make_safe(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The type of one pixel as a camera delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelType {
    /// 8-bit unsigned.
    U8,
    /// 16-bit unsigned, little-endian in buffers.
    U16,
}

impl PixelType {
    /// Bytes per pixel.
    pub fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 => 2,
        }
    }
}

/// A region of interest in unbinned sensor pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The shape of the frames a camera delivers with its current settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Pixel type.
    pub pixel_type: PixelType,
}

impl FrameShape {
    /// The bytes one frame needs.
    pub fn bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.pixel_type.bytes()
    }
}

/// What a camera reports about one frame it delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameInfo {
    /// The frame's shape; the buffer holds `shape.bytes()` bytes of it.
    pub shape: FrameShape,
    /// The camera's own frame counter, from 0 at the start of a sequence.
    pub sequence: u64,
    /// The camera's timestamp in microseconds, from its own clock.
    pub camera_timestamp_us: u64,
    /// Exposure actually used, in milliseconds.
    pub exposure_ms: f64,
}

/// A camera. It fills buffers it is given, so the frame path never allocates.
pub trait Camera: Device {
    /// Full sensor size in pixels (width, height).
    fn sensor_size(&mut self) -> Result<(u32, u32)>;
    /// Bits of real data per pixel (e.g. 12 in a u16 pixel).
    fn bit_depth(&mut self) -> Result<u32>;
    /// The shape of the next frame with the current ROI, binning and pixel type.
    fn frame_shape(&mut self) -> Result<FrameShape>;
    /// Current region of interest, in unbinned sensor pixels.
    fn roi(&mut self) -> Result<Roi>;
    /// Sets the region of interest; out-of-sensor regions are [`ErrorKind::OutOfRange`].
    fn set_roi(&mut self, roi: Roi) -> Result<()>;
    /// Current binning factor (same in x and y).
    fn binning(&mut self) -> Result<u32>;
    /// Sets the binning factor.
    fn set_binning(&mut self, binning: u32) -> Result<()>;
    /// Current exposure in milliseconds.
    fn exposure_ms(&mut self) -> Result<f64>;
    /// Sets the exposure in milliseconds.
    fn set_exposure_ms(&mut self, exposure_ms: f64) -> Result<()>;
    /// The exposure range the camera accepts, in milliseconds (inclusive).
    fn exposure_range_ms(&mut self) -> Result<(f64, f64)>;
    /// Takes one frame into `buf`, which must hold at least `frame_shape().bytes()` bytes.
    fn snap(&mut self, buf: &mut [u8]) -> Result<FrameInfo>;
    /// Starts free-running acquisition at the camera's own rate.
    fn start_sequence(&mut self) -> Result<()>;
    /// Waits for the next frame of a running sequence and copies it into `buf`.
    fn next_frame(&mut self, buf: &mut [u8]) -> Result<FrameInfo>;
    /// Stops a running sequence; harmless when none runs.
    fn stop_sequence(&mut self) -> Result<()>;
}

/// A single-axis stage, such as a focus drive. Moves start and return; poll [`Stage::is_busy`].
pub trait Stage: Device {
    /// Current position in micrometres.
    fn position_um(&mut self) -> Result<f64>;
    /// Starts a move to an absolute position; outside the travel is [`ErrorKind::OutOfRange`].
    fn move_absolute_um(&mut self, position: f64) -> Result<()>;
    /// Starts a move by a distance from the current position.
    fn move_relative_um(&mut self, distance: f64) -> Result<()> {
        let here = self.position_um()?;
        self.move_absolute_um(here + distance)
    }
    /// True while the stage moves.
    fn is_busy(&mut self) -> Result<bool>;
    /// Stops any motion at once.
    fn stop(&mut self) -> Result<()>;
    /// Starts a homing move to the stage's reference position.
    fn home(&mut self) -> Result<()>;
    /// Travel limits (min, max) in micrometres.
    fn travel_um(&mut self) -> Result<(f64, f64)>;
}

/// A two-axis stage. Moves start and return; poll [`XYStage::is_busy`].
pub trait XYStage: Device {
    /// Current (x, y) in micrometres.
    fn position_um(&mut self) -> Result<(f64, f64)>;
    /// Starts a move to an absolute (x, y); outside the travel is [`ErrorKind::OutOfRange`].
    fn move_absolute_um(&mut self, x: f64, y: f64) -> Result<()>;
    /// Starts a move by (dx, dy) from the current position.
    fn move_relative_um(&mut self, dx: f64, dy: f64) -> Result<()> {
        let (x, y) = self.position_um()?;
        self.move_absolute_um(x + dx, y + dy)
    }
    /// True while the stage moves.
    fn is_busy(&mut self) -> Result<bool>;
    /// Stops any motion at once.
    fn stop(&mut self) -> Result<()>;
    /// Starts a homing move to the stage's reference position.
    fn home(&mut self) -> Result<()>;
    /// Travel limits ((x min, x max), (y min, y max)) in micrometres.
    fn travel_um(&mut self) -> Result<((f64, f64), (f64, f64))>;
}

/// A laser with an emission switch and a power setpoint.
pub trait Laser: Device {
    /// Emission wavelength in nanometres.
    fn wavelength_nm(&mut self) -> Result<f64>;
    /// Whether emission is on.
    fn is_on(&mut self) -> Result<bool>;
    /// Switches emission on or off.
    fn set_on(&mut self, on: bool) -> Result<()>;
    /// The power setpoint in milliwatts.
    fn power_setpoint_mw(&mut self) -> Result<f64>;
    /// Sets the power setpoint; above the maximum is [`ErrorKind::OutOfRange`].
    fn set_power_mw(&mut self, power: f64) -> Result<()>;
    /// The power the laser reports emitting now (0 when off).
    fn power_mw(&mut self) -> Result<f64>;
    /// The highest setpoint the laser accepts, in milliwatts.
    fn max_power_mw(&mut self) -> Result<f64>;
}

/// Checks a laser power setpoint against the highest one allowed: a finite number from 0 to
/// `max_mw` ([`ErrorKind::InvalidValue`] or [`ErrorKind::OutOfRange`], stating the range).
pub fn check_power_mw(power: f64, max_mw: f64) -> Result<()> {
    if !power.is_finite() {
        return Err(DeviceError::invalid(format!(
            "power {power} mW is not a finite number"
        )));
    }
    if !(0.0..=max_mw).contains(&power) {
        return Err(DeviceError::out_of_range(format!(
            "power {power} mW is out of range: allowed 0..={max_mw} mW"
        )));
    }
    Ok(())
}

/// The index of the position labelled `label`, or [`ErrorKind::NotFound`] listing the labels.
pub fn position_of_label(labels: &[String], label: &str) -> Result<u32> {
    labels
        .iter()
        .position(|l| l == label)
        .map(|p| p as u32)
        .ok_or_else(|| {
            DeviceError::not_found(format!(
                "no position is labelled {label:?}; labels: {}",
                labels.join(", ")
            ))
        })
}

/// A device with numbered positions, each with a label: filter wheel, objective turret.
pub trait StateDevice: Device {
    /// The labels of the positions, indexed from 0.
    fn labels(&mut self) -> Result<Vec<String>>;
    /// The current position.
    fn position(&mut self) -> Result<u32>;
    /// Starts moving to a position; an index past the end is [`ErrorKind::OutOfRange`].
    fn set_position(&mut self, position: u32) -> Result<()>;
    /// True while the device moves between positions.
    fn is_busy(&mut self) -> Result<bool>;
}

/// A shutter.
pub trait Shutter: Device {
    /// Whether the shutter is open.
    fn is_open(&mut self) -> Result<bool>;
    /// Opens or closes it.
    fn set_open(&mut self, open: bool) -> Result<()>;
}

/// The kinds of device the daemon knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// [`Camera`]
    Camera,
    /// [`Stage`]
    Stage,
    /// [`XYStage`]
    XYStage,
    /// [`Laser`]
    Laser,
    /// [`StateDevice`]
    State,
    /// [`Shutter`]
    Shutter,
}

impl DeviceKind {
    /// A lower-case name for messages and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Stage => "stage",
            Self::XYStage => "xy-stage",
            Self::Laser => "laser",
            Self::State => "state device",
            Self::Shutter => "shutter",
        }
    }
}

/// A driver of any kind, as the device host owns it.
pub enum AnyDevice {
    /// A camera.
    Camera(Box<dyn Camera>),
    /// A single-axis stage.
    Stage(Box<dyn Stage>),
    /// An XY stage.
    XYStage(Box<dyn XYStage>),
    /// A laser.
    Laser(Box<dyn Laser>),
    /// A filter wheel, turret or other state device.
    State(Box<dyn StateDevice>),
    /// A shutter.
    Shutter(Box<dyn Shutter>),
}

impl AnyDevice {
    /// The device's kind.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Self::Camera(_) => DeviceKind::Camera,
            Self::Stage(_) => DeviceKind::Stage,
            Self::XYStage(_) => DeviceKind::XYStage,
            Self::Laser(_) => DeviceKind::Laser,
            Self::State(_) => DeviceKind::State,
            Self::Shutter(_) => DeviceKind::Shutter,
        }
    }

    /// The device's common interface.
    pub fn device(&mut self) -> &mut dyn Device {
        match self {
            Self::Camera(d) => d.as_mut(),
            Self::Stage(d) => d.as_mut(),
            Self::XYStage(d) => d.as_mut(),
            Self::Laser(d) => d.as_mut(),
            Self::State(d) => d.as_mut(),
            Self::Shutter(d) => d.as_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_checks_state_the_range() {
        assert!(check_power_mw(10.0, 50.0).is_ok());
        assert!(check_power_mw(0.0, 50.0).is_ok());
        let e = check_power_mw(60.0, 50.0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::OutOfRange);
        assert!(e.message.contains("0..=50 mW"), "{e}");
        assert_eq!(
            check_power_mw(-1.0, 50.0).unwrap_err().kind,
            ErrorKind::OutOfRange
        );
        assert_eq!(
            check_power_mw(f64::NAN, 50.0).unwrap_err().kind,
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn labels_map_to_positions() {
        let labels: Vec<String> = ["DAPI", "GFP"].map(String::from).into();
        assert_eq!(position_of_label(&labels, "GFP").unwrap(), 1);
        let e = position_of_label(&labels, "YFP").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message.contains("YFP") && e.message.contains("DAPI, GFP"),
            "{e}"
        );
    }
}
