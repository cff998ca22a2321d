//! What the daemon answers, as plain Rust and domain types, and the conversions from the
//! protobuf messages (which stay inside the client side).

use microscoped_driver_api::{DeviceKind, PixelType, PropertySpec, PropertyType, Value};

use crate::access::Role;
use crate::acquire::RunState;
use crate::pb;

/// The instrument a daemon runs.
#[derive(Debug, Clone)]
pub struct Instrument {
    /// Its name in the config.
    pub name: String,
    /// The daemon's version.
    pub daemon_version: String,
    /// Its devices, in config order.
    pub devices: Vec<Device>,
}

/// One device of the instrument.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its name in the config.
    pub name: String,
    /// What it is; `None` for a kind this client does not know.
    pub kind: Option<DeviceKind>,
    /// The driver running it.
    pub driver: String,
    /// Why it is faulted; empty when it is healthy.
    pub fault: String,
}

/// Where a stage is.
#[derive(Debug, Clone)]
pub struct Position {
    /// Micrometres: Z, or X and Y.
    pub position_um: Vec<f64>,
    /// Still moving.
    pub busy: bool,
}

/// One property's value, as a preset sets it or applying one reports it.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The device.
    pub device: String,
    /// The property.
    pub property: String,
    /// The value; `None` when the daemon sent none.
    pub value: Option<Value>,
}

/// A group of presets (a config group), e.g. `Channel`.
#[derive(Debug, Clone)]
pub struct PresetGroup {
    /// The group's name.
    pub name: String,
    /// Its presets, in config order.
    pub presets: Vec<Preset>,
}

/// One preset of a group, e.g. `GFP`.
#[derive(Debug, Clone)]
pub struct Preset {
    /// The preset's name.
    pub name: String,
    /// What applying it sets, in order.
    pub settings: Vec<Setting>,
}

/// One image, as snapped or seen in live view.
#[derive(Debug, Clone)]
pub struct Image {
    /// The camera that took it.
    pub camera: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixel type; `None` for one this client does not know.
    pub pixel_type: Option<PixelType>,
    /// Significant bits per pixel.
    pub bit_depth: u32,
    /// The pixels, row-major, little-endian.
    pub data: Vec<u8>,
    /// The exposure it was taken with, in ms (0 when the daemon did not say).
    pub exposure_ms: f64,
}

/// What a camera's live view shows now, its viewers and the ring they read.
#[derive(Debug, Clone)]
pub struct LiveStatus {
    /// The camera.
    pub camera: String,
    /// Live mode, an acquisition, or nothing; `None` for a mode this client does not know.
    pub mode: Option<crate::acquire::LiveMode>,
    /// Open live views, observers included.
    pub viewers: u32,
    /// Of those, the ones that keep live mode running.
    pub drivers: u32,
    /// Frames received by what viewers see now.
    pub frames: u64,
    /// Bytes of the ring viewers read (0: none allocated).
    pub ring_bytes: u64,
    /// The acquisition viewers see, if one owns the camera.
    pub acquisition: Option<u64>,
    /// Why live mode last failed, if it did.
    pub error: Option<String>,
}

impl From<pb::LiveStatus> for LiveStatus {
    fn from(s: pb::LiveStatus) -> Self {
        use crate::acquire::LiveMode;
        Self {
            camera: s.camera,
            mode: match pb::LiveMode::try_from(s.mode) {
                Ok(pb::LiveMode::Off) => Some(LiveMode::Off),
                Ok(pb::LiveMode::Starting) => Some(LiveMode::Starting),
                Ok(pb::LiveMode::Live) => Some(LiveMode::Live),
                Ok(pb::LiveMode::Acquisition) => Some(LiveMode::Acquisition),
                _ => None,
            },
            viewers: s.viewers,
            drivers: s.drivers,
            frames: s.frames,
            ring_bytes: s.ring_bytes,
            acquisition: (s.acquisition_id != 0).then_some(s.acquisition_id),
            error: (!s.error.is_empty()).then_some(s.error),
        }
    }
}

/// A sequence to start.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    /// The camera; empty when the instrument has one.
    pub camera: String,
    /// Frames to take (ignored with `until_stopped`).
    pub frames: u64,
    /// Run until stopped instead.
    pub until_stopped: bool,
    /// The dataset name; empty for one named after the time.
    pub name: String,
}

/// A useq-schema plan to check or run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The plan's text.
    pub text: String,
    /// JSON rather than YAML.
    pub json: bool,
    /// The dataset name; empty for one named after the time.
    pub name: String,
    /// The camera; empty when the instrument has one.
    pub camera: String,
}

/// Where a plan's event is on its axes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanIndex {
    /// Time point.
    pub t: u32,
    /// Position.
    pub p: u32,
    /// Grid tile.
    pub g: u32,
    /// Channel.
    pub c: u32,
    /// Z slice.
    pub z: u32,
}

impl PlanIndex {
    /// The value along `axis`, a useq axis letter (`t`, `p`, `g`, `c`, `z`); none for another.
    pub fn along(&self, axis: char) -> Option<u32> {
        match axis {
            't' => Some(self.t),
            'p' => Some(self.p),
            'g' => Some(self.g),
            'c' => Some(self.c),
            'z' => Some(self.z),
            _ => None,
        }
    }
}

/// What a plan amounts to on this instrument, from checking it.
#[derive(Debug, Clone)]
pub struct PlanSummary {
    /// Images it takes.
    pub events: u64,
    /// Files it writes.
    pub files: u32,
    /// The most of its files it keeps open at once.
    pub open_files: u32,
    /// The axes it uses, in order.
    pub used_axes: String,
    /// Its size along each axis.
    pub sizes: PlanIndex,
    /// The shortest time it can take, in seconds.
    pub duration_s: f64,
    /// Bytes it writes.
    pub bytes: u64,
    /// Bytes free where it writes.
    pub free_bytes: u64,
    /// A time point's exposures take longer than the interval.
    pub interval_exceeded: bool,
    /// What looks wrong but does not stop it.
    pub warnings: Vec<String>,
}

/// Where a running plan stands.
#[derive(Debug, Clone)]
pub struct PlanProgress {
    /// Events in the plan.
    pub events_total: u64,
    /// Events done.
    pub events_done: u64,
    /// The event under way (the last one once ended); `None` when the daemon does not know,
    /// as for a dataset from a run it was killed during.
    pub current: Option<PlanIndex>,
    /// Its channel, if any.
    pub channel: String,
    /// Time points that started late.
    pub late_events: u64,
    /// The latest of them, in seconds.
    pub max_late_s: f64,
    /// The files it writes.
    pub files: Vec<String>,
    /// What the plan amounts to (its sizes along each axis, the axes it uses).
    pub summary: Option<PlanSummary>,
}

/// One acquisition as the daemon reports it.
#[derive(Debug, Clone)]
pub struct AcquisitionStatus {
    /// Its id.
    pub id: u64,
    /// The dataset's name.
    pub name: String,
    /// The user who started it.
    pub owner: String,
    /// The camera.
    pub camera: String,
    /// Frames (plan: images) asked for; 0 when running until stopped.
    pub frames_planned: u64,
    /// Where it is in its life; `None` for a state this client does not know.
    pub state: Option<RunState>,
    /// The OME-TIFF file; for a plan, the dataset folder.
    pub path: String,
    /// Frames from the camera.
    pub received: u64,
    /// Frames in the file.
    pub written: u64,
    /// Frames lost (ring full, or in the camera).
    pub dropped: u64,
    /// Of those, lost in the camera or on its link.
    pub dropped_in_camera: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Seconds since it started, or its whole duration once ended.
    pub elapsed_s: f64,
    /// Why it failed.
    pub error: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// For plans: where it stands.
    pub plan: Option<PlanProgress>,
}

impl AcquisitionStatus {
    /// It is neither running nor paused: nothing more will happen to it.
    pub fn ended(&self) -> bool {
        !matches!(self.state, Some(RunState::Running | RunState::Paused))
    }
}

/// The control lease as the daemon reports it.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Someone holds it.
    pub held: bool,
    /// Who.
    pub holder: String,
    /// Their role; `None` when unknown to this client.
    pub holder_role: Option<Role>,
    /// When it runs out, in microseconds since the Unix epoch.
    pub expires_unix_us: i64,
    /// Seconds left.
    pub remaining_s: f64,
    /// What a renewal extends it by, in seconds.
    pub ttl_s: u32,
}

pub(super) fn device_kind(k: i32) -> Option<DeviceKind> {
    Some(match pb::DeviceKind::try_from(k).ok()? {
        pb::DeviceKind::Camera => DeviceKind::Camera,
        pb::DeviceKind::Stage => DeviceKind::Stage,
        pb::DeviceKind::XyStage => DeviceKind::XYStage,
        pb::DeviceKind::Laser => DeviceKind::Laser,
        pb::DeviceKind::State => DeviceKind::State,
        pb::DeviceKind::Shutter => DeviceKind::Shutter,
        pb::DeviceKind::Unspecified => return None,
    })
}

pub(super) fn pixel_type(p: i32) -> Option<PixelType> {
    match pb::PixelType::try_from(p).ok()? {
        pb::PixelType::U8 => Some(PixelType::U8),
        pb::PixelType::U16 => Some(PixelType::U16),
        _ => None,
    }
}

pub(super) fn run_state(s: i32) -> Option<RunState> {
    Some(match pb::AcquisitionState::try_from(s).ok()? {
        pb::AcquisitionState::Running => RunState::Running,
        pb::AcquisitionState::Finished => RunState::Finished,
        pb::AcquisitionState::Stopped => RunState::Stopped,
        pb::AcquisitionState::Failed => RunState::Failed,
        pb::AcquisitionState::Paused => RunState::Paused,
        pb::AcquisitionState::Unspecified => return None,
    })
}

pub(super) fn role(r: i32) -> Option<Role> {
    Some(match pb::Role::try_from(r).ok()? {
        pb::Role::Observer => Role::Observer,
        pb::Role::Operator => Role::Operator,
        pb::Role::Admin => Role::Admin,
        pb::Role::Unspecified => return None,
    })
}

pub(super) fn value(v: Option<pb::Value>) -> Option<Value> {
    v?.into_domain()
}

impl From<pb::Instrument> for Instrument {
    fn from(i: pb::Instrument) -> Self {
        Self {
            name: i.name,
            daemon_version: i.daemon_version,
            devices: i
                .devices
                .into_iter()
                .map(|d| Device {
                    kind: device_kind(d.kind),
                    name: d.name,
                    driver: d.driver,
                    fault: d.fault,
                })
                .collect(),
        }
    }
}

/// A spec the daemon sent; one without a type is taken as a string (the daemon always sends
/// one).
pub(super) fn property_spec(s: pb::PropertySpec) -> PropertySpec {
    use pb::property_spec::Type;
    let ty = match s.r#type {
        Some(Type::BoolType(_)) => PropertyType::Bool,
        Some(Type::IntType(t)) => PropertyType::Int {
            min: t.min,
            max: t.max,
        },
        Some(Type::FloatType(t)) => PropertyType::Float {
            min: t.min,
            max: t.max,
        },
        Some(Type::EnumType(t)) => PropertyType::Enum { allowed: t.allowed },
        Some(Type::StringType(_)) | None => PropertyType::String,
    };
    PropertySpec {
        name: s.name,
        ty,
        unit: Some(s.unit).filter(|u| !u.is_empty()),
        read_only: s.read_only,
        description: s.description,
        // The API does not carry which limited quantity a property sets: the daemon checks it.
        quantity: None,
    }
}

impl From<pb::PropertyValue> for Setting {
    fn from(v: pb::PropertyValue) -> Self {
        Self {
            device: v.device,
            property: v.property,
            value: value(v.value),
        }
    }
}

impl From<pb::PresetGroup> for PresetGroup {
    fn from(g: pb::PresetGroup) -> Self {
        Self {
            name: g.name,
            presets: g
                .presets
                .into_iter()
                .map(|p| Preset {
                    name: p.name,
                    settings: p.settings.into_iter().map(Setting::from).collect(),
                })
                .collect(),
        }
    }
}

impl From<pb::Image> for Image {
    fn from(i: pb::Image) -> Self {
        Self {
            camera: i.camera,
            width: i.width,
            height: i.height,
            pixel_type: pixel_type(i.pixel_type),
            bit_depth: i.bit_depth,
            data: i.data,
            exposure_ms: i.metadata.map_or(0.0, |m| m.exposure_ms),
        }
    }
}

impl From<pb::PlanIndex> for PlanIndex {
    fn from(i: pb::PlanIndex) -> Self {
        Self {
            t: i.t,
            p: i.p,
            g: i.g,
            c: i.c,
            z: i.z,
        }
    }
}

impl From<pb::PlanSummary> for PlanSummary {
    fn from(s: pb::PlanSummary) -> Self {
        Self {
            events: s.events,
            files: s.files,
            open_files: s.open_files,
            used_axes: s.used_axes,
            sizes: s.sizes.unwrap_or_default().into(),
            duration_s: s.duration_s,
            bytes: s.bytes,
            free_bytes: s.free_bytes,
            interval_exceeded: s.interval_exceeded,
            warnings: s.warnings,
        }
    }
}

impl From<pb::AcquisitionStatus> for AcquisitionStatus {
    fn from(s: pb::AcquisitionStatus) -> Self {
        Self {
            id: s.id,
            name: s.name,
            owner: s.owner,
            camera: s.camera,
            frames_planned: s.frames_planned,
            state: run_state(s.state),
            path: s.path,
            received: s.received,
            written: s.written,
            dropped: s.dropped,
            dropped_in_camera: s.dropped_in_camera,
            bytes: s.bytes,
            elapsed_s: s.elapsed_s,
            error: s.error,
            width: s.width,
            height: s.height,
            plan: s.plan.map(|p| PlanProgress {
                events_total: p.events_total,
                events_done: p.events_done,
                current: p.current.map(Into::into),
                channel: p.channel,
                late_events: p.late_events,
                max_late_s: p.max_late_s,
                files: p.files,
                summary: p.summary.map(Into::into),
            }),
        }
    }
}

impl From<pb::Lease> for Lease {
    fn from(l: pb::Lease) -> Self {
        Self {
            held: l.held,
            holder_role: role(l.holder_role),
            holder: l.holder,
            expires_unix_us: l.expires_unix_us,
            remaining_s: l.remaining_s,
            ttl_s: l.ttl_s,
        }
    }
}

/// Where `Plan` goes on the wire.
pub(super) fn plan_request(plan: &Plan) -> pb::PlanRequest {
    let text = plan.text.clone();
    pb::PlanRequest {
        plan: Some(if plan.json {
            pb::plan_request::Plan::UseqJson(text)
        } else {
            pb::plan_request::Plan::UseqYaml(text)
        }),
        name: plan.name.clone(),
        camera: plan.camera.clone(),
    }
}
