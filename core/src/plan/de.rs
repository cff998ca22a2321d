//! Deserializing useq JSON/YAML: raw serde types that mirror the document's keys,
//! then a conversion into the daemon's types.
//!
//! The raw types have every key useq has as an optional field and
//! `deny_unknown_fields`, and the plan's form (which z plan, which grid, which time
//! phase) is decided from the keys present afterwards. This is instead of serde's
//! untagged enums, whose errors ("data did not match any variant") name neither the
//! key nor the path.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::names::{quote, QUOTE_CHARS};

use super::{
    Axis, Channel, GridKind, GridMode, GridPlan, MdaSequence, PlanError, Position, RelativeTo,
    TimeDelta, TimePhase, TimePhaseKind, TimePlan, ZPlan, ZPlanKind, DEFAULT_CHANNEL_GROUP,
};

/// Builds a [`PlanError`] from a serde error at `path` (serde_path_to_error's
/// rendering, `.` for the root). For an unknown key the key itself is appended to the
/// path, since serde reports it at its parent.
pub(super) fn path_error(
    path: &str,
    message: String,
    location: Option<(usize, usize)>,
) -> PlanError {
    let mut field = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    let mut message = message;
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let key = rest[..end].to_owned();
            if key.len() > QUOTE_CHARS {
                // A key is the client's text: repeated whole, a 100 kB key would be an error
                // too large for a client's metadata limits.
                let short = quote(&key);
                message = message.replacen(&format!("`{key}`"), &short, 1);
                field = field.replace(&key, &short);
                if !field.ends_with(&short) {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(&short);
                }
                return PlanError {
                    field,
                    message,
                    location,
                };
            }
            let key = key.as_str();
            // serde_path_to_error already ends the path with the key for some formats
            let last = field.rsplit(['.', ']']).next().unwrap_or("");
            if last == key {
                return PlanError {
                    field,
                    message,
                    location,
                };
            }
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(key);
        }
    }
    PlanError {
        field,
        message,
        location,
    }
}

/// Declares a type that accepts no value but `null` (handled by `Option`): a key useq
/// has but the daemon deliberately does not support, with the reason.
macro_rules! unsupported {
    ($name:ident, $reason:expr) => {
        pub(super) struct $name;
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                IgnoredAny::deserialize(d)?;
                Err(de::Error::custom(concat!(
                    "not supported by microscoped: ",
                    $reason
                )))
            }
        }
    };
}

unsupported!(
    NoAutofocus,
    "hardware autofocus plans are not implemented; remove the key or set it to null"
);
unsupported!(
    NoSetup,
    "setup events (device properties, ROI) are not implemented; set them before the run"
);
unsupported!(
    NoSubSequence,
    "a position's own sub-sequence is not implemented; use the plan's axes for every position"
);
unsupported!(
    NoProperties,
    "device properties per position are not implemented; use channel presets"
);
unsupported!(
    NoPlateIndex,
    "well-plate and grid row/column labels are not implemented; use the position's name"
);
unsupported!(
    NoCamera,
    "choosing a camera per channel is not implemented (one camera per instrument)"
);
unsupported!(
    NoPolygon,
    "polygon grids (GridFromPolygon) are not implemented; use top/left/bottom/right"
);
unsupported!(
    NoRandom,
    "random point plans (RandomPoints) are not implemented; use rows/columns"
);
unsupported!(
    NoRelativeGrid,
    "a single relative position as a grid plan is not implemented; use rows: 1, columns: 1"
);

/// The top level of an `MDASequence` document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSequence {
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    axis_order: Option<AxisList>,
    #[serde(default)]
    stage_positions: Option<StagePositions>,
    #[serde(default)]
    grid_plan: Option<RawGrid>,
    #[serde(default)]
    channels: Option<Vec<RawChannel>>,
    #[serde(default)]
    time_plan: Option<RawTime>,
    #[serde(default)]
    z_plan: Option<RawZ>,
    #[serde(default)]
    keep_shutter_open_across: Option<AxisList>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // only ever None: anything else is a deserialization error
    autofocus_plan: Option<NoAutofocus>,
    #[serde(default)]
    #[allow(dead_code)]
    setup: Option<NoSetup>,
}

/// A list of axis letters: `"tpcz"` or `["t", "p", "c", "z"]`, as useq accepts both.
/// Checked (known letters, no duplicates) in the conversion, where the field is known.
struct AxisList(Vec<String>);

impl<'de> Deserialize<'de> for AxisList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AxisList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string of axis letters like \"tpgcz\" or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AxisList, E> {
                Ok(AxisList(v.chars().map(String::from).collect()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AxisList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(AxisList(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn axes(list: AxisList, field: &str) -> Result<Vec<Axis>, PlanError> {
    let mut out = Vec::new();
    for s in list.0 {
        let mut chars = s.chars();
        let axis = match (chars.next(), chars.next()) {
            (Some(c), None) => Axis::from_letter(c),
            _ => None,
        }
        .ok_or_else(|| {
            PlanError::new(
                field,
                format!("unknown axis {}; axes are t, p, g, c and z", quote(&s)),
            )
        })?;
        if out.contains(&axis) {
            return Err(PlanError::new(
                field,
                format!("axis {} is given twice", quote(&s)),
            ));
        }
        out.push(axis);
    }
    Ok(out)
}

/// `stage_positions`: a list of positions. useq also takes a well-plate plan (a map)
/// here, which the daemon does not support.
struct StagePositions(Vec<RawPositionAny>);

impl<'de> Deserialize<'de> for StagePositions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StagePositions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of positions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StagePositions, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element()? {
                    out.push(p);
                }
                Ok(StagePositions(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<StagePositions, A::Error> {
                Err(de::Error::custom(
                    "not supported by microscoped: well-plate plans (WellPlatePlan); \
                     give a list of positions",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the unsupported keys are only ever None
struct RawPosition {
    #[serde(default)]
    x: Option<f64>,
    #[serde(default)]
    y: Option<f64>,
    #[serde(default)]
    z: Option<f64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    sequence: Option<NoSubSequence>,
    #[serde(default)]
    properties: Option<NoProperties>,
    #[serde(default)]
    plate_row: Option<NoPlateIndex>,
    #[serde(default)]
    plate_col: Option<NoPlateIndex>,
    #[serde(default)]
    grid_row: Option<NoPlateIndex>,
    #[serde(default)]
    grid_col: Option<NoPlateIndex>,
    #[serde(default)]
    row: Option<NoPlateIndex>,
    #[serde(default)]
    col: Option<NoPlateIndex>,
}

/// A position as a map, or as `[x]`, `[x, y]`, `[x, y, z]` (useq's tuple form; from
/// JSON useq itself only takes the map, the list is a convenience).
struct RawPositionAny(Position);

impl<'de> Deserialize<'de> for RawPositionAny {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPositionAny;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a position {x, y, z, name} or a list [x, y, z]")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPositionAny, A::Error> {
                let p = RawPosition::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawPositionAny(Position {
                    x: p.x,
                    y: p.y,
                    z: p.z,
                    name: p.name,
                }))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPositionAny, A::Error> {
                let mut v: Vec<Option<f64>> = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                if v.is_empty() || v.len() > 3 {
                    return Err(de::Error::invalid_length(
                        v.len(),
                        &"1 to 3 coordinates [x, y, z]",
                    ));
                }
                let at = |i: usize| v.get(i).copied().flatten();
                Ok(RawPositionAny(Position {
                    x: at(0),
                    y: at(1),
                    z: at(2),
                    name: None,
                }))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannelMap {
    config: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    exposure: Option<f64>,
    #[serde(default)]
    do_stack: Option<bool>,
    #[serde(default)]
    z_offset: Option<f64>,
    #[serde(default)]
    acquire_every: Option<i64>,
    #[serde(default)]
    #[allow(dead_code)]
    camera: Option<NoCamera>,
}

/// A channel as a map or as a bare preset name (useq takes both).
struct RawChannel(RawChannelMap);

impl<'de> Deserialize<'de> for RawChannel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawChannel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a channel {config, group, exposure, ...} or a preset name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawChannel, E> {
                Ok(RawChannel(RawChannelMap {
                    config: v.to_owned(),
                    group: None,
                    exposure: None,
                    do_stack: None,
                    z_offset: None,
                    acquire_every: None,
                    camera: None,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawChannel, A::Error> {
                RawChannelMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawChannel)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the unsupported keys are only ever None
struct RawGrid {
    #[serde(default)]
    rows: Option<i64>,
    #[serde(default)]
    columns: Option<i64>,
    #[serde(default)]
    relative_to: Option<String>,
    #[serde(default)]
    top: Option<f64>,
    #[serde(default)]
    left: Option<f64>,
    #[serde(default)]
    bottom: Option<f64>,
    #[serde(default)]
    right: Option<f64>,
    #[serde(default)]
    width: Option<f64>,
    #[serde(default)]
    height: Option<f64>,
    #[serde(default)]
    overlap: Option<Overlap>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    fov_width: Option<f64>,
    #[serde(default)]
    fov_height: Option<f64>,
    #[serde(default)]
    vertices: Option<NoPolygon>,
    #[serde(default)]
    convex_hull: Option<NoPolygon>,
    #[serde(default)]
    offset: Option<NoPolygon>,
    #[serde(default)]
    num_points: Option<NoRandom>,
    #[serde(default)]
    max_width: Option<NoRandom>,
    #[serde(default)]
    max_height: Option<NoRandom>,
    #[serde(default)]
    shape: Option<NoRandom>,
    #[serde(default)]
    random_seed: Option<NoRandom>,
    #[serde(default)]
    allow_overlap: Option<NoRandom>,
    #[serde(default)]
    order: Option<NoRandom>,
    #[serde(default)]
    start_at: Option<NoRandom>,
    #[serde(default)]
    x: Option<NoRelativeGrid>,
    #[serde(default)]
    y: Option<NoRelativeGrid>,
    #[serde(default)]
    z: Option<NoRelativeGrid>,
}

/// Overlap in percent: one number for both axes or `[x, y]`.
struct Overlap((f64, f64));

impl<'de> Deserialize<'de> for Overlap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Overlap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an overlap in percent, or [x, y] in percent")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Overlap, E> {
                Ok(Overlap((v, v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Overlap, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Overlap, E> {
                self.visit_f64(v as f64)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Overlap, A::Error> {
                let x: f64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let y: f64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Overlap((x, y)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeMap {
    #[serde(default)]
    interval: Option<RawTimeDelta>,
    #[serde(default)]
    duration: Option<RawTimeDelta>,
    #[serde(default)]
    loops: Option<i64>,
    #[serde(default)]
    prioritize_duration: Option<bool>,
    #[serde(default)]
    phases: Option<Vec<RawTime>>,
}

/// A time plan as a map, or a list of phases (useq takes both).
struct RawTime(RawTimeMap);

impl<'de> Deserialize<'de> for RawTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a time plan {interval, loops} / {duration, loops} / {interval, duration} / {phases}")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawTime, A::Error> {
                RawTimeMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawTime)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawTime, A::Error> {
                let phases =
                    Vec::<RawTime>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(RawTime(RawTimeMap {
                    interval: None,
                    duration: None,
                    loops: None,
                    prioritize_duration: None,
                    phases: Some(phases),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// A time span as useq (pydantic) takes it: seconds as a number, an ISO 8601 duration
/// (`PT1.5S`), `[D day[s], ][HH:]MM:SS[.ffffff]`, or a map of `timedelta` arguments.
struct RawTimeDelta(TimeDelta);

impl<'de> Deserialize<'de> for RawTimeDelta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTimeDelta;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("seconds, an ISO 8601 duration like \"PT1.5S\", \"HH:MM:SS\", or {seconds: ...}")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawTimeDelta, E> {
                if !v.is_finite() {
                    return Err(E::custom("a time span must be finite"));
                }
                Ok(RawTimeDelta(TimeDelta::from_secs_f64(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawTimeDelta, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawTimeDelta, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawTimeDelta, E> {
                parse_duration(v)
                    .map(|s| RawTimeDelta(TimeDelta::from_secs_f64(s)))
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{} is not a time span; {}",
                            quote(v),
                            EXPECTED_SPAN
                        ))
                    })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTimeDelta, A::Error> {
                let mut secs = 0.0;
                while let Some(key) = map.next_key::<String>()? {
                    let unit = match key.as_str() {
                        "weeks" => 604_800.0,
                        "days" => 86_400.0,
                        "hours" => 3_600.0,
                        "minutes" => 60.0,
                        "seconds" => 1.0,
                        "milliseconds" => 1e-3,
                        "microseconds" => 1e-6,
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown field `{other}`, expected one of weeks, days, hours, \
                                 minutes, seconds, milliseconds, microseconds"
                            )))
                        }
                    };
                    secs += map.next_value::<f64>()? * unit;
                }
                self.visit_f64(secs)
            }
        }
        d.deserialize_any(V)
    }
}

const EXPECTED_SPAN: &str = "give seconds, \"PT1M30S\" or \"0:01:30\"";

/// Parses pydantic's string forms of a `timedelta` into seconds.
fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let (sign, body) = match s.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if let Some(iso) = body.strip_prefix('P') {
        return parse_iso8601(iso).map(|v| sign * v);
    }
    // "[D day[s], ]HH:MM:SS[.f]" or "MM:SS[.f]"
    let (days, clock) = match body.split_once(',') {
        Some((d, rest)) => {
            let d = d.trim();
            let n = d
                .strip_suffix("days")
                .or_else(|| d.strip_suffix("day"))?
                .trim();
            (n.parse::<f64>().ok()?, rest.trim())
        }
        None => (0.0, body),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut secs = 0.0;
    for part in &parts {
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        secs = secs * 60.0 + part.parse::<f64>().ok()?;
    }
    Some(sign * (days * 86_400.0 + secs))
}

/// `nD` then `T` with `nH`, `nM`, `nS` (fractions allowed), after the leading `P`.
fn parse_iso8601(s: &str) -> Option<f64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (s, None),
    };
    let mut total = 0.0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut rest = part;
        let mut unit_i = 0;
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let n: f64 = rest[..end].parse().ok()?;
            let letter = rest[end..].chars().next()?;
            let pos = units[unit_i..].iter().position(|(u, _)| *u == letter)?;
            unit_i += pos + 1;
            total += n * units[unit_i - 1].1;
            any = true;
            rest = &rest[end + 1..];
        }
        Some(())
    };
    take(date, &[('D', 86_400.0)])?;
    if let Some(t) = time {
        take(t, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    any.then_some(total)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZ {
    #[serde(default)]
    go_up: Option<bool>,
    #[serde(default)]
    range: Option<f64>,
    #[serde(default)]
    step: Option<f64>,
    #[serde(default)]
    top: Option<f64>,
    #[serde(default)]
    bottom: Option<f64>,
    #[serde(default)]
    above: Option<f64>,
    #[serde(default)]
    below: Option<f64>,
    #[serde(default)]
    absolute: Option<Vec<f64>>,
    #[serde(default)]
    relative: Option<Vec<f64>>,
}

/// Names the keys of `given` (pairs of key and whether it was given) that are set.
fn keys_given(given: &[(&'static str, bool)]) -> Vec<&'static str> {
    given.iter().filter(|(_, g)| *g).map(|(k, _)| *k).collect()
}

fn form_error(field: &str, what: &str, forms: &str, given: &[(&'static str, bool)]) -> PlanError {
    let keys = keys_given(given);
    let got = if keys.is_empty() {
        "none of them".to_owned()
    } else {
        keys.join(", ")
    };
    PlanError::new(
        field,
        format!("{what} takes exactly one of {forms}; got {got}"),
    )
}

impl RawSequence {
    /// Converts into the daemon's types, deciding each plan's form from its keys.
    pub(super) fn into_sequence(self) -> Result<MdaSequence, PlanError> {
        let axis_order = match self.axis_order {
            Some(list) => axes(list, "axis_order")?,
            None => Axis::ALL.to_vec(),
        };
        let keep_shutter_open_across = match self.keep_shutter_open_across {
            Some(list) => axes(list, "keep_shutter_open_across")?,
            None => Vec::new(),
        };
        let stage_positions = self
            .stage_positions
            .map(|p| p.0.into_iter().map(|p| p.0).collect())
            .unwrap_or_default();
        let channels = self
            .channels
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| channel(c.0, i))
            .collect::<Result<_, _>>()?;
        Ok(MdaSequence {
            metadata: self.metadata.unwrap_or_default(),
            axis_order,
            stage_positions,
            grid_plan: self.grid_plan.map(grid).transpose()?,
            channels,
            time_plan: self.time_plan.map(time_plan).transpose()?,
            z_plan: self.z_plan.map(z_plan).transpose()?,
            keep_shutter_open_across,
            uid: self.uid,
            origin: Default::default(),
        })
    }
}

fn channel(c: RawChannelMap, i: usize) -> Result<Channel, PlanError> {
    let acquire_every = match c.acquire_every {
        None => 1,
        Some(n) => u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            PlanError::new(
                format!("channels[{i}].acquire_every"),
                format!("must be a whole number of at least 1, got {n}"),
            )
        })?,
    };
    Ok(Channel {
        config: c.config,
        group: c.group.unwrap_or_else(|| DEFAULT_CHANNEL_GROUP.to_owned()),
        exposure: c.exposure,
        do_stack: c.do_stack.unwrap_or(true),
        z_offset: c.z_offset.unwrap_or(0.0),
        acquire_every,
    })
}

fn count(v: i64, field: &str) -> Result<u32, PlanError> {
    u32::try_from(v).ok().filter(|n| *n > 0).ok_or_else(|| {
        PlanError::new(
            field,
            format!("must be a whole number of at least 1, got {v}"),
        )
    })
}

fn grid(g: RawGrid) -> Result<GridPlan, PlanError> {
    let relative_to = |r: Option<String>| -> Result<RelativeTo, PlanError> {
        match r.as_deref() {
            None | Some("center") => Ok(RelativeTo::Center),
            Some("top_left") => Ok(RelativeTo::TopLeft),
            Some(other) => Err(PlanError::new(
                "grid_plan.relative_to",
                format!(
                    "unknown value {}; expected \"center\" or \"top_left\"",
                    quote(other)
                ),
            )),
        }
    };
    let rc = g.rows.is_some() || g.columns.is_some();
    let edges = g.top.is_some() || g.left.is_some() || g.bottom.is_some() || g.right.is_some();
    let wh = g.width.is_some() || g.height.is_some();
    let given = [
        ("rows/columns", rc),
        ("top/left/bottom/right", edges),
        ("width/height", wh),
    ];
    let forms = "rows/columns, top/left/bottom/right or width/height";
    let kind = match (rc, edges, wh) {
        (true, false, false) => {
            let (Some(rows), Some(columns)) = (g.rows, g.columns) else {
                return Err(PlanError::new("grid_plan", "give both rows and columns"));
            };
            GridKind::RowsColumns {
                rows: count(rows, "grid_plan.rows")?,
                columns: count(columns, "grid_plan.columns")?,
                relative_to: relative_to(g.relative_to)?,
            }
        }
        (false, true, false) => {
            let (Some(top), Some(left), Some(bottom), Some(right)) =
                (g.top, g.left, g.bottom, g.right)
            else {
                return Err(PlanError::new(
                    "grid_plan",
                    "give all of top, left, bottom and right",
                ));
            };
            if g.relative_to.is_some() {
                return Err(PlanError::new(
                    "grid_plan.relative_to",
                    "a grid from edges is absolute; relative_to only applies to rows/columns and width/height",
                ));
            }
            GridKind::FromEdges {
                top,
                left,
                bottom,
                right,
            }
        }
        (false, false, true) => {
            let (Some(width), Some(height)) = (g.width, g.height) else {
                return Err(PlanError::new("grid_plan", "give both width and height"));
            };
            GridKind::WidthHeight {
                width,
                height,
                relative_to: relative_to(g.relative_to)?,
            }
        }
        _ => return Err(form_error("grid_plan", "a grid plan", forms, &given)),
    };
    let mode = match g.mode.as_deref() {
        None => GridMode::RowWiseSnake,
        Some(name) => GridMode::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = GridMode::NAMES.iter().map(|(n, _)| *n).collect();
                PlanError::new(
                    "grid_plan.mode",
                    format!(
                        "unknown mode {}; expected one of {}",
                        quote(name),
                        names.join(", ")
                    ),
                )
            })?,
    };
    Ok(GridPlan {
        kind,
        overlap: g.overlap.map_or((0.0, 0.0), |o| o.0),
        mode,
        fov_width: g.fov_width,
        fov_height: g.fov_height,
    })
}

fn time_plan(t: RawTime) -> Result<TimePlan, PlanError> {
    let t = t.0;
    match t.phases {
        Some(phases) => {
            if t.interval.is_some()
                || t.duration.is_some()
                || t.loops.is_some()
                || t.prioritize_duration.is_some()
            {
                return Err(PlanError::new(
                    "time_plan",
                    "a multi-phase time plan takes only `phases`; put interval, duration and loops in each phase",
                ));
            }
            let phases = phases
                .into_iter()
                .enumerate()
                .map(|(i, p)| time_phase(p.0, &format!("time_plan.phases[{i}]")))
                .collect::<Result<_, _>>()?;
            Ok(TimePlan::Phases(phases))
        }
        None => Ok(TimePlan::Single(time_phase(t, "time_plan")?)),
    }
}

fn time_phase(t: RawTimeMap, field: &str) -> Result<TimePhase, PlanError> {
    if t.phases.is_some() {
        return Err(PlanError::new(
            format!("{field}.phases"),
            "phases cannot be nested",
        ));
    }
    let given = [
        ("interval", t.interval.is_some()),
        ("duration", t.duration.is_some()),
        ("loops", t.loops.is_some()),
    ];
    let kind = match (t.interval, t.duration, t.loops) {
        (Some(interval), None, Some(loops)) => TimePhaseKind::IntervalLoops {
            interval: interval.0,
            loops: count(loops, &format!("{field}.loops"))?,
        },
        (None, Some(duration), Some(loops)) => TimePhaseKind::DurationLoops {
            duration: duration.0,
            loops: count(loops, &format!("{field}.loops"))?,
        },
        (Some(interval), Some(duration), None) => TimePhaseKind::IntervalDuration {
            interval: interval.0,
            duration: duration.0,
        },
        _ => {
            return Err(form_error(
                field,
                "a time plan",
                "{interval, loops}, {duration, loops}, {interval, duration} or {phases}",
                &given,
            ))
        }
    };
    Ok(TimePhase {
        kind,
        prioritize_duration: t.prioritize_duration,
    })
}

fn z_plan(z: RawZ) -> Result<ZPlan, PlanError> {
    let given = [
        ("range", z.range.is_some()),
        ("top", z.top.is_some()),
        ("bottom", z.bottom.is_some()),
        ("above", z.above.is_some()),
        ("below", z.below.is_some()),
        ("absolute", z.absolute.is_some()),
        ("relative", z.relative.is_some()),
        ("step", z.step.is_some()),
    ];
    let kind = match &z {
        RawZ {
            range: Some(range),
            step: Some(step),
            top: None,
            bottom: None,
            above: None,
            below: None,
            absolute: None,
            relative: None,
            ..
        } => ZPlanKind::RangeAround {
            range: *range,
            step: *step,
        },
        RawZ {
            top: Some(top),
            bottom: Some(bottom),
            step: Some(step),
            range: None,
            above: None,
            below: None,
            absolute: None,
            relative: None,
            ..
        } => ZPlanKind::TopBottom {
            top: *top,
            bottom: *bottom,
            step: *step,
        },
        RawZ {
            above: Some(above),
            below: Some(below),
            step: Some(step),
            range: None,
            top: None,
            bottom: None,
            absolute: None,
            relative: None,
            ..
        } => ZPlanKind::AboveBelow {
            above: *above,
            below: *below,
            step: *step,
        },
        RawZ {
            absolute: Some(a),
            step: None,
            range: None,
            top: None,
            bottom: None,
            above: None,
            below: None,
            relative: None,
            ..
        } => ZPlanKind::Absolute(a.clone()),
        RawZ {
            relative: Some(r),
            step: None,
            range: None,
            top: None,
            bottom: None,
            above: None,
            below: None,
            absolute: None,
            ..
        } => ZPlanKind::Relative(r.clone()),
        _ => return Err(form_error(
            "z_plan",
            "a z plan",
            "{range, step}, {top, bottom, step}, {above, below, step}, {absolute} or {relative}",
            &given,
        )),
    };
    Ok(ZPlan {
        kind,
        go_up: z.go_up.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_in_pydantic_forms() {
        assert_eq!(parse_duration("PT1.5S"), Some(1.5));
        assert_eq!(parse_duration("P1DT1S"), Some(86_401.0));
        assert_eq!(parse_duration("PT1H2M"), Some(3_720.0));
        assert_eq!(parse_duration("0:00:12"), Some(12.0));
        assert_eq!(parse_duration("01:30"), Some(90.0));
        assert_eq!(parse_duration("1 day, 0:00:01.5"), Some(86_401.5));
        assert_eq!(parse_duration("-0:00:01"), Some(-1.0));
        assert_eq!(parse_duration("1.5"), None);
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("PT1S1M"), None);
        assert_eq!(parse_duration("soon"), None);
    }
}
