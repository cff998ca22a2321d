//! `microscoped recover` and the sidecar: any bytes as a file left by a killed daemon and its
//! sidecar (see `microscoped_fuzz::files`). A refusal is fine; a panic is a finding, and so is
//! a file recover reports repaired that is not then a finished file: recovering it again
//! must find it complete with the same planes, and the reader must describe it so.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microscoped_core::storage::{describe, read_plane, recover, PlaneAddress};
use microscoped_fuzz::files::Scratch;

fuzz_target!(|data: &[u8]| {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    let path = SCRATCH.get_or_init(Scratch::new).place(data);
    let Ok(report) = recover(&path) else {
        return;
    };
    if report.empty || report.already_complete {
        return;
    }
    let again = recover(&path).unwrap_or_else(|e| panic!("recovering a recovered file: {e}"));
    assert!(
        again.already_complete,
        "a recovered file is recovered again: {again:?}"
    );
    assert_eq!(again.planes, report.planes, "{again:?} after {report:?}");
    let info = describe(&path).unwrap_or_else(|e| panic!("a recovered file is unreadable: {e}"));
    assert!(info.complete && info.recovered, "{info:?}");
    assert_eq!(info.planes, report.planes, "{info:?} after {report:?}");
    for i in 0..report.planes.min(3) {
        read_plane(&path, PlaneAddress::Index(i))
            .unwrap_or_else(|e| panic!("plane {i} of a recovered file: {e}"));
    }
});
