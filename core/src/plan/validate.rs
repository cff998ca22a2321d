//! Checking a plan against an instrument before anything moves.

use super::{MdaEvent, MdaSequence, PlanError, PlanSummary};
use crate::names::quote;

/// What the instrument allows, for [`MdaSequence::validate`]. A limit left `None` is
/// not checked (the instrument has no such device, or its range is unknown), though a stage
/// target must still be a finite number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanLimits {
    /// Known presets as (group, name).
    pub presets: Vec<(String, String)>,
    /// XY stage travel in µm: ((x min, x max), (y min, y max)).
    pub xy_travel_um: Option<((f64, f64), (f64, f64))>,
    /// Z (focus) travel in µm: (min, max).
    pub z_travel_um: Option<(f64, f64)>,
    /// Camera exposure range in ms: (min, max).
    pub exposure_range_ms: Option<(f64, f64)>,
    /// The camera's current exposure in ms, for events that keep it (duration
    /// estimate only); 1 ms as in useq when unknown.
    pub current_exposure_ms: Option<f64>,
}

impl MdaSequence {
    /// Checks the whole plan against the instrument and sums it up. Errors name the
    /// field: an unknown preset (`channels[1].config`, with the known ones), an event
    /// outside stage travel or at a target that is not finite (`stage_positions[2].x`,
    /// `grid_plan`, `z_plan`), an
    /// exposure outside the camera's range, bad values (see [`check`](Self::check)),
    /// or a plan with nothing to acquire.
    pub fn validate(
        &self,
        limits: &PlanLimits,
        fov: Option<(f64, f64)>,
    ) -> Result<PlanSummary, PlanError> {
        self.validate_events(limits, fov)
            .map(|(summary, _)| summary)
    }

    /// [`validate`](Self::validate), also returning the events it expanded, for the engine
    /// to run without expanding the plan again.
    pub fn validate_events(
        &self,
        limits: &PlanLimits,
        fov: Option<(f64, f64)>,
    ) -> Result<(PlanSummary, Vec<MdaEvent>), PlanError> {
        self.check()?;
        for (i, c) in self.channels.iter().enumerate() {
            check_preset(limits, i, &c.group, &c.config)?;
            if let (Some(e), Some((lo, hi))) = (c.exposure, limits.exposure_range_ms) {
                if e < lo || e > hi {
                    return Err(PlanError::new(
                        format!("channels[{i}].exposure"),
                        format!("{e} ms is outside the camera's exposure range {lo}..{hi} ms"),
                    ));
                }
            }
        }
        let events = self.events(fov)?;
        if events.is_empty() {
            return Err(PlanError::new(
                "",
                "the plan is empty: give at least one of time_plan, stage_positions, grid_plan, channels or z_plan",
            ));
        }
        for e in &events {
            self.check_travel(limits, e)?;
        }
        let summary = self.summarize(&events, fov, limits.current_exposure_ms.unwrap_or(1.0))?;
        Ok((summary, events))
    }

    /// An event's position against stage travel; the error names where the
    /// coordinate came from.
    fn check_travel(&self, limits: &PlanLimits, e: &MdaEvent) -> Result<(), PlanError> {
        let position = e.index.p.map(|p| {
            let name = self.stage_positions.get(p).and_then(|s| s.name.as_deref());
            match name {
                Some(n) => format!("stage_positions[{p}] ({n:?})"),
                None => format!("stage_positions[{p}]"),
            }
        });
        let context = |axis: &str, v: f64, lo: f64, hi: f64| {
            let mut s = format!("{axis} = {v} µm");
            let mut parts = Vec::new();
            if let Some(p) = &position {
                parts.push(p.clone());
            }
            if let Some(g) = e.index.g {
                parts.push(format!("grid tile {g}"));
            }
            if let Some(z) = e.index.z {
                parts.push(format!("z plane {z}"));
            }
            if let Some(c) = &e.channel {
                parts.push(format!("channel {}", c.config));
            }
            if !parts.is_empty() {
                s.push_str(&format!(" (at {})", parts.join(", ")));
            }
            let stage = if axis == "z" { "Z" } else { "XY" };
            if v.is_finite() {
                format!("{s} is outside the {stage} stage travel {lo}..{hi} µm")
            } else {
                format!("{s} is not a place the {stage} stage can go: the plan's values add up to a non-finite target")
            }
        };
        // A target that is not finite is refused even where the travel is unknown: the run
        // would fail on it at that event, after the events before it.
        let (xy_travel, z_travel) = (
            limits
                .xy_travel_um
                .unwrap_or(((f64::MIN, f64::MAX), (f64::MIN, f64::MAX))),
            limits.z_travel_um.unwrap_or((f64::MIN, f64::MAX)),
        );
        let ((xlo, xhi), (ylo, yhi)) = xy_travel;
        for (axis, v, lo, hi) in [("x", e.x, xlo, xhi), ("y", e.y, ylo, yhi)] {
            if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                let field = match (e.index.g, e.index.p) {
                    (Some(_), _) => "grid_plan".to_owned(),
                    (None, Some(p)) => format!("stage_positions[{p}].{axis}"),
                    (None, None) => "stage_positions".to_owned(),
                };
                return Err(PlanError::new(field, context(axis, v, lo, hi)));
            }
        }
        let (lo, hi) = z_travel;
        if let Some(v) = e.z.filter(|v| !(lo..=hi).contains(v)) {
            let field = match (e.index.z, e.index.p) {
                (Some(_), _) => "z_plan".to_owned(),
                (None, Some(p)) => format!("stage_positions[{p}].z"),
                (None, None) => "stage_positions".to_owned(),
            };
            return Err(PlanError::new(field, context("z", v, lo, hi)));
        }
        Ok(())
    }
}

fn check_preset(limits: &PlanLimits, i: usize, group: &str, config: &str) -> Result<(), PlanError> {
    if limits
        .presets
        .iter()
        .any(|(g, n)| g == group && n == config)
    {
        return Ok(());
    }
    let in_group: Vec<&str> = limits
        .presets
        .iter()
        .filter(|(g, _)| g == group)
        .map(|(_, n)| n.as_str())
        .collect();
    if !in_group.is_empty() {
        return Err(PlanError::new(
            format!("channels[{i}].config"),
            format!(
                "unknown preset {} in group {}; known: {}",
                quote(config),
                quote(group),
                in_group.join(", ")
            ),
        ));
    }
    let mut groups: Vec<&str> = limits.presets.iter().map(|(g, _)| g.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let known = if groups.is_empty() {
        "none are configured".to_owned()
    } else {
        format!("known groups: {}", groups.join(", "))
    };
    Err(PlanError::new(
        format!("channels[{i}].group"),
        format!(
            "unknown preset group {} (for preset {}); {known}",
            quote(group),
            quote(config)
        ),
    ))
}
