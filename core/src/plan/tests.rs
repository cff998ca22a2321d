//! Tests: expansion against fixtures made by the real useq-schema, and every kind of
//! error naming its field.

use serde_json::Value;

use super::*;

/// Fixtures written by `tests/python/gen_useq_fixtures.py` with useq-schema itself.
const FIXTURES: &[(&str, &str)] = &[
    (
        "time_lapse",
        include_str!("../../../tests/python/useq_fixtures/time_lapse.json"),
    ),
    (
        "positions_channels_z_tpcz",
        include_str!("../../../tests/python/useq_fixtures/positions_channels_z_tpcz.json"),
    ),
    (
        "positions_channels_z_tpzc",
        include_str!("../../../tests/python/useq_fixtures/positions_channels_z_tpzc.json"),
    ),
    (
        "grid_rows_columns_tpgcz",
        include_str!("../../../tests/python/useq_fixtures/grid_rows_columns_tpgcz.json"),
    ),
    (
        "acquire_every_do_stack_z_offset",
        include_str!("../../../tests/python/useq_fixtures/acquire_every_do_stack_z_offset.json"),
    ),
    (
        "relative_z_positions",
        include_str!("../../../tests/python/useq_fixtures/relative_z_positions.json"),
    ),
    (
        "absolute_z_positions",
        include_str!("../../../tests/python/useq_fixtures/absolute_z_positions.json"),
    ),
    (
        "z_top_bottom",
        include_str!("../../../tests/python/useq_fixtures/z_top_bottom.json"),
    ),
    (
        "z_above_below_go_down",
        include_str!("../../../tests/python/useq_fixtures/z_above_below_go_down.json"),
    ),
    (
        "grid_from_edges",
        include_str!("../../../tests/python/useq_fixtures/grid_from_edges.json"),
    ),
    (
        "multi_phase_time",
        include_str!("../../../tests/python/useq_fixtures/multi_phase_time.json"),
    ),
    (
        "channels_as_strings_ptc",
        include_str!("../../../tests/python/useq_fixtures/channels_as_strings_ptc.json"),
    ),
    (
        "shutter_spiral_grid",
        include_str!("../../../tests/python/useq_fixtures/shutter_spiral_grid.json"),
    ),
    (
        "as_fast_as_possible",
        include_str!("../../../tests/python/useq_fixtures/as_fast_as_possible.json"),
    ),
    (
        "fast_phase_between_timed_ones",
        include_str!("../../../tests/python/useq_fixtures/fast_phase_between_timed_ones.json"),
    ),
    (
        "grid_width_height_column_snake",
        include_str!("../../../tests/python/useq_fixtures/grid_width_height_column_snake.json"),
    ),
];

fn fixture(text: &str) -> (MdaSequence, Option<(f64, f64)>, Value) {
    let doc: Value = serde_json::from_str(text).expect("fixture is JSON");
    let plan = parse_json(&doc["plan"].to_string()).expect("fixture plan parses");
    let fov = doc["fov"]
        .as_array()
        .map(|a| (a[0].as_f64().expect("fov w"), a[1].as_f64().expect("fov h")));
    (plan, fov, doc)
}

fn close(name: &str, i: usize, what: &str, ours: Option<f64>, theirs: &Value) {
    match (ours, theirs.as_f64()) {
        (None, None) => assert!(
            theirs.is_null(),
            "{name} event {i} {what}: useq gave {theirs}"
        ),
        (Some(a), Some(b)) => assert!(
            (a - b).abs() <= 1e-9,
            "{name} event {i} {what}: ours {a}, useq {b}"
        ),
        _ => panic!("{name} event {i} {what}: ours {ours:?}, useq {theirs}"),
    }
}

fn check_event(name: &str, i: usize, e: &MdaEvent, u: &Value) {
    let mut index = serde_json::Map::new();
    for axis in Axis::ALL {
        if let Some(v) = e.index.get(axis) {
            index.insert(axis.letter().to_string(), Value::from(v));
        }
    }
    assert_eq!(Value::Object(index), u["index"], "{name} event {i} index");
    match (&e.channel, &u["channel"]) {
        (None, Value::Null) => {}
        (Some(c), uc) => {
            assert_eq!(
                uc["config"],
                Value::from(c.config.as_str()),
                "{name} event {i} config"
            );
            assert_eq!(
                uc["group"],
                Value::from(c.group.as_str()),
                "{name} event {i} group"
            );
        }
        (None, uc) => panic!("{name} event {i}: no channel, useq {uc}"),
    }
    close(name, i, "exposure", e.exposure, &u["exposure"]);
    close(name, i, "x", e.x, &u["x_pos"]);
    close(name, i, "y", e.y, &u["y_pos"]);
    close(name, i, "z", e.z, &u["z_pos"]);
    close(
        name,
        i,
        "min_start_time",
        e.min_start_time,
        &u["min_start_time"],
    );
    assert_eq!(
        u["pos_name"],
        e.pos_name.as_deref().map_or(Value::Null, Value::from),
        "{name} event {i} pos_name"
    );
    assert_eq!(
        u["reset_event_timer"],
        Value::from(e.reset_event_timer),
        "{name} event {i} reset_event_timer"
    );
    assert_eq!(
        u["keep_shutter_open"],
        Value::from(e.keep_shutter_open),
        "{name} event {i} keep_shutter_open"
    );
}

#[test]
fn events_match_useq_fixtures() {
    assert!(FIXTURES.len() >= 10);
    for (name, text) in FIXTURES {
        let (plan, fov, doc) = fixture(text);
        let events = plan.events(fov).unwrap_or_else(|e| panic!("{name}: {e}"));
        let theirs = doc["events"].as_array().expect("events");
        assert_eq!(events.len(), theirs.len(), "{name}: event count");
        for (i, (e, u)) in events.iter().zip(theirs).enumerate() {
            check_event(name, i, e, u);
        }
        // sizes as useq's `sizes` (axes left out of axis_order are absent there)
        let summary = plan
            .summary(fov, 1.0)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (k, v) in doc["sizes"].as_object().expect("sizes") {
            let axis = Axis::from_letter(k.chars().next().expect("letter")).expect("axis");
            let ours = match axis {
                Axis::Time => summary.sizes.t,
                Axis::Position => summary.sizes.p,
                Axis::Grid => summary.sizes.g,
                Axis::Channel => summary.sizes.c,
                Axis::Z => summary.sizes.z,
            };
            assert_eq!(Some(ours as u64), v.as_u64(), "{name}: size of {k}");
        }
        assert_eq!(summary.events, events.len());
    }
}

#[test]
fn fixtures_survive_a_round_trip_through_our_json_and_yaml() {
    for (name, text) in FIXTURES {
        let (plan, fov, _) = fixture(text);
        let json = plan.to_useq_json();
        let again = parse_json(&json.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again, plan, "{name}");
        let yaml = serde_saphyr::to_string(&json).expect("yaml");
        let from_yaml = parse_yaml(&yaml).unwrap_or_else(|e| panic!("{name}: {e}\n{yaml}"));
        assert_eq!(from_yaml.events(fov), plan.events(fov), "{name}");
    }
}

#[test]
fn yaml_as_useq_writes_it() {
    // MDASequence.yaml() output (timedelta as "H:MM:SS.ffffff", axis_order as a list)
    let text = "\
axis_order:
- t
- p
- g
- c
- z
channels:
- config: DAPI
  exposure: 1.0
grid_plan:
  columns: 2
  rows: 2
stage_positions:
- x: 1.0
  y: 1.0
  z: 1.0
time_plan:
  interval: '0:00:00.100000'
  loops: 2
z_plan:
  range: 3.0
  step: 1.0
metadata:
  experiment: {operator: ana, tags: [a, b]}
";
    let plan = parse_yaml(text).expect("parses");
    assert_eq!(plan.metadata["experiment"]["tags"][1], "b");
    let events = plan.events(Some((1.0, 1.0))).expect("expands");
    // useq's docstring: first event at x 0.5, y 1.5, z -0.5; 2 t x 4 g x 4 z
    assert_eq!(events.len(), 32);
    assert_eq!(
        (events[0].x, events[0].y, events[0].z),
        (Some(0.5), Some(1.5), Some(-0.5))
    );
    assert_eq!(events[16].min_start_time, Some(0.1));
}

fn err(text: &str) -> PlanError {
    match parse_json(text) {
        Ok(p) => panic!("{text} parsed: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_keys_are_errors_naming_their_path() {
    let e = err(r#"{"channels": ["DAPI"], "chanels": []}"#);
    assert_eq!(e.field, "chanels");
    assert!(e.message.contains("unknown field `chanels`"), "{e}");

    let e = err(r#"{"channels": ["DAPI", {"config": "GFP", "exposur": 10}]}"#);
    assert_eq!(e.field, "channels[1].exposur", "{e}");

    let e = err(r#"{"stage_positions": [{"x": 1}, {"x": 2, "y": 3, "zz": 1}]}"#);
    assert_eq!(e.field, "stage_positions[1].zz", "{e}");

    let e = err(
        r#"{"time_plan": {"phases": [{"interval": 1, "loops": 2}, {"interval": 1, "loop": 2}]}}"#,
    );
    assert_eq!(e.field, "time_plan.phases[1].loop", "{e}");

    let e = err(r#"{"z_plan": {"range": 2, "step": 1, "up": false}}"#);
    assert_eq!(e.field, "z_plan.up", "{e}");

    let e = parse_yaml("grid_plan:\n  rows: 2\n  columns: 2\n  overlapp: 10\n")
        .expect_err("unknown key");
    assert_eq!(e.field, "grid_plan.overlapp", "{e}");
    assert!(e.location.is_some(), "{e:?}");
}

#[test]
fn unsupported_useq_keys_say_so() {
    for (text, field) in [
        (
            r#"{"autofocus_plan": {"autofocus_device_name": "PFS", "axes": ["p"]}}"#,
            "autofocus_plan",
        ),
        (r#"{"setup": {"roi": [0, 0, 10, 10]}}"#, "setup"),
        (
            r#"{"stage_positions": [{"x": 1, "sequence": {"z_plan": {"range": 2, "step": 1}}}]}"#,
            "stage_positions[0].sequence",
        ),
        (
            r#"{"channels": [{"config": "GFP", "camera": "Cam2"}]}"#,
            "channels[0].camera",
        ),
        (
            r#"{"grid_plan": {"vertices": [[0, 0], [1, 0], [1, 1]]}}"#,
            "grid_plan.vertices",
        ),
        (
            r#"{"grid_plan": {"num_points": 5, "max_width": 10, "max_height": 10}}"#,
            "grid_plan.num_points",
        ),
        (
            r#"{"stage_positions": {"plate": 96, "a1_center_xy": [0, 0]}}"#,
            "stage_positions",
        ),
    ] {
        let e = err(text);
        assert_eq!(e.field, field, "{text}: {e}");
        assert!(e.message.contains("not supported"), "{text}: {e}");
    }
    // null is how useq writes "absent": accepted
    parse_json(r#"{"autofocus_plan": null, "setup": null, "channels": ["GFP"], "stage_positions": [{"x": 1, "sequence": null}]}"#)
        .expect("nulls are fine");
}

#[test]
fn ambiguous_or_incomplete_plans_name_the_plan() {
    let e = err(r#"{"time_plan": {"interval": 1, "loops": 3, "duration": 5}}"#);
    assert_eq!(e.field, "time_plan");
    assert!(e.message.contains("interval, duration, loops"), "{e}");
    let e = err(r#"{"z_plan": {"top": 1, "bottom": 0, "step": 0.5, "range": 3}}"#);
    assert_eq!(e.field, "z_plan");
    let e = err(r#"{"grid_plan": {"rows": 2}}"#);
    assert_eq!(e.field, "grid_plan");
    let e = err(r#"{"axis_order": "tpcc"}"#);
    assert_eq!(e.field, "axis_order");
    let e = err(r#"{"axis_order": "tpcz", "grid_plan": {"rows": 2, "columns": 2}}"#);
    assert_eq!(e.field, "grid_plan");
    assert!(e.message.contains("axis_order"), "{e}");
    let e = err(r#"{"channels": [{"config": "GFP", "acquire_every": 0}]}"#);
    assert_eq!(e.field, "channels[0].acquire_every");
    let e = err(r#"{"channels": [{"config": "GFP", "exposure": -1}]}"#);
    assert_eq!(e.field, "channels[0].exposure");
}

#[test]
fn bad_intervals_and_steps_name_the_field() {
    let e = err(r#"{"time_plan": {"interval": -1, "loops": 3}}"#);
    assert_eq!(e.field, "time_plan.interval");
    assert!(e.message.contains("must not be negative"), "{e}");
    // useq divides the duration by the interval: 0 is refused there as here, saying what works.
    let e = err(r#"{"time_plan": {"interval": 0, "duration": 10}}"#);
    assert_eq!(e.field, "time_plan.interval");
    assert!(e.message.contains("`interval: 0` with `loops`"), "{e}");
    let e =
        err(r#"{"time_plan": [{"interval": 1, "loops": 2}, {"interval": "-PT2S", "loops": 2}]}"#);
    assert_eq!(e.field, "time_plan.phases[1].interval");
    let e = err(r#"{"time_plan": {"interval": "soon", "loops": 2}}"#);
    assert_eq!(e.field, "time_plan.interval");
    let e = err(r#"{"z_plan": {"range": 4, "step": 0}}"#);
    assert_eq!(e.field, "z_plan.step");
    let e = err(r#"{"z_plan": {"top": 0, "bottom": 4, "step": 1}}"#);
    assert_eq!(e.field, "z_plan");
    let e = err(r#"{"z_plan": {"range": 1e9, "step": 1e-9}}"#);
    assert_eq!(e.field, "z_plan.step");
}

#[test]
fn syntax_errors_carry_a_location() {
    let e = err("{\n  \"channels\": [\"DAPI\",]\n}");
    assert_eq!(e.location.map(|l| l.0), Some(2), "{e:?}");
    let e = err(r#"{"channels": ["DAPI"]} trailing"#);
    assert!(e.location.is_some(), "{e:?}");
    let e = err(r#"{"stage_positions": [{"x": "left"}]}"#);
    assert_eq!(e.field, "stage_positions[0].x", "{e}");
    assert!(e.location.is_some());
    let e = parse_yaml("channels:\n  - DAPI\n - GFP\n").expect_err("bad indentation");
    assert_eq!(e.location.map(|l| l.0), Some(3), "{e:?}");
    assert!(e.to_string().contains("line 3"), "{e}");
}

fn limits() -> PlanLimits {
    PlanLimits {
        presets: vec![
            ("Channel".into(), "DAPI".into()),
            ("Channel".into(), "GFP".into()),
            ("Objective".into(), "10x".into()),
        ],
        xy_travel_um: Some(((-1000.0, 1000.0), (-500.0, 500.0))),
        z_travel_um: Some((0.0, 200.0)),
        exposure_range_ms: Some((0.1, 1000.0)),
        current_exposure_ms: Some(10.0),
    }
}

#[test]
fn a_good_plan_validates_with_a_summary() {
    let plan = parse_json(
        r#"{"time_plan": {"interval": 1, "loops": 3},
            "stage_positions": [{"x": 0, "y": 0, "z": 50}, {"x": 100, "y": 100, "z": 60, "name": "B"}],
            "channels": [{"config": "DAPI", "exposure": 100}, "GFP"],
            "z_plan": {"range": 4, "step": 2}}"#,
    )
    .expect("parses");
    let s = plan.validate(&limits(), None).expect("valid");
    assert_eq!(s.events, 3 * 2 * 2 * 3);
    assert_eq!(
        s.sizes,
        AxisSizes {
            t: 3,
            p: 2,
            g: 0,
            c: 2,
            z: 3
        }
    );
    assert_eq!(s.used_axes, "tpcz");
    assert_eq!(s.events_without_exposure, 18);
    // per time point 6 x 100 ms + 6 x 10 ms = 0.66 s < 1 s: last time point starts at 2 s
    assert!((s.duration_s - 2.66).abs() < 1e-9, "{}", s.duration_s);
    assert!(!s.interval_exceeded);

    let slow = parse_json(r#"{"time_plan": {"interval": 0.1, "loops": 3}, "channels": [{"config": "GFP", "exposure": 500}]}"#)
        .expect("parses");
    let s = slow.validate(&limits(), None).expect("valid");
    assert!(s.interval_exceeded);
    assert!((s.duration_s - 1.5).abs() < 1e-9, "{}", s.duration_s);

    // `interval: 0` asks for no interval, so none is exceeded: as fast as the exposures go.
    let fast = parse_json(r#"{"time_plan": {"interval": 0, "loops": 3}, "channels": [{"config": "GFP", "exposure": 500}]}"#)
        .expect("parses");
    let s = fast.validate(&limits(), None).expect("valid");
    assert!(!s.interval_exceeded);
    assert!((s.duration_s - 1.5).abs() < 1e-9, "{}", s.duration_s);
}

#[test]
fn unknown_presets_name_the_channel_and_the_known_ones() {
    let plan = parse_json(r#"{"channels": ["DAPI", {"config": "Cy5"}]}"#).expect("parses");
    let e = plan.validate(&limits(), None).expect_err("unknown preset");
    assert_eq!(e.field, "channels[1].config");
    assert!(
        e.message.contains("\"Cy5\"") && e.message.contains("DAPI, GFP"),
        "{e}"
    );

    let plan =
        parse_json(r#"{"channels": [{"config": "DAPI", "group": "Filters"}]}"#).expect("parses");
    let e = plan.validate(&limits(), None).expect_err("unknown group");
    assert_eq!(e.field, "channels[0].group");
    assert!(e.message.contains("Channel, Objective"), "{e}");
}

#[test]
fn positions_outside_travel_name_the_position_and_axis() {
    let plan = parse_json(r#"{"stage_positions": [{"x": 0, "y": 0}, {"x": 0, "y": 0}, {"x": 5000, "y": 0, "name": "far"}]}"#)
        .expect("parses");
    let e = plan.validate(&limits(), None).expect_err("out of travel");
    assert_eq!(e.field, "stage_positions[2].x");
    assert!(
        e.message.contains("far") && e.message.contains("5000"),
        "{e}"
    );

    let plan = parse_json(r#"{"stage_positions": [{"x": 0, "y": 0, "z": 250}]}"#).expect("parses");
    assert_eq!(
        plan.validate(&limits(), None).expect_err("z").field,
        "stage_positions[0].z"
    );

    // a z plan that runs below the travel
    let plan = parse_json(r#"{"stage_positions": [{"z": 1}], "z_plan": {"range": 4, "step": 1}}"#)
        .expect("parses");
    assert_eq!(
        plan.validate(&limits(), None).expect_err("z plan").field,
        "z_plan"
    );

    // a grid that runs off the stage
    let plan = parse_json(
        r#"{"stage_positions": [{"x": 900, "y": 0}], "grid_plan": {"rows": 1, "columns": 3}}"#,
    )
    .expect("parses");
    let e = plan
        .validate(&limits(), Some((200.0, 200.0)))
        .expect_err("grid");
    assert_eq!(e.field, "grid_plan");
    assert!(
        e.message.contains("stage_positions[0]") && e.message.contains("grid tile 2"),
        "{e}"
    );
}

#[test]
fn targets_that_overflow_are_refused_before_anything_moves() {
    // useq bounds no overlap; this one makes the step between tiles infinite.
    let plan = parse_json(r#"{"grid_plan": {"rows": 1, "columns": 1, "overlap": [-1e308, 0]}}"#)
        .expect("parses");
    let e = plan
        .validate(&limits(), Some((200.0, 200.0)))
        .expect_err("overlap");
    assert_eq!(e.field, "grid_plan.overlap");
    assert!(e.message.contains("inf"), "{e}");
    // The same without a stage to check travel against, and in a plain expansion.
    assert_eq!(
        plan.validate(&PlanLimits::default(), Some((200.0, 200.0)))
            .expect_err("overlap")
            .field,
        "grid_plan.overlap"
    );
    assert!(plan.events(Some((200.0, 200.0))).is_err());

    // Each value finite, their sum not: refused, naming the z plan, even with no Z travel known.
    let plan = parse_json(
        r#"{"channels": [{"config": "DAPI", "z_offset": 1e308}], "z_plan": {"absolute": [1e308]}}"#,
    )
    .expect("parses");
    let no_travel = PlanLimits {
        z_travel_um: None,
        ..limits()
    };
    let e = plan.validate(&no_travel, None).expect_err("z overflow");
    assert_eq!(e.field, "z_plan");
    assert!(e.message.contains("z = inf µm"), "{e}");
}

#[test]
fn exposure_outside_the_camera_range() {
    let plan =
        parse_json(r#"{"channels": [{"config": "GFP", "exposure": 5000}]}"#).expect("parses");
    let e = plan.validate(&limits(), None).expect_err("exposure");
    assert_eq!(e.field, "channels[0].exposure");
}

#[test]
fn empty_plan_is_rejected() {
    let plan = parse_json("{}").expect("parses");
    assert_eq!(plan.events(None).expect("expands"), Vec::new());
    let e = plan.validate(&limits(), None).expect_err("empty");
    assert!(e.message.contains("empty"), "{e}");
    let plan = parse_json(r#"{"channels": [], "stage_positions": []}"#).expect("parses");
    assert!(plan.validate(&limits(), None).is_err());
}

#[test]
fn grid_needs_a_field_of_view() {
    let plan = parse_json(r#"{"grid_plan": {"rows": 2, "columns": 2}}"#).expect("parses");
    let e = plan.events(None).expect_err("no fov");
    assert_eq!(e.field, "grid_plan");
    assert_eq!(plan.events(Some((10.0, 10.0))).expect("fov").len(), 4);
    // the instrument's field of view wins over the plan's (as pymmcore-plus does)
    let plan = parse_json(
        r#"{"grid_plan": {"rows": 1, "columns": 2, "fov_width": 10, "fov_height": 10}}"#,
    )
    .expect("parses");
    assert_eq!(plan.events(None).expect("plan fov")[1].x, Some(5.0));
    assert_eq!(
        plan.events(Some((100.0, 100.0))).expect("instrument fov")[1].x,
        Some(50.0)
    );
    let s = plan.summary(Some((100.0, 100.0)), 1.0).expect("summary");
    assert!(
        s.warnings.iter().any(|w| w.contains("fov_width")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn absolute_grid_with_xy_positions_is_an_error() {
    let e = err(
        r#"{"stage_positions": [{"z": 1}, {"x": 1, "y": 2}], "grid_plan": {"top": 1, "left": 0, "bottom": 0, "right": 1}}"#,
    );
    assert_eq!(e.field, "stage_positions[1].x");
}

/// Found by the property test (`core/tests/plan.rs`): useq counts 2 planes in this z plan
/// (`num_positions()`) though it holds 1, so the middle plane a `do_stack: false` channel takes
/// is at index 1, which does not exist, and useq-schema 0.9.2 yields no event at all: the
/// channel would silently take nothing. A range that holds its middle plane is fine.
#[test]
fn a_channel_without_a_stack_whose_middle_plane_is_missing_is_an_error() {
    let e = err(
        r#"{"axis_order": "cz", "channels": [{"config": "DAPI", "do_stack": false}],
            "z_plan": {"top": 0.25, "bottom": 0.0, "step": 0.5, "go_up": false}}"#,
    );
    assert_eq!(e.field, "channels[0].do_stack");
    assert!(e.message.contains("take no image"), "{e}");
    let plan = parse_json(
        r#"{"axis_order": "cz", "channels": ["GFP", {"config": "DAPI", "do_stack": false}],
            "z_plan": {"range": 0.75, "step": 0.5}}"#,
    )
    .expect("a middle plane that exists");
    let events = plan.events(None).expect("events");
    // GFP's two planes, then DAPI's one: useq's middle of "3" planes is index 1.
    let dapi: Vec<_> = events.iter().filter(|e| e.index.c == Some(1)).collect();
    assert_eq!((events.len(), dapi.len(), dapi[0].index.z), (3, 1, Some(1)));
}

#[test]
fn lists_longer_than_their_bound_are_errors_naming_the_field() {
    let positions = vec![r#"{"x": 1}"#; PlanList::StagePositions.max() + 1].join(",");
    let e = err(&format!(r#"{{"stage_positions": [{positions}]}}"#));
    assert_eq!(e.field, "stage_positions");
    assert!(
        e.message
            .starts_with("100001 items; a plan has at most 100000"),
        "{e}"
    );
    let z = vec!["0.5"; PlanList::ZRelative.max() + 1].join(",");
    let e = err(&format!(r#"{{"z_plan": {{"relative": [{z}]}}}}"#));
    assert_eq!(e.field, "z_plan.relative");
    // At the bound, fine.
    let z = vec!["0.5"; PlanList::ZRelative.max()].join(",");
    assert!(parse_json(&format!(r#"{{"z_plan": {{"relative": [{z}]}}}}"#)).is_ok());
}

#[test]
fn plans_built_in_code_are_checked_too() {
    let mut plan = MdaSequence {
        axis_order: Axis::ALL.to_vec(),
        ..MdaSequence::default()
    };
    plan.channels.push(Channel::new("GFP"));
    plan.time_plan = Some(TimePlan::Single(TimePhase {
        kind: TimePhaseKind::IntervalLoops {
            interval: TimeDelta { micros: -5 },
            loops: 2,
        },
        prioritize_duration: None,
    }));
    assert_eq!(
        plan.validate(&limits(), None).expect_err("negative").field,
        "time_plan.interval"
    );
    plan.time_plan = None;
    plan.z_plan = Some(ZPlan {
        kind: ZPlanKind::AboveBelow {
            above: 1.0,
            below: 1.0,
            step: 0.0,
        },
        go_up: true,
    });
    assert_eq!(plan.events(None).expect_err("step 0").field, "z_plan.step");
}

#[test]
fn error_display_names_field_and_location() {
    let e = PlanError {
        field: "channels[1].config".into(),
        message: "unknown".into(),
        location: Some((3, 7)),
    };
    assert_eq!(
        e.to_string(),
        "channels[1].config: unknown (line 3, column 7)"
    );
}

#[test]
fn relative_plans_without_a_position_count_from_the_origin() {
    let mut plan = parse_json(
        r#"{"channels": ["DAPI"], "z_plan": {"range": 2, "step": 1},
            "grid_plan": {"rows": 1, "columns": 2, "fov_width": 10, "fov_height": 10}}"#,
    )
    .unwrap();
    let zs = |p: &MdaSequence| -> Vec<Option<f64>> {
        p.events(None).unwrap().iter().map(|e| e.z).collect()
    };
    // useq's own behaviour: relative to 0.
    assert_eq!(zs(&plan)[..3], [Some(-1.0), Some(0.0), Some(1.0)]);
    plan.origin = Origin {
        xy: Some((1000.0, 2000.0)),
        z: Some(50.0),
    };
    assert_eq!(zs(&plan)[..3], [Some(49.0), Some(50.0), Some(51.0)]);
    let xs: Vec<f64> = plan
        .events(None)
        .unwrap()
        .iter()
        .map(|e| e.x.unwrap())
        .collect();
    assert_eq!((xs[0], xs[3]), (995.0, 1005.0));
}

#[test]
fn warnings_name_the_origin_relative_plans_count_from() {
    let mut plan =
        parse_json(r#"{"channels": ["DAPI"], "z_plan": {"range": 2, "step": 1}}"#).unwrap();
    let warning = |p: &MdaSequence| p.summary(None, 1.0).unwrap().warnings.join("\n");
    assert!(warning(&plan).contains("relative to z = 0 µm (as in useq)"));
    plan.origin.z = Some(42.0);
    let w = warning(&plan);
    assert!(
        w.contains("the current focus, z = 42 µm") && !w.contains("z = 0"),
        "{w}"
    );
}

#[test]
fn z_spacing_is_the_step_or_an_even_list() {
    let spacing = |z: &str| {
        parse_json(&format!(r#"{{"z_plan": {z}}}"#))
            .unwrap()
            .z_plan
            .unwrap()
            .spacing_um()
    };
    assert_eq!(spacing(r#"{"range": 4, "step": 0.5}"#), Some(0.5));
    assert_eq!(
        spacing(r#"{"top": 10, "bottom": 0, "step": 2.5, "go_up": false}"#),
        Some(2.5)
    );
    assert_eq!(
        spacing(r#"{"above": 1, "below": 1, "step": 0.3}"#),
        Some(0.3)
    );
    assert_eq!(spacing(r#"{"absolute": [5, 3, 1]}"#), Some(2.0));
    assert_eq!(spacing(r#"{"relative": [0, 1, 3]}"#), None);
    assert_eq!(spacing(r#"{"relative": [0, 1, 0]}"#), None);
    assert_eq!(spacing(r#"{"range": 0, "step": 1}"#), None);
}

/// Found by the `plan` fuzz target: serde_json's default float parsing may be a unit in the last
/// place off, so the useq JSON saved beside the data read back as another plan.
#[test]
fn numbers_read_back_exactly() {
    let x = 1.0077777777777777e132_f64;
    let seq = parse_json(&format!(
        r#"{{"stage_positions": [{{"x": {x:e}, "y": 0}}]}}"#
    ))
    .unwrap();
    assert_eq!(seq.stage_positions[0].x, Some(x));
    let back = parse_json(&seq.to_useq_json().to_string()).unwrap();
    assert_eq!(back, seq);
}
