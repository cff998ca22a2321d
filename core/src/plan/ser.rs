//! Writing a plan back as useq JSON, to save it beside the data it produced.

use serde_json::{json, Map, Value};

use super::{GridKind, MdaSequence, RelativeTo, TimePhase, TimePhaseKind, TimePlan, ZPlanKind};

impl MdaSequence {
    /// The plan as a useq `MDASequence` JSON object (every key explicit, time spans in
    /// seconds as useq writes them). [`parse_json`](super::parse_json) reads it back
    /// to an equal plan, and so does useq.
    pub fn to_useq_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        m.insert(
            "axis_order".into(),
            self.axis_order
                .iter()
                .map(|a| a.letter().to_string())
                .collect(),
        );
        m.insert(
            "stage_positions".into(),
            self.stage_positions
                .iter()
                .map(|p| json!({"x": p.x, "y": p.y, "z": p.z, "name": p.name}))
                .collect(),
        );
        m.insert(
            "channels".into(),
            self.channels
                .iter()
                .map(|c| {
                    json!({
                        "config": c.config,
                        "group": c.group,
                        "exposure": c.exposure,
                        "do_stack": c.do_stack,
                        "z_offset": c.z_offset,
                        "acquire_every": c.acquire_every,
                    })
                })
                .collect(),
        );
        m.insert(
            "time_plan".into(),
            self.time_plan.as_ref().map_or(Value::Null, time_plan),
        );
        m.insert(
            "z_plan".into(),
            self.z_plan.as_ref().map_or(Value::Null, |z| {
                let mut v = match &z.kind {
                    ZPlanKind::RangeAround { range, step } => json!({"range": range, "step": step}),
                    ZPlanKind::TopBottom { top, bottom, step } => {
                        json!({"top": top, "bottom": bottom, "step": step})
                    }
                    ZPlanKind::AboveBelow { above, below, step } => {
                        json!({"above": above, "below": below, "step": step})
                    }
                    ZPlanKind::Absolute(a) => json!({"absolute": a}),
                    ZPlanKind::Relative(r) => json!({"relative": r}),
                };
                v["go_up"] = json!(z.go_up);
                v
            }),
        );
        m.insert(
            "grid_plan".into(),
            self.grid_plan.as_ref().map_or(Value::Null, |g| {
                let rel = |r: RelativeTo| match r {
                    RelativeTo::Center => "center",
                    RelativeTo::TopLeft => "top_left",
                };
                let mut v = match g.kind {
                    GridKind::RowsColumns {
                        rows,
                        columns,
                        relative_to,
                    } => {
                        json!({"rows": rows, "columns": columns, "relative_to": rel(relative_to)})
                    }
                    GridKind::FromEdges {
                        top,
                        left,
                        bottom,
                        right,
                    } => {
                        json!({"top": top, "left": left, "bottom": bottom, "right": right})
                    }
                    GridKind::WidthHeight {
                        width,
                        height,
                        relative_to,
                    } => {
                        json!({"width": width, "height": height, "relative_to": rel(relative_to)})
                    }
                };
                v["overlap"] = json!([g.overlap.0, g.overlap.1]);
                v["mode"] = json!(g.mode.name());
                v["fov_width"] = json!(g.fov_width);
                v["fov_height"] = json!(g.fov_height);
                v
            }),
        );
        m.insert(
            "keep_shutter_open_across".into(),
            self.keep_shutter_open_across
                .iter()
                .map(|a| a.letter().to_string())
                .collect(),
        );
        if let Some(uid) = &self.uid {
            m.insert("uid".into(), json!(uid));
        }
        Value::Object(m)
    }
}

fn time_plan(t: &TimePlan) -> Value {
    match t {
        TimePlan::Single(p) => phase(p),
        TimePlan::Phases(ps) => json!({"phases": ps.iter().map(phase).collect::<Vec<_>>()}),
    }
}

fn phase(p: &TimePhase) -> Value {
    let mut v = match p.kind {
        TimePhaseKind::IntervalLoops { interval, loops } => {
            json!({"interval": interval.as_secs_f64(), "loops": loops})
        }
        TimePhaseKind::DurationLoops { duration, loops } => {
            json!({"duration": duration.as_secs_f64(), "loops": loops})
        }
        TimePhaseKind::IntervalDuration { interval, duration } => {
            json!({"interval": interval.as_secs_f64(), "duration": duration.as_secs_f64()})
        }
    };
    if let Some(pd) = p.prioritize_duration {
        v["prioritize_duration"] = json!(pd);
    }
    v
}
