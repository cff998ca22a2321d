//! Property tests of plan expansion through the crate's public API, against the invariants the
//! useq fixtures (`tests/python/useq_fixtures`, made by useq-schema) hold: plans are generated as
//! the useq JSON a script sends (time plans of every form and multi-phase, positions, grids of
//! every layout and order, channels with `do_stack`, `acquire_every` and `z_offset`, z plans of
//! every form, any axis order), parsed, expanded, summed up and validated, and:
//!
//! - each axis has as many items as useq-schema defines (`sizes`), and the number of events is
//!   their product, less the time points a channel's `acquire_every` skips and the planes a
//!   channel with `do_stack: false` leaves out;
//! - every (t, p, g, c, z) index appears once, within its axis, and the events come in the axis
//!   order (the last axis turning fastest);
//! - every stage target, exposure and start time is a finite number;
//! - the dry run's summary (images, sizes, used axes, files) says what the expansion holds, and
//!   validation against an instrument without limits accepts it with the same summary;
//! - the plan survives a round trip through the useq JSON and YAML the daemon writes.
//!
//! `hostile`: values near the ends of f64 (positions, offsets, overlaps) either validate to
//! finite targets or are refused naming the field, never run into a NaN.

use std::collections::{BTreeSet, HashSet};

use microscoped_core::plan::{
    parse_json, parse_yaml, Axis, GridKind, MdaEvent, MdaSequence, PlanLimits, TimeDelta,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};

const CONFIGS: [&str; 3] = ["DAPI", "GFP", "Cy5"];
const GROUPS: [&str; 2] = ["Channel", "Filters"];

fn config() -> ProptestConfig {
    ProptestConfig {
        // A failing case is kept as a plain test at the end of this file.
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    }
}

/// Seconds with a resolution of 1 ms, so generated plans read as people write them.
fn secs(range: std::ops::Range<u32>) -> impl Strategy<Value = f64> {
    range.prop_map(|ms| f64::from(ms) / 1000.0)
}

fn phase() -> impl Strategy<Value = Json> {
    prop_oneof![
        (secs(0..3000), 1u32..6).prop_map(|(i, n)| json!({"interval": i, "loops": n})),
        (secs(0..5000), 1u32..6).prop_map(|(d, n)| json!({"duration": d, "loops": n})),
        (secs(100..2000), secs(0..6000)).prop_map(|(i, d)| json!({"interval": i, "duration": d})),
    ]
}

fn time_plan() -> impl Strategy<Value = Json> {
    prop_oneof![
        3 => phase(),
        1 => prop::collection::vec(phase(), 1..4).prop_map(|p| json!({ "phases": p })),
    ]
}

fn coordinate() -> impl Strategy<Value = Option<f64>> {
    prop::option::of((-10_000i32..10_000).prop_map(|v| f64::from(v) / 4.0))
}

fn positions() -> impl Strategy<Value = Vec<Json>> {
    prop::collection::vec(
        (
            coordinate(),
            coordinate(),
            coordinate(),
            prop::option::of("[A-H][1-9]"),
        ),
        0..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(x, y, z, name)| {
                let mut m = Map::new();
                for (k, c) in [("x", x), ("y", y), ("z", z)] {
                    if let Some(c) = c {
                        m.insert(k.into(), json!(c));
                    }
                }
                if let Some(n) = name {
                    m.insert("name".into(), json!(n));
                }
                Json::Object(m)
            })
            .collect()
    })
}

fn grid_plan() -> impl Strategy<Value = Json> {
    let relative_to = prop_oneof![Just("center"), Just("top_left")];
    let kind = prop_oneof![
        (1u32..4, 1u32..4, relative_to.clone())
            .prop_map(|(r, c, rel)| json!({"rows": r, "columns": c, "relative_to": rel})),
        // In fields of view, so the number of tiles stays small.
        (
            -8i32..8,
            -8i32..8,
            0u32..12,
            0u32..12,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(l, b, w, h, flip_x, flip_y)| {
                let (left, bottom) = (f64::from(l) * 100.0, f64::from(b) * 100.0);
                let (right, top) = (left + f64::from(w) * 90.0, bottom + f64::from(h) * 45.0);
                let (left, right) = if flip_x { (right, left) } else { (left, right) };
                let (top, bottom) = if flip_y { (bottom, top) } else { (top, bottom) };
                json!({"top": top, "left": left, "bottom": bottom, "right": right})
            }),
        (1u32..12, 1u32..12, relative_to).prop_map(|(w, h, rel)| {
            json!({"width": f64::from(w) * 75.0, "height": f64::from(h) * 40.0, "relative_to": rel})
        }),
    ];
    let mode = prop_oneof![
        Just("row_wise"),
        Just("column_wise"),
        Just("row_wise_snake"),
        Just("column_wise_snake"),
        Just("spiral"),
    ];
    (kind, -20i32..60, -20i32..60, mode).prop_map(|(mut g, ox, oy, mode)| {
        let m = g.as_object_mut().unwrap();
        m.insert("overlap".into(), json!([f64::from(ox), f64::from(oy)]));
        m.insert("mode".into(), json!(mode));
        m.insert("fov_width".into(), json!(100.0));
        m.insert("fov_height".into(), json!(50.0));
        g
    })
}

fn channels() -> impl Strategy<Value = Vec<Json>> {
    let channel = (
        0..CONFIGS.len(),
        prop::option::of(0..GROUPS.len()),
        prop::option::of(secs(1000..100_000)),
        any::<bool>(),
        (-8i32..8).prop_map(|v| f64::from(v) / 4.0),
        1u32..4,
        any::<bool>(),
    )
        .prop_map(
            |(config, group, exposure, do_stack, z_offset, acquire_every, plain)| {
                if plain {
                    // useq takes a channel as just its preset's name.
                    return json!(CONFIGS[config]);
                }
                let mut m = Map::new();
                m.insert("config".into(), json!(CONFIGS[config]));
                if let Some(g) = group {
                    m.insert("group".into(), json!(GROUPS[g]));
                }
                if let Some(e) = exposure {
                    m.insert("exposure".into(), json!(e));
                }
                m.insert("do_stack".into(), json!(do_stack));
                m.insert("z_offset".into(), json!(z_offset));
                m.insert("acquire_every".into(), json!(acquire_every));
                Json::Object(m)
            },
        );
    prop::collection::vec(channel, 0..4)
}

fn z_plan() -> impl Strategy<Value = Json> {
    let step = (1u32..9).prop_map(|s| f64::from(s) / 4.0);
    let kind = prop_oneof![
        ((0u32..20).prop_map(|r| f64::from(r) / 4.0), step.clone())
            .prop_map(|(range, step)| json!({"range": range, "step": step})),
        (-100i32..100, 0u32..20, step.clone()).prop_map(|(b, span, step)| {
            let bottom = f64::from(b);
            json!({"top": bottom + f64::from(span) / 4.0, "bottom": bottom, "step": step})
        }),
        (0u32..12, -12i32..12, step).prop_map(|(a, b, step)| {
            json!({"above": f64::from(a) / 4.0, "below": f64::from(b) / 4.0, "step": step})
        }),
        prop::collection::vec((-400i32..400).prop_map(|v| f64::from(v) / 4.0), 1..6)
            .prop_map(|v| json!({ "absolute": v })),
        prop::collection::vec((-20i32..20).prop_map(|v| f64::from(v) / 4.0), 1..6)
            .prop_map(|v| json!({ "relative": v })),
    ];
    (kind, any::<bool>()).prop_map(|(mut z, go_up)| {
        z.as_object_mut()
            .unwrap()
            .insert("go_up".into(), json!(go_up));
        z
    })
}

/// A useq `MDASequence` as JSON, and the camera's field of view (`None`: not known, so the
/// plan's own `fov_width`/`fov_height` lay out the grid).
fn plan() -> impl Strategy<Value = (Json, Option<(f64, f64)>)> {
    (
        prop::option::weighted(0.6, time_plan()),
        positions(),
        prop::option::weighted(0.4, grid_plan()),
        channels(),
        prop::option::weighted(0.6, z_plan()),
        prop::option::of(Just((120.0, 60.0))),
        prop::collection::vec(any::<bool>(), 5),
        Just("tpgcz".chars().collect::<Vec<_>>()).prop_shuffle(),
        any::<bool>(),
    )
        .prop_map(
            |(time, mut positions, grid, channels, z, fov, extra, order, default_order)| {
                let mut doc = Map::new();
                let from_edges = grid.as_ref().is_some_and(|g| g.get("left").is_some());
                if from_edges {
                    // A grid from edges is absolute: positions give no x or y there.
                    for p in &mut positions {
                        let m = p.as_object_mut().unwrap();
                        m.remove("x");
                        m.remove("y");
                    }
                }
                let mut present = Vec::new();
                if let Some(t) = time {
                    doc.insert("time_plan".into(), t);
                    present.push('t');
                }
                if !positions.is_empty() {
                    doc.insert("stage_positions".into(), Json::Array(positions));
                    present.push('p');
                }
                if let Some(g) = grid {
                    doc.insert("grid_plan".into(), g);
                    present.push('g');
                }
                if !channels.is_empty() {
                    doc.insert("channels".into(), Json::Array(channels));
                    present.push('c');
                }
                if let Some(z) = z {
                    doc.insert("z_plan".into(), z);
                    present.push('z');
                }
                if !default_order {
                    // Every axis with a plan, and some without (not iterated), in any order.
                    let order: String = order
                        .iter()
                        .zip(&extra)
                        .filter(|(a, e)| present.contains(a) || **e)
                        .map(|(a, _)| *a)
                        .collect();
                    doc.insert("axis_order".into(), json!(order));
                }
                (Json::Object(doc), fov)
            },
        )
}

/// Time points of one phase, as useq-schema counts them.
fn phase_points(p: &Json) -> usize {
    let td = |k: &str| TimeDelta::from_secs_f64(p[k].as_f64().unwrap()).micros;
    match (p.get("interval"), p.get("duration"), p.get("loops")) {
        (_, _, Some(n)) => n.as_u64().unwrap() as usize,
        (Some(_), Some(_), None) => (td("duration") / td("interval")) as usize + 1,
        _ => unreachable!("generated phases have two of the three"),
    }
}

/// The sizes useq-schema gives each axis of a plan (`MDASequence.sizes`), from the document;
/// the grid's from its tiles as laid out (`len(grid_plan)`).
fn useq_sizes(doc: &Json, events: &[MdaEvent]) -> [(Axis, usize); 5] {
    let t = match doc.get("time_plan") {
        None => 0,
        Some(t) => match t.get("phases") {
            Some(phases) => {
                1 + phases
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| phase_points(p) - 1)
                    .sum::<usize>()
            }
            None => phase_points(t),
        },
    };
    let len = |k: &str| doc.get(k).and_then(Json::as_array).map_or(0, Vec::len);
    let z = match doc.get("z_plan") {
        None => 0,
        Some(z) => match z.get("absolute").or(z.get("relative")) {
            Some(list) => list.as_array().unwrap().len(),
            None => {
                let f = |k: &str| z[k].as_f64().unwrap();
                let (start, stop, step) = if z.get("range").is_some() {
                    (-f("range") / 2.0, f("range") / 2.0, f("step"))
                } else if z.get("top").is_some() {
                    (f("bottom"), f("top"), f("step"))
                } else {
                    (-f("below").abs(), f("above").abs(), f("step"))
                };
                // numpy.arange(start, stop + step / 2, step)
                ((stop + step / 2.0 - start) / step).ceil() as usize
            }
        },
    };
    let g = match doc.get("grid_plan") {
        None => 0,
        Some(g) if g.get("rows").is_some() => {
            (g["rows"].as_u64().unwrap() * g["columns"].as_u64().unwrap()) as usize
        }
        // Other layouts: as many as there are distinct tiles around one position.
        Some(_) => events
            .iter()
            .filter(|e| e.index.p.unwrap_or(0) == 0)
            .filter_map(|e| e.index.g)
            .collect::<BTreeSet<_>>()
            .len(),
    };
    let order = axis_order(doc);
    let used = |a: Axis, n: usize| if order.contains(&a) { n } else { 0 };
    [
        (Axis::Time, used(Axis::Time, t)),
        (Axis::Position, used(Axis::Position, len("stage_positions"))),
        (Axis::Grid, used(Axis::Grid, g)),
        (Axis::Channel, used(Axis::Channel, len("channels"))),
        (Axis::Z, used(Axis::Z, z)),
    ]
}

fn axis_order(doc: &Json) -> Vec<Axis> {
    doc.get("axis_order")
        .and_then(Json::as_str)
        .unwrap_or("tpgcz")
        .chars()
        .map(|c| Axis::from_letter(c).unwrap())
        .collect()
}

/// The first channel with `do_stack: false` when useq's middle plane of the z plan
/// (`num_positions() // 2`, counted as `ceil(round((stop + step - start) / step, 6))`) is past
/// its planes.
fn missing_middle_plane(doc: &Json) -> Option<usize> {
    let z = doc.get("z_plan")?;
    let f = |k: &str| z[k].as_f64().unwrap();
    let (start, stop, step) = if z.get("range").is_some() {
        (-f("range") / 2.0, f("range") / 2.0, f("step"))
    } else if z.get("top").is_some() {
        (f("bottom"), f("top"), f("step"))
    } else if z.get("above").is_some() {
        (-f("below").abs(), f("above").abs(), f("step"))
    } else {
        return None;
    };
    let planes = ((stop + step / 2.0 - start) / step).ceil() as usize;
    let counted = (((stop + step - start) / step * 1e6).round() / 1e6).ceil() as usize;
    if counted / 2 < planes {
        return None;
    }
    (0..doc["channels"].as_array()?.len()).find(|&i| !channel_rules(doc, i).0)
}

/// A channel's `do_stack` and `acquire_every` (useq's defaults for a channel given by name).
fn channel_rules(doc: &Json, i: usize) -> (bool, usize) {
    let c = &doc["channels"][i];
    (
        c.get("do_stack").and_then(Json::as_bool).unwrap_or(true),
        c.get("acquire_every").and_then(Json::as_u64).unwrap_or(1) as usize,
    )
}

/// Everything the expansion of `doc` must satisfy (see the module documentation).
fn check_expansion(doc: &Json, fov: Option<(f64, f64)>) -> Result<(), TestCaseError> {
    let text = doc.to_string();
    if let Some(i) = missing_middle_plane(doc) {
        // useq would take no image in this channel: refused by its field.
        let e = parse_json(&text).expect_err(&text);
        prop_assert_eq!(e.field, format!("channels[{i}].do_stack"));
        return Ok(());
    }
    let plan = parse_json(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    let events = plan
        .events(fov)
        .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    let summary = plan
        .summary(fov, 10.0)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;

    // Sizes as useq-schema defines them.
    let sizes = useq_sizes(doc, &events);
    let size = |a: Axis| sizes.iter().find(|(x, _)| *x == a).unwrap().1;
    let s = summary.sizes;
    prop_assert_eq!(
        [s.t, s.p, s.g, s.c, s.z],
        sizes.map(|(_, n)| n),
        "sizes of {}",
        text
    );

    // The number of events: the product of the sizes of the axes iterated, less what the
    // channels skip.
    let order = axis_order(doc);
    let used: Vec<Axis> = order.iter().copied().filter(|&a| size(a) > 0).collect();
    let n = |a: Axis| if used.contains(&a) { size(a) } else { 1 };
    let expected = if used.is_empty() {
        0
    } else if used.contains(&Axis::Channel) {
        let per_channel: usize = (0..size(Axis::Channel))
            .map(|i| {
                let (do_stack, every) = channel_rules(doc, i);
                let times = if used.contains(&Axis::Time) {
                    size(Axis::Time).div_ceil(every)
                } else {
                    1
                };
                times * if do_stack { n(Axis::Z) } else { 1 }
            })
            .sum();
        n(Axis::Position) * n(Axis::Grid) * per_channel
    } else {
        used.iter().map(|&a| size(a)).product()
    };
    prop_assert_eq!(events.len(), expected, "events of {}", text);
    prop_assert_eq!(summary.events, events.len());

    // Each index once, within its axis, in axis order; only the iterated axes indexed.
    let key =
        |e: &MdaEvent| -> Vec<usize> { used.iter().map(|&a| e.index.get(a).unwrap()).collect() };
    for e in &events {
        for a in Axis::ALL {
            match e.index.get(a) {
                Some(i) => prop_assert!(
                    used.contains(&a) && i < size(a),
                    "{:?} in {}",
                    e.index,
                    text
                ),
                None => prop_assert!(!used.contains(&a), "{:?} lacks {:?}", e.index, a),
            }
        }
    }
    for w in events.windows(2) {
        prop_assert!(
            key(&w[0]) < key(&w[1]),
            "{:?} then {:?} in {}",
            w[0].index,
            w[1].index,
            text
        );
    }

    // What the channels skip: their time points and planes.
    if used.contains(&Axis::Channel) {
        let mut planes_of: std::collections::HashMap<Vec<Option<usize>>, HashSet<Option<usize>>> =
            Default::default();
        for e in &events {
            let c = e.index.c.unwrap();
            let (do_stack, every) = channel_rules(doc, c);
            if let Some(t) = e.index.t {
                prop_assert_eq!(t % every, 0, "channel {} at t {} in {}", c, t, text);
            }
            if !do_stack {
                planes_of
                    .entry(vec![e.index.t, e.index.p, e.index.g, e.index.c])
                    .or_default()
                    .insert(e.index.z);
            }
        }
        prop_assert!(
            planes_of.values().all(|z| z.len() == 1),
            "do_stack: false took several planes in {}",
            text
        );
    }

    // Finite targets, exposures and start times; positions as given where nothing offsets them.
    for e in &events {
        for v in [e.x, e.y, e.z, e.exposure, e.min_start_time]
            .into_iter()
            .flatten()
        {
            prop_assert!(v.is_finite(), "{:?} in {}", e, text);
        }
        if let (Some(p), None) = (e.index.p, e.index.g) {
            let pos = &plan.stage_positions[p];
            prop_assert_eq!((e.x, e.y), (pos.x, pos.y));
        }
    }
    // Time points are due in order.
    let mut due: Vec<(usize, f64)> = events
        .iter()
        .filter_map(|e| Some((e.index.t?, e.min_start_time?)))
        .collect();
    due.sort_by_key(|d| d.0);
    prop_assert!(
        due.windows(2).all(|w| w[0].1 <= w[1].1),
        "start times of {}",
        text
    );

    // Grid tiles: each once around each position, apart by the step between tiles.
    if let Some(g) = &plan.grid_plan {
        let mut tiles = HashSet::new();
        for e in events.iter().filter(|e| e.index.p.unwrap_or(0) == 0) {
            tiles.insert((e.index.g, e.x.map(f64::to_bits), e.y.map(f64::to_bits)));
        }
        let by_index: BTreeSet<_> = tiles.iter().map(|t| t.0).collect();
        prop_assert_eq!(
            tiles.len(),
            by_index.len(),
            "a tile at two places in {}",
            text
        );
        if let GridKind::RowsColumns { rows, columns, .. } = g.kind {
            prop_assert_eq!(size(Axis::Grid), (rows * columns) as usize);
        }
    }

    // The dry run: images, axes used, files (one per position and tile).
    let used_axes: String = used.iter().map(|a| a.letter()).collect();
    prop_assert_eq!(&summary.used_axes, &used_axes);
    let files: HashSet<(usize, usize)> = events
        .iter()
        .map(|e| (e.index.p.unwrap_or(0), e.index.g.unwrap_or(0)))
        .collect();
    if !events.is_empty() {
        prop_assert_eq!(summary.files(), files.len(), "files of {}", text);
    }

    // Validation against an instrument that has every preset and no limits: the same verdict.
    let limits = PlanLimits {
        presets: GROUPS
            .iter()
            .flat_map(|g| CONFIGS.iter().map(move |c| (g.to_string(), c.to_string())))
            .collect(),
        current_exposure_ms: Some(10.0),
        ..Default::default()
    };
    match plan.validate_events(&limits, fov) {
        Ok((checked, again)) => {
            prop_assert_eq!(&checked, &summary);
            prop_assert_eq!(&again, &events);
        }
        Err(e) => {
            // Only an empty plan is refused.
            prop_assert!(events.is_empty(), "{} refused: {}", text, e);
        }
    }

    // The plan as the daemon writes it back, in JSON and YAML, means the same.
    let json = plan.to_useq_json();
    let again = parse_json(&json.to_string()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&again, &plan);
    let yaml = serde_saphyr::to_string(&json).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let from_yaml = parse_yaml(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
    prop_assert_eq!(from_yaml.events(fov).ok(), Some(events));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn expansion_holds_useq_invariants((doc, fov) in plan()) {
        check_expansion(&doc, fov)?;
    }

    /// Values near the ends of f64 where a plan may carry any number: positions, offsets, an
    /// overlap. Validation either refuses the plan naming a field, or every target the run
    /// would go to is finite.
    #[test]
    fn validation_refuses_what_would_not_be_finite(
        (doc, fov) in plan(),
        x in prop_oneof![Just(1e308), Just(-1e308), Just(f64::MAX), Just(1e300)],
        z_offset in prop_oneof![Just(0.0), Just(1e308), Just(-f64::MAX)],
        overlap in prop_oneof![Just(None), Just(Some(-1e308)), Just(Some(-1e300)), Just(Some(-1e10))],
    ) {
        let mut doc = doc;
        let m = doc.as_object_mut().unwrap();
        if let Some(p) = m.get_mut("stage_positions").and_then(Json::as_array_mut) {
            for p in p {
                let p = p.as_object_mut().unwrap();
                for k in ["x", "z"] {
                    if p.contains_key(k) {
                        p.insert(k.into(), json!(x));
                    }
                }
            }
        }
        if let Some(c) = m.get_mut("channels").and_then(Json::as_array_mut) {
            for c in c.iter_mut().filter_map(Json::as_object_mut) {
                c.insert("z_offset".into(), json!(z_offset));
            }
        }
        if let (Some(g), Some(o)) = (m.get_mut("grid_plan").and_then(Json::as_object_mut), overlap) {
            g.insert("overlap".into(), json!([o, 0.0]));
        }
        let text = doc.to_string();
        let plan: MdaSequence = match parse_json(&text) {
            Ok(p) => p,
            // Refused as it is read: by a field.
            Err(e) => {
                prop_assert!(!e.field.is_empty(), "{} refused without a field: {}", text, e);
                return Ok(());
            }
        };
        let limits = PlanLimits {
            presets: GROUPS
                .iter()
                .flat_map(|g| CONFIGS.iter().map(move |c| (g.to_string(), c.to_string())))
                .collect(),
            ..Default::default()
        };
        match plan.validate_events(&limits, fov) {
            Ok((_, events)) => {
                for e in &events {
                    for v in [e.x, e.y, e.z].into_iter().flatten() {
                        prop_assert!(v.is_finite(), "{:?} validated in {}", e, text);
                    }
                }
            }
            Err(e) => prop_assert!(
                !e.field.is_empty() || e.message.contains("empty"),
                "{} refused without a field: {}", text, e
            ),
        }
    }
}
