//! Writer and recovery tests. The `tiff` crate is the independent reader.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use microscoped_driver_api::PixelType;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

use super::*;

fn meta(w: u32, h: u32, pixel_type: PixelType, t: u32, c: u32, z: u32) -> DatasetMeta {
    DatasetMeta {
        name: "test <run> & µ".into(),
        width: w,
        height: h,
        pixel_type,
        significant_bits: if pixel_type == PixelType::U16 { 12 } else { 8 },
        size_t: t,
        size_c: c,
        size_z: z,
        dimension_order: "XYZCT".into(),
        physical_size_um: Some(0.108),
        channels: (0..c)
            .map(|i| ChannelMeta::named(format!("ch{i}")))
            .collect(),
        physical_size_z_um: None,
        stage_label: None,
        instrument: InstrumentMeta {
            detector_model: "SimCam".into(),
            lasers: vec![
                LaserMeta {
                    name: "laser488".into(),
                    wavelength_nm: 488.0,
                    power_mw: 12.5,
                },
                LaserMeta {
                    name: "laser561".into(),
                    wavelength_nm: 561.0,
                    power_mw: 0.0,
                },
            ],
            objective: Some(ObjectiveMeta {
                model: "60x/1.4 oil".into(),
                magnification: Some(60.0),
                numerical_aperture: Some(1.4),
            }),
        },
        acquisition_date: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    }
}

fn plane(i: u32) -> PlaneMeta {
    PlaneMeta {
        the_t: i,
        the_c: 0,
        the_z: 0,
        delta_t_s: f64::from(i) * 0.5,
        exposure_ms: 10.0,
        position_x_um: Some(100.0 + f64::from(i)),
        position_y_um: Some(-5.25),
        position_z_um: None,
        light_mw: [
            Some(12.5),
            Some(f32::from(i as u8)),
            None,
            None,
            None,
            None,
            None,
            None,
        ],
    }
}

/// Distinct content per plane and per pixel.
fn frame(m: &DatasetMeta, i: u32) -> Vec<u8> {
    let n = (m.width * m.height) as usize;
    match m.pixel_type {
        PixelType::U16 => (0..n)
            .flat_map(|p| ((i as usize * 7919 + p * 13) as u16).to_le_bytes())
            .collect(),
        PixelType::U8 => (0..n).map(|p| (i as usize * 31 + p * 7) as u8).collect(),
    }
}

fn decoder(path: &Path) -> Decoder<File> {
    Decoder::new(File::open(path).unwrap()).unwrap()
}

/// Every image as (width, height, little-endian bytes).
fn read_all(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let mut d = decoder(path);
    let mut out = Vec::new();
    loop {
        let (w, h) = d.dimensions().unwrap();
        let bytes = match d.read_image().unwrap() {
            DecodingResult::U8(v) => v,
            DecodingResult::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            _ => panic!("unexpected sample type"),
        };
        out.push((w, h, bytes));
        if !d.more_images() {
            return out;
        }
        d.next_image().unwrap();
    }
}

fn count_images(path: &Path) -> usize {
    let mut d = decoder(path);
    let mut n = 1;
    while d.more_images() {
        d.next_image().unwrap();
        n += 1;
    }
    n
}

fn description(path: &Path) -> String {
    decoder(path)
        .get_tag_ascii_string(Tag::ImageDescription)
        .unwrap()
}

fn assert_planes(path: &Path, m: &DatasetMeta, n: u32) {
    let images = read_all(path);
    assert_eq!(images.len(), n as usize);
    for (i, (w, h, bytes)) in images.into_iter().enumerate() {
        assert_eq!((w, h), (m.width, m.height));
        assert!(bytes == frame(m, i as u32), "plane {i} differs");
    }
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write_planes(w: &mut OmeTiffWriter, m: &DatasetMeta, range: std::ops::Range<u32>) {
    for i in range {
        w.write_plane(&frame(m, i), &plane(i)).unwrap();
    }
}

#[test]
fn planes_read_back_bit_exact_and_xml_matches() {
    let d = dir();
    // 63x47 u8 makes planes of odd length, exercising the alignment padding.
    for m in [
        meta(64, 48, PixelType::U16, 5, 1, 1),
        meta(63, 47, PixelType::U8, 5, 1, 1),
    ] {
        let path = d.path().join(format!("{:?}.ome.tiff", m.pixel_type));
        let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
        assert!(sidecar_path(&path).exists());
        for i in 0..5 {
            w.write_plane(&frame(&m, i), &plane(i)).unwrap();
            // A valid TIFF after every plane.
            assert_eq!(count_images(&path), i as usize + 1);
            assert_eq!(w.planes(), u64::from(i) + 1);
            assert_eq!(w.bytes(), fs::metadata(&path).unwrap().len());
        }
        let counters = Counters {
            received: 7,
            written: 5,
            dropped: 2,
        };
        let f = w.finish(counters).unwrap();
        assert_eq!(f.planes, 5);
        assert_eq!(f.path, path);
        assert_eq!(f.bytes, fs::metadata(&path).unwrap().len());
        assert!(!sidecar_path(&path).exists());
        assert_planes(&path, &m, 5);

        let mut dec = decoder(&path);
        assert_eq!(
            dec.get_tag_ascii_string(Tag::Software).unwrap(),
            "microscoped"
        );
        dec.next_image().unwrap();
        assert!(dec.find_tag(Tag::ImageDescription).unwrap().is_none());

        let xml = description(&path);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(xml.ends_with("</OME>"));
        assert!(xml.is_ascii());
        assert!(xml.contains(" SizeT=\"5\" "), "{xml}");
        assert!(
            xml.contains(" SizeC=\"1\" SizeZ=\"1\"") || xml.contains(" SizeZ=\"1\" SizeC=\"1\"")
        );
        assert_eq!(xml.matches("<Plane ").count(), 5);
        assert!(xml.contains("<TiffData IFD=\"0\" PlaneCount=\"5\"/>"));
        assert!(xml.contains("<M K=\"received\">7</M><M K=\"written\">5</M><M K=\"dropped\">2</M>"));
        assert!(xml.contains("Name=\"test &lt;run&gt; &amp; &#xB5;\""));
        assert!(xml.contains("PhysicalSizeXUnit=\"&#xB5;m\""));
        assert!(xml.contains("<AcquisitionDate>2023-11-14T22:13:20.000000Z</AcquisitionDate>"));
        assert!(xml.contains(
            "<Plane TheZ=\"0\" TheT=\"4\" TheC=\"0\" DeltaT=\"2\" DeltaTUnit=\"s\" \
             ExposureTime=\"10\" ExposureTimeUnit=\"ms\" PositionX=\"104\""
        ));
        let bits = if m.pixel_type == PixelType::U16 {
            "12"
        } else {
            "8"
        };
        assert!(xml.contains(&format!("SignificantBits=\"{bits}\"")));
    }
}

#[test]
fn planned_xml_is_in_ifd0_before_finish() {
    let d = dir();
    let path = d.path().join("a.ome.tiff");
    let m = meta(16, 8, PixelType::U16, 10, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..2);
    let xml = description(&path);
    assert!(xml.contains(" SizeT=\"10\" "));
    assert!(!xml.contains("<Plane "));
    assert!(!xml.contains("MapAnnotation"));
    w.finish(Counters::default()).unwrap();
}

#[test]
fn create_refuses_an_existing_path() {
    let d = dir();
    let path = d.path().join("exists.ome.tiff");
    fs::write(&path, b"precious").unwrap();
    let e = OmeTiffWriter::create(&path, meta(8, 8, PixelType::U8, 1, 1, 1))
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&path).unwrap(), b"precious");
    assert!(!sidecar_path(&path).exists());

    // A stale sidecar is not clobbered either, and the new file is not left behind.
    let path = d.path().join("stale.ome.tiff");
    fs::write(sidecar_path(&path), b"old").unwrap();
    let e = OmeTiffWriter::create(&path, meta(8, 8, PixelType::U8, 1, 1, 1))
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    assert!(!path.exists());
    assert_eq!(fs::read(sidecar_path(&path)).unwrap(), b"old");
}

#[test]
fn bad_input_is_refused() {
    let d = dir();
    let mut m = meta(8, 8, PixelType::U8, 1, 1, 1);
    m.dimension_order = "XYZ".into();
    let e = OmeTiffWriter::create(&d.path().join("x"), m).err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

    let m = meta(8, 8, PixelType::U16, 1, 1, 1);
    let path = d.path().join("y.ome.tiff");
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    let e = w.write_plane(&[0u8; 64], &plane(0)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(w.planes(), 0);
    write_planes(&mut w, &m, 0..1);
    w.finish(Counters::default()).unwrap();
    assert_planes(&path, &m, 1);
}

#[test]
fn early_stop_corrects_size_t() {
    let d = dir();
    let path = d.path().join("early.ome.tiff");
    let m = meta(64, 48, PixelType::U16, 10, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..3);
    let counters = Counters {
        received: 3,
        written: 3,
        dropped: 0,
    };
    w.finish(counters).unwrap();
    assert_planes(&path, &m, 3);
    let xml = description(&path);
    assert!(xml.contains(" SizeT=\"3\" "));
    assert!(!xml.contains(" SizeT=\"10\" "));
    assert_eq!(xml.matches("<Plane ").count(), 3);
    assert!(xml.contains("<TiffData IFD=\"0\" PlaneCount=\"3\"/>"));
    assert!(xml.contains("<AnnotationRef ID=\"Annotation:0\"/>"));
    assert!(xml.contains("Namespace=\"microscoped/counters\""));
    assert!(xml.contains("<M K=\"written\">3</M>"));
}

#[test]
fn dropped_frames_in_a_sequence_leave_no_hole() {
    let d = dir();
    let path = d.path().join("drops.ome.tiff");
    let m = meta(8, 8, PixelType::U8, 10, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    for (i, t) in [0u32, 1, 5].into_iter().enumerate() {
        w.write_plane(&frame(&m, i as u32), &plane(t)).unwrap();
    }
    w.finish(Counters::default()).unwrap();
    let xml = description(&path);
    assert!(xml.contains(" SizeT=\"3\" "));
    assert!(xml.contains("TheT=\"2\" TheC=\"0\" DeltaT=\"2.5\""));
    // Light power per plane, in a MapAnnotation the plane refers to.
    assert!(
        xml.contains("<AnnotationRef ID=\"Annotation:Plane2\"/></Plane>"),
        "{xml}"
    );
    assert!(xml.contains("power_mW\">12.5</M>"), "{xml}");
}

fn multi_plane(t: u32, c: u32, z: u32) -> PlaneMeta {
    PlaneMeta {
        the_t: t,
        the_c: c,
        the_z: z,
        ..plane(0)
    }
}

#[test]
fn multidimensional_runs_map_every_plane() {
    let d = dir();
    // XYZCT: z fastest, then c, then t.
    let order: Vec<_> = (0..3)
        .flat_map(|t| (0..2).flat_map(move |c| (0..2).map(move |z| (t, c, z))))
        .collect();

    // Stopped during t = 1: 6 of 12 planes.
    let path = d.path().join("partial.ome.tiff");
    let m = meta(8, 4, PixelType::U16, 3, 2, 2);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    for (i, &(t, c, z)) in order[..6].iter().enumerate() {
        w.write_plane(&frame(&m, i as u32), &multi_plane(t, c, z))
            .unwrap();
    }
    w.finish(Counters::default()).unwrap();
    assert_planes(&path, &m, 6);
    let xml = description(&path);
    assert!(
        xml.contains(" SizeZ=\"2\" SizeC=\"2\" SizeT=\"2\" "),
        "{xml}"
    );
    assert_eq!(xml.matches("<TiffData ").count(), 6);
    assert!(xml
        .contains("<TiffData IFD=\"5\" FirstT=\"1\" FirstC=\"0\" FirstZ=\"1\" PlaneCount=\"1\"/>"));
    assert!(xml.contains("<Plane TheZ=\"1\" TheT=\"1\" TheC=\"0\""));
    assert_eq!(xml.matches("<Channel ").count(), 2);

    // The full plan: one TiffData.
    let path = d.path().join("full.ome.tiff");
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    for (i, &(t, c, z)) in order.iter().enumerate() {
        w.write_plane(&frame(&m, i as u32), &multi_plane(t, c, z))
            .unwrap();
    }
    w.finish(Counters::default()).unwrap();
    let xml = description(&path);
    assert!(xml.contains(" SizeZ=\"2\" SizeC=\"2\" SizeT=\"3\" "));
    assert!(xml.contains("<TiffData IFD=\"0\" PlaneCount=\"12\"/>"));
    assert_eq!(xml.matches("<TiffData ").count(), 1);
}

#[test]
fn channel_light_z_step_and_stage_label_survive_a_crash_in_schema_order() {
    let d = dir();
    let path = d.path().join("lit.ome.tiff");
    let mut m = meta(8, 4, PixelType::U16, 1, 2, 3);
    m.channels[0] = ChannelMeta {
        name: "GFP".into(),
        excitation_nm: Some(488.0),
        emission_nm: Some(525.0),
    };
    m.physical_size_z_um = Some(0.300_000_000_000_000_04);
    m.stage_label = Some(StageLabel {
        name: "left <1>".into(),
        x_um: Some(100.000_000_1),
        y_um: Some(-5.0),
        z_um: None,
    });
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    let mut i = 0;
    for c in 0..2 {
        for z in 0..3 {
            let p = PlaneMeta {
                delta_t_s: 0.123_456_789_123,
                exposure_ms: 10.000_000_2,
                ..multi_plane(0, c, z)
            };
            w.write_plane(&frame(&m, i), &p).unwrap();
            i += 1;
        }
    }
    // A kill, then recovery: everything comes back from the sidecar.
    drop(w);
    recover(&path).unwrap();
    let xml = description(&path);
    assert!(
        xml.contains(" PhysicalSizeZ=\"0.3\" PhysicalSizeZUnit=\"&#xB5;m\""),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<Channel ID=\"Channel:0:0\" Name=\"GFP\" SamplesPerPixel=\"1\" \
             ExcitationWavelength=\"488\" ExcitationWavelengthUnit=\"nm\" \
             EmissionWavelength=\"525\" EmissionWavelengthUnit=\"nm\"/>"
        ),
        "{xml}"
    );
    assert!(xml.contains("<Channel ID=\"Channel:0:1\" Name=\"ch1\" SamplesPerPixel=\"1\"/>"));
    // Image: ObjectiveSettings, StageLabel, Pixels, in that order.
    let label = "<StageLabel Name=\"left &lt;1&gt;\" X=\"100\" XUnit=\"&#xB5;m\" Y=\"-5\" YUnit=\"&#xB5;m\"/>";
    let (objective, at, pixels) = (
        xml.find("<ObjectiveSettings").unwrap(),
        xml.find(label).expect("the stage label"),
        xml.find("<Pixels").unwrap(),
    );
    assert!(objective < at && at < pixels, "{xml}");
    assert!(
        xml.contains(" DeltaT=\"0.123457\" DeltaTUnit=\"s\" ExposureTime=\"10\" "),
        "{xml}"
    );

    // A sidecar from before channels had light names them only; it still reads.
    let old: DatasetMeta = serde_json::from_str(
        &serde_json::to_string(&meta(8, 4, PixelType::U16, 1, 2, 1))
            .unwrap()
            .replace(
                r#"{"name":"ch0","excitation_nm":null,"emission_nm":null}"#,
                r#""ch0""#,
            ),
    )
    .unwrap();
    assert_eq!(old.channels[0], ChannelMeta::named("ch0"));
    assert_eq!(old.physical_size_z_um, None);
}

#[test]
fn finishing_with_no_planes_removes_the_file() {
    let d = dir();
    let path = d.path().join("empty.ome.tiff");
    let w = OmeTiffWriter::create(&path, meta(8, 8, PixelType::U8, 3, 1, 1)).unwrap();
    let f = w.finish(Counters::default()).unwrap();
    assert_eq!((f.planes, f.bytes), (0, 0));
    assert!(!path.exists());
    assert!(!sidecar_path(&path).exists());
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn crash_then_recover() {
    let d = dir();
    let path = d.path().join("crash.ome.tiff");
    let m = meta(64, 48, PixelType::U16, 100, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..4);
    let good_len = w.bytes();
    // A kill: no finish. Then half of a fifth plane's data reaches the file.
    drop(w);
    let garbage = vec![0xAB; 3000];
    append(&path, &garbage);
    assert!(sidecar_path(&path).exists());
    assert_eq!(count_images(&path), 4);

    let r = recover(&path).unwrap();
    assert_eq!(r.planes, 4);
    assert_eq!(r.truncated_bytes, 3000);
    assert!(!r.already_complete);
    assert_eq!(r.planes_without_metadata, 0);
    assert_eq!(r.bytes, fs::metadata(&path).unwrap().len());
    assert!(r.bytes > good_len);
    assert!(!sidecar_path(&path).exists());
    assert_planes(&path, &m, 4);
    let xml = description(&path);
    assert!(xml.contains(" SizeT=\"4\" "));
    assert_eq!(xml.matches("<Plane ").count(), 4);
    assert!(xml.contains("PositionX=\"103\" PositionXUnit=\"&#xB5;m\" PositionY=\"-5.25\""));
    assert!(xml.contains("DeltaT=\"1.5\""));
    assert!(xml.contains("<M K=\"recovered\">true</M>"));

    let again = recover(&path).unwrap();
    assert!(again.already_complete);
    assert_eq!(again.planes, 4);
    assert_eq!(again.truncated_bytes, 0);
    assert_eq!(description(&path), xml);
}

/// A writer whose file the run's pool closed between planes: the file reads (by index and by
/// (t, c, z) through the sidecar) while closed, the next plane opens it again and appends, and
/// a kill while it is closed leaves what `recover` completes.
#[test]
fn a_closed_writer_reopens_appends_reads_and_recovers() {
    let d = dir();
    let path = d.path().join("pooled.ome.tiff");
    let m = meta(32, 16, PixelType::U16, 6, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..2);
    w.close();
    assert!(!w.is_open());
    // Closed: what was written is there for readers.
    assert_eq!(count_images(&path), 2);
    let p = read_plane(&path, PlaneAddress::Coords { t: 1, c: 0, z: 0 }).unwrap();
    assert_eq!((p.index, p.data), (1, frame(&m, 1)));
    // The next plane opens it again and goes on where it was.
    write_planes(&mut w, &m, 2..4);
    assert!(w.is_open() && !w.is_complete());
    w.close();
    write_planes(&mut w, &m, 4..6);
    assert!(w.is_complete());
    w.close();
    let p = read_plane(&path, PlaneAddress::Index(5)).unwrap();
    assert_eq!(p.data, frame(&m, 5));
    // Killed while closed, then recovered: every plane with its metadata.
    drop(w);
    let r = recover(&path).unwrap();
    assert_eq!((r.planes, r.planes_without_metadata), (6, 0));
    assert_planes(&path, &m, 6);
    assert!(description(&path).contains(" SizeT=\"6\" "));

    // Finishing a closed writer opens it for the XML.
    let path = d.path().join("finished.ome.tiff");
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..3);
    w.close();
    let f = w.finish(Counters::default()).unwrap();
    assert_eq!(f.planes, 3);
    assert!(!sidecar_path(&path).exists());
    assert_planes(&path, &m, 3);
    assert!(description(&path).contains(" SizeT=\"3\" "));

    // A file removed while closed is an error, never a new empty file.
    let path = d.path().join("gone.ome.tiff");
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    w.close();
    fs::remove_file(&path).unwrap();
    let e = w.write_plane(&frame(&m, 0), &plane(0)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(!path.exists());
}

#[test]
fn recover_without_the_last_sidecar_line() {
    let d = dir();
    let path = d.path().join("torn.ome.tiff");
    let m = meta(10, 10, PixelType::U8, 5, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..3);
    drop(w);
    // Killed after linking plane 2 but mid-way through its sidecar line.
    let side = sidecar_path(&path);
    let len = fs::metadata(&side).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&side)
        .unwrap()
        .set_len(len - 20)
        .unwrap();

    let r = recover(&path).unwrap();
    assert_eq!((r.planes, r.planes_without_metadata), (3, 1));
    assert_planes(&path, &m, 3);
    let xml = description(&path);
    assert!(xml.contains("<Plane TheZ=\"0\" TheT=\"2\" TheC=\"0\"/>"));
    assert!(xml.contains("<Plane TheZ=\"0\" TheT=\"1\" TheC=\"0\" DeltaT=\"0.5\""));
}

#[test]
fn recover_cuts_an_xml_left_by_an_interrupted_finish() {
    let d = dir();
    let path = d.path().join("interrupted.ome.tiff");
    let m = meta(10, 10, PixelType::U16, 5, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..2);
    let side = sidecar_path(&path);
    let saved = fs::read(&side).unwrap();
    let len = w.bytes();
    let f = w.finish(Counters::default()).unwrap();
    // As if killed after the XML was written but before the sidecar was removed.
    fs::write(&side, saved).unwrap();
    let r = recover(&path).unwrap();
    assert_eq!(r.planes, 2);
    assert_eq!(r.truncated_bytes, f.bytes - len);
    assert_planes(&path, &m, 2);
    assert!(description(&path).contains("<M K=\"recovered\">true</M>"));
}

#[test]
fn recover_rejects_other_files() {
    let d = dir();
    let missing = recover(&d.path().join("missing.ome.tiff")).unwrap_err();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);

    let junk = d.path().join("junk.tif");
    fs::write(&junk, vec![7u8; 100]).unwrap();
    let e = recover(&junk).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(
        e.to_string()
            .contains("not an OME-TIFF written by microscoped"),
        "{e}"
    );

    // A BigTIFF by someone else.
    let other = d.path().join("other.tif");
    {
        let f = File::create(&other).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new_big(f).unwrap();
        enc.write_image::<tiff::encoder::colortype::Gray8>(4, 4, &[0u8; 16])
            .unwrap();
    }
    let e = recover(&other).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);

    // A BigTIFF header with no image and no sidecar is not something we leave behind.
    let bare = d.path().join("bare.ome.tiff");
    fs::write(&bare, b"II\x2b\x00\x08\x00\x00\x00\0\0\0\0\0\0\0\0").unwrap();
    let e = recover(&bare).unwrap_err();
    assert!(e.to_string().contains("holds no image"), "{e}");
}

/// Overwrites the value of `tag` in the IFD of plane `plane` (from 0).
fn patch_ifd_value(path: &Path, plane: usize, tag: u16, value: u64) {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = file.metadata().unwrap().len();
    let mut at = layout::read_header(&file, len).unwrap();
    for _ in 0..plane {
        at = layout::read_ifd(&file, at, len).unwrap().next;
    }
    let ifd = layout::read_ifd(&file, at, len).unwrap();
    let entry = layout::entry_pos(at, ifd.index_of(tag).unwrap());
    // Tag (2 bytes), type (2), count (8), then the value.
    file.write_all_at(&value.to_le_bytes(), entry + 12).unwrap();
}

/// Found by the `recover` fuzz target: a plane whose BitsPerSample was not the sidecar's was
/// kept, so `recover` reported a repaired file that `read_plane` then called damaged.
#[test]
fn recover_keeps_only_planes_of_the_sidecars_sample_size() {
    let d = dir();
    let m = meta(4, 3, PixelType::U8, 5, 1, 1);
    let killed = |name: &str| {
        let path = d.path().join(name);
        let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
        write_planes(&mut w, &m, 0..3);
        drop(w);
        path
    };

    // The damaged plane and everything after it is cut; what is kept reads back.
    let path = killed("second.ome.tiff");
    patch_ifd_value(&path, 1, layout::tag::BITS_PER_SAMPLE, 65287);
    let r = recover(&path).unwrap();
    assert_eq!(r.planes, 1, "{r:?}");
    assert_planes(&path, &m, 1);
    let p = read_plane(&path, PlaneAddress::Index(0)).unwrap();
    assert_eq!((p.bits_per_sample, p.data), (8, frame(&m, 0)));

    // Damage in IFD 0 leaves nothing to keep: refused, the file left as it was.
    let path = killed("first.ome.tiff");
    patch_ifd_value(&path, 0, layout::tag::BITS_PER_SAMPLE, 65287);
    let before = fs::read(&path).unwrap();
    let e = recover(&path).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(
        e.to_string().contains("IFD 0 does not match the sidecar"),
        "{e}"
    );
    assert_eq!(fs::read(&path).unwrap(), before);
}

/// Found by the `read_plane` fuzz target: a plane whose IFD said 0 bits a sample (and 0 bytes)
/// was read as an empty plane instead of a damaged one.
#[test]
fn read_plane_refuses_planes_microscoped_does_not_write() {
    let d = dir();
    let path = d.path().join("patched.ome.tiff");
    let m = meta(4, 3, PixelType::U8, 3, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..3);
    w.finish(Counters::default()).unwrap();
    patch_ifd_value(&path, 1, layout::tag::BITS_PER_SAMPLE, 0);
    patch_ifd_value(&path, 1, layout::tag::STRIP_BYTE_COUNTS, 0);
    patch_ifd_value(&path, 2, layout::tag::IMAGE_WIDTH, 0);
    patch_ifd_value(&path, 2, layout::tag::STRIP_BYTE_COUNTS, 0);

    assert_eq!(
        read_plane(&path, PlaneAddress::Index(0)).unwrap().data,
        frame(&m, 0)
    );
    for (index, shape) in [(1, "a 4x3 0-bit plane"), (2, "a 0x3 8-bit plane")] {
        match read_plane(&path, PlaneAddress::Index(index)) {
            Err(ReadError::Corrupt(e)) => assert!(e.contains(shape), "{e}"),
            other => panic!("plane {index}: {other:?}"),
        }
    }
}

#[test]
fn recover_removes_a_file_killed_before_its_first_plane() {
    let d = dir();
    // In a folder of its own, named as the dataset (as the daemon lays it out): all of it goes.
    let folder = d.path().join("img");
    fs::create_dir(&folder).unwrap();
    let early = folder.join("img.ome.tiff");
    let mut m = meta(4, 4, PixelType::U8, 1, 1, 1);
    m.name = "img".into();
    drop(OmeTiffWriter::create(&early, m).unwrap());
    let r = recover(&early).unwrap();
    assert!(r.empty && r.planes == 0 && !r.already_complete);
    assert_eq!(
        r.removed,
        [early.clone(), sidecar_path(&early), folder.clone()]
    );
    assert!(!folder.exists());

    // Beside other files, or in a folder not named as the dataset: the folder stays.
    let kept = d.path().join("img2.ome.tiff");
    drop(OmeTiffWriter::create(&kept, meta(4, 4, PixelType::U8, 1, 1, 1)).unwrap());
    let r = recover(&kept).unwrap();
    assert_eq!(r.removed, [kept.clone(), sidecar_path(&kept)]);
    assert!(d.path().exists() && !kept.exists());
}

#[test]
fn disk_full_keeps_complete_planes_and_finishes() {
    let d = dir();
    let path = d.path().join("full.ome.tiff");
    let m = meta(128, 128, PixelType::U16, 10, 1, 1);
    let plane_bytes = 128 * 128 * 2;
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..3);
    let len = w.bytes();

    // The disk fills half-way through the pixel data ...
    w.set_limits(Some(len + plane_bytes / 2), None);
    let e = w.write_plane(&frame(&m, 3), &plane(3)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    assert_eq!((w.planes(), w.bytes()), (3, len));
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    assert_eq!(count_images(&path), 3);

    // ... or in the IFD, after all the pixel data.
    w.set_limits(Some(len + plane_bytes + 12), None);
    let e = w.write_plane(&frame(&m, 3), &plane(3)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    assert_eq!(count_images(&path), 3);

    // Finishing needs only the room the partial plane took.
    w.set_limits(Some(len + plane_bytes / 4), None);
    let f = w.finish(Counters::default()).unwrap();
    assert_eq!(f.planes, 3);
    assert_planes(&path, &m, 3);
    let xml = description(&path);
    assert!(xml.contains(" SizeT=\"3\" "));
    assert_eq!(xml.matches("<Plane ").count(), 3);
    assert!(!sidecar_path(&path).exists());
}

#[test]
fn a_failed_finish_leaves_a_recoverable_file() {
    let d = dir();
    let path = d.path().join("nofinish.ome.tiff");
    let m = meta(16, 16, PixelType::U16, 10, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..2);
    let len = w.bytes();
    w.set_limits(Some(len + 10), None);
    let e = w.finish(Counters::default()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    assert_eq!(count_images(&path), 2);
    assert!(sidecar_path(&path).exists());
    assert_eq!(recover(&path).unwrap().planes, 2);
    assert_planes(&path, &m, 2);
}

#[test]
fn a_failed_sidecar_write_unlinks_the_plane() {
    let d = dir();
    let path = d.path().join("side.ome.tiff");
    let m = meta(16, 16, PixelType::U8, 10, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..2);
    let side_len = fs::metadata(sidecar_path(&path)).unwrap().len();
    w.set_limits(None, Some(side_len + 5));
    let e = w.write_plane(&frame(&m, 2), &plane(2)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    assert_eq!(w.planes(), 2);
    assert_eq!(count_images(&path), 2);
    assert_eq!(fs::metadata(&path).unwrap().len(), w.bytes());
    assert_eq!(fs::metadata(sidecar_path(&path)).unwrap().len(), side_len);

    // Space comes back: the writer carries on.
    w.set_limits(None, None);
    write_planes(&mut w, &m, 2..3);
    w.finish(Counters::default()).unwrap();
    assert_planes(&path, &m, 3);
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn real_disk_full_on_a_small_tmpfs() {
    let d = dir();
    let mnt = d.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!(
                "skipping: cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("skipping: cannot run mount: {e}");
            return;
        }
    }
    let _guard = Mount(mnt.clone());
    let path = mnt.join("full.ome.tiff");
    let m = meta(256, 256, PixelType::U16, 100, 1, 1);
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    let mut written = 0;
    let err = loop {
        match w.write_plane(&frame(&m, written), &plane(written)) {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 100, "a 1 MiB tmpfs took 100 planes of 128 KiB");
    };
    assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    assert!(written >= 3);
    let f = w.finish(Counters::default()).unwrap();
    assert_eq!(f.planes, u64::from(written));
    assert_planes(&path, &m, written);
    assert!(description(&path).contains(&format!(" SizeT=\"{written}\" ")));
}

/// Writes sample files for `tests/python/check_ometiff.py` into /tmp. Run with
/// `cargo test --lib storage::tests::write_python_samples -- --ignored --nocapture`.
#[test]
#[ignore]
fn write_python_samples() {
    let out = Path::new("/tmp/microscoped-samples");
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out).unwrap();

    let m = meta(64, 48, PixelType::U16, 10, 1, 1);
    let mut w = OmeTiffWriter::create(&out.join("seq_u16.ome.tiff"), m.clone()).unwrap();
    write_planes(&mut w, &m, 0..5);
    w.finish(Counters {
        received: 5,
        written: 5,
        dropped: 0,
    })
    .unwrap();

    let m = meta(63, 47, PixelType::U8, 3, 1, 1);
    let mut w = OmeTiffWriter::create(&out.join("seq_u8.ome.tiff"), m.clone()).unwrap();
    write_planes(&mut w, &m, 0..3);
    w.finish(Counters::default()).unwrap();

    let m = meta(32, 24, PixelType::U16, 3, 2, 2);
    let mut w = OmeTiffWriter::create(&out.join("partial_tcz.ome.tiff"), m.clone()).unwrap();
    let order: Vec<_> = (0..3)
        .flat_map(|t| (0..2).flat_map(move |c| (0..2).map(move |z| (t, c, z))))
        .collect();
    for (i, &(t, c, z)) in order[..6].iter().enumerate() {
        w.write_plane(&frame(&m, i as u32), &multi_plane(t, c, z))
            .unwrap();
    }
    w.finish(Counters::default()).unwrap();

    let mut m = meta(32, 24, PixelType::U16, 2, 2, 2);
    m.instrument = InstrumentMeta::default();
    m.physical_size_um = None;
    let mut w = OmeTiffWriter::create(&out.join("full_tcz.ome.tiff"), m.clone()).unwrap();
    for (i, &(t, c, z)) in order[..8].iter().enumerate() {
        w.write_plane(&frame(&m, i as u32), &multi_plane(t, c, z))
            .unwrap();
    }
    w.finish(Counters::default()).unwrap();

    let m = meta(64, 48, PixelType::U16, 10, 1, 1);
    let path = out.join("recovered.ome.tiff");
    let mut w = OmeTiffWriter::create(&path, m.clone()).unwrap();
    write_planes(&mut w, &m, 0..4);
    drop(w);
    append(&path, &[1u8; 999]);
    recover(&path).unwrap();
    println!("samples in {}", out.display());
}
