//! Multi-dimensional acquisition plans: useq-schema `MDASequence` documents.
//!
//! Acquisition scripts in the Python world (pymmcore-plus) describe acquisitions as
//! useq-schema `MDASequence`s. This module accepts the same JSON and YAML, so those
//! scripts move to the daemon unchanged, but turns them into the daemon's own types
//! ([`MdaSequence`]) instead of mirroring Python's.
//!
//! - [`parse_json`] / [`parse_yaml`]: text to [`MdaSequence`]. Every key is checked:
//!   a key useq does not have, or one the daemon deliberately does not support
//!   (`autofocus_plan`, a position's own `sequence`, ...), is an error naming its path.
//! - [`MdaSequence::events`]: the plan expanded into [`MdaEvent`]s in exactly the order
//!   and with the positions useq-schema 0.9 produces (checked against fixtures made by
//!   the real package, see `tests/python/gen_useq_fixtures.py`).
//! - [`MdaSequence::summary`] and [`MdaSequence::validate`]: sizes, a duration estimate,
//!   and the checks against an instrument ([`PlanLimits`]) that must pass before
//!   anything moves.
//!
//! Every error is a [`PlanError`] naming the field (`channels[1].config`,
//! `stage_positions[2].x`, `time_plan.interval`, ...).

mod de;
mod expand;
mod ser;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;

pub use expand::{gap_asked, MAX_EVENTS};
pub use validate::PlanLimits;

/// One axis of a plan, named by useq's single letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// `t`: time points.
    Time,
    /// `p`: stage positions.
    Position,
    /// `g`: grid tiles (around each position, or absolute).
    Grid,
    /// `c`: channels.
    Channel,
    /// `z`: z planes.
    Z,
}

impl Axis {
    /// All axes in useq's default order (`tpgcz`).
    pub const ALL: [Axis; 5] = [
        Axis::Time,
        Axis::Position,
        Axis::Grid,
        Axis::Channel,
        Axis::Z,
    ];

    /// The axis' letter in useq (`t`, `p`, `g`, `c`, `z`).
    pub fn letter(self) -> char {
        match self {
            Axis::Time => 't',
            Axis::Position => 'p',
            Axis::Grid => 'g',
            Axis::Channel => 'c',
            Axis::Z => 'z',
        }
    }

    /// The axis for a letter, either case (useq lower-cases `axis_order`).
    pub fn from_letter(c: char) -> Option<Axis> {
        match c.to_ascii_lowercase() {
            't' => Some(Axis::Time),
            'p' => Some(Axis::Position),
            'g' => Some(Axis::Grid),
            'c' => Some(Axis::Channel),
            'z' => Some(Axis::Z),
            _ => None,
        }
    }
}

/// A time span with useq's (Python `timedelta`'s) resolution of one microsecond.
///
/// Kept as whole microseconds, not seconds in a float, because useq computes every
/// time point with `timedelta` arithmetic (rounded to the microsecond); doing the same
/// gives the same `min_start_time`s to the last bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeDelta {
    /// Whole microseconds; negative spans are representable so they can be rejected
    /// with the field's name rather than at parse time.
    pub micros: i64,
}

impl TimeDelta {
    /// A span of `s` seconds, rounded to the microsecond as `timedelta` does.
    pub fn from_secs_f64(s: f64) -> TimeDelta {
        TimeDelta {
            micros: (s * 1e6).round() as i64,
        }
    }

    /// The span in seconds (Python's `total_seconds()`).
    pub fn as_secs_f64(self) -> f64 {
        self.micros as f64 / 1e6
    }
}

/// A useq `MDASequence`: what to acquire, and in which order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MdaSequence {
    /// Free user metadata, kept as given and saved with the data.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Nesting of the axes, outermost first (useq default `tpgcz`). An axis left out
    /// is not iterated; a plan for an axis left out is an error (useq would silently
    /// drop it).
    pub axis_order: Vec<Axis>,
    /// Stage positions to visit (`p` axis).
    pub stage_positions: Vec<Position>,
    /// Tiles around each position, or covering an absolute area (`g` axis).
    pub grid_plan: Option<GridPlan>,
    /// Channels (`c` axis).
    pub channels: Vec<Channel>,
    /// Time points (`t` axis).
    pub time_plan: Option<TimePlan>,
    /// Z planes (`z` axis).
    pub z_plan: Option<ZPlan>,
    /// Axes across which the illumination shutter stays open between events.
    pub keep_shutter_open_across: Vec<Axis>,
    /// An identifier older useq versions wrote into their JSON; kept, never used.
    pub uid: Option<String>,
    /// Not part of useq: where relative plans count from when a position does not say (or
    /// there are no positions). useq leaves this to the engine and counts from 0; the daemon
    /// sets the stages' positions at the start of a run, so a z stack without positions is
    /// taken around the current focus, as Micro-Manager does.
    pub origin: Origin,
}

/// The stage position relative z and grid plans count from where a position gives none.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Origin {
    /// XY in µm.
    pub xy: Option<(f64, f64)>,
    /// Z in µm.
    pub z: Option<f64>,
}

/// A stage position. `None` on an axis means "do not move that axis".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Position {
    /// X in µm.
    pub x: Option<f64>,
    /// Y in µm.
    pub y: Option<f64>,
    /// Z in µm (the reference for relative z plans).
    pub z: Option<f64>,
    /// Optional name, reported on the events of this position.
    pub name: Option<String>,
}

/// A channel: a preset to apply, and how it takes part in the other axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Preset name within `group` (e.g. `DAPI`).
    pub config: String,
    /// Preset group (useq default `Channel`).
    pub group: String,
    /// Exposure in ms; `None` keeps the camera's current exposure.
    pub exposure: Option<f64>,
    /// `false`: only the middle plane of the z plan is taken in this channel.
    pub do_stack: bool,
    /// Added to every z of the z plan in this channel (µm). As in useq, it has no
    /// effect without a z plan.
    pub z_offset: f64,
    /// Take this channel only on every n-th time point.
    pub acquire_every: u32,
}

impl Channel {
    /// A channel with useq's defaults for everything but the preset name.
    pub fn new(config: impl Into<String>) -> Channel {
        Channel {
            config: config.into(),
            group: DEFAULT_CHANNEL_GROUP.to_owned(),
            exposure: None,
            do_stack: true,
            z_offset: 0.0,
            acquire_every: 1,
        }
    }
}

/// useq's default preset group for channels.
pub const DEFAULT_CHANNEL_GROUP: &str = "Channel";

/// A time plan: one phase, or several run back to back (`phases`).
#[derive(Debug, Clone, PartialEq)]
pub enum TimePlan {
    /// A single phase (`{interval, loops}`, `{duration, loops}` or `{interval, duration}`).
    Single(TimePhase),
    /// useq's `MultiPhaseTimePlan`: each phase starts where the previous one ended.
    Phases(Vec<TimePhase>),
}

/// One phase of a time plan, in the three forms useq accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct TimePhase {
    /// Which two of interval, duration and loops were given.
    pub kind: TimePhaseKind,
    /// useq's `prioritize_duration` hint, kept for the saved plan; it does not change
    /// the events (useq leaves it to the engine and no engine acts on it).
    pub prioritize_duration: Option<bool>,
}

/// The form of a time phase.
#[derive(Debug, Clone, PartialEq)]
pub enum TimePhaseKind {
    /// `loops` time points `interval` apart.
    IntervalLoops {
        /// Time between time points.
        interval: TimeDelta,
        /// Number of time points.
        loops: u32,
    },
    /// `loops` time points spread over `duration` (the last one at `duration`).
    DurationLoops {
        /// Time from first to last time point.
        duration: TimeDelta,
        /// Number of time points.
        loops: u32,
    },
    /// Time points `interval` apart for as long as `duration` (`duration // interval + 1`).
    IntervalDuration {
        /// Time between time points.
        interval: TimeDelta,
        /// Total span.
        duration: TimeDelta,
    },
}

/// A z plan and its direction.
#[derive(Debug, Clone, PartialEq)]
pub struct ZPlan {
    /// The planes.
    pub kind: ZPlanKind,
    /// `false` visits the planes in reverse order.
    pub go_up: bool,
}

/// The forms of z plan useq accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum ZPlanKind {
    /// `range` µm centred on the position's z, `step` apart (relative).
    RangeAround {
        /// Full range in µm.
        range: f64,
        /// Step in µm.
        step: f64,
    },
    /// From `bottom` to `top` in absolute µm.
    TopBottom {
        /// Top (encompassed, maybe not visited).
        top: f64,
        /// Bottom (always visited).
        bottom: f64,
        /// Step in µm.
        step: f64,
    },
    /// From `below` µm under to `above` µm over the position's z (relative).
    AboveBelow {
        /// Range above in µm.
        above: f64,
        /// Range below in µm (its sign is ignored, as in useq).
        below: f64,
        /// Step in µm.
        step: f64,
    },
    /// Absolute z positions in µm, in the order given.
    Absolute(Vec<f64>),
    /// Z positions relative to the position's z, in the order given.
    Relative(Vec<f64>),
}

impl ZPlanKind {
    /// Whether the planes are offsets from the position's z (useq's `is_relative`).
    pub fn is_relative(&self) -> bool {
        !matches!(self, ZPlanKind::TopBottom { .. } | ZPlanKind::Absolute(_))
    }
}

/// A grid plan: how tiles are laid out and visited.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPlan {
    /// Layout.
    pub kind: GridKind,
    /// Overlap between neighbouring tiles in percent, (x, y).
    pub overlap: (f64, f64),
    /// Visiting order.
    pub mode: GridMode,
    /// Field of view width in µm given in the plan. The instrument's field of view,
    /// when known, takes precedence (as pymmcore-plus overrides it from the camera).
    pub fov_width: Option<f64>,
    /// Field of view height in µm given in the plan (see `fov_width`).
    pub fov_height: Option<f64>,
}

/// The grid layouts supported (useq's `GridRowsColumns`, `GridFromEdges`,
/// `GridWidthHeight`).
#[derive(Debug, Clone, PartialEq)]
pub enum GridKind {
    /// `rows` x `columns` tiles around each position (relative).
    RowsColumns {
        /// Number of rows.
        rows: u32,
        /// Number of columns.
        columns: u32,
        /// Where the position sits in the grid.
        relative_to: RelativeTo,
    },
    /// Tiles covering an absolute area given by its edges in stage µm.
    FromEdges {
        /// Top edge.
        top: f64,
        /// Left edge.
        left: f64,
        /// Bottom edge.
        bottom: f64,
        /// Right edge.
        right: f64,
    },
    /// Tiles covering at least `width` x `height` µm around each position (relative).
    WidthHeight {
        /// Minimum width in µm.
        width: f64,
        /// Minimum height in µm.
        height: f64,
        /// Where the position sits in the grid.
        relative_to: RelativeTo,
    },
}

impl GridKind {
    /// Whether tile positions are offsets from each stage position.
    pub fn is_relative(&self) -> bool {
        !matches!(self, GridKind::FromEdges { .. })
    }
}

/// Where a relative grid's origin (the stage position) sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelativeTo {
    /// The grid is centred on the position.
    Center,
    /// The position is the centre of the top-left tile.
    TopLeft,
}

/// Order in which grid tiles are visited (useq's `OrderMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridMode {
    /// Row by row, each left to right.
    RowWise,
    /// Column by column, each top to bottom.
    ColumnWise,
    /// Row by row, alternating direction (useq's default).
    RowWiseSnake,
    /// Column by column, alternating direction.
    ColumnWiseSnake,
    /// Outwards from the centre.
    Spiral,
}

impl GridMode {
    pub(crate) const NAMES: [(&'static str, GridMode); 5] = [
        ("row_wise", GridMode::RowWise),
        ("column_wise", GridMode::ColumnWise),
        ("row_wise_snake", GridMode::RowWiseSnake),
        ("column_wise_snake", GridMode::ColumnWiseSnake),
        ("spiral", GridMode::Spiral),
    ];

    /// useq's name for the mode.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("row_wise_snake", |(n, _)| n)
    }
}

/// Index of an event along each axis; `None` for an axis the plan does not iterate
/// (useq leaves such an axis out of the event's `index` dict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct EventIndex {
    /// Time point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<usize>,
    /// Stage position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<usize>,
    /// Grid tile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub g: Option<usize>,
    /// Channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c: Option<usize>,
    /// Z plane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<usize>,
}

impl EventIndex {
    /// The index along `axis`.
    pub fn get(&self, axis: Axis) -> Option<usize> {
        match axis {
            Axis::Time => self.t,
            Axis::Position => self.p,
            Axis::Grid => self.g,
            Axis::Channel => self.c,
            Axis::Z => self.z,
        }
    }

    fn set(&mut self, axis: Axis, i: usize) {
        let slot = match axis {
            Axis::Time => &mut self.t,
            Axis::Position => &mut self.p,
            Axis::Grid => &mut self.g,
            Axis::Channel => &mut self.c,
            Axis::Z => &mut self.z,
        };
        *slot = Some(i);
    }
}

/// The preset an event applies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventChannel {
    /// Preset group.
    pub group: String,
    /// Preset name.
    pub config: String,
}

/// One image to take, as useq's `MDAEvent`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MdaEvent {
    /// Where the event sits along each iterated axis.
    pub index: EventIndex,
    /// Preset to apply; `None` keeps the current one.
    pub channel: Option<EventChannel>,
    /// Exposure in ms; `None` keeps the current one.
    pub exposure: Option<f64>,
    /// Absolute stage X in µm; `None` means do not move.
    pub x: Option<f64>,
    /// Absolute stage Y in µm; `None` means do not move.
    pub y: Option<f64>,
    /// Absolute Z in µm; `None` means do not move.
    pub z: Option<f64>,
    /// Earliest start in seconds after the last event that reset the timer.
    pub min_start_time: Option<f64>,
    /// Name of the stage position.
    pub pos_name: Option<String>,
    /// Start the event timer at this event (useq sets it on the first event of a
    /// time series: `t == 0` after an event with another `t`).
    pub reset_event_timer: bool,
    /// Leave the illumination shutter open after this event.
    pub keep_shutter_open: bool,
}

/// Number of items along each axis of a plan (0 for an axis not iterated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AxisSizes {
    /// Time points.
    pub t: usize,
    /// Stage positions.
    pub p: usize,
    /// Grid tiles per position.
    pub g: usize,
    /// Channels.
    pub c: usize,
    /// Z planes.
    pub z: usize,
}

/// What a plan amounts to: for dry runs and for sizing the output. Read back from a dataset's
/// `summary.json` when the daemon lists datasets from before it started.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PlanSummary {
    /// Number of events (images).
    pub events: usize,
    /// Items per axis (before `acquire_every` / `do_stack` skipping).
    pub sizes: AxisSizes,
    /// The iterated axes in order, e.g. `tpcz`.
    pub used_axes: String,
    /// Lower bound of the run time in seconds: exposures and time intervals, without
    /// stage moves and preset changes.
    pub duration_s: f64,
    /// Whether the exposures of a time point take longer than its interval.
    pub interval_exceeded: bool,
    /// Events that keep the camera's current exposure (the estimate assumes the
    /// fallback exposure for them).
    pub events_without_exposure: usize,
    /// Field of view used for the grid, (width, height) in µm.
    pub fov_um: Option<(f64, f64)>,
    /// Things that are allowed but probably not what was meant.
    pub warnings: Vec<String>,
}

impl PlanSummary {
    /// The files a run of the plan writes: one OME-TIFF per stage position and grid tile (one
    /// in all for a plan with neither).
    pub fn files(&self) -> usize {
        self.sizes.p.max(1) * self.sizes.g.max(1)
    }
}

/// A plan that cannot be parsed, expanded or run on this instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    /// Dotted path of the offending field (`channels[1].config`); empty for the whole
    /// plan.
    pub field: String,
    /// What is wrong and, where it helps, what is allowed.
    pub message: String,
    /// Line and column (1-based) in the text, for syntax and type errors.
    pub location: Option<(usize, usize)>,
}

impl PlanError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> PlanError {
        PlanError {
            field: field.into(),
            message: message.into(),
            location: None,
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanError {}

/// The most bytes a plan's text (useq JSON or YAML, or the structured message as JSON) may
/// have. A plan of 10,000 explicit positions with names fits twice over; a larger text is
/// refused before it is parsed, so a hostile client cannot make the daemon parse megabytes.
pub const MAX_PLAN_BYTES: usize = 1 << 20;

/// A list in a plan, each bounded in length so that a request cannot make the daemon hold and
/// walk millions of items before it finds the plan too large: a longer one is refused naming the
/// field and its bound, however the plan came (useq JSON or YAML, or the structured message,
/// whose lists are checked before they are converted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanList {
    /// `stage_positions`.
    StagePositions,
    /// `channels`.
    Channels,
    /// `time_plan.phases`.
    TimePhases,
    /// `z_plan.absolute`.
    ZAbsolute,
    /// `z_plan.relative`.
    ZRelative,
}

impl PlanList {
    /// The field the list is.
    pub fn field(self) -> &'static str {
        match self {
            PlanList::StagePositions => "stage_positions",
            PlanList::Channels => "channels",
            PlanList::TimePhases => "time_plan.phases",
            PlanList::ZAbsolute => "z_plan.absolute",
            PlanList::ZRelative => "z_plan.relative",
        }
    }

    /// The most items the list may have: far above what an instrument does in one plan (a
    /// 1536-well plate at 64 fields per well is 98,304 positions), low enough that the items
    /// of a list at its bound fit in memory many times over.
    pub fn max(self) -> usize {
        match self {
            PlanList::StagePositions => 100_000,
            PlanList::Channels | PlanList::TimePhases => 100,
            PlanList::ZAbsolute | PlanList::ZRelative => 10_000,
        }
    }

    /// Refuses `len` items when that is more than [`max`](Self::max).
    pub fn check(self, len: usize) -> Result<(), PlanError> {
        if len <= self.max() {
            return Ok(());
        }
        Err(PlanError::new(
            self.field(),
            format!(
                "{len} items; a plan has at most {} here: split the acquisition into several plans",
                self.max()
            ),
        ))
    }
}

/// Refuses a plan text longer than [`MAX_PLAN_BYTES`].
fn check_size(text: &str) -> Result<(), PlanError> {
    if text.len() > MAX_PLAN_BYTES {
        return Err(PlanError::new(
            "",
            format!(
                "the plan is {} bytes; a plan has at most {MAX_PLAN_BYTES} bytes (1 MiB)",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Parses a useq `MDASequence` from JSON text and checks its values.
pub fn parse_json(text: &str) -> Result<MdaSequence, PlanError> {
    check_size(text)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = match serde_path_to_error::deserialize(&mut de) {
        Ok(raw) => raw,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let location = (inner.line() > 0).then(|| (inner.line(), inner.column()));
            return Err(de::path_error(
                &path,
                strip_json_location(&inner.to_string()),
                location,
            ));
        }
    };
    if let Err(e) = de.end() {
        return Err(PlanError {
            field: String::new(),
            message: strip_json_location(&e.to_string()),
            location: Some((e.line(), e.column())),
        });
    }
    finish(raw)
}

/// Parses a useq `MDASequence` from YAML text (as `MDASequence.yaml()` writes it) and
/// checks its values.
pub fn parse_yaml(text: &str) -> Result<MdaSequence, PlanError> {
    check_size(text)?;
    let mut path = String::new();
    let mut options = serde_saphyr::Options::default();
    // The error is made of its path, message and location; no rendered source excerpt.
    options.with_snippet = false;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    match parsed {
        Ok(raw) => finish(raw),
        Err(e) => {
            let e = e.without_snippet();
            let location = e
                .location()
                .filter(|l| l.line() > 0)
                .map(|l| (l.line() as usize, l.column() as usize));
            let message = strip_yaml_location(&e.to_string());
            Err(de::path_error(&path, message, location))
        }
    }
}

/// serde-saphyr may end its messages with " at line L column C"; the location is kept in
/// [`PlanError::location`] instead.
fn strip_yaml_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn finish(raw: de::RawSequence) -> Result<MdaSequence, PlanError> {
    let seq = raw.into_sequence()?;
    seq.check()?;
    Ok(seq)
}

/// serde_json appends " at line L column C" to its messages; the location is kept in
/// [`PlanError::location`] instead.
fn strip_json_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
