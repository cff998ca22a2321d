//! What the fuzz targets in `fuzz_targets/` share: the serial drivers against scripted
//! replies ([`serial`]), OME-TIFF files and their sidecars placed on disk ([`files`]), the
//! instrument a plan is checked against ([`plan_limits`]). The seed corpora are made by
//! [`seeds`], with the same code. See README.md.

pub mod files;
pub mod seeds;
pub mod serial;

use std::sync::OnceLock;

use microscoped_core::config::Config;
use microscoped_core::plan::{MdaSequence, PlanLimits};

/// What the daemon checks a plan against on the demo instrument (the embedded config's
/// presets; the simulator's travel and exposure range), as `Acquisitions::check_plan` gathers
/// it from the running devices.
pub fn plan_limits() -> &'static PlanLimits {
    static LIMITS: OnceLock<PlanLimits> = OnceLock::new();
    LIMITS.get_or_init(|| {
        let config = Config::demo();
        PlanLimits {
            presets: config
                .presets
                .iter()
                .flat_map(|g| g.presets.iter().map(|p| (g.name.clone(), p.name.clone())))
                .collect(),
            xy_travel_um: Some(((-50_000.0, 50_000.0), (-50_000.0, 50_000.0))),
            z_travel_um: Some((0.0, 10_000.0)),
            exposure_range_ms: Some((0.01, 10_000.0)),
            current_exposure_ms: Some(10.0),
        }
    })
}

/// The camera's field of view on the demo instrument, µm.
pub const FOV_UM: (f64, f64) = (55.3, 55.3);

/// Checks a parsed plan as the daemon does before a run (`Acquisitions::checked`: the origin
/// set from the stages, then [`MdaSequence::validate_events`]) on the demo instrument and on
/// one the daemon knows nothing of, and that it reads back from the useq JSON the daemon
/// saves beside its data.
pub fn check_plan(seq: &MdaSequence) {
    let written = seq.to_useq_json();
    let back = microscoped_core::plan::parse_json(&written.to_string())
        .unwrap_or_else(|e| panic!("the plan written back does not parse: {e}\n{written}"));
    assert_eq!(
        back.to_useq_json(),
        written,
        "the plan written back reads back to another plan"
    );
    let mut at_stage = seq.clone();
    at_stage.origin.xy = Some((120.0, -40.0));
    at_stage.origin.z = Some(2_000.0);
    let _ = at_stage.validate_events(plan_limits(), Some(FOV_UM));
    let _ = seq.validate_events(&PlanLimits::default(), None);
}
