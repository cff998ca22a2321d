//! OME-XML (2016-06 schema) for our files.
//!
//! The output is pure ASCII: non-ASCII characters (the "µ" in "µm", names) are written as
//! numeric character references. That is still the declared UTF-8, and it keeps readers that
//! insist TIFF ASCII tags be ASCII happy.
//!
//! How written planes map to OME indices (see [`resolve`]):
//! - A plain sequence (planned SizeC = SizeZ = 1): plane i is T = i, SizeT = planes written. A
//!   dropped frame leaves no hole; each Plane's DeltaT says when it was taken.
//! - Otherwise SizeT = the highest T written + 1 (time points started), SizeC/SizeZ = the plan
//!   (widened if a plane lies outside it). When the planes are exactly the full stack in
//!   DimensionOrder, one `<TiffData IFD="0" PlaneCount="N"/>` maps them; otherwise (an early
//!   stop, a dropped frame) every plane gets its own TiffData with explicit FirstT/FirstC/FirstZ,
//!   and indices no plane maps to are simply absent (readers fill them).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use microscoped_driver_api::PixelType;

use super::{DatasetMeta, PlaneMeta};

const NS: &str = "http://www.openmicroscopy.org/Schemas/OME/2016-06";
const MICROMETRE: &str = "µm";

// Decimals each quantity is written with: what the instrument can tell apart, no more (a
// float's 16 digits say nothing more about the sample and hide what matters).
/// Seconds to the microsecond (DeltaT).
const SECONDS: usize = 6;
/// Milliseconds to the microsecond (ExposureTime).
const MILLISECONDS: usize = 3;
/// Stage positions to the nanometre.
const POSITION_UM: usize = 3;
/// Pixel and z-step sizes to the picometre: a size is multiplied by many pixels.
const SIZE_UM: usize = 6;
/// Wavelengths to a hundredth of a nanometre.
const WAVELENGTH_NM: usize = 2;
/// Laser power to the microwatt.
const POWER_MW: usize = 3;

/// One written plane as the XML sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XmlPlane {
    pub the_t: u32,
    pub the_c: u32,
    pub the_z: u32,
    /// Absent when recovery had no sidecar record for the plane: then only indices are written.
    pub meta: Option<PlaneMeta>,
}

impl From<&PlaneMeta> for XmlPlane {
    fn from(p: &PlaneMeta) -> Self {
        Self {
            the_t: p.the_t,
            the_c: p.the_c,
            the_z: p.the_z,
            meta: Some(*p),
        }
    }
}

/// What the Pixels element describes.
pub(crate) enum Contents<'a> {
    /// The plan, written when the file is created: no Plane elements.
    Planned,
    /// The planes actually in the file, plus key/value pairs for the MapAnnotation.
    Written {
        planes: &'a [XmlPlane],
        annotations: &'a [(&'a str, String)],
    },
}

/// True for the six OME DimensionOrder values.
pub(crate) fn valid_dimension_order(s: &str) -> bool {
    matches!(s, "XYZCT" | "XYZTC" | "XYCTZ" | "XYCZT" | "XYTCZ" | "XYTZC")
}

fn bits(p: PixelType) -> u32 {
    match p {
        PixelType::U8 => 8,
        PixelType::U16 => 16,
    }
}

/// Sizes and per-plane indices for the written planes.
pub(crate) struct Resolved {
    pub size_t: u32,
    pub size_c: u32,
    pub size_z: u32,
    /// (t, c, z) per plane, in IFD order.
    pub indices: Vec<(u32, u32, u32)>,
    /// The planes are exactly the full stack in DimensionOrder.
    pub contiguous: bool,
}

/// Works out the OME sizes and plane indices (see the module doc).
pub(crate) fn resolve(meta: &DatasetMeta, planes: &[XmlPlane]) -> Resolved {
    let n = planes.len() as u32;
    if meta.size_c <= 1 && meta.size_z <= 1 {
        return Resolved {
            size_t: n.max(1),
            size_c: 1,
            size_z: 1,
            indices: (0..n).map(|i| (i, 0, 0)).collect(),
            contiguous: true,
        };
    }
    let indices: Vec<_> = planes.iter().map(|p| (p.the_t, p.the_c, p.the_z)).collect();
    let max = |f: fn(&(u32, u32, u32)) -> u32| indices.iter().map(f).max().unwrap_or(0);
    let size_t = max(|i| i.0).saturating_add(1);
    let size_c = meta.size_c.max(max(|i| i.1).saturating_add(1));
    let size_z = meta.size_z.max(max(|i| i.2).saturating_add(1));
    let stride = |dim: u8| -> u64 {
        let mut s = 1u64;
        for d in meta.dimension_order.bytes().skip(2) {
            if d == dim {
                break;
            }
            s *= u64::from(match d {
                b'T' => size_t,
                b'C' => size_c,
                _ => size_z,
            });
        }
        s
    };
    let (st, sc, sz) = (stride(b'T'), stride(b'C'), stride(b'Z'));
    let total = u64::from(size_t) * u64::from(size_c) * u64::from(size_z);
    let contiguous = total == u64::from(n)
        && indices.iter().enumerate().all(|(i, &(t, c, z))| {
            u64::from(t) * st + u64::from(c) * sc + u64::from(z) * sz == i as u64
        });
    Resolved {
        size_t,
        size_c,
        size_z,
        indices,
        contiguous,
    }
}

/// Builds the OME-XML document.
pub(crate) fn ome_xml(meta: &DatasetMeta, uuid: &str, contents: Contents<'_>) -> String {
    let mut x = String::with_capacity(4096);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OME");
    attr(&mut x, "xmlns", NS);
    attr(
        &mut x,
        "xmlns:xsi",
        "http://www.w3.org/2001/XMLSchema-instance",
    );
    attr(&mut x, "xsi:schemaLocation", &format!("{NS} {NS}/ome.xsd"));
    attr(&mut x, "UUID", uuid);
    attr(
        &mut x,
        "Creator",
        concat!("microscoped ", env!("CARGO_PKG_VERSION")),
    );
    x.push_str(">\n");

    // Instrument: LightSourceGroup*, Detector*, Objective* in that order (schema).
    let inst = &meta.instrument;
    x.push_str("<Instrument ID=\"Instrument:0\">\n");
    for (i, laser) in inst.lasers.iter().enumerate() {
        x.push_str("<Laser");
        attr(&mut x, "ID", &format!("LightSource:{i}"));
        if !laser.name.is_empty() {
            attr(&mut x, "Model", &laser.name);
        }
        attr_round(&mut x, "Power", Some(laser.power_mw), POWER_MW);
        attr(&mut x, "PowerUnit", "mW");
        attr_pos(
            &mut x,
            "Wavelength",
            Some(laser.wavelength_nm),
            WAVELENGTH_NM,
        );
        attr(&mut x, "WavelengthUnit", "nm");
        x.push_str("/>\n");
    }
    x.push_str("<Detector ID=\"Detector:0\"");
    if !inst.detector_model.is_empty() {
        attr(&mut x, "Model", &inst.detector_model);
    }
    x.push_str("/>\n");
    if let Some(obj) = &inst.objective {
        x.push_str("<Objective ID=\"Objective:0\"");
        if !obj.model.is_empty() {
            attr(&mut x, "Model", &obj.model);
        }
        attr_pos(&mut x, "NominalMagnification", obj.magnification, 3);
        attr_round(&mut x, "LensNA", obj.numerical_aperture, 3);
        x.push_str("/>\n");
    }
    x.push_str("</Instrument>\n");

    // Image: AcquisitionDate, InstrumentRef, ObjectiveSettings, Pixels, AnnotationRef (schema).
    x.push_str("<Image ID=\"Image:0\"");
    attr(&mut x, "Name", &meta.name);
    x.push_str(">\n<AcquisitionDate>");
    x.push_str(&crate::time::iso8601(meta.acquisition_date));
    x.push_str("</AcquisitionDate>\n<InstrumentRef ID=\"Instrument:0\"/>\n");
    if inst.objective.is_some() {
        x.push_str("<ObjectiveSettings ID=\"Objective:0\"/>\n");
    }
    // Image: ... ImagingEnvironment?, StageLabel?, Pixels (schema).
    if let Some(label) = &meta.stage_label {
        x.push_str("<StageLabel");
        attr(&mut x, "Name", &label.name);
        for (key, v) in [("X", label.x_um), ("Y", label.y_um), ("Z", label.z_um)] {
            if v.is_some_and(f64::is_finite) {
                attr_round(&mut x, key, v, POSITION_UM);
                attr(&mut x, &format!("{key}Unit"), MICROMETRE);
            }
        }
        x.push_str("/>\n");
    }

    let b = bits(meta.pixel_type);
    let (size_t, size_c, size_z, written) = match &contents {
        Contents::Planned => (
            meta.size_t.max(1),
            meta.size_c.max(1),
            meta.size_z.max(1),
            None,
        ),
        Contents::Written { planes, .. } => {
            let r = resolve(meta, planes);
            (r.size_t, r.size_c, r.size_z, Some((r, *planes)))
        }
    };
    x.push_str("<Pixels ID=\"Pixels:0\"");
    attr(&mut x, "DimensionOrder", &meta.dimension_order);
    attr(
        &mut x,
        "Type",
        match meta.pixel_type {
            PixelType::U8 => "uint8",
            PixelType::U16 => "uint16",
        },
    );
    attr_num(&mut x, "SignificantBits", meta.significant_bits.clamp(1, b));
    attr_num(&mut x, "SizeX", meta.width);
    attr_num(&mut x, "SizeY", meta.height);
    attr_num(&mut x, "SizeZ", size_z);
    attr_num(&mut x, "SizeC", size_c);
    attr_num(&mut x, "SizeT", size_t);
    if meta
        .physical_size_um
        .is_some_and(|v| v > 0.0 && v.is_finite())
    {
        attr_pos(&mut x, "PhysicalSizeX", meta.physical_size_um, SIZE_UM);
        attr(&mut x, "PhysicalSizeXUnit", MICROMETRE);
        attr_pos(&mut x, "PhysicalSizeY", meta.physical_size_um, SIZE_UM);
        attr(&mut x, "PhysicalSizeYUnit", MICROMETRE);
    }
    // The z step means something only between planes of a stack.
    if size_z > 1
        && meta
            .physical_size_z_um
            .is_some_and(|v| v > 0.0 && v.is_finite())
    {
        attr_pos(&mut x, "PhysicalSizeZ", meta.physical_size_z_um, SIZE_UM);
        attr(&mut x, "PhysicalSizeZUnit", MICROMETRE);
    }
    attr(&mut x, "BigEndian", "false");
    attr(&mut x, "Interleaved", "false");
    x.push_str(">\n");

    // Pixels: Channel*, TiffData+, Plane* (schema).
    for c in 0..size_c {
        x.push_str("<Channel");
        attr(&mut x, "ID", &format!("Channel:0:{c}"));
        let channel = meta.channels.get(c as usize);
        if let Some(ch) = channel {
            attr(&mut x, "Name", &ch.name);
        }
        attr(&mut x, "SamplesPerPixel", "1");
        if let Some(ch) = channel {
            for (key, nm) in [
                ("ExcitationWavelength", ch.excitation_nm),
                ("EmissionWavelength", ch.emission_nm),
            ] {
                if nm.is_some_and(|v| v > 0.0 && v.is_finite()) {
                    attr_pos(&mut x, key, nm, WAVELENGTH_NM);
                    attr(&mut x, &format!("{key}Unit"), "nm");
                }
            }
        }
        // No LightSourceSettings pointing at the Laser: xmlschema (which ome-types validates
        // with) refuses that valid reference, as it misreads the schema's key over a union of
        // light source kinds; the wavelength is what readers use.
        x.push_str("/>\n");
    }
    match &written {
        None => {
            let planned = u64::from(size_t) * u64::from(size_c) * u64::from(size_z);
            let _ = writeln!(x, "<TiffData IFD=\"0\" PlaneCount=\"{planned}\"/>");
        }
        Some((r, _)) if r.contiguous => {
            let _ = writeln!(
                x,
                "<TiffData IFD=\"0\" PlaneCount=\"{}\"/>",
                r.indices.len()
            );
        }
        Some((r, _)) => {
            for (ifd, (t, c, z)) in r.indices.iter().enumerate() {
                // Writing to a String cannot fail.
                let _ = writeln!(
                    x,
                    "<TiffData IFD=\"{ifd}\" FirstT=\"{t}\" FirstC=\"{c}\" FirstZ=\"{z}\" PlaneCount=\"1\"/>"
                );
            }
        }
    }
    // Per-plane light power goes in MapAnnotations the planes refer to: OME's Plane has no
    // attribute for it. Collected here, written after the counters' annotation.
    let mut light_annotations = String::new();
    if let Some((r, planes)) = &written {
        for (i, (&(t, c, z), p)) in r.indices.iter().zip(planes.iter()).enumerate() {
            let _ = write!(x, "<Plane TheZ=\"{z}\" TheT=\"{t}\" TheC=\"{c}\"");
            let mut light = String::new();
            if let Some(m) = &p.meta {
                if m.delta_t_s.is_finite() {
                    attr_round(&mut x, "DeltaT", Some(m.delta_t_s), SECONDS);
                    attr(&mut x, "DeltaTUnit", "s");
                }
                if m.exposure_ms.is_finite() {
                    attr_round(&mut x, "ExposureTime", Some(m.exposure_ms), MILLISECONDS);
                    attr(&mut x, "ExposureTimeUnit", "ms");
                }
                for (name, v) in [
                    ("PositionX", m.position_x_um),
                    ("PositionY", m.position_y_um),
                    ("PositionZ", m.position_z_um),
                ] {
                    if v.is_some_and(f64::is_finite) {
                        attr_round(&mut x, name, v, POSITION_UM);
                        attr(&mut x, &format!("{name}Unit"), MICROMETRE);
                    }
                }
                for (laser, mw) in meta.instrument.lasers.iter().zip(m.light_mw.iter()) {
                    if let Some(mw) = mw.filter(|v| v.is_finite()) {
                        light.push_str("<M");
                        attr(&mut light, "K", &format!("{} power_mW", laser.name));
                        let _ = write!(light, ">{}</M>", rounded(f64::from(mw), POWER_MW));
                    }
                }
            }
            if light.is_empty() {
                x.push_str("/>\n");
            } else {
                let id = format!("Annotation:Plane{i}");
                let _ = writeln!(x, "><AnnotationRef ID=\"{id}\"/></Plane>");
                let _ = writeln!(
                    light_annotations,
                    "<MapAnnotation ID=\"{id}\" Namespace=\"microscoped/plane-light\"><Value>{light}</Value></MapAnnotation>"
                );
            }
        }
    }
    x.push_str("</Pixels>\n");

    let annotations = match contents {
        Contents::Written { annotations, .. } if !annotations.is_empty() => Some(annotations),
        _ => None,
    };
    if annotations.is_some() {
        x.push_str("<AnnotationRef ID=\"Annotation:0\"/>\n");
    }
    x.push_str("</Image>\n");
    if annotations.is_some() || !light_annotations.is_empty() {
        x.push_str("<StructuredAnnotations>\n");
        if let Some(pairs) = annotations {
            x.push_str("<MapAnnotation ID=\"Annotation:0\"");
            attr(&mut x, "Namespace", "microscoped/counters");
            x.push_str("><Value>");
            for (k, v) in pairs {
                x.push_str("<M");
                attr(&mut x, "K", k);
                x.push('>');
                escape_into(&mut x, v);
                x.push_str("</M>");
            }
            x.push_str("</Value></MapAnnotation>\n");
        }
        x.push_str(&light_annotations);
        x.push_str("</StructuredAnnotations>\n");
    }
    x.push_str("</OME>");
    x
}

/// Appends ` key="value"` with the value escaped.
fn attr(x: &mut String, key: &str, value: &str) {
    x.push(' ');
    x.push_str(key);
    x.push_str("=\"");
    escape_into(x, value);
    x.push('"');
}

fn attr_num(x: &mut String, key: &str, value: u32) {
    let _ = write!(x, " {key}=\"{value}\"");
}

/// Appends a float attribute rounded to `decimals`, when the value is present and finite
/// (xsd:float has no "inf").
fn attr_round(x: &mut String, key: &str, value: Option<f64>, decimals: usize) {
    if let Some(v) = value.filter(|v| v.is_finite()) {
        let _ = write!(x, " {key}=\"{}\"", rounded(v, decimals));
    }
}

/// A PositiveFloat attribute: omitted unless > 0. A value too small to show in `decimals`
/// places keeps its own digits rather than becoming a 0 the schema refuses.
fn attr_pos(x: &mut String, key: &str, value: Option<f64>, decimals: usize) {
    match value.filter(|v| *v > 0.0 && v.is_finite()) {
        Some(v) if rounded(v, decimals) == "0" => {
            let _ = write!(x, " {key}=\"{v:e}\"");
        }
        v => attr_round(x, key, v, decimals),
    }
}

/// `v` to `decimals` places without trailing zeros ("2.5", "10", "-0.125"); extremes in the
/// exponent form (valid xsd:float) rather than 300 digits.
pub(crate) fn rounded(v: f64, decimals: usize) -> String {
    if v.abs() >= 1e16 {
        return format!("{v:e}");
    }
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    match s {
        "-0" => "0".to_owned(),
        s => s.to_owned(),
    }
}

/// Escapes markup characters and writes everything outside printable ASCII as a character
/// reference; characters XML 1.0 forbids become U+FFFD.
pub(crate) fn escape_into(x: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => x.push_str("&amp;"),
            '<' => x.push_str("&lt;"),
            '>' => x.push_str("&gt;"),
            '"' => x.push_str("&quot;"),
            '\'' => x.push_str("&apos;"),
            ' '..='~' => x.push(ch),
            // Whitespace that attribute normalisation would otherwise turn into spaces.
            '\t' | '\n' | '\r' => {
                let _ = write!(x, "&#{};", u32::from(ch));
            }
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => x.push_str("&#xFFFD;"),
            _ => {
                let _ = write!(x, "&#x{:X};", u32::from(ch));
            }
        }
    }
}

/// A random (version 4) UUID as a URN. Reads /dev/urandom; if that fails, falls back to std's
/// randomly seeded hasher mixed with the time and pid (unique is what matters here, not secret).
pub(crate) fn new_uuid() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !from_os {
        use std::hash::{BuildHasher, Hasher};
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, chunk) in b.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(now);
            h.write_u32(std::process::id());
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_non_ascii() {
        let mut s = String::new();
        escape_into(&mut s, "a<b>&\"c' µm\tx\u{1}");
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;c&apos; &#xB5;m&#9;x&#xFFFD;");
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = new_uuid();
        let b = new_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[9 + 14..9 + 15], "4");
        assert!("89ab".contains(&a[9 + 19..9 + 20]));
    }

    #[test]
    fn numbers_are_rounded_as_their_quantity_deserves() {
        assert_eq!(rounded(0.123_456_789_012_345_6, SECONDS), "0.123457");
        assert_eq!(rounded(2.0, SECONDS), "2");
        assert_eq!(rounded(2.5, SECONDS), "2.5");
        assert_eq!(rounded(-0.0001, POSITION_UM), "0");
        assert_eq!(rounded(-5.25, POSITION_UM), "-5.25");
        assert_eq!(rounded(100.000_000_000_01, POSITION_UM), "100");
        assert_eq!(rounded(1e300, POSITION_UM), "1e300");
        assert_eq!(rounded(0.975_000_000_000_000_1, SIZE_UM), "0.975");
        let mut x = String::new();
        attr_pos(&mut x, "S", Some(1e-9), SIZE_UM);
        assert_eq!(x, " S=\"1e-9\"");
    }

    #[test]
    fn dimension_orders() {
        assert!(valid_dimension_order("XYCZT"));
        assert!(!valid_dimension_order("XYZ"));
        assert!(!valid_dimension_order("XYTTT"));
    }
}
