//! Plans over gRPC: the structured `MdaSequence` message and useq text both become the
//! daemon's [`MdaSequence`] through the one useq parser, so a plan means the same however it
//! arrives and its errors name the same fields.

use serde_json::{json, Map, Value as Json};
use tonic::Status;

use super::convert::finite;
use crate::acquire::{PlanCheck, PlanStatus};
use crate::pb;
use crate::plan::{self, EventIndex, MdaSequence, PlanList};

/// The plan of a request, parsed and checked for values (not yet against the instrument).
pub fn plan_from_pb(req: &pb::PlanRequest) -> Result<MdaSequence, Status> {
    let parsed = match &req.plan {
        None => {
            return Err(Status::invalid_argument(
                "the request has no plan: give `sequence`, `useq_json` or `useq_yaml`",
            ))
        }
        Some(pb::plan_request::Plan::UseqJson(text)) => plan::parse_json(text),
        Some(pb::plan_request::Plan::UseqYaml(text)) => plan::parse_yaml(text),
        Some(pb::plan_request::Plan::Sequence(seq)) => match check_lists(seq) {
            // Before the lists are converted: a message of 4 MiB holds 200,000 positions.
            Err(e) => Err(e),
            Ok(()) => {
                let doc = useq_json(seq)?;
                plan::parse_json(&doc.to_string())
            }
        },
    };
    parsed.map_err(|e| {
        Status::invalid_argument(crate::names::cap_message(format!("invalid plan: {e}")))
    })
}

/// The lengths of the structured message's lists against their bounds ([`PlanList`]).
fn check_lists(seq: &pb::MdaSequence) -> Result<(), plan::PlanError> {
    let z = seq.z_plan.as_ref();
    for (list, len) in [
        (PlanList::StagePositions, seq.stage_positions.len()),
        (PlanList::Channels, seq.channels.len()),
        (
            PlanList::TimePhases,
            seq.time_plan.as_ref().map_or(0, |t| t.phases.len()),
        ),
        (PlanList::ZAbsolute, z.map_or(0, |z| z.absolute.len())),
        (PlanList::ZRelative, z.map_or(0, |z| z.relative.len())),
    ] {
        list.check(len)?;
    }
    Ok(())
}

/// The structured message as the useq JSON document it mirrors: a field left unset is a key
/// left out.
fn useq_json(seq: &pb::MdaSequence) -> Result<Json, Status> {
    let mut doc = Map::new();
    if !seq.axis_order.is_empty() {
        doc.insert("axis_order".into(), json!(seq.axis_order));
    }
    if !seq.keep_shutter_open_across.is_empty() {
        doc.insert(
            "keep_shutter_open_across".into(),
            json!(seq.keep_shutter_open_across),
        );
    }
    if !seq.metadata_json.is_empty() {
        let meta: Json = serde_json::from_str(&seq.metadata_json).map_err(|e| {
            Status::invalid_argument(format!("invalid plan: metadata_json: not JSON: {e}"))
        })?;
        doc.insert("metadata".into(), meta);
    }
    if !seq.stage_positions.is_empty() {
        let positions: Vec<Json> = seq
            .stage_positions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut m = Map::new();
                let field = |k: &str| format!("stage_positions[{i}].{k}");
                put_f64(&mut m, "x", p.x, &field("x"))?;
                put_f64(&mut m, "y", p.y, &field("y"))?;
                put_f64(&mut m, "z", p.z, &field("z"))?;
                if !p.name.is_empty() {
                    m.insert("name".into(), json!(p.name));
                }
                Ok(Json::Object(m))
            })
            .collect::<Result<_, Status>>()?;
        doc.insert("stage_positions".into(), Json::Array(positions));
    }
    if !seq.channels.is_empty() {
        let channels: Vec<Json> = seq
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut m = Map::new();
                let field = |k: &str| format!("channels[{i}].{k}");
                m.insert("config".into(), json!(c.config));
                if !c.group.is_empty() {
                    m.insert("group".into(), json!(c.group));
                }
                put_f64(&mut m, "exposure", c.exposure, &field("exposure"))?;
                put(&mut m, "do_stack", c.do_stack);
                put_f64(&mut m, "z_offset", c.z_offset, &field("z_offset"))?;
                put(&mut m, "acquire_every", c.acquire_every);
                Ok(Json::Object(m))
            })
            .collect::<Result<_, Status>>()?;
        doc.insert("channels".into(), Json::Array(channels));
    }
    if let Some(t) = &seq.time_plan {
        let phase = |i: usize, p: &pb::PlanTimePhase| {
            let mut m = Map::new();
            let field = |k: &str| format!("time_plan.phases[{i}].{k}");
            put_f64(&mut m, "interval", p.interval_s, &field("interval_s"))?;
            put_f64(&mut m, "duration", p.duration_s, &field("duration_s"))?;
            put(&mut m, "loops", p.loops);
            Ok::<_, Status>(Json::Object(m))
        };
        let plan = match t.phases.as_slice() {
            [] => Json::Object(Map::new()),
            [one] => phase(0, one)?,
            many => {
                let phases = many
                    .iter()
                    .enumerate()
                    .map(|(i, p)| phase(i, p))
                    .collect::<Result<Vec<_>, _>>()?;
                json!({ "phases": phases })
            }
        };
        doc.insert("time_plan".into(), plan);
    }
    if let Some(z) = &seq.z_plan {
        let mut m = Map::new();
        for (key, v) in [
            ("range", z.range),
            ("step", z.step),
            ("top", z.top),
            ("bottom", z.bottom),
            ("above", z.above),
            ("below", z.below),
        ] {
            put_f64(&mut m, key, v, &format!("z_plan.{key}"))?;
        }
        for (key, list) in [("absolute", &z.absolute), ("relative", &z.relative)] {
            for (i, &v) in list.iter().enumerate() {
                finite(&format!("z_plan.{key}[{i}]"), v)?;
            }
            if !list.is_empty() {
                m.insert(key.into(), json!(list));
            }
        }
        put(&mut m, "go_up", z.go_up);
        doc.insert("z_plan".into(), Json::Object(m));
    }
    if let Some(g) = &seq.grid_plan {
        let mut m = Map::new();
        put(&mut m, "rows", g.rows);
        put(&mut m, "columns", g.columns);
        if !g.relative_to.is_empty() {
            m.insert("relative_to".into(), json!(g.relative_to));
        }
        for (key, v) in [
            ("top", g.top),
            ("left", g.left),
            ("bottom", g.bottom),
            ("right", g.right),
            ("width", g.width),
            ("height", g.height),
        ] {
            put_f64(&mut m, key, v, &format!("grid_plan.{key}"))?;
        }
        for (key, v) in [("overlap_x", g.overlap_x), ("overlap_y", g.overlap_y)] {
            if let Some(v) = v {
                finite(&format!("grid_plan.{key}"), v)?;
            }
        }
        match (g.overlap_x, g.overlap_y) {
            (None, None) => {}
            (x, y) => {
                m.insert(
                    "overlap".into(),
                    json!([x.unwrap_or(0.0), y.unwrap_or(0.0)]),
                );
            }
        }
        if !g.mode.is_empty() {
            m.insert("mode".into(), json!(g.mode));
        }
        doc.insert("grid_plan".into(), Json::Object(m));
    }
    Ok(Json::Object(doc))
}

fn put<T: serde::Serialize>(m: &mut Map<String, Json>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(key.into(), json!(v));
    }
}

/// [`put`] for a float, which must be finite: JSON has no NaN, so `json!` would make it `null`
/// and the plan would read it as unset.
fn put_f64(
    m: &mut Map<String, Json>,
    key: &str,
    v: Option<f64>,
    field: &str,
) -> Result<(), Status> {
    if let Some(v) = v {
        m.insert(key.into(), json!(finite(field, v)?));
    }
    Ok(())
}

fn index_to_pb(i: &EventIndex) -> pb::PlanIndex {
    let n = |v: Option<usize>| v.unwrap_or(0) as u32;
    pb::PlanIndex {
        t: n(i.t),
        p: n(i.p),
        g: n(i.g),
        c: n(i.c),
        z: n(i.z),
    }
}

/// A plan check for the API.
pub fn check_to_pb(c: &PlanCheck) -> pb::PlanSummary {
    let s = &c.summary;
    let (fov_width_um, fov_height_um) = s.fov_um.unwrap_or((0.0, 0.0));
    pb::PlanSummary {
        events: s.events as u64,
        sizes: Some(pb::PlanIndex {
            t: s.sizes.t as u32,
            p: s.sizes.p as u32,
            g: s.sizes.g as u32,
            c: s.sizes.c as u32,
            z: s.sizes.z as u32,
        }),
        used_axes: s.used_axes.clone(),
        duration_s: s.duration_s,
        interval_exceeded: s.interval_exceeded,
        bytes: c.bytes,
        free_bytes: c.free_bytes.unwrap_or(0),
        files: c.files,
        open_files: c.open_files,
        fov_width_um,
        fov_height_um,
        warnings: s.warnings.clone(),
    }
}

/// A plan run's progress for the API.
pub fn progress_to_pb(p: &PlanStatus) -> pb::PlanProgress {
    let g = &p.progress;
    pb::PlanProgress {
        events_total: p.events_total,
        events_done: g.events_done,
        current: g.current.as_ref().map(index_to_pb),
        channel: g.channel.clone().unwrap_or_default(),
        position_name: g.position_name.clone().unwrap_or_default(),
        time_left_s: g.time_left_s,
        late_events: g.late_events,
        max_late_s: g.max_late_s,
        folder: p.folder.display().to_string(),
        files: p.files.iter().map(|f| f.display().to_string()).collect(),
        summary: Some(check_to_pb(&p.check)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_plans_read_as_their_useq_json() {
        let seq = pb::MdaSequence {
            axis_order: "tpcz".into(),
            stage_positions: vec![pb::PlanPosition {
                x: Some(10.0),
                y: Some(20.0),
                z: None,
                name: "A1".into(),
            }],
            channels: vec![pb::PlanChannel {
                config: "DAPI".into(),
                exposure: Some(20.0),
                ..Default::default()
            }],
            time_plan: Some(pb::PlanTime {
                phases: vec![pb::PlanTimePhase {
                    interval_s: Some(1.5),
                    loops: Some(3),
                    duration_s: None,
                }],
            }),
            z_plan: Some(pb::PlanZ {
                range: Some(4.0),
                step: Some(1.0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let from_pb = plan_from_pb(&pb::PlanRequest {
            plan: Some(pb::plan_request::Plan::Sequence(seq)),
            ..Default::default()
        })
        .unwrap();
        let from_json = plan::parse_json(
            r#"{"axis_order": "tpcz", "stage_positions": [{"x": 10, "y": 20, "name": "A1"}],
                "channels": [{"config": "DAPI", "exposure": 20}],
                "time_plan": {"interval": 1.5, "loops": 3}, "z_plan": {"range": 4, "step": 1}}"#,
        )
        .unwrap();
        assert_eq!(from_pb, from_json);
    }

    #[test]
    fn errors_name_the_field() {
        let seq = pb::MdaSequence {
            time_plan: Some(pb::PlanTime {
                phases: vec![pb::PlanTimePhase {
                    interval_s: Some(-1.0),
                    loops: Some(3),
                    duration_s: None,
                }],
            }),
            ..Default::default()
        };
        let e = plan_from_pb(&pb::PlanRequest {
            plan: Some(pb::plan_request::Plan::Sequence(seq)),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message().contains("time_plan.interval"),
            "{}",
            e.message()
        );
        let e = plan_from_pb(&pb::PlanRequest::default()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
}
