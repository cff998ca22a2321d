//! The GenICam camera driver.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aravis::prelude::*;
use microscoped_driver_api::{
    Camera, Device, DeviceError, ErrorKind, FrameInfo, FrameShape, PropertySpec, Quantity, Result,
    Roi, Value,
};

use crate::error::Context;
use crate::frames::FrameCounter;
use crate::settings::{GenicamPixelFormat, GenicamSettings, MAX_PACKET_SIZE, MIN_PACKET_SIZE};
use microscoped_driver_api::Settings as _;

/// Largest binning factor offered, whatever the camera claims.
const MAX_BINNING: u32 = 64;

/// What the camera is triggered by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trigger {
    /// Free run: frames at the camera's own rate.
    Off,
    /// Frames on `TriggerSoftware`, which the driver issues for every frame it waits for.
    Software,
    /// Frames on an external source; the camera's own name for it ("Line0").
    Source(String),
}

impl Trigger {
    /// The property value: "off", "software", or the source's name in lower case.
    fn name(&self) -> String {
        match self {
            Self::Off => "off".into(),
            Self::Software => "software".into(),
            Self::Source(s) => s.to_lowercase(),
        }
    }
}

/// What the camera offers, read once at open: the property list must not change later.
#[derive(Debug, Clone)]
struct Info {
    device_id: String,
    model: String,
    vendor: String,
    is_gv: bool,
    sensor: (u32, u32),
    /// Largest binning factor; 1 when the camera has no binning features.
    max_binning: u32,
    exposure_range_ms: (f64, f64),
    gain_range: Option<(f64, f64)>,
    frame_rate_range: Option<(f64, f64)>,
    pixel_formats: Vec<GenicamPixelFormat>,
    /// The camera's trigger sources other than "Software", by their GenICam names.
    trigger_sources: Vec<String>,
    has_software_trigger: bool,
}

impl Info {
    fn trigger_names(&self) -> Vec<String> {
        let mut names = vec!["off".to_owned()];
        if self.has_software_trigger {
            names.push("software".into());
        }
        names.extend(self.trigger_sources.iter().map(|s| s.to_lowercase()));
        names
    }

    fn parse_trigger(&self, name: &str) -> Result<Trigger> {
        let lower = name.trim().to_lowercase();
        if lower == "off" {
            return Ok(Trigger::Off);
        }
        if lower == "software" && self.has_software_trigger {
            return Ok(Trigger::Software);
        }
        self.trigger_sources
            .iter()
            .find(|s| s.to_lowercase() == lower)
            .map(|s| Trigger::Source(s.clone()))
            .ok_or_else(|| {
                DeviceError::invalid(format!(
                    "trigger {name:?} is not offered by this camera: choose one of {}",
                    self.trigger_names().join(", ")
                ))
            })
    }
}

/// The stream and its buffer pool. Made when an acquisition starts and none exists for the
/// current payload size, then reused by later snaps and sequences: the frame path never
/// allocates.
struct Pool {
    stream: aravis::Stream,
    payload: usize,
}

/// A running acquisition.
struct Running {
    shape: FrameShape,
    frames: FrameCounter,
    /// Host time the acquisition started, ns since the Unix epoch: buffers the stream received
    /// before it belong to an earlier acquisition.
    started_ns: u64,
    /// True for a sequence (`next_frame` may be called), false inside `snap`.
    sequence: bool,
}

/// Stream statistics: frames completed, frames failed (incomplete, timed out, wrong size),
/// frames lost for want of a free buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stats {
    completed: u64,
    failed: u64,
    underrun: u64,
}

impl Stats {
    fn of(stream: &aravis::Stream) -> Self {
        let (completed, failed, underrun) = stream.statistics();
        Self {
            completed,
            failed,
            underrun,
        }
    }

    fn add(self, other: Self) -> Self {
        Self {
            completed: self.completed + other.completed,
            failed: self.failed + other.failed,
            underrun: self.underrun + other.underrun,
        }
    }
}

/// A GenICam camera (GigE Vision or USB3 Vision) driven through aravis.
///
/// ROI and binning follow the driver API: the ROI is in unbinned sensor pixels and the frame is
/// the ROI divided by the binning. GenICam's `OffsetX`/`Width` count binned pixels, so the
/// driver converts; a ROI that does not fall on the camera's increments is shrunk to the
/// nearest region that does (read [`Camera::roi`] back for the region in use). Changing the
/// binning keeps the ROI. ROI, binning, pixel format and trigger cannot change while an
/// acquisition runs ([`ErrorKind::Busy`]); exposure, gain and frame rate can.
///
/// A frame whose buffer did not arrive complete (status other than success) is skipped and
/// counted in `frames_failed`; its id still advances [`FrameInfo::sequence`], as do frames the
/// camera sent while no buffer was free (`frames_underrun`), so the caller sees every loss as a
/// gap. `next_frame` without a running sequence is [`ErrorKind::InvalidValue`]; no frame within
/// `frame_timeout_ms` is [`ErrorKind::Timeout`].
///
/// # Threads
///
/// aravis's `Camera`, `Stream` and `Buffer` wrappers are `Send` (the aravis crate declares them
/// so: they are reference-counted GObjects whose count is atomic), but not `Sync`: an aravis
/// object must not be used by two threads at once. This type holds them by value and every
/// method takes `&mut self`, so the compiler already guarantees one user at a time; moving the
/// driver to the daemon's device thread after construction is sound and needs no `unsafe` of
/// ours. The stream's receive thread is aravis's own and only touches buffers in the stream's
/// queues, never one the driver has popped.
pub struct GenicamCamera {
    camera: aravis::Camera,
    settings: GenicamSettings,
    info: Info,
    packet_size: Option<u32>,
    pixel_format: GenicamPixelFormat,
    trigger: Trigger,
    exposure_ms: f64,
    pool: Option<Pool>,
    running: Option<Running>,
    /// Statistics of streams already dropped, so the counters cover the whole session.
    stats_base: Stats,
}

impl std::fmt::Debug for GenicamCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenicamCamera")
            .field("device_id", &self.info.device_id)
            .field("model", &self.info.model)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl GenicamCamera {
    /// Opens the camera `settings.device_id` names (or the first one found) and applies the
    /// settings. A camera that cannot be found is [`ErrorKind::Disconnected`], with the ids
    /// discovery did find in the message; invalid settings are [`ErrorKind::InvalidValue`], and
    /// values outside the camera's limits [`ErrorKind::OutOfRange`].
    pub fn new(settings: GenicamSettings) -> Result<Self> {
        settings.validate().map_err(|e| {
            DeviceError::invalid(format!("genicam setting {}: {}", e.key, e.message))
        })?;
        let camera = crate::open(settings.device_id.as_deref())?;
        let info = read_info(&camera, settings.device_id.as_deref())?;
        let mut cam = GenicamCamera {
            camera,
            pixel_format: settings.pixel_format,
            trigger: Trigger::Off,
            exposure_ms: settings.exposure_ms,
            packet_size: None,
            pool: None,
            running: None,
            stats_base: Stats::default(),
            info,
            settings,
        };
        cam.configure()?;
        Ok(cam)
    }

    /// Applies the settings to a freshly opened camera.
    fn configure(&mut self) -> Result<()> {
        let settings = self.settings.clone();
        if self.info.is_gv {
            self.packet_size = Some(self.set_packet_size(settings.packet_size)?);
        }
        self.camera
            .set_acquisition_mode(aravis::AcquisitionMode::Continuous)
            .context("set AcquisitionMode Continuous")?;
        self.set_pixel_format(settings.pixel_format)?;
        self.set_exposure_ms(settings.exposure_ms)?;
        if let Some(gain) = settings.gain {
            self.set_gain(gain)?;
        }
        if let Some(rate) = settings.frame_rate_hz {
            self.set_frame_rate(rate)?;
        }
        let trigger = self.info.parse_trigger(&settings.trigger)?;
        self.set_trigger(trigger)?;
        Ok(())
    }

    /// The camera's device id, as discovery lists it.
    pub fn device_id(&self) -> &str {
        &self.info.device_id
    }

    /// The GigE packet size in use, bytes; None for cameras that are not GigE Vision.
    pub fn packet_size(&self) -> Option<u32> {
        self.packet_size
    }

    /// The underlying aravis camera, for features this driver does not wrap. Changing ROI,
    /// binning, pixel format or trigger behind the driver's back is not supported.
    pub fn aravis_camera(&self) -> &aravis::Camera {
        &self.camera
    }

    /// Sets the GigE packet size explicitly, within the camera's limits and increment, and
    /// returns the size in use.
    fn set_packet_size(&mut self, requested: u32) -> Result<u32> {
        let feature = "GevSCPSPacketSize";
        let (mut lo, mut hi) = (i64::from(MIN_PACKET_SIZE), i64::from(MAX_PACKET_SIZE));
        if let Ok((min, max)) = self.camera.integer_bounds(feature) {
            lo = lo.max(min);
            hi = hi.min(max);
        }
        let mut size = i64::from(requested).clamp(lo, hi.max(lo));
        if let Ok(inc) = self.camera.integer_increment(feature) {
            if inc > 1 {
                size -= (size - lo).rem_euclid(inc);
            }
        }
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        self.camera
            .gv_set_packet_size(size)
            .context("set GigE packet size")?;
        let actual = self
            .camera
            .gv_get_packet_size()
            .context("read GigE packet size")?;
        Ok(actual)
    }

    fn refuse_while_running(&self, what: &str) -> Result<()> {
        if self.running.is_some() {
            Err(DeviceError::new(
                ErrorKind::Busy,
                format!("cannot {what} while an acquisition runs: stop the sequence first"),
            ))
        } else {
            Ok(())
        }
    }

    fn set_pixel_format(&mut self, format: GenicamPixelFormat) -> Result<()> {
        self.refuse_while_running("change the pixel format")?;
        if !self.info.pixel_formats.contains(&format) {
            return Err(DeviceError::invalid(format!(
                "pixel format {} is not offered by this camera: choose one of {}",
                format.as_str(),
                self.pixel_format_names().join(", ")
            )));
        }
        self.camera
            .set_pixel_format_from_string(format.as_str())
            .context("set PixelFormat")?;
        self.pixel_format = format;
        Ok(())
    }

    fn pixel_format_names(&self) -> Vec<&'static str> {
        self.info.pixel_formats.iter().map(|f| f.as_str()).collect()
    }

    fn set_trigger(&mut self, trigger: Trigger) -> Result<()> {
        self.refuse_while_running("change the trigger")?;
        match &trigger {
            Trigger::Off => self.camera.clear_triggers().context("clear triggers")?,
            Trigger::Software => self
                .camera
                .set_trigger("Software")
                .context("set software trigger")?,
            Trigger::Source(source) => self
                .camera
                .set_trigger(source)
                .context("set trigger source")?,
        }
        self.trigger = trigger;
        Ok(())
    }

    fn gain_range(&self) -> Result<(f64, f64)> {
        self.info
            .gain_range
            .ok_or_else(|| DeviceError::not_found("this camera has no gain"))
    }

    fn frame_rate_range(&self) -> Result<(f64, f64)> {
        self.info
            .frame_rate_range
            .ok_or_else(|| DeviceError::not_found("this camera has no frame rate control"))
    }

    fn set_gain(&mut self, gain: f64) -> Result<()> {
        let (min, max) = self.gain_range()?;
        check_float("gain", gain, min, max, "")?;
        self.camera.set_gain(gain).context("set gain")
    }

    fn set_frame_rate(&mut self, rate: f64) -> Result<()> {
        let (min, max) = self.frame_rate_range()?;
        check_float("frame_rate_hz", rate, min, max, " Hz")?;
        self.camera.set_frame_rate(rate).context("set frame rate")
    }

    fn integer(&self, feature: &str) -> Result<i64> {
        self.camera
            .integer(feature)
            .context(&format!("read {feature}"))
    }

    fn set_integer(&self, feature: &str, value: i64) -> Result<()> {
        self.camera
            .set_integer(feature, value)
            .context(&format!("set {feature} = {value}"))
    }

    /// Sets the binned region, offsets last so no intermediate region leaves the sensor.
    fn write_region(&self, x: i64, y: i64, w: i64, h: i64) -> Result<()> {
        self.set_integer("OffsetX", 0)?;
        self.set_integer("OffsetY", 0)?;
        self.set_integer("Width", w)?;
        self.set_integer("Height", h)?;
        self.set_integer("OffsetX", x)?;
        self.set_integer("OffsetY", y)
    }

    /// Stream statistics since the camera opened.
    fn stats(&self) -> Stats {
        match &self.pool {
            Some(pool) => self.stats_base.add(Stats::of(&pool.stream)),
            None => self.stats_base,
        }
    }

    /// Starts an acquisition: makes the stream and its buffers if the payload size changed,
    /// returns stale buffers to it, then starts the camera.
    fn begin(&mut self, sequence: bool) -> Result<()> {
        self.refuse_while_running("start an acquisition")?;
        let shape = self.frame_shape()?;
        let payload = self.camera.payload().context("read payload size")? as usize;
        if self.pool.as_ref().map(|p| p.payload) != Some(payload) {
            if let Some(old) = self.pool.take() {
                self.stats_base = self.stats_base.add(Stats::of(&old.stream));
            }
            let stream = self.camera.create_stream().context("create stream")?;
            for _ in 0..self.settings.buffers {
                stream.push_buffer(aravis::Buffer::new_allocate(payload));
            }
            self.pool = Some(Pool { stream, payload });
        }
        if let Some(pool) = &self.pool {
            // Frames left over from an earlier acquisition go back to the free queue.
            while let Some(buffer) = pool.stream.try_pop_buffer() {
                pool.stream.push_buffer(buffer);
            }
        }
        let started_ns = now_ns();
        self.camera
            .start_acquisition()
            .context("start acquisition")?;
        self.running = Some(Running {
            shape,
            frames: FrameCounter::default(),
            started_ns,
            sequence,
        });
        Ok(())
    }

    /// Stops the camera, if it runs.
    fn end(&mut self) -> Result<()> {
        if self.running.take().is_some() {
            self.camera.stop_acquisition().context("stop acquisition")?;
        }
        Ok(())
    }

    /// Waits for the next good frame of the running acquisition and copies it into `buf`.
    fn wait_frame(&mut self, buf: &mut [u8]) -> Result<FrameInfo> {
        let timeout = Duration::from_millis(self.settings.frame_timeout_ms);
        let deadline = Instant::now() + timeout;
        let software = self.trigger == Trigger::Software;
        let exposure_ms = self.exposure_ms;
        let (Some(pool), Some(run)) = (&self.pool, &mut self.running) else {
            return Err(DeviceError::invalid("no acquisition runs"));
        };
        let shape = run.shape;
        check_buffer(buf, shape)?;
        let mut need_trigger = software;
        loop {
            if need_trigger {
                self.camera
                    .software_trigger()
                    .context("send software trigger")?;
                need_trigger = false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let buffer = if left.is_zero() {
                None
            } else {
                pool.stream
                    .timeout_pop_buffer(u64::try_from(left.as_micros()).unwrap_or(u64::MAX))
            };
            let Some(buffer) = buffer else {
                return Err(DeviceError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no frame from camera {} within {} ms",
                        self.info.device_id, self.settings.frame_timeout_ms
                    ),
                ));
            };
            let received = buffer.system_timestamp();
            if received != 0 && received < run.started_ns {
                // Left over from an earlier acquisition: not ours to number or count.
                pool.stream.push_buffer(buffer);
                continue;
            }
            if buffer.status() != aravis::BufferStatus::Success {
                // Counted in the stream's failure statistics. Its id is not used: an incomplete
                // frame's id can be garbage (seen with the fake camera dropping packets), and
                // the next good frame's id shows the gap anyway.
                pool.stream.push_buffer(buffer);
                need_trigger = software;
                continue;
            }
            let result = copy_frame(&buffer, shape, self.pixel_format, buf);
            let info = result.map(|()| FrameInfo {
                shape,
                sequence: run.frames.sequence_of(buffer.frame_id()),
                camera_timestamp_us: buffer.timestamp() / 1000,
                exposure_ms,
            });
            pool.stream.push_buffer(buffer);
            return info;
        }
    }
}

/// Host time in ns since the Unix epoch, the clock aravis stamps received buffers with.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn check_buffer(buf: &[u8], shape: FrameShape) -> Result<()> {
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
    Ok(())
}

/// Copies the image in `buffer` into `buf` after checking it is the frame expected.
fn copy_frame(
    buffer: &aravis::Buffer,
    shape: FrameShape,
    format: GenicamPixelFormat,
    buf: &mut [u8],
) -> Result<()> {
    let (w, h) = (buffer.image_width(), buffer.image_height());
    if i64::from(w) != i64::from(shape.width) || i64::from(h) != i64::from(shape.height) {
        return Err(DeviceError::new(
            ErrorKind::Protocol,
            format!(
                "camera sent a {w}x{h} frame, expected {}x{}",
                shape.width, shape.height
            ),
        ));
    }
    if buffer.image_pixel_format() != format.aravis() {
        return Err(DeviceError::new(
            ErrorKind::Protocol,
            format!(
                "camera sent pixel format 0x{:08x}, expected {}",
                buffer.image_pixel_format().raw(),
                format.as_str()
            ),
        ));
    }
    let bytes = shape.bytes();
    let (ptr, len) = buffer.data();
    if ptr.is_null() || len < bytes {
        return Err(DeviceError::new(
            ErrorKind::Protocol,
            format!("camera buffer holds {len} bytes, a frame needs {bytes}"),
        ));
    }
    // SAFETY: `buffer` was popped from the stream, so aravis's receive thread no longer writes
    // it; its data is `len` bytes the buffer owns and keeps alive while we borrow `buffer`.
    let data = unsafe { std::slice::from_raw_parts(ptr, len) };
    buf[..bytes].copy_from_slice(&data[..bytes]);
    Ok(())
}

fn check_float(name: &str, v: f64, min: f64, max: f64, unit: &str) -> Result<()> {
    if !v.is_finite() || v < min || v > max {
        return Err(DeviceError::out_of_range(format!(
            "{name} = {v}{unit} is out of range: allowed {min}..={max}{unit}"
        )));
    }
    Ok(())
}

fn to_u32(what: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        DeviceError::new(
            ErrorKind::Protocol,
            format!("camera reported {what} = {v}, not a pixel count"),
        )
    })
}

fn available(camera: &aravis::Camera, feature: &str) -> bool {
    camera.is_feature_available(feature).unwrap_or(false)
}

/// Reads what the camera offers.
fn read_info(camera: &aravis::Camera, requested_id: Option<&str>) -> Result<Info> {
    let text = |r: std::result::Result<aravis::glib::GString, aravis::glib::Error>| {
        r.map(|s| s.to_string()).unwrap_or_default()
    };
    let (vendor, model) = (text(camera.vendor_name()), text(camera.model_name()));
    let device_id = match requested_id {
        Some(id) => id.to_owned(),
        None => {
            // aravis does not say which id it opened; the camera's serial number (DeviceID)
            // finds it in the discovery list.
            let serial = text(camera.device_id());
            crate::discover_details()
                .into_iter()
                .find(|d| d.vendor == vendor && d.model == model && d.id.ends_with(&serial))
                .map(|d| d.id)
                .unwrap_or_else(|| format!("{vendor}-{model}-{serial}"))
        }
    };
    let (sw, sh) = camera.sensor_size().context("read sensor size")?;
    let sensor = (
        to_u32("SensorWidth", sw.into())?,
        to_u32("SensorHeight", sh.into())?,
    );
    let max_binning = if camera.is_binning_available().unwrap_or(false) {
        let (_, xmax) = camera.x_binning_bounds().context("read binning limits")?;
        let (_, ymax) = camera.y_binning_bounds().context("read binning limits")?;
        u32::try_from(xmax.min(ymax))
            .unwrap_or(1)
            .clamp(1, MAX_BINNING)
    } else {
        1
    };
    let (emin, emax) = camera
        .exposure_time_bounds()
        .context("read exposure limits")?;
    let gain_range = if camera.is_gain_available().unwrap_or(false) {
        camera.gain_bounds().ok()
    } else {
        None
    };
    let frame_rate_range = if camera.is_frame_rate_available().unwrap_or(false) {
        camera.frame_rate_bounds().ok()
    } else {
        None
    };
    let offered = camera
        .dup_available_pixel_formats_as_strings()
        .context("read pixel formats")?;
    let pixel_formats = GenicamPixelFormat::ALL
        .into_iter()
        .filter(|f| offered.iter().any(|o| o.as_str() == f.as_str()))
        .collect::<Vec<_>>();
    if pixel_formats.is_empty() {
        return Err(DeviceError::invalid(format!(
            "camera offers none of the pixel formats this driver delivers (Mono8, Mono10, \
             Mono12, Mono16); it offers {}",
            offered
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let sources = if available(camera, "TriggerSource") {
        camera.dup_available_trigger_sources().unwrap_or_default()
    } else {
        Vec::new()
    };
    let has_software_trigger = sources.iter().any(|s| s.as_str() == "Software");
    let trigger_sources = sources
        .iter()
        .filter(|s| s.as_str() != "Software")
        .map(|s| s.to_string())
        .collect();
    Ok(Info {
        device_id,
        model,
        vendor,
        is_gv: camera.is_gv_device(),
        sensor,
        max_binning,
        exposure_range_ms: (emin / 1000.0, emax / 1000.0),
        gain_range,
        frame_rate_range,
        pixel_formats,
        trigger_sources,
        has_software_trigger,
    })
}

fn value_f64(name: &str, value: &Value) -> Result<f64> {
    match value {
        Value::Float(v) => Ok(*v),
        Value::Int(v) => Ok(*v as f64),
        other => Err(DeviceError::invalid(format!(
            "{name} takes a number, not {}",
            other.type_name()
        ))),
    }
}

impl Device for GenicamCamera {
    fn properties(&self) -> Vec<PropertySpec> {
        let info = &self.info;
        let max_i = |v: u32| i64::from(v);
        let (emin, emax) = info.exposure_range_ms;
        let mut props = vec![PropertySpec::float("exposure_ms", emin, emax)
            .quantity(Quantity::Exposure)
            .describe("Exposure time.")];
        if let Some((min, max)) = info.gain_range {
            props.push(
                PropertySpec::float("gain", min, max)
                    .describe("Sensor gain, in the camera's own unit."),
            );
        }
        if let Some((min, max)) = info.frame_rate_range {
            props.push(
                PropertySpec::float("frame_rate_hz", min, max)
                    .unit("Hz")
                    .describe("Free-run frame rate; the exposure may limit it further."),
            );
        }
        props.extend([
            PropertySpec::enumeration("pixel_format", &self.pixel_format_names())
                .describe("Pixel format of the frames."),
            PropertySpec::enumeration("trigger_mode", &info.trigger_names())
                .describe("What starts each frame: off (free run), software, or an input line."),
            PropertySpec::int("binning", 1, max_i(info.max_binning))
                .describe("Binning factor, the same in x and y."),
            PropertySpec::int("sensor_width", 0, max_i(info.sensor.0))
                .unit("px")
                .read_only()
                .describe("Sensor width."),
            PropertySpec::int("sensor_height", 0, max_i(info.sensor.1))
                .unit("px")
                .read_only()
                .describe("Sensor height."),
            PropertySpec::int("roi_x", 0, max_i(info.sensor.0))
                .unit("px")
                .read_only()
                .describe("Left edge of the region of interest, unbinned."),
            PropertySpec::int("roi_y", 0, max_i(info.sensor.1))
                .unit("px")
                .read_only()
                .describe("Top edge of the region of interest, unbinned."),
            PropertySpec::int("roi_width", 0, max_i(info.sensor.0))
                .unit("px")
                .read_only()
                .describe("Width of the region of interest, unbinned."),
            PropertySpec::int("roi_height", 0, max_i(info.sensor.1))
                .unit("px")
                .read_only()
                .describe("Height of the region of interest, unbinned."),
            PropertySpec::string("device_id")
                .read_only()
                .describe("The camera's aravis device id."),
            PropertySpec::string("model")
                .read_only()
                .describe("The camera's model name."),
            PropertySpec::string("vendor")
                .read_only()
                .describe("The camera's vendor name."),
            PropertySpec::int("packet_size", 0, i64::from(MAX_PACKET_SIZE))
                .unit("B")
                .read_only()
                .describe("GigE Vision stream packet size in use (0 if not GigE)."),
            PropertySpec::int("frames_completed", 0, i64::MAX)
                .read_only()
                .describe("Frames received complete since the camera opened."),
            PropertySpec::int("frames_failed", 0, i64::MAX)
                .read_only()
                .describe("Frames received incomplete or late and dropped."),
            PropertySpec::int("frames_underrun", 0, i64::MAX)
                .read_only()
                .describe("Frames lost because no stream buffer was free."),
        ]);
        props
    }

    fn get_property(&mut self, name: &str) -> Result<Value> {
        let count = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
        Ok(match name {
            "exposure_ms" => Value::Float(self.exposure_ms()?),
            "gain" => {
                self.gain_range()?;
                Value::Float(self.camera.gain().context("read gain")?)
            }
            "frame_rate_hz" => {
                self.frame_rate_range()?;
                Value::Float(self.camera.frame_rate().context("read frame rate")?)
            }
            "pixel_format" => Value::String(self.pixel_format.as_str().into()),
            "trigger_mode" => Value::String(self.trigger.name()),
            "binning" => Value::Int(self.binning()?.into()),
            "sensor_width" => Value::Int(self.info.sensor.0.into()),
            "sensor_height" => Value::Int(self.info.sensor.1.into()),
            "roi_x" => Value::Int(self.roi()?.x.into()),
            "roi_y" => Value::Int(self.roi()?.y.into()),
            "roi_width" => Value::Int(self.roi()?.width.into()),
            "roi_height" => Value::Int(self.roi()?.height.into()),
            "device_id" => Value::String(self.info.device_id.clone()),
            "model" => Value::String(self.info.model.clone()),
            "vendor" => Value::String(self.info.vendor.clone()),
            "packet_size" => Value::Int(self.packet_size.unwrap_or(0).into()),
            "frames_completed" => count(self.stats().completed),
            "frames_failed" => count(self.stats().failed),
            "frames_underrun" => count(self.stats().underrun),
            _ => return Err(DeviceError::not_found(format!("no property {name:?}"))),
        })
    }

    fn set_property(&mut self, name: &str, value: &Value) -> Result<()> {
        match (name, value) {
            ("exposure_ms", v) => self.set_exposure_ms(value_f64(name, v)?),
            ("gain", v) => self.set_gain(value_f64(name, v)?),
            ("frame_rate_hz", v) => self.set_frame_rate(value_f64(name, v)?),
            ("pixel_format", Value::String(s)) => {
                let format = GenicamPixelFormat::from_name(s).ok_or_else(|| {
                    DeviceError::invalid(format!(
                        "pixel_format {s:?} is not allowed: choose one of {}",
                        self.pixel_format_names().join(", ")
                    ))
                })?;
                self.set_pixel_format(format)
            }
            ("trigger_mode", Value::String(s)) => {
                let trigger = self.info.parse_trigger(s)?;
                self.set_trigger(trigger)
            }
            ("binning", Value::Int(b)) => {
                let b = u32::try_from(*b).map_err(|_| {
                    DeviceError::out_of_range(format!(
                        "binning = {b} is out of range: allowed 1..={}",
                        self.info.max_binning
                    ))
                })?;
                self.set_binning(b)
            }
            ("pixel_format" | "trigger_mode" | "binning", other) => Err(DeviceError::invalid(
                format!("{name} does not take {} ({other})", other.type_name()),
            )),
            (
                "sensor_width" | "sensor_height" | "roi_x" | "roi_y" | "roi_width" | "roi_height"
                | "device_id" | "model" | "vendor" | "packet_size" | "frames_completed"
                | "frames_failed" | "frames_underrun",
                _,
            ) => Err(DeviceError::new(
                ErrorKind::ReadOnly,
                format!("{name} is read-only"),
            )),
            _ => Err(DeviceError::not_found(format!("no property {name:?}"))),
        }
    }

    fn ping(&mut self) -> Result<()> {
        // A register read the camera must answer over the control channel.
        self.camera.sensor_size().context("ping camera").map(|_| ())
    }

    fn make_safe(&mut self) -> Result<()> {
        self.end()
    }
}

impl Camera for GenicamCamera {
    fn sensor_size(&mut self) -> Result<(u32, u32)> {
        Ok(self.info.sensor)
    }

    fn bit_depth(&mut self) -> Result<u32> {
        Ok(self.pixel_format.bit_depth())
    }

    fn frame_shape(&mut self) -> Result<FrameShape> {
        Ok(FrameShape {
            width: to_u32("Width", self.integer("Width")?)?,
            height: to_u32("Height", self.integer("Height")?)?,
            pixel_type: self.pixel_format.pixel_type(),
        })
    }

    fn roi(&mut self) -> Result<Roi> {
        let b = self.binning()?;
        let get = |this: &Self, f: &str| -> Result<u32> {
            to_u32(f, this.integer(f)?).map(|v| v.saturating_mul(b))
        };
        Ok(Roi {
            x: get(self, "OffsetX")?,
            y: get(self, "OffsetY")?,
            width: get(self, "Width")?,
            height: get(self, "Height")?,
        })
    }

    fn set_roi(&mut self, roi: Roi) -> Result<()> {
        self.refuse_while_running("change the ROI")?;
        let (sw, sh) = self.info.sensor;
        if roi.width == 0
            || roi.height == 0
            || u64::from(roi.x) + u64::from(roi.width) > u64::from(sw)
            || u64::from(roi.y) + u64::from(roi.height) > u64::from(sh)
        {
            return Err(DeviceError::out_of_range(format!(
                "ROI {}x{} at ({}, {}) does not fit the {sw}x{sh} sensor",
                roi.width, roi.height, roi.x, roi.y
            )));
        }
        let b = i64::from(self.binning()?);
        let inc = |r: std::result::Result<i64, aravis::glib::Error>| r.unwrap_or(1).max(1);
        let (xi, yi) = (
            inc(self.camera.x_offset_increment().map(i64::from)),
            inc(self.camera.y_offset_increment().map(i64::from)),
        );
        let (wi, hi) = (
            inc(self.camera.width_increment().map(i64::from)),
            inc(self.camera.height_increment().map(i64::from)),
        );
        // Snap inward onto the camera's grid, in binned pixels.
        let x = i64::from(roi.x) / b / xi * xi;
        let y = i64::from(roi.y) / b / yi * yi;
        let w = i64::from(roi.width) / b / wi * wi;
        let h = i64::from(roi.height) / b / hi * hi;
        let (wmin, _) = self.camera.width_bounds().context("read Width limits")?;
        let (hmin, _) = self.camera.height_bounds().context("read Height limits")?;
        if w < i64::from(wmin).max(1) || h < i64::from(hmin).max(1) {
            return Err(DeviceError::out_of_range(format!(
                "ROI {}x{} at binning {b} is smaller than the camera's smallest frame, \
                 {wmin}x{hmin} binned pixels",
                roi.width, roi.height
            )));
        }
        self.write_region(x, y, w, h)
    }

    fn binning(&mut self) -> Result<u32> {
        if self.info.max_binning == 1 {
            return Ok(1);
        }
        let (bx, _) = self.camera.binning().context("read binning")?;
        Ok(u32::try_from(bx).unwrap_or(1).max(1))
    }

    fn set_binning(&mut self, binning: u32) -> Result<()> {
        if binning == 0 || binning > self.info.max_binning {
            return Err(DeviceError::out_of_range(format!(
                "binning = {binning} is out of range: allowed 1..={}",
                self.info.max_binning
            )));
        }
        self.refuse_while_running("change the binning")?;
        let old = self.binning()?;
        if binning == old {
            return Ok(());
        }
        let roi = self.roi()?;
        // Shrink the region to the smallest frame first: it fits at any binning, so the
        // camera cannot refuse the binning for a region that would overhang the binned sensor.
        let (wmin, _) = self.camera.width_bounds().context("read Width limits")?;
        let (hmin, _) = self.camera.height_bounds().context("read Height limits")?;
        self.write_region(0, 0, wmin.max(1).into(), hmin.max(1).into())?;
        let b = i32::try_from(binning).unwrap_or(1);
        let set = self.camera.set_binning(b, b).context("set binning");
        let now = self.binning()?;
        if set.is_err() || now != binning {
            // Back to where we were; the camera's refusal is the error to report.
            let _ = self.camera.set_binning(old as i32, old as i32);
            let _ = self.set_roi(roi);
            return Err(set.err().unwrap_or_else(|| {
                DeviceError::out_of_range(format!(
                    "binning {binning} is not supported by this camera (it set {now})"
                ))
            }));
        }
        // The same region of the sensor as before, if it still makes a frame; else the sensor.
        if self.set_roi(roi).is_err() {
            let (w, h) = self.info.sensor;
            self.set_roi(Roi {
                x: 0,
                y: 0,
                width: w,
                height: h,
            })?;
        }
        Ok(())
    }

    fn exposure_ms(&mut self) -> Result<f64> {
        let us = self.camera.exposure_time().context("read exposure")?;
        self.exposure_ms = us / 1000.0;
        Ok(self.exposure_ms)
    }

    fn set_exposure_ms(&mut self, exposure_ms: f64) -> Result<()> {
        let (min, max) = self.info.exposure_range_ms;
        // aravis leaves range checking to the camera by default, and a camera (the fake one,
        // for one) may take any value: check against the limits it advertises.
        check_float("exposure_ms", exposure_ms, min, max, " ms")?;
        self.camera
            .set_exposure_time(exposure_ms * 1000.0)
            .context("set exposure")?;
        // The camera rounds to its own steps: report what it uses.
        self.exposure_ms()?;
        Ok(())
    }

    fn exposure_range_ms(&mut self) -> Result<(f64, f64)> {
        Ok(self.info.exposure_range_ms)
    }

    fn snap(&mut self, buf: &mut [u8]) -> Result<FrameInfo> {
        self.refuse_while_running("snap")?;
        check_buffer(buf, self.frame_shape()?)?;
        self.begin(false)?;
        let frame = self.wait_frame(buf);
        let stopped = self.end();
        let frame = frame?;
        stopped?;
        Ok(frame)
    }

    fn start_sequence(&mut self) -> Result<()> {
        self.begin(true)
    }

    fn next_frame(&mut self, buf: &mut [u8]) -> Result<FrameInfo> {
        match &self.running {
            Some(run) if run.sequence => self.wait_frame(buf),
            _ => Err(DeviceError::invalid(
                "no sequence runs: call start_sequence first",
            )),
        }
    }

    fn stop_sequence(&mut self) -> Result<()> {
        self.end()
    }
}

impl Drop for GenicamCamera {
    fn drop(&mut self) {
        // Leave the camera idle for the next user; nothing to report to from here.
        let _ = self.end();
    }
}
