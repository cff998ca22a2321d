//! The simulated camera.

use std::thread;
use std::time::{Duration, Instant};

use microscoped_driver_api::Settings;
use microscoped_driver_api::{
    Camera, Device, DeviceError, ErrorKind, FrameInfo, FrameShape, PixelType, PropertySpec,
    Quantity, Result, Roi, Value,
};
use serde::Deserialize;

use crate::beads::BeadField;
use crate::fault::{Fault, FAULT_PROPERTY};
use crate::props;
use crate::render::{self, SpotScratch, View};
use crate::rng::{splitmix64, Rng};
use crate::setting::{check_hang, check_positive, check_range, SettingError};
use crate::state::{MAX_MAGNIFICATION, MIN_MAGNIFICATION};
use crate::world::SimWorld;

/// What the simulated camera images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimPattern {
    /// Fluorescent beads on the stage, lit by the lasers through the filter and shutter.
    #[default]
    Beads,
    /// A diagonal gradient that moves with time, independent of the other devices.
    Gradient,
    /// Camera noise only: offset plus read noise.
    Noise,
    /// A digital test pattern, as real cameras have: pixel `i` of frame `n` (row-major, in the
    /// output frame) reads `(i + 7919 * n) mod 2^bit_depth`, with no offset or noise. Cheap to
    /// make (for benchmarks) and exactly predictable (for checking files bit by bit).
    Ramp,
}

impl SimPattern {
    const NAMES: [&'static str; 4] = ["beads", "gradient", "noise", "ramp"];

    /// The pattern's name, as in the config and the `pattern` property.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Beads => "beads",
            Self::Gradient => "gradient",
            Self::Noise => "noise",
            Self::Ramp => "ramp",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "beads" => Some(Self::Beads),
            "gradient" => Some(Self::Gradient),
            "noise" => Some(Self::Noise),
            "ramp" => Some(Self::Ramp),
            _ => None,
        }
    }
}

/// Settings of a [`SimCamera`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimCameraSettings {
    /// Sensor width, pixels (1..=16384).
    pub width: u32,
    /// Sensor height, pixels (1..=16384).
    pub height: u32,
    /// Bits per pixel, 8..=16: up to 8 the frames are u8, above that u16.
    pub bit_depth: u32,
    /// Sample-plane size of one unbinned pixel, um. With a simulated objective turret that has
    /// magnifications, the size through its first objective; the others scale it.
    pub pixel_size_um: f64,
    /// Initial exposure, ms.
    pub exposure_ms: f64,
    /// Shortest exposure accepted, ms.
    pub min_exposure_ms: f64,
    /// Longest exposure accepted, ms.
    pub max_exposure_ms: f64,
    /// Readout time, ms: in a sequence the frame period is max(exposure, readout).
    pub readout_ms: f64,
    /// Baseline the camera adds to every pixel, counts.
    pub offset: f64,
    /// Read noise, counts (standard deviation).
    pub read_noise: f64,
    /// What the camera images.
    pub pattern: SimPattern,
    /// Mean number of beads in the full-sensor field of view; sets the bead density.
    pub bead_count: u32,
    /// Largest binning factor.
    pub max_binning: u32,
    /// How long an injected hang (`sim_fault = "hang"`) blocks, ms.
    pub hang_ms: u64,
    /// Write the scene (filter, lasers, shutter, stage, exposure) into each frame's first
    /// pixels, so tests can check which settings a stored image was taken with (see [`Stamp`](crate::Stamp)).
    pub stamp: bool,
    /// Run the frame clock on the wall clock, as a real camera's runs: frames are due every
    /// period whatever drawing them costs this machine, and a reader (or a drawing) more than
    /// the camera's four-frame buffer late loses frames. For benchmarks, where the `ramp`
    /// pattern's one copy a frame stands for what a real camera's DMA costs the host. Off (the
    /// default), the simulator's own time is never charged to the reader, so tests deliver
    /// every frame however slow the machine.
    pub wall_clock: bool,
}

impl Default for SimCameraSettings {
    fn default() -> Self {
        Self {
            width: 512,
            height: 512,
            bit_depth: 12,
            pixel_size_um: 0.65,
            exposure_ms: 10.0,
            min_exposure_ms: 0.01,
            max_exposure_ms: 10_000.0,
            readout_ms: 5.0,
            offset: 100.0,
            read_noise: 2.0,
            pattern: SimPattern::Beads,
            bead_count: 200,
            max_binning: 4,
            hang_ms: 5000,
            stamp: false,
            wall_clock: false,
        }
    }
}

/// Largest sensor side accepted.
const MAX_SENSOR_PX: u32 = 16_384;
/// Largest binning factor accepted.
const MAX_BINNING: u32 = 64;
/// Longest exposure or readout accepted, ms (about 17 minutes).
const MAX_TIME_MS: f64 = 1e6;
/// Largest read noise accepted, counts.
const MAX_READ_NOISE: f64 = 1000.0;
/// Largest pixel size accepted, um.
const MAX_PIXEL_UM: f64 = 100.0;
/// Largest `bead_count` accepted.
const MAX_BEAD_COUNT: u32 = 1_000_000;
/// Frames the simulated camera holds for a slow reader before the oldest is overwritten.
const FIFO_FRAMES: u64 = 4;

impl Settings for SimCameraSettings {
    /// Checks every setting; the error names the first key at fault.
    fn validate(&self) -> std::result::Result<(), SettingError> {
        for (key, v) in [("width", self.width), ("height", self.height)] {
            if v == 0 || v > MAX_SENSOR_PX {
                return Err(SettingError::new(
                    key,
                    format!("must be within 1..={MAX_SENSOR_PX} pixels, got {v}"),
                ));
            }
        }
        if !(8..=16).contains(&self.bit_depth) {
            return Err(SettingError::new(
                "bit_depth",
                format!("must be within 8..=16, got {}", self.bit_depth),
            ));
        }
        check_positive("pixel_size_um", self.pixel_size_um, MAX_PIXEL_UM)?;
        check_positive("min_exposure_ms", self.min_exposure_ms, MAX_TIME_MS)?;
        check_range(
            "max_exposure_ms",
            self.max_exposure_ms,
            self.min_exposure_ms,
            MAX_TIME_MS,
        )?;
        check_range(
            "exposure_ms",
            self.exposure_ms,
            self.min_exposure_ms,
            self.max_exposure_ms,
        )?;
        check_range("readout_ms", self.readout_ms, 0.0, MAX_TIME_MS)?;
        check_range(
            "offset",
            self.offset,
            0.0,
            f64::from(full_scale(self.bit_depth)),
        )?;
        check_range("read_noise", self.read_noise, 0.0, MAX_READ_NOISE)?;
        if self.bead_count > MAX_BEAD_COUNT {
            return Err(SettingError::new(
                "bead_count",
                format!("must be at most {MAX_BEAD_COUNT}, got {}", self.bead_count),
            ));
        }
        let max_bin = MAX_BINNING.min(self.width).min(self.height);
        if self.max_binning == 0 || self.max_binning > max_bin {
            return Err(SettingError::new(
                "max_binning",
                format!(
                    "must be within 1..={max_bin} (at most {MAX_BINNING} and the sensor size), got {}",
                    self.max_binning
                ),
            ));
        }
        check_hang(self.hang_ms)
    }
}

/// The largest pixel value at `bit_depth` bits.
fn full_scale(bit_depth: u32) -> u32 {
    (1u32 << bit_depth) - 1
}

/// A running sequence's clock, in camera time: wall time since the sequence started, less the
/// time the simulator spent inside `next_frame` past the moment each frame was due (rendering
/// it, oversleeping). A real camera's frame clock is hardware and costs the host nothing; so
/// only the reader's own time between calls can make it late and lose frames, however slowly
/// this machine (or a debug build) renders.
///
/// Frame `n` is exposed from `anchor + (n - anchor_index) * period` and ready one period later;
/// changing the exposure re-anchors the clock.
#[derive(Debug, Clone, Copy)]
struct Sequence {
    /// Wall time the sequence started.
    start: Instant,
    /// The simulator's own time, excluded from the frame clock.
    charged: Duration,
    anchor: Duration,
    anchor_index: u64,
    period_s: f64,
    next: u64,
}

impl Sequence {
    /// Camera time at wall time `wall`.
    fn camera_time(&self, wall: Instant) -> Duration {
        wall.saturating_duration_since(self.start)
            .saturating_sub(self.charged)
    }

    /// Wall time at camera time `t`.
    fn wall_time(&self, t: Duration) -> Instant {
        self.start + self.charged + t
    }

    /// When frame `n` starts exposing.
    fn exposure_start(&self, n: u64) -> Duration {
        self.anchor + Duration::from_secs_f64(self.period_s * (n - self.anchor_index) as f64)
    }

    /// When frame `n` is ready.
    fn ready_at(&self, n: u64) -> Duration {
        self.anchor + Duration::from_secs_f64(self.period_s * (n - self.anchor_index + 1) as f64)
    }
}

/// A simulated camera.
///
/// Binning is any integer from 1 to `max_binning`, the same in x and y; the frame is the ROI
/// divided by the binning, rounded down. Binning sums light as charge binning on a CCD does:
/// binned pixels are brighter, while offset and read noise are added once per output pixel.
///
/// `snap` takes the exposure time in real time. A sequence runs free at one frame per
/// max(exposure, readout); the camera holds up to four finished frames, and a reader that falls
/// further behind loses the oldest, which shows as a jump in `sequence`. Only the reader's time
/// between `next_frame` calls counts: the simulator's time rendering a frame does not, so a slow
/// machine or a debug build delivers every frame, later (`camera_timestamp_us` stays on the
/// frame clock). While a sequence runs,
/// the exposure may change (the frame clock restarts) but ROI and binning may not, and `snap` is
/// refused, all with [`ErrorKind::Busy`]. `next_frame` without a running sequence is
/// [`ErrorKind::InvalidValue`].
#[derive(Debug)]
pub struct SimCamera {
    world: SimWorld,
    settings: SimCameraSettings,
    fault: Fault,
    exposure_ms: f64,
    roi: Roi,
    binning: u32,
    pattern: SimPattern,
    /// Write the scene stamp into each frame.
    stamp: bool,
    read_noise: f64,
    offset: f64,
    field: BeadField,
    rng: Rng,
    signal: Vec<f32>,
    /// The `ramp` pattern's one period plus a frame, made once per shape: any frame of the
    /// pattern is a window into it, so drawing one is a single copy.
    ramp_base: Vec<u8>,
    scratch: SpotScratch,
    clock: Instant,
    sequence: Option<Sequence>,
    /// Extra time each render takes, so tests can make the simulator slower than its frame
    /// period on any machine.
    #[cfg(test)]
    pub(crate) render_delay: Duration,
}

impl SimCamera {
    /// A camera imaging `world`, after validating `settings`.
    pub fn new(
        world: &SimWorld,
        settings: SimCameraSettings,
    ) -> std::result::Result<SimCamera, SettingError> {
        settings.validate()?;
        let (seed, index) = {
            let mut w = world.lock();
            w.cameras += 1;
            (w.seed, w.cameras)
        };
        let fov_um2 = f64::from(settings.width)
            * f64::from(settings.height)
            * settings.pixel_size_um
            * settings.pixel_size_um;
        let field = BeadField::new(seed, f64::from(settings.bead_count) / fov_um2);
        let roi = Roi {
            x: 0,
            y: 0,
            width: settings.width,
            height: settings.height,
        };
        let mut camera = SimCamera {
            world: world.clone(),
            fault: Fault::new(settings.hang_ms),
            exposure_ms: settings.exposure_ms,
            roi,
            binning: 1,
            pattern: settings.pattern,
            stamp: settings.stamp,
            read_noise: settings.read_noise,
            offset: settings.offset,
            field,
            rng: Rng::new(seed ^ splitmix64(index)),
            signal: Vec::new(),
            ramp_base: Vec::new(),
            scratch: SpotScratch::default(),
            clock: Instant::now(),
            sequence: None,
            #[cfg(test)]
            render_delay: Duration::ZERO,
            settings,
        };
        camera.resize_scratch();
        Ok(camera)
    }

    fn view(&self) -> View {
        View {
            sensor: (self.settings.width, self.settings.height),
            roi: self.roi,
            binning: self.binning,
            pixel_size_um: self.settings.pixel_size_um,
        }
    }

    fn pixel_type(&self) -> PixelType {
        if self.settings.bit_depth <= 8 {
            PixelType::U8
        } else {
            PixelType::U16
        }
    }

    fn shape(&self) -> FrameShape {
        let (w, h) = self.view().frame_size();
        FrameShape {
            width: w as u32,
            height: h as u32,
            pixel_type: self.pixel_type(),
        }
    }

    fn period_s(&self) -> f64 {
        self.exposure_ms.max(self.settings.readout_ms) / 1000.0
    }

    /// Sizes the scratch buffers for the current frame shape; this is the only place the frame
    /// path's memory grows.
    fn resize_scratch(&mut self) {
        let (w, h) = self.view().frame_size();
        self.signal.resize(w * h, 0.0);
        self.scratch.reserve(w, h);
    }

    fn refuse_while_running(&self, what: &str) -> Result<()> {
        if self.sequence.is_some() {
            Err(DeviceError::new(
                ErrorKind::Busy,
                format!("cannot {what} while a sequence runs: stop the sequence first"),
            ))
        } else {
            Ok(())
        }
    }

    fn check_buffer(&self, buf: &[u8]) -> Result<FrameShape> {
        let shape = self.shape();
        if buf.len() < shape.bytes() {
            return Err(DeviceError::invalid(format!(
                "frame buffer holds {} bytes but a {}x{} {:?} frame needs {}",
                buf.len(),
                shape.width,
                shape.height,
                shape.pixel_type,
                shape.bytes()
            )));
        }
        Ok(shape)
    }

    /// Renders frame number `frame`, exposed from `at`, into `buf`, which holds at least one
    /// frame.
    fn render(&mut self, at: Instant, frame: u64, buf: &mut [u8]) {
        #[cfg(test)]
        thread::sleep(self.render_delay);
        self.render_pattern(at, frame, buf);
        if self.stamp {
            let exposure_ms = self.exposure_ms;
            self.world
                .lock()
                .stamp(at, exposure_ms)
                .write(buf, self.pixel_type());
        }
    }

    /// Draws the pattern alone.
    fn render_pattern(&mut self, at: Instant, frame: u64, buf: &mut [u8]) {
        if self.pattern == SimPattern::Ramp {
            let bytes = self.shape().bytes();
            let max = full_scale(self.settings.bit_depth);
            let pixel_type = self.pixel_type();
            let px = pixel_type.bytes();
            let period = max as usize + 1;
            if self.ramp_base.len() != bytes + period * px {
                self.ramp_base.resize(bytes + period * px, 0);
                render::ramp(&mut self.ramp_base, pixel_type, 0, max);
            }
            let start = (frame.wrapping_mul(7919) % period as u64) as usize * px;
            buf[..bytes].copy_from_slice(&self.ramp_base[start..start + bytes]);
            return;
        }
        let view = self.view();
        let signal = &mut self.signal[..];
        match self.pattern {
            SimPattern::Noise | SimPattern::Ramp => signal.fill(0.0),
            SimPattern::Gradient => {
                let t_s = at.saturating_duration_since(self.clock).as_secs_f64();
                let amplitude =
                    0.5 * (f64::from(full_scale(self.settings.bit_depth)) - self.offset);
                render::gradient(signal, &view, t_s, amplitude.max(0.0));
            }
            SimPattern::Beads => {
                signal.fill(0.0);
                let scene = self.world.lock().scene(at);
                let view = View {
                    pixel_size_um: view.pixel_size_um * scene.pixel_scale,
                    ..view
                };
                render::add_beads(
                    signal,
                    &view,
                    &scene,
                    &self.field,
                    self.exposure_ms,
                    &mut self.scratch,
                );
            }
        }
        let bytes = self.shape().bytes();
        render::digitize(
            &self.signal,
            &mut buf[..bytes],
            self.pixel_type(),
            self.offset,
            self.read_noise,
            full_scale(self.settings.bit_depth),
            &mut self.rng,
        );
    }

    fn micros_between(from: Instant, to: Instant) -> u64 {
        u64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(u64::MAX)
    }

    fn set_binning_checked(&mut self, binning: u32) -> Result<()> {
        self.refuse_while_running("change binning")?;
        if binning == 0 || binning > self.settings.max_binning {
            return Err(DeviceError::out_of_range(format!(
                "binning {binning} is out of range: allowed 1..={}",
                self.settings.max_binning
            )));
        }
        if self.roi.width < binning || self.roi.height < binning {
            return Err(DeviceError::out_of_range(format!(
                "binning {binning} leaves no pixels of the {}x{} ROI",
                self.roi.width, self.roi.height
            )));
        }
        self.binning = binning;
        self.resize_scratch();
        Ok(())
    }

    fn set_exposure_checked(&mut self, exposure_ms: f64) -> Result<()> {
        let (min, max) = (self.settings.min_exposure_ms, self.settings.max_exposure_ms);
        if !exposure_ms.is_finite() || exposure_ms < min || exposure_ms > max {
            return Err(DeviceError::out_of_range(format!(
                "exposure {exposure_ms} ms is out of range: allowed {min}..={max} ms"
            )));
        }
        self.exposure_ms = exposure_ms;
        let period_s = self.period_s();
        if let Some(seq) = &mut self.sequence {
            // Frames not yet read are from the old timing; the clock restarts now.
            seq.anchor = seq.camera_time(Instant::now());
            seq.anchor_index = seq.next;
            seq.period_s = period_s;
        }
        Ok(())
    }
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        thread::sleep(deadline - now);
    }
}

const DEVICE: &str = "camera";

impl Device for SimCamera {
    fn properties(&self) -> Vec<PropertySpec> {
        let s = &self.settings;
        let full = full_scale(s.bit_depth);
        vec![
            PropertySpec::float("exposure_ms", s.min_exposure_ms, s.max_exposure_ms)
                .quantity(Quantity::Exposure)
                .describe("Exposure time per frame"),
            PropertySpec::int("binning", 1, i64::from(s.max_binning))
                .describe("Binning factor, same in x and y; binned pixels sum their light"),
            PropertySpec::enumeration("pattern", &SimPattern::NAMES)
                .describe("What the camera images: stage beads, a moving gradient, or noise only"),
            PropertySpec::bool("stamp").describe(
                "Write the scene (filter, lasers, shutter, stage, exposure) into the first 19 pixels",
            ),
            PropertySpec::float("read_noise", 0.0, MAX_READ_NOISE)
                .unit("counts")
                .describe("Read noise added to every pixel (standard deviation)"),
            PropertySpec::float("offset", 0.0, f64::from(full))
                .unit("counts")
                .describe("Baseline added to every pixel"),
            PropertySpec::int("bit_depth", i64::from(s.bit_depth), i64::from(s.bit_depth))
                .read_only()
                .describe("Bits of data per pixel"),
            PropertySpec::int("sensor_width", i64::from(s.width), i64::from(s.width))
                .unit("px")
                .read_only()
                .describe("Sensor width in unbinned pixels"),
            PropertySpec::int("sensor_height", i64::from(s.height), i64::from(s.height))
                .unit("px")
                .read_only()
                .describe("Sensor height in unbinned pixels"),
            // The objective in place scales it by up to the widest ratio of magnifications.
            PropertySpec::float(
                "pixel_size_um",
                0.0,
                MAX_PIXEL_UM * MAX_MAGNIFICATION / MIN_MAGNIFICATION,
            )
                .unit("um")
                .read_only()
                .describe("Sample-plane size of one unbinned pixel through the objective in place"),
            self.fault.spec(),
        ]
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        self.fault.check_unless(name)?;
        let s = &self.settings;
        Ok(match name {
            "exposure_ms" => Value::Float(self.exposure_ms),
            "binning" => Value::Int(i64::from(self.binning)),
            "pattern" => Value::String(self.pattern.as_str().to_owned()),
            "read_noise" => Value::Float(self.read_noise),
            "stamp" => Value::Bool(self.stamp),
            "offset" => Value::Float(self.offset),
            "bit_depth" => Value::Int(i64::from(s.bit_depth)),
            "sensor_width" => Value::Int(i64::from(s.width)),
            "sensor_height" => Value::Int(i64::from(s.height)),
            "pixel_size_um" => Value::Float(s.pixel_size_um * self.world.lock().pixel_scale()),
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
            "exposure_ms" => self.set_exposure_checked(props::float(name, &value)?),
            "binning" => {
                let b = props::int(name, &value)?;
                let b = u32::try_from(b).map_err(|_| {
                    DeviceError::out_of_range(format!("binning {b} is out of range"))
                })?;
                self.set_binning_checked(b)
            }
            "pattern" => {
                let p = props::string(name, &value)?;
                self.pattern = SimPattern::from_name(p).ok_or_else(|| {
                    DeviceError::invalid(format!(
                        "pattern {p:?} is not one of {}",
                        SimPattern::NAMES.join(", ")
                    ))
                })?;
                Ok(())
            }
            "stamp" => {
                self.stamp = value.as_bool(name)?;
                Ok(())
            }
            "read_noise" => {
                self.read_noise = props::float(name, &value)?;
                Ok(())
            }
            "offset" => {
                self.offset = props::float(name, &value)?;
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
        self.sequence = None;
        Ok(())
    }
}

impl Camera for SimCamera {
    fn sensor_size(&mut self) -> Result<(u32, u32)> {
        self.fault.check()?;
        Ok((self.settings.width, self.settings.height))
    }

    fn bit_depth(&mut self) -> Result<u32> {
        self.fault.check()?;
        Ok(self.settings.bit_depth)
    }

    fn frame_shape(&mut self) -> Result<FrameShape> {
        self.fault.check()?;
        Ok(self.shape())
    }

    fn roi(&mut self) -> Result<Roi> {
        self.fault.check()?;
        Ok(self.roi)
    }

    fn set_roi(&mut self, roi: Roi) -> Result<()> {
        self.fault.check()?;
        self.refuse_while_running("change the ROI")?;
        let (w, h) = (self.settings.width, self.settings.height);
        let inside = u64::from(roi.x) + u64::from(roi.width) <= u64::from(w)
            && u64::from(roi.y) + u64::from(roi.height) <= u64::from(h);
        if roi.width == 0 || roi.height == 0 || !inside {
            return Err(DeviceError::out_of_range(format!(
                "ROI {}x{} at ({}, {}) does not fit the {w}x{h} sensor: it must be non-empty \
                 and lie within x 0..{w}, y 0..{h}",
                roi.width, roi.height, roi.x, roi.y
            )));
        }
        if roi.width < self.binning || roi.height < self.binning {
            return Err(DeviceError::out_of_range(format!(
                "ROI {}x{} is smaller than the binning {}: it would give an empty frame",
                roi.width, roi.height, self.binning
            )));
        }
        self.roi = roi;
        self.resize_scratch();
        Ok(())
    }

    fn binning(&mut self) -> Result<u32> {
        self.fault.check()?;
        Ok(self.binning)
    }

    fn set_binning(&mut self, binning: u32) -> Result<()> {
        self.fault.check()?;
        self.set_binning_checked(binning)
    }

    fn exposure_ms(&mut self) -> Result<f64> {
        self.fault.check()?;
        Ok(self.exposure_ms)
    }

    fn set_exposure_ms(&mut self, exposure_ms: f64) -> Result<()> {
        self.fault.check()?;
        self.set_exposure_checked(exposure_ms)
    }

    fn exposure_range_ms(&mut self) -> Result<(f64, f64)> {
        self.fault.check()?;
        Ok((self.settings.min_exposure_ms, self.settings.max_exposure_ms))
    }

    fn snap(&mut self, buf: &mut [u8]) -> Result<FrameInfo> {
        self.fault.check()?;
        self.refuse_while_running("snap")?;
        let shape = self.check_buffer(buf)?;
        let start = Instant::now();
        self.render(start, 0, buf);
        sleep_until(start + Duration::from_secs_f64(self.exposure_ms / 1000.0));
        Ok(FrameInfo {
            shape,
            sequence: 0,
            camera_timestamp_us: Self::micros_between(self.clock, start),
            exposure_ms: self.exposure_ms,
        })
    }

    fn start_sequence(&mut self) -> Result<()> {
        self.fault.check()?;
        self.refuse_while_running("start a sequence")?;
        self.sequence = Some(Sequence {
            start: Instant::now(),
            charged: Duration::ZERO,
            anchor: Duration::ZERO,
            anchor_index: 0,
            period_s: self.period_s(),
            next: 0,
        });
        Ok(())
    }

    fn next_frame(&mut self, buf: &mut [u8]) -> Result<FrameInfo> {
        self.fault.check()?;
        let Some(mut seq) = self.sequence else {
            return Err(DeviceError::invalid(
                "no sequence is running: call start_sequence first",
            ));
        };
        let shape = self.check_buffer(buf)?;
        let called = Instant::now();
        let now = seq.camera_time(called);
        let mut n = seq.next;
        // The moment a real camera would hand the frame over: when it is ready, or now if the
        // reader comes late. Whatever this call takes past it is the simulator's own cost.
        let due = if now < seq.ready_at(n) {
            let ready = seq.wall_time(seq.ready_at(n));
            sleep_until(ready);
            ready
        } else {
            if seq.period_s > 0.0 {
                // The reader is late: frames beyond what the camera's buffer holds are lost.
                let done =
                    (now.saturating_sub(seq.anchor).as_secs_f64() / seq.period_s).floor() as u64;
                let newest = seq.anchor_index + done.saturating_sub(1);
                n = n.max((newest + 1).saturating_sub(FIFO_FRAMES));
            }
            called
        };
        let exposed = seq.exposure_start(n);
        self.render(seq.wall_time(exposed), n, buf);
        if !self.settings.wall_clock {
            seq.charged += due.elapsed();
        }
        seq.next = n + 1;
        self.sequence = Some(seq);
        Ok(FrameInfo {
            shape,
            sequence: n,
            camera_timestamp_us: u64::try_from(exposed.as_micros()).unwrap_or(u64::MAX),
            exposure_ms: self.exposure_ms,
        })
    }

    fn stop_sequence(&mut self) -> Result<()> {
        self.fault.check()?;
        self.sequence = None;
        Ok(())
    }
}
