//! Checking a plan's values and expanding it into events, following useq-schema 0.9's
//! `iter_sequence` (and the numpy / `timedelta` arithmetic under it) exactly.

use super::{
    Axis, AxisSizes, EventChannel, EventIndex, GridKind, GridMode, GridPlan, MdaEvent, MdaSequence,
    PlanError, PlanList, PlanSummary, RelativeTo, TimePhaseKind, TimePlan, ZPlan, ZPlanKind,
};

/// Most events one plan may expand to. Far above any real acquisition; it keeps a typo
/// (a step of 1e-9) from expanding into billions of events in memory.
pub const MAX_EVENTS: usize = 10_000_000;

impl MdaSequence {
    /// Checks the plan's values on their own (no instrument): positive intervals,
    /// non-zero z steps, exposures > 0, plans on axes that are in `axis_order`, ...
    /// [`parse_json`](super::parse_json) and [`parse_yaml`](super::parse_yaml) run it;
    /// [`events`](Self::events) runs it again for plans built in code.
    pub fn check(&self) -> Result<(), PlanError> {
        let phases = match &self.time_plan {
            Some(TimePlan::Phases(p)) => p.len(),
            _ => 0,
        };
        let (absolute, relative) = match self.z_plan.as_ref().map(|z| &z.kind) {
            Some(ZPlanKind::Absolute(v)) => (v.len(), 0),
            Some(ZPlanKind::Relative(v)) => (0, v.len()),
            _ => (0, 0),
        };
        for (list, len) in [
            (PlanList::StagePositions, self.stage_positions.len()),
            (PlanList::Channels, self.channels.len()),
            (PlanList::TimePhases, phases),
            (PlanList::ZAbsolute, absolute),
            (PlanList::ZRelative, relative),
        ] {
            list.check(len)?;
        }
        let missing = |axis: Axis, field: &str, present: bool| -> Result<(), PlanError> {
            if present && !self.axis_order.contains(&axis) {
                let order: String = self.axis_order.iter().map(|a| a.letter()).collect();
                return Err(PlanError::new(
                    field,
                    format!(
                        "axis '{}' is not in axis_order \"{order}\": add it, or remove {field} \
                         (useq would silently skip it)",
                        axis.letter()
                    ),
                ));
            }
            Ok(())
        };
        missing(Axis::Time, "time_plan", self.time_plan.is_some())?;
        missing(
            Axis::Position,
            "stage_positions",
            !self.stage_positions.is_empty(),
        )?;
        missing(Axis::Grid, "grid_plan", self.grid_plan.is_some())?;
        missing(Axis::Channel, "channels", !self.channels.is_empty())?;
        missing(Axis::Z, "z_plan", self.z_plan.is_some())?;

        for (i, p) in self.stage_positions.iter().enumerate() {
            for (name, v) in [("x", p.x), ("y", p.y), ("z", p.z)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    return Err(PlanError::new(
                        format!("stage_positions[{i}].{name}"),
                        "must be a finite number",
                    ));
                }
            }
            if self
                .grid_plan
                .as_ref()
                .is_some_and(|g| !g.kind.is_relative())
                && (p.x.is_some() || p.y.is_some())
            {
                let axis = if p.x.is_some() { "x" } else { "y" };
                return Err(PlanError::new(
                    format!("stage_positions[{i}].{axis}"),
                    "x and y of a position mean nothing with a grid from edges (its tiles are absolute): \
                     leave them out or null (useq ignores them with a warning)",
                ));
            }
        }
        for (i, c) in self.channels.iter().enumerate() {
            if c.config.is_empty() {
                return Err(PlanError::new(
                    format!("channels[{i}].config"),
                    "must name a preset",
                ));
            }
            if let Some(e) = c.exposure {
                if !(e.is_finite() && e > 0.0) {
                    return Err(PlanError::new(
                        format!("channels[{i}].exposure"),
                        format!("must be > 0 ms, got {e}"),
                    ));
                }
            }
            if !c.z_offset.is_finite() {
                return Err(PlanError::new(
                    format!("channels[{i}].z_offset"),
                    "must be a finite number",
                ));
            }
            if c.acquire_every == 0 {
                return Err(PlanError::new(
                    format!("channels[{i}].acquire_every"),
                    "must be at least 1",
                ));
            }
        }
        if let Some(t) = &self.time_plan {
            check_time(t)?;
        }
        if let Some(z) = &self.z_plan {
            check_z(z)?;
            if let Some(i) = self.channels.iter().position(|c| !c.do_stack) {
                check_middle_plane(z, i)?;
            }
        }
        if let Some(g) = &self.grid_plan {
            check_grid(g)?;
        }
        Ok(())
    }

    /// The items along each axis (0 for an axis not iterated), without expanding.
    fn axis_sizes(&self, fov: Option<(f64, f64)>) -> Result<AxisSizes, PlanError> {
        let used = |axis: Axis, n: usize| {
            if self.axis_order.contains(&axis) {
                n
            } else {
                0
            }
        };
        let g = match &self.grid_plan {
            // counted from the tiles themselves so sizes and indexing always agree
            Some(g) => grid_tiles(g, effective_fov(g, fov)?)?.len(),
            None => 0,
        };
        Ok(AxisSizes {
            t: used(Axis::Time, self.time_plan.as_ref().map_or(0, time_count)),
            p: used(Axis::Position, self.stage_positions.len()),
            g: used(Axis::Grid, g),
            c: used(Axis::Channel, self.channels.len()),
            z: used(
                Axis::Z,
                self.z_plan.as_ref().map_or(0, |z| z_positions(z).len()),
            ),
        })
    }

    /// Expands the plan into its events, in useq's order and with useq's positions.
    ///
    /// `fov` is the camera's field of view (width, height) in µm, needed by a grid
    /// plan; when given it takes precedence over `fov_width`/`fov_height` in the plan
    /// (as pymmcore-plus sets them from the camera). A grid plan with neither is an
    /// error naming `grid_plan`.
    pub fn events(&self, fov: Option<(f64, f64)>) -> Result<Vec<MdaEvent>, PlanError> {
        self.check()?;
        let sizes = self.axis_sizes(fov)?;
        let used: Vec<(Axis, usize)> = self
            .axis_order
            .iter()
            .map(|&a| (a, size_of(&sizes, a)))
            .filter(|&(_, n)| n > 0)
            .collect();
        let total = used
            .iter()
            .try_fold(1usize, |acc, &(_, n)| acc.checked_mul(n));
        match total {
            Some(n) if n <= MAX_EVENTS => {}
            _ => {
                return Err(PlanError::new(
                    "",
                    format!(
                    "the plan expands to more than {MAX_EVENTS} events; check steps and intervals"
                ),
                ))
            }
        }
        if used.is_empty() {
            return Ok(Vec::new());
        }

        let times: Vec<f64> = self.time_plan.as_ref().map_or_else(Vec::new, |t| {
            time_deltas(t)
                .into_iter()
                .map(|us| us as f64 / 1e6)
                .collect()
        });
        let tiles = match &self.grid_plan {
            Some(g) => grid_tiles(g, effective_fov(g, fov)?)?,
            None => Vec::new(),
        };
        let zs = self.z_plan.as_ref().map_or_else(Vec::new, z_positions);
        let z_middle = self.z_plan.as_ref().map(|z| z_num_positions(z) / 2);
        let z_relative = self.z_plan.as_ref().is_some_and(|z| z.kind.is_relative());
        let grid_relative = self
            .grid_plan
            .as_ref()
            .is_some_and(|g| g.kind.is_relative());

        let mut events = Vec::new();
        let mut counters = vec![0usize; used.len()];
        let mut last_t: Option<usize> = None;
        'product: loop {
            let mut index = EventIndex::default();
            for (&(axis, _), &i) in used.iter().zip(&counters) {
                index.set(axis, i);
            }
            let position = index.p.map(|i| &self.stage_positions[i]);
            let channel = index.c.map(|i| &self.channels[i]);
            let tile = index.g.map(|i| tiles[i]);
            let z_val = index.z.map(|i| zs[i]);

            // useq's _should_skip
            let skip = channel.is_some_and(|ch| {
                index.t.is_some_and(|t| t % ch.acquire_every as usize != 0)
                    || (!ch.do_stack && z_middle.is_some() && index.z != z_middle)
            });
            if !skip {
                // useq's _xyzpos, in its order of float operations
                let z = match z_val {
                    Some(mut z) => {
                        if let Some(ch) = channel {
                            z += ch.z_offset;
                        }
                        if z_relative {
                            z += position.and_then(|p| p.z).or(self.origin.z).unwrap_or(0.0);
                        }
                        Some(z)
                    }
                    None => position.and_then(|p| p.z),
                };
                let (x, y) = match tile {
                    Some((tx, ty)) if grid_relative => {
                        let (ox, oy) = self.origin.xy.unwrap_or((0.0, 0.0));
                        (
                            Some(tx + position.and_then(|p| p.x).unwrap_or(ox)),
                            Some(ty + position.and_then(|p| p.y).unwrap_or(oy)),
                        )
                    }
                    Some((tx, ty)) => (Some(tx), Some(ty)),
                    None => (position.and_then(|p| p.x), position.and_then(|p| p.y)),
                };
                let reset_event_timer = index.t == Some(0) && last_t != Some(0);
                if index.t.is_some() {
                    last_t = index.t;
                }
                events.push(MdaEvent {
                    index,
                    channel: channel.map(|c| EventChannel {
                        group: c.group.clone(),
                        config: c.config.clone(),
                    }),
                    exposure: channel.and_then(|c| c.exposure),
                    x,
                    y,
                    z,
                    min_start_time: index.t.map(|i| times[i]),
                    pos_name: position
                        .and_then(|p| p.name.clone())
                        .filter(|n| !n.is_empty()),
                    reset_event_timer,
                    keep_shutter_open: false,
                });
            }

            // next combination: the last axis in the order turns fastest
            let mut k = used.len();
            loop {
                if k == 0 {
                    break 'product;
                }
                k -= 1;
                counters[k] += 1;
                if counters[k] < used[k].1 {
                    break;
                }
                counters[k] = 0;
            }
        }

        if !self.keep_shutter_open_across.is_empty() {
            for i in 1..events.len() {
                let (a, b) = (&events[i - 1].index, &events[i].index);
                let keep = Axis::ALL
                    .iter()
                    .filter(|&&ax| a.get(ax).is_some() && a.get(ax) != b.get(ax))
                    .all(|ax| self.keep_shutter_open_across.contains(ax));
                events[i - 1].keep_shutter_open = keep;
            }
        }
        Ok(events)
    }

    /// Expands the plan and sums it up: event count, sizes, a duration estimate and
    /// warnings. `fallback_exposure_ms` stands in for channels without an exposure
    /// (useq's estimate uses 1 ms; the daemon passes the camera's current exposure).
    pub fn summary(
        &self,
        fov: Option<(f64, f64)>,
        fallback_exposure_ms: f64,
    ) -> Result<PlanSummary, PlanError> {
        self.summarize(&self.events(fov)?, fov, fallback_exposure_ms)
    }

    /// [`summary`](Self::summary) of events already expanded from this plan.
    pub(super) fn summarize(
        &self,
        events: &[MdaEvent],
        fov: Option<(f64, f64)>,
        fallback_exposure_ms: f64,
    ) -> Result<PlanSummary, PlanError> {
        let sizes = self.axis_sizes(fov)?;
        let used_axes: String = self
            .axis_order
            .iter()
            .filter(|&&a| size_of(&sizes, a) > 0)
            .map(|a| a.letter())
            .collect();

        // Simulate the event timer: each event starts when the previous one is done,
        // but not before its min_start_time (counted from the last timer reset).
        let mut clock = 0.0f64;
        let mut origin = 0.0f64;
        let mut interval_exceeded = false;
        let mut prev_t = None;
        let mut prev_due = None;
        let mut events_without_exposure = 0;
        for e in events {
            if e.reset_event_timer {
                origin = clock;
                prev_due = None;
            }
            let mut start = clock;
            if let Some(mst) = e.min_start_time {
                let due = origin + mst;
                if due > clock {
                    start = due;
                } else if e.index.t != prev_t
                    && clock > due + 1e-9
                    && gap_asked(prev_due, Some(mst))
                {
                    interval_exceeded = true;
                }
            }
            if e.index.t != prev_t {
                prev_due = e.min_start_time;
            }
            let exposure = e.exposure.unwrap_or_else(|| {
                events_without_exposure += 1;
                fallback_exposure_ms
            });
            clock = start + exposure / 1000.0;
            prev_t = e.index.t;
        }

        let fov_um = match &self.grid_plan {
            Some(g) => Some(effective_fov(g, fov)?),
            None => None,
        };
        Ok(PlanSummary {
            events: events.len(),
            sizes,
            used_axes,
            duration_s: clock,
            interval_exceeded,
            events_without_exposure,
            fov_um,
            warnings: self.warnings(fov),
        })
    }

    /// Things useq allows that are probably not what the author meant.
    fn warnings(&self, fov: Option<(f64, f64)>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(z) = &self.z_plan {
            if z.kind.is_relative() {
                // The daemon counts from the focus at the start (`origin`); useq from 0.
                let base = match self.origin.z {
                    Some(z) => format!("the current focus, z = {z} µm"),
                    None => "z = 0 µm (as in useq)".to_owned(),
                };
                if self.stage_positions.is_empty() {
                    out.push(format!("z_plan is relative but there are no stage_positions: planes are relative to {base}"));
                }
                for (i, p) in self.stage_positions.iter().enumerate() {
                    if p.z.is_none() {
                        out.push(format!("z_plan is relative but stage_positions[{i}] has no z: its planes are relative to {base}"));
                    }
                }
            }
        } else {
            for (i, c) in self.channels.iter().enumerate() {
                if c.z_offset != 0.0 {
                    out.push(format!(
                        "channels[{i}].z_offset has no effect without a z_plan (as in useq)"
                    ));
                }
            }
        }
        if let Some(g) = &self.grid_plan {
            if g.kind.is_relative() {
                let base = match self.origin.xy {
                    Some((x, y)) => format!("the stage's current position, x = {x}, y = {y} µm"),
                    None => "x = y = 0 µm (as in useq)".to_owned(),
                };
                if self.stage_positions.is_empty() {
                    out.push(format!("grid_plan is relative but there are no stage_positions: tiles are around {base}"));
                }
                for (i, p) in self.stage_positions.iter().enumerate() {
                    if p.x.is_none() || p.y.is_none() {
                        out.push(format!("grid_plan is relative but stage_positions[{i}] lacks x or y: tiles use {base} for it"));
                    }
                }
            }
            if let (Some(given), Some(w), Some(h)) = (fov, g.fov_width, g.fov_height) {
                if given != (w, h) {
                    out.push(format!(
                        "grid_plan.fov_width/fov_height ({w} x {h} µm) replaced by the camera's field of view ({} x {} µm)",
                        given.0, given.1
                    ));
                }
            }
        }
        let pos = |a: Axis| self.axis_order.iter().position(|&x| x == a);
        for (i, c) in self.channels.iter().enumerate() {
            if c.acquire_every > 1 {
                if self.time_plan.is_none() {
                    out.push(format!(
                        "channels[{i}].acquire_every has no effect without a time_plan"
                    ));
                } else if pos(Axis::Channel) < pos(Axis::Time) {
                    out.push(format!("channels[{i}].acquire_every with 'c' before 't' in axis_order may not do what was intended (useq warns too)"));
                }
            }
        }
        out
    }
}

fn size_of(sizes: &AxisSizes, axis: Axis) -> usize {
    match axis {
        Axis::Time => sizes.t,
        Axis::Position => sizes.p,
        Axis::Grid => sizes.g,
        Axis::Channel => sizes.c,
        Axis::Z => sizes.z,
    }
}

fn phase_field(plan: &TimePlan, i: usize, key: &str) -> String {
    match plan {
        TimePlan::Single(_) => format!("time_plan.{key}"),
        TimePlan::Phases(_) => format!("time_plan.phases[{i}].{key}"),
    }
}

fn phases(plan: &TimePlan) -> &[super::TimePhase] {
    match plan {
        TimePlan::Single(p) => std::slice::from_ref(p),
        TimePlan::Phases(p) => p,
    }
}

fn check_time(plan: &TimePlan) -> Result<(), PlanError> {
    if phases(plan).is_empty() {
        return Err(PlanError::new(
            "time_plan.phases",
            "needs at least one phase",
        ));
    }
    for (i, phase) in phases(plan).iter().enumerate() {
        let positive = |key: &str, d: super::TimeDelta| -> Result<(), PlanError> {
            if d.micros <= 0 {
                return Err(PlanError::new(
                    phase_field(plan, i, key),
                    format!(
                        "must be > 0 s with a duration (the duration is divided by it), got {} s; \
                         for time points as fast as possible give `interval: 0` with `loops`",
                        d.as_secs_f64()
                    ),
                ));
            }
            Ok(())
        };
        let not_negative = |key: &str, d: super::TimeDelta| -> Result<(), PlanError> {
            if d.micros < 0 {
                return Err(PlanError::new(
                    phase_field(plan, i, key),
                    format!("must not be negative, got {} s", d.as_secs_f64()),
                ));
            }
            Ok(())
        };
        let loops = |n: u32| -> Result<(), PlanError> {
            if n == 0 {
                return Err(PlanError::new(
                    phase_field(plan, i, "loops"),
                    "must be at least 1",
                ));
            }
            Ok(())
        };
        match phase.kind {
            TimePhaseKind::IntervalLoops { interval, loops: n } => {
                // 0 is useq's "as fast as possible": every time point due at once.
                not_negative("interval", interval)?;
                loops(n)?;
            }
            TimePhaseKind::DurationLoops { duration, loops: n } => {
                not_negative("duration", duration)?;
                loops(n)?;
            }
            TimePhaseKind::IntervalDuration { interval, duration } => {
                positive("interval", interval)?;
                not_negative("duration", duration)?;
                if duration.micros / interval.micros >= MAX_EVENTS as i64 {
                    return Err(PlanError::new(
                        phase_field(plan, i, "interval"),
                        format!("gives more than {MAX_EVENTS} time points over the duration"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether a time point due at `due` (s) asks for time since the previous one, due at `prev`:
/// one due no later (useq's `interval: 0`, "as fast as possible") is never late, and the
/// exposures of the one before do not exceed an interval it does not have.
pub fn gap_asked(prev: Option<f64>, due: Option<f64>) -> bool {
    match (prev, due) {
        (Some(prev), Some(due)) => due > prev,
        _ => true,
    }
}

/// Time points of one phase in microseconds (useq's `TimePlan.deltas`).
fn phase_deltas(kind: &TimePhaseKind) -> Vec<i64> {
    let (interval, loops) = match *kind {
        TimePhaseKind::IntervalLoops { interval, loops } => (interval.micros, i64::from(loops)),
        TimePhaseKind::DurationLoops { duration, loops } => {
            // timedelta / int rounds half to even; useq divides by zero for one loop,
            // where the only time point is 0 anyway.
            let n = i64::from(loops) - 1;
            let interval = if n > 0 {
                div_round_half_even(duration.micros, n)
            } else {
                0
            };
            (interval, i64::from(loops))
        }
        TimePhaseKind::IntervalDuration { interval, duration } => (
            interval.micros,
            duration.micros.div_euclid(interval.micros.max(1)) + 1,
        ),
    };
    (0..loops).map(|i| i * interval).collect()
}

fn div_round_half_even(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    let r = a.rem_euclid(b);
    match (2 * r).cmp(&b) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Time points of a plan in microseconds; phases follow one another, each starting
/// at the last time point of the previous one (useq's `MultiPhaseTimePlan.deltas`).
fn time_deltas(plan: &TimePlan) -> Vec<i64> {
    match plan {
        TimePlan::Single(p) => phase_deltas(&p.kind),
        TimePlan::Phases(phases) => {
            let mut out = vec![0];
            let mut accum = 0;
            for phase in phases {
                let deltas = phase_deltas(&phase.kind);
                for (i, &td) in deltas.iter().enumerate() {
                    if i == 0 && td == 0 {
                        continue;
                    }
                    out.push(td + accum);
                }
                if let Some(&last) = deltas.last() {
                    accum += last;
                }
            }
            out
        }
    }
}

fn time_count(plan: &TimePlan) -> usize {
    let count = |kind: &TimePhaseKind| -> usize {
        match *kind {
            TimePhaseKind::IntervalLoops { loops, .. }
            | TimePhaseKind::DurationLoops { loops, .. } => loops as usize,
            TimePhaseKind::IntervalDuration { interval, duration } => {
                (duration.micros.div_euclid(interval.micros.max(1)) + 1).max(0) as usize
            }
        }
    };
    match plan {
        TimePlan::Single(p) => count(&p.kind),
        TimePlan::Phases(p) => {
            1 + p
                .iter()
                .map(|p| count(&p.kind).saturating_sub(1))
                .sum::<usize>()
        }
    }
}

fn z_start_stop_step(kind: &ZPlanKind) -> Option<(f64, f64, f64)> {
    match *kind {
        ZPlanKind::RangeAround { range, step } => Some((-range / 2.0, range / 2.0, step)),
        ZPlanKind::TopBottom { top, bottom, step } => Some((bottom, top, step)),
        ZPlanKind::AboveBelow { above, below, step } => Some((-below.abs(), above.abs(), step)),
        ZPlanKind::Absolute(_) | ZPlanKind::Relative(_) => None,
    }
}

fn check_z(z: &ZPlan) -> Result<(), PlanError> {
    if let Some((start, stop, step)) = z_start_stop_step(&z.kind) {
        if !(start.is_finite() && stop.is_finite() && step.is_finite()) {
            return Err(PlanError::new("z_plan", "values must be finite numbers"));
        }
        if step == 0.0 {
            return Err(PlanError::new("z_plan.step", "must not be 0"));
        }
        let n = ((stop + step / 2.0 - start) / step).ceil();
        if n > MAX_EVENTS as f64 {
            return Err(PlanError::new(
                "z_plan.step",
                format!("gives more than {MAX_EVENTS} planes"),
            ));
        }
        if n < 1.0 {
            let hint = match z.kind {
                ZPlanKind::TopBottom { .. } => "bottom must be below top for a positive step",
                _ => "the range must not be negative and the step must be positive",
            };
            return Err(PlanError::new("z_plan", format!("gives no planes: {hint}")));
        }
    }
    let (key, list) = match &z.kind {
        ZPlanKind::Absolute(v) => ("absolute", v),
        ZPlanKind::Relative(v) => ("relative", v),
        _ => return Ok(()),
    };
    if list.is_empty() {
        return Err(PlanError::new(
            format!("z_plan.{key}"),
            "needs at least one position",
        ));
    }
    if let Some(i) = list.iter().position(|v| !v.is_finite()) {
        return Err(PlanError::new(
            format!("z_plan.{key}[{i}]"),
            "must be a finite number",
        ));
    }
    Ok(())
}

/// A channel with `do_stack: false` takes the plane at index `num_positions() // 2`, which useq
/// counts apart from the planes themselves: for a range that is not a multiple of its step and
/// holds one plane, it counts two, and the channel takes no image at all (useq-schema 0.9.2 yields
/// no event for it). Refused, naming channel `i`, rather than run without that channel.
fn check_middle_plane(z: &ZPlan, i: usize) -> Result<(), PlanError> {
    let (planes, middle) = (z_positions(z).len(), z_num_positions(z) / 2);
    if middle < planes {
        return Ok(());
    }
    Err(PlanError::new(
        format!("channels[{i}].do_stack"),
        format!(
            "false takes only the middle plane of the z_plan, which useq puts at index {middle}              of a z_plan with {planes} plane(s) (its range is not a multiple of its step): the              channel would take no image; make the range a multiple of the step, or take the              whole stack"
        ),
    ))
}

/// numpy's `arange(start, stop, step)` for floats: `ceil((stop - start) / step)` values;
/// the third on are `start + i * delta` with `delta = (start + step) - start`.
fn arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len < 1.0 {
        return Vec::new();
    }
    let n = len as usize;
    let second = start + step;
    let delta = second - start;
    (0..n)
        .map(|i| match i {
            0 => start,
            1 => second,
            _ => start + i as f64 * delta,
        })
        .collect()
}

/// The planes in visiting order (useq's `ZPlan.__iter__`).
fn z_positions(z: &ZPlan) -> Vec<f64> {
    let mut v = match &z.kind {
        ZPlanKind::Absolute(a) => a.clone(),
        ZPlanKind::Relative(r) => r.clone(),
        kind => match z_start_stop_step(kind) {
            // step 0 (rejected by check, kept for fidelity) is one plane in useq
            Some((start, stop, step)) => {
                if step == 0.0 {
                    vec![start]
                } else {
                    arange(start, stop + step / 2.0, step)
                }
            }
            None => Vec::new(),
        },
    };
    if !z.go_up {
        v.reverse();
    }
    v
}

impl ZPlan {
    /// The distance between neighbouring planes in µm (OME's PhysicalSizeZ): the step, or
    /// the spacing of a list of positions when it is even. `None` for one plane or an uneven
    /// list, where no one distance describes the stack.
    pub fn spacing_um(&self) -> Option<f64> {
        let z = z_positions(self);
        let first = (z.get(1)? - z[0]).abs();
        if let Some((_, _, step)) = z_start_stop_step(&self.kind) {
            return Some(step.abs());
        }
        let even = z
            .windows(2)
            .all(|w| ((w[1] - w[0]).abs() - first).abs() <= 1e-9 * first.max(1.0))
            && z.windows(3).all(|w| (w[1] - w[0]) * (w[2] - w[1]) > 0.0);
        (even && first > 0.0).then_some(first)
    }
}

/// useq's `num_positions()`, which decides the middle plane for `do_stack: false`.
/// It is computed differently from the planes themselves, so it is kept separate.
fn z_num_positions(z: &ZPlan) -> usize {
    match &z.kind {
        ZPlanKind::Absolute(a) => a.len(),
        ZPlanKind::Relative(r) => r.len(),
        kind => match z_start_stop_step(kind) {
            Some((start, stop, step)) if step != 0.0 => {
                let nsteps = (stop + step - start) / step;
                let rounded = (nsteps * 1e6).round() / 1e6; // Python's round(x, 6)
                rounded.ceil().max(0.0) as usize
            }
            _ => 1,
        },
    }
}

fn check_grid(g: &GridPlan) -> Result<(), PlanError> {
    let (ox, oy) = g.overlap;
    if !(ox.is_finite() && oy.is_finite() && ox < 100.0 && oy < 100.0) {
        return Err(PlanError::new(
            "grid_plan.overlap",
            format!("must be below 100 %, got [{ox}, {oy}]"),
        ));
    }
    for (key, v) in [("fov_width", g.fov_width), ("fov_height", g.fov_height)] {
        if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(PlanError::new(format!("grid_plan.{key}"), "must be > 0 µm"));
        }
    }
    match g.kind {
        GridKind::RowsColumns { rows, columns, .. } => {
            if rows == 0 || columns == 0 {
                return Err(PlanError::new(
                    "grid_plan",
                    "rows and columns must be at least 1",
                ));
            }
        }
        GridKind::FromEdges {
            top,
            left,
            bottom,
            right,
        } => {
            if ![top, left, bottom, right].iter().all(|v| v.is_finite()) {
                return Err(PlanError::new("grid_plan", "edges must be finite numbers"));
            }
        }
        GridKind::WidthHeight { width, height, .. } => {
            if !(width.is_finite() && width > 0.0) {
                return Err(PlanError::new("grid_plan.width", "must be > 0 µm"));
            }
            if !(height.is_finite() && height > 0.0) {
                return Err(PlanError::new("grid_plan.height", "must be > 0 µm"));
            }
        }
    }
    Ok(())
}

/// The field of view a grid is laid out with: the instrument's, else the plan's.
fn effective_fov(g: &GridPlan, fov: Option<(f64, f64)>) -> Result<(f64, f64), PlanError> {
    let (w, h) =
        match (fov, g.fov_width, g.fov_height) {
            (Some(f), _, _) => f,
            (None, Some(w), Some(h)) => (w, h),
            _ => return Err(PlanError::new(
                "grid_plan",
                "a grid plan needs the field of view: the instrument's pixel size is not known \
                 and the plan gives no fov_width/fov_height",
            )),
        };
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return Err(PlanError::new(
            "grid_plan",
            format!("field of view must be > 0 µm, got {w} x {h}"),
        ));
    }
    Ok((w, h))
}

struct GridShape {
    rows: usize,
    columns: usize,
    dx: f64,
    dy: f64,
    x0: f64,
    y0: f64,
}

fn grid_shape(g: &GridPlan, (fw, fh): (f64, f64)) -> Result<GridShape, PlanError> {
    let dx = fw - (fw * g.overlap.0) / 100.0;
    let dy = fh - (fh * g.overlap.1) / 100.0;
    // useq bounds no overlap; one so negative that the step overflows would put every tile at
    // NaN or infinity, which no stage reaches.
    if !(dx.is_finite() && dy.is_finite()) {
        let (ox, oy) = g.overlap;
        return Err(PlanError::new(
            "grid_plan.overlap",
            format!(
                "[{ox:?}, {oy:?}] % makes the step between tiles {dx:?} x {dy:?} µm with a field \
                 of view of {fw:?} x {fh:?} µm; give an overlap that keeps the step a finite distance"
            ),
        ));
    }
    let tiles = |v: f64| -> Result<usize, PlanError> {
        if v.is_finite() && v <= MAX_EVENTS as f64 {
            Ok(v.max(1.0) as usize)
        } else {
            Err(PlanError::new(
                "grid_plan",
                format!("gives more than {MAX_EVENTS} tiles"),
            ))
        }
    };
    let centred = |rel: RelativeTo, rows: usize, columns: usize| match rel {
        RelativeTo::Center => (
            -((columns - 1) as f64 * dx) / 2.0,
            ((rows - 1) as f64 * dy) / 2.0,
        ),
        RelativeTo::TopLeft => (0.0, 0.0),
    };
    let shape = match g.kind {
        GridKind::RowsColumns {
            rows,
            columns,
            relative_to,
        } => {
            let (rows, columns) = (rows as usize, columns as usize);
            let (x0, y0) = centred(relative_to, rows, columns);
            GridShape {
                rows,
                columns,
                dx,
                dy,
                x0,
                y0,
            }
        }
        GridKind::FromEdges {
            top,
            left,
            bottom,
            right,
        } => {
            let count = |span: f64, fov: f64, d: f64| {
                if span <= fov {
                    Ok(1)
                } else {
                    tiles(((span - fov) / d).ceil() + 1.0)
                }
            };
            GridShape {
                rows: count((top - bottom).abs(), fh, dy)?,
                columns: count((right - left).abs(), fw, dx)?,
                dx,
                dy,
                x0: left.min(right) + fw / 2.0,
                y0: top.max(bottom) - fh / 2.0,
            }
        }
        GridKind::WidthHeight {
            width,
            height,
            relative_to,
        } => {
            let rows = tiles((height / dy).ceil())?;
            let columns = tiles((width / dx).ceil())?;
            let (x0, y0) = centred(relative_to, rows, columns);
            GridShape {
                rows,
                columns,
                dx,
                dy,
                x0,
                y0,
            }
        }
    };
    // The spiral walks a square of the longer side, so bound that too.
    let side = shape.rows.max(shape.columns);
    if shape.rows.saturating_mul(shape.columns) > MAX_EVENTS
        || (g.mode == GridMode::Spiral && side.saturating_mul(side) > MAX_EVENTS)
    {
        return Err(PlanError::new(
            "grid_plan",
            format!("gives more than {MAX_EVENTS} tiles"),
        ));
    }
    Ok(shape)
}

/// Tile centres (x, y) in visiting order: offsets for a relative grid, stage
/// coordinates for a grid from edges. Rows go down in y, as in useq.
fn grid_tiles(g: &GridPlan, fov: (f64, f64)) -> Result<Vec<(f64, f64)>, PlanError> {
    let s = grid_shape(g, fov)?;
    Ok(grid_indices(g.mode, s.rows, s.columns)
        .into_iter()
        .map(|(r, c)| (s.x0 + c as f64 * s.dx, s.y0 - r as f64 * s.dy))
        .collect())
}

/// (row, column) pairs in the order of useq's `OrderMode.generate_indices`.
fn grid_indices(mode: GridMode, rows: usize, columns: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(rows * columns);
    match mode {
        GridMode::RowWise | GridMode::RowWiseSnake => {
            for r in 0..rows {
                for i in 0..columns {
                    let c = if mode == GridMode::RowWiseSnake && r % 2 == 1 {
                        columns - 1 - i
                    } else {
                        i
                    };
                    out.push((r, c));
                }
            }
        }
        GridMode::ColumnWise | GridMode::ColumnWiseSnake => {
            for c in 0..columns {
                for i in 0..rows {
                    let r = if mode == GridMode::ColumnWiseSnake && c % 2 == 1 {
                        rows - 1 - i
                    } else {
                        i
                    };
                    out.push((r, c));
                }
            }
        }
        GridMode::Spiral => {
            // useq's _spiral_indices: walk a square spiral from the centre (first
            // down, then clockwise) and keep the cells inside the grid.
            let (cols_f, rows_f) = (columns as f64, rows as f64);
            let xshift = (columns as i64 - 1).div_euclid(2);
            let yshift = (rows as i64 - 1).div_euclid(2);
            let (mut x, mut y, mut dx, mut dy) = (0i64, 0i64, 0i64, -1i64);
            let n = rows.max(columns);
            for _ in 0..n * n {
                let (xf, yf) = (x as f64, y as f64);
                if -cols_f / 2.0 < xf
                    && xf <= cols_f / 2.0
                    && -rows_f / 2.0 < yf
                    && yf <= rows_f / 2.0
                {
                    out.push(((y + yshift) as usize, (x + xshift) as usize));
                }
                if x == y || (x < 0 && x == -y) || (x > 0 && x == 1 - y) {
                    (dx, dy) = (-dy, dx);
                }
                x += dx;
                y += dy;
            }
        }
    }
    out
}
