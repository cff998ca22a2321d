//! The plan parser: any text as a useq plan in JSON and in YAML (`plan::parse_json`,
//! `plan::parse_yaml`, as StartPlan and ValidatePlan read it), then what a parsed plan goes
//! through before a run: the check against an instrument (expansion into events, travel,
//! exposure, presets) and the useq JSON saved beside the data, which must read back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microscoped_core::plan::{parse_json, parse_yaml};
use microscoped_fuzz::check_plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for seq in [parse_json(text), parse_yaml(text)].into_iter().flatten() {
        check_plan(&seq);
    }
});
