//! The seed corpora, made from what the repository already has: the config examples, the
//! useq fixtures (as JSON and as YAML), the replies of the vendors' own emulators to the serial
//! target's calls ([`record`]), and tiny OME-TIFF files written by the daemon's own writer
//! (finished, being written, killed mid-run, killed before the first plane). Run by
//! `examples/seeds.rs`; it panics on what it cannot make, being a tool, not the daemon.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::files::join;
use crate::serial::{record, Target};
use microscoped_core::storage::{
    sidecar_path, ChannelMeta, Counters, DatasetMeta, InstrumentMeta, LaserMeta, ObjectiveMeta,
    OmeTiffWriter, PlaneMeta, StageLabel,
};
use microscoped_driver_api::PixelType;

/// Writes every target's seeds into `corpus/<target>/` (over the seeds written before), from the
/// repository checked out at `repo`.
pub fn write_all(repo: &Path, corpus: &Path) {
    // Files of other names stay: the inputs of crashes found (`found-*`), kept as regressions.
    let out = |target: &str| {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).unwrap();
        dir
    };

    let config = out("config");
    let mut configs = vec![repo.join("config/demo.toml")];
    configs.extend(toml_files(&repo.join("config/examples")));
    for path in configs {
        fs::copy(&path, config.join(path.file_name().unwrap())).unwrap();
    }

    let plan = out("plan");
    for entry in fs::read_dir(repo.join("tests/python/useq_fixtures")).unwrap() {
        let path = entry.unwrap().path();
        let fixture: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let useq = &fixture["plan"];
        fs::write(
            plan.join(format!("{stem}.json")),
            serde_json::to_string_pretty(useq).unwrap(),
        )
        .unwrap();
        fs::write(
            plan.join(format!("{stem}.yaml")),
            serde_saphyr::to_string(useq).unwrap(),
        )
        .unwrap();
    }

    let serial = out("serial");
    for target in Target::ALL {
        fs::write(serial.join(target.name()), record(target)).unwrap();
    }

    let scratch = std::env::temp_dir().join(format!("microscoped-seeds-{}", std::process::id()));
    fs::create_dir_all(&scratch).unwrap();
    let read = out("read_plane");
    let recover = out("recover");
    let tcz: Vec<(u32, u32, u32)> = (0..2)
        .flat_map(|t| (0..2).flat_map(move |c| (0..2).map(move |z| (t, c, z))))
        .collect();

    // Finished files: a time series of u16, a t/c/z stack of u8 that stopped early.
    let m = meta(PixelType::U16, 3, 1, 1, "XYZCT");
    let path = write(&scratch, "finished_u16", &m, &tcz_t(3), true);
    fs::write(read.join("finished_u16"), pair(&path)).unwrap();
    let m = meta(PixelType::U8, 2, 2, 2, "XYCZT");
    let path = write(&scratch, "finished_tcz", &m, &tcz[..5], true);
    fs::write(read.join("finished_tcz"), pair(&path)).unwrap();

    // Files as a killed daemon leaves them (and as a reader meets them while written): the
    // planes so far, their sidecar, and a torn tail.
    let m = meta(PixelType::U16, 2, 2, 2, "XYZCT");
    let path = write(&scratch, "killed_tcz", &m, &tcz[..3], false);
    fs::write(read.join("live_tcz"), pair(&path)).unwrap();
    append(&path, &[7u8; 20]);
    fs::write(recover.join("killed_tcz"), pair(&path)).unwrap();
    let m = meta(PixelType::U8, 4, 1, 1, "XYZCT");
    let path = write(&scratch, "killed_u8", &m, &tcz_t(2), false);
    let side = fs::read(sidecar_path(&path)).unwrap();
    // The last sidecar line torn in half.
    let torn = &side[..side.len() - 30];
    fs::write(
        recover.join("killed_torn_sidecar"),
        join(&fs::read(&path).unwrap(), Some(torn)),
    )
    .unwrap();
    let m = meta(PixelType::U16, 2, 1, 1, "XYZCT");
    let path = write(&scratch, "killed_empty", &m, &[], false);
    fs::write(recover.join("killed_before_first_plane"), pair(&path)).unwrap();
    fs::remove_dir_all(&scratch).unwrap();
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// A 4x3 dataset with every piece of metadata the writer puts in the file.
fn meta(pixel_type: PixelType, t: u32, c: u32, z: u32, order: &str) -> DatasetMeta {
    DatasetMeta {
        name: "run".into(),
        width: 4,
        height: 3,
        pixel_type,
        significant_bits: if pixel_type == PixelType::U16 { 12 } else { 8 },
        size_t: t,
        size_c: c,
        size_z: z,
        dimension_order: order.into(),
        physical_size_um: Some(0.108),
        channels: (0..c)
            .map(|i| ChannelMeta {
                name: format!("ch{i}"),
                excitation_nm: Some(488.0),
                emission_nm: Some(525.0),
            })
            .collect(),
        physical_size_z_um: (z > 1).then_some(0.5),
        stage_label: Some(StageLabel {
            name: "Pos0".into(),
            x_um: Some(100.0),
            y_um: Some(-5.25),
            z_um: None,
        }),
        instrument: InstrumentMeta {
            detector_model: "SimCam".into(),
            lasers: vec![LaserMeta {
                name: "laser488".into(),
                wavelength_nm: 488.0,
                power_mw: 12.5,
            }],
            objective: Some(ObjectiveMeta {
                model: "60x/1.4 oil".into(),
                magnification: Some(60.0),
                numerical_aperture: Some(1.4),
            }),
        },
        acquisition_date: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    }
}

fn tcz_t(n: u32) -> Vec<(u32, u32, u32)> {
    (0..n).map(|t| (t, 0, 0)).collect()
}

/// Writes the planes at `tcz` into `<dir>/<name>/image.ome.tiff`, finished or left as a
/// killed daemon leaves it (the writer dropped, sidecar and all).
fn write(
    dir: &Path,
    name: &str,
    m: &DatasetMeta,
    tcz: &[(u32, u32, u32)],
    finish: bool,
) -> PathBuf {
    let folder = dir.join(name);
    fs::create_dir_all(&folder).unwrap();
    let path = folder.join("image.ome.tiff");
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    let bytes = (m.width * m.height) as usize * m.pixel_type.bytes();
    for (i, &(t, c, z)) in tcz.iter().enumerate() {
        let data: Vec<u8> = (0..bytes).map(|b| (b * 7 + i * 31) as u8).collect();
        let plane = PlaneMeta {
            the_t: t,
            the_c: c,
            the_z: z,
            delta_t_s: f64::from(t) * 0.5,
            exposure_ms: 10.0,
            position_x_um: Some(100.0),
            position_y_um: Some(-5.25),
            position_z_um: Some(f64::from(z) * 0.5),
            light_mw: [Some(12.5), None, None, None, None, None, None, None],
        };
        w.write_plane(&data, &plane).unwrap();
    }
    if finish {
        let n = tcz.len() as u64;
        w.finish(Counters {
            received: n,
            written: n,
            dropped: 0,
        })
        .unwrap();
    } else {
        drop(w);
    }
    path
}

/// The input for a file and, if it has one, its sidecar.
fn pair(path: &Path) -> Vec<u8> {
    let side = fs::read(sidecar_path(path)).ok();
    join(&fs::read(path).unwrap(), side.as_deref())
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}
