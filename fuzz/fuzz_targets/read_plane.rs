//! The reader behind ReadPlane and the dataset listing: any bytes as an `.ome.tiff` (with a
//! sidecar beside it when the input has one: a file being written, or left by a killed daemon;
//! see `microscoped_fuzz::files`), described and read at several addresses. A refusal is fine;
//! a panic, or a plane that is empty, not 8 or 16 bits a sample, or whose bytes do not match
//! its shape, is a finding.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microscoped_core::storage::{describe, read_plane, PlaneAddress};
use microscoped_fuzz::files::Scratch;

const ADDRESSES: [PlaneAddress; 10] = [
    PlaneAddress::Index(0),
    PlaneAddress::Index(1),
    PlaneAddress::Index(3),
    PlaneAddress::Index(u64::MAX),
    PlaneAddress::Coords { t: 0, c: 0, z: 0 },
    PlaneAddress::Coords { t: 1, c: 0, z: 0 },
    PlaneAddress::Coords { t: 0, c: 1, z: 0 },
    PlaneAddress::Coords { t: 0, c: 0, z: 1 },
    PlaneAddress::Coords { t: 2, c: 1, z: 1 },
    PlaneAddress::Coords {
        t: u32::MAX,
        c: u32::MAX,
        z: u32::MAX,
    },
];

fuzz_target!(|data: &[u8]| {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    let path = SCRATCH.get_or_init(Scratch::new).place(data);
    let _ = describe(&path);
    for addr in ADDRESSES {
        if let Ok(p) = read_plane(&path, addr) {
            assert!(
                matches!(p.bits_per_sample, 8 | 16) && p.width > 0 && p.height > 0,
                "{addr}: a {}x{} {}-bit plane",
                p.width,
                p.height,
                p.bits_per_sample
            );
            let bytes = u64::from(p.width) * u64::from(p.height) * u64::from(p.bits_per_sample / 8);
            assert_eq!(
                p.data.len() as u64,
                bytes,
                "{addr}: {}x{}",
                p.width,
                p.height
            );
        }
    }
});
