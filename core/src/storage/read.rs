//! Reading data back: one plane of an image, and what an image's file says of itself, for
//! every storage format behind one pair of functions ([`read_plane`], [`describe`]) that
//! dispatch on the [`Format`] the image is in. A dataset is a list of images, one per stage
//! position (and grid tile); an OME-TIFF image is one file. Another format (OME-Zarr) adds a
//! `Format` variant and its two functions, not a second way to read.
//!
//! OME-TIFF files are read while the writer appends to them: a plane counts once its IFD is
//! linked into the chain, which happens after its pixels are on disk. Which plane holds a
//! given (t, c, z) comes from the sidecar while the file is being written (or was left by a
//! killed daemon), and from the OME-XML's `TiffData` once it is finished.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use microscoped_driver_api::PixelType;

use super::layout::{self, tag, Ifd};
use super::recover::plausible;
use super::sidecar::{self, sidecar_path};
use super::Counters;

/// The storage formats images are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One BigTIFF file per image (`.ome.tiff`), written by [`OmeTiffWriter`](super::OmeTiffWriter).
    OmeTiff,
}

impl Format {
    /// The format of the image at `path`, told by its name; `None` for one we do not read.
    pub fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".ome.tiff") || name.ends_with(".ome.tif") {
            Some(Self::OmeTiff)
        } else {
            None
        }
    }
}

/// Which plane of an image to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneAddress {
    /// The plane's place in the image, from 0, in the order planes were written.
    Index(u64),
    /// The plane at time point `t`, channel `c` and z slice `z` (each from 0).
    Coords {
        /// Time point.
        t: u32,
        /// Channel.
        c: u32,
        /// Z slice.
        z: u32,
    },
}

impl std::fmt::Display for PlaneAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Index(i) => write!(f, "plane {i}"),
            Self::Coords { t, c, z } => write!(f, "t={t} c={c} z={z}"),
        }
    }
}

/// Why a plane could not be read. Messages name the file; only [`Corrupt`](Self::Corrupt) means
/// data was lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The address lies outside what the image holds (now: more may come while it is written).
    #[error("{0}")]
    OutOfRange(String),
    /// Nothing is there: the file is gone, or no plane was taken at those coordinates.
    #[error("{0}")]
    NotFound(String),
    /// The file is damaged: what it says does not hold together.
    #[error("{0}")]
    Corrupt(String),
    /// The image is in no format this daemon reads.
    #[error("{0}")]
    Unsupported(String),
    /// The file system refused (permissions, I/O error).
    #[error("{0}")]
    Io(String),
}

/// One plane's pixels as the file holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneData {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bits per pixel in the file (8 or 16).
    pub bits_per_sample: u16,
    /// Row-major pixels, little-endian.
    pub data: Vec<u8>,
    /// The plane's place in the image, from 0.
    pub index: u64,
}

/// What an image's file says of itself, for listing datasets found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Pixel type.
    pub pixel_type: PixelType,
    /// Planes in the file.
    pub planes: u64,
    /// The frame accounting a finished file records; `None` while written or after a crash.
    pub counters: Option<Counters>,
    /// Finished by the daemon (or by `recover`): the metadata describes the planes written.
    pub complete: bool,
    /// Finished by `microscoped recover` after the daemon was killed.
    pub recovered: bool,
    /// The camera (the OME Detector's model).
    pub detector: String,
    /// Bytes of the file.
    pub bytes: u64,
}

/// Reads plane `addr` of the image at `path`, finished or still being written.
pub fn read_plane(path: &Path, addr: PlaneAddress) -> Result<PlaneData, ReadError> {
    match format(path)? {
        Format::OmeTiff => ome_tiff::read_plane(path, addr),
    }
}

/// What the image at `path` says of itself.
pub fn describe(path: &Path) -> Result<ImageInfo, ReadError> {
    match format(path)? {
        Format::OmeTiff => ome_tiff::describe(path),
    }
}

fn format(path: &Path) -> Result<Format, ReadError> {
    Format::of(path).ok_or_else(|| {
        ReadError::Unsupported(format!(
            "{} is in no format this daemon reads (OME-TIFF: .ome.tiff)",
            path.display()
        ))
    })
}

/// OME-TIFF files as [`OmeTiffWriter`](super::OmeTiffWriter) writes them.
mod ome_tiff {
    use super::*;

    /// The longest OME-XML read back: a damaged length must not make the daemon allocate
    /// gigabytes.
    const MAX_XML: u64 = 256 << 20;

    fn io_error(path: &Path, e: io::Error) -> ReadError {
        match e.kind() {
            io::ErrorKind::NotFound => ReadError::NotFound(format!(
                "{} is gone: nothing was written to it (the run ended before its first frame), or it was moved",
                path.display()
            )),
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => damaged(path, e),
            _ => ReadError::Io(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn damaged(path: &Path, why: impl std::fmt::Display) -> ReadError {
        ReadError::Corrupt(format!("{} is damaged: {why}", path.display()))
    }

    struct Open {
        file: File,
        len: u64,
        first: u64,
        /// The sidecar is there: the file is being written, or was left by a killed daemon.
        writing: bool,
    }

    fn open(path: &Path) -> Result<Open, ReadError> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let len = file.metadata().map_err(|e| io_error(path, e))?.len();
        let first = layout::read_header(&file, len).map_err(|e| io_error(path, e))?;
        let writing = sidecar_path(path).exists();
        Ok(Open {
            file,
            len,
            first,
            writing,
        })
    }

    /// Walks the chain to IFD `index`: `Ok(Ok(ifd))`, or `Ok(Err(planes))` when the file holds
    /// only `planes`. Offsets only grow (checked by `plausible`), so the walk ends.
    fn nth_ifd(path: &Path, o: &Open, index: u64) -> Result<Result<Ifd, u64>, ReadError> {
        let mut next = o.first;
        let mut prev_end = layout::XML_AT;
        let mut at = 0u64;
        while next != 0 {
            let ifd = layout::read_ifd(&o.file, next, o.len).map_err(|e| io_error(path, e))?;
            if !plausible(&ifd, prev_end, None) {
                return Err(damaged(path, format!("the IFD of plane {at} is not valid")));
            }
            if at == index {
                return Ok(Ok(ifd));
            }
            prev_end = ifd.padded_end();
            next = ifd.next;
            at += 1;
        }
        Ok(Err(at))
    }

    /// The pixels an IFD points to.
    fn pixels(path: &Path, o: &Open, ifd: &Ifd, index: u64) -> Result<PlaneData, ReadError> {
        let get = |t| ifd.get(t).map(|e| e.value).unwrap_or(0);
        let (offset, len) = (get(tag::STRIP_OFFSETS), get(tag::STRIP_BYTE_COUNTS));
        let (width, height) = (get(tag::IMAGE_WIDTH) as u32, get(tag::IMAGE_LENGTH) as u32);
        let bits = (get(tag::BITS_PER_SAMPLE) & 0xffff) as u16;
        // The writer makes 8- and 16-bit planes of a camera's shape, never empty ones.
        if !matches!(bits, 8 | 16) || width == 0 || height == 0 {
            return Err(damaged(
                path,
                format!("plane {index} is a {width}x{height} {bits}-bit plane, which microscoped does not write"),
            ));
        }
        let expected = u64::from(width) * u64::from(height) * u64::from(bits / 8);
        if len != expected || offset.saturating_add(len) > o.len {
            return Err(damaged(
                path,
                format!("plane {index} holds {len} bytes, not the {expected} of a {width}x{height} {bits}-bit plane"),
            ));
        }
        let mut data = vec![0u8; len as usize];
        o.file
            .read_exact_at(&mut data, offset)
            .map_err(|e| io_error(path, e))?;
        Ok(PlaneData {
            width,
            height,
            bits_per_sample: bits,
            data,
            index,
        })
    }

    /// IFD 0's ImageDescription: the OME-XML.
    fn xml(path: &Path, o: &Open) -> Result<String, ReadError> {
        let ifd0 = layout::read_ifd(&o.file, o.first, o.len).map_err(|e| io_error(path, e))?;
        let e = ifd0
            .get(tag::IMAGE_DESCRIPTION)
            .ok_or_else(|| damaged(path, "IFD 0 has no ImageDescription"))?;
        if e.count > MAX_XML || e.value.saturating_add(e.count) > o.len {
            return Err(damaged(path, "its OME-XML lies outside the file"));
        }
        let mut b = vec![0u8; e.count as usize];
        o.file
            .read_exact_at(&mut b, e.value)
            .map_err(|e| io_error(path, e))?;
        while b.last() == Some(&0) {
            b.pop();
        }
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn no_planes(path: &Path) -> ReadError {
        ReadError::NotFound(format!(
            "{} holds no plane yet: the run has not written its first frame",
            path.display()
        ))
    }

    /// A file without planes, to a reader: while it is written (or left by a killed daemon)
    /// its planes are "not yet", as any plane past its end is, so a script waiting for a
    /// position the run has not reached retries on one code.
    fn no_planes_yet(path: &Path, o: &Open, yet: &str) -> ReadError {
        if o.writing {
            ReadError::OutOfRange(format!(
                "{} holds no plane: the run has not written its first frame{yet}",
                path.display()
            ))
        } else {
            no_planes(path)
        }
    }

    pub(super) fn read_plane(path: &Path, addr: PlaneAddress) -> Result<PlaneData, ReadError> {
        let o = open(path)?;
        let yet = if o.writing {
            " (yet: the file is being written, or was left by a daemon that stopped)"
        } else {
            ""
        };
        let index = match addr {
            PlaneAddress::Index(i) => i,
            PlaneAddress::Coords { t, c, z } => {
                if o.first == 0 {
                    return Err(no_planes_yet(path, &o, yet));
                }
                match coords_from_sidecar(path, &o, (t, c, z))? {
                    Some(Found::At(ifd_at, index)) => {
                        let ifd = layout::read_ifd(&o.file, ifd_at, o.len)
                            .map_err(|e| io_error(path, e))?;
                        return pixels(path, &o, &ifd, index);
                    }
                    Some(Found::NotYet(why)) => {
                        return Err(ReadError::OutOfRange(format!(
                            "{}: no plane at {addr} has been written{yet}{why}",
                            path.display()
                        )))
                    }
                    // Finished (or finished meanwhile): the OME-XML says.
                    None => {
                        let map = ImageMap::parse(&xml(path, &o)?)
                            .ok_or_else(|| damaged(path, "its OME-XML has no Pixels sizes"))?;
                        map.index_of(path, (t, c, z))?
                    }
                }
            }
        };
        match nth_ifd(path, &o, index)? {
            Ok(ifd) => pixels(path, &o, &ifd, index),
            Err(0) => Err(no_planes_yet(path, &o, yet)),
            Err(n) => Err(ReadError::OutOfRange(format!(
                "{} holds {n} plane(s), 0 to {}; plane {index} is not there{yet}",
                path.display(),
                n - 1
            ))),
        }
    }

    enum Found {
        /// The plane's IFD offset and its index in the file.
        At(u64, u64),
        /// Not written (yet); why, for the message.
        NotYet(String),
    }

    /// Looks (t, c, z) up in the sidecar of a file being written; `None` when there is no
    /// sidecar (the file is finished).
    fn coords_from_sidecar(
        path: &Path,
        o: &Open,
        (t, c, z): (u32, u32, u32),
    ) -> Result<Option<Found>, ReadError> {
        if !o.writing {
            return Ok(None);
        }
        let Some(sc) = live_sidecar(path)? else {
            return Ok(None);
        };
        let found = sc
            .planes
            .iter()
            .find(|(_, p)| (p.the_t, p.the_c, p.the_z) == (t, c, z))
            .map(|(&ifd, _)| ifd);
        if let Some(ifd) = found {
            // IFD offsets grow with the plane index.
            let index = sc.planes.keys().filter(|&&o| o < ifd).count() as u64;
            return Ok(Some(Found::At(ifd, index)));
        }
        let d = &sc.dataset;
        let why = if c >= d.size_c.max(1) || z >= d.size_z.max(1) {
            format!(
                ", and the dataset has {} channel(s) and {} z slice(s)",
                d.size_c.max(1),
                d.size_z.max(1)
            )
        } else {
            String::new()
        };
        Ok(Some(Found::NotYet(why)))
    }

    /// The sidecar of a file still being written: none once the file was finished between the
    /// look and the read (finishing removes it).
    fn live_sidecar(path: &Path) -> Result<Option<sidecar::Sidecar>, ReadError> {
        match sidecar::read(&sidecar_path(path)) {
            Ok(sc) => Ok(Some(sc)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(damaged(path, format!("its sidecar: {e}"))),
        }
    }

    /// Counts the planes of a file still being written (or left by a crash).
    fn count_planes(path: &Path, o: &Open) -> Result<u64, ReadError> {
        match nth_ifd(path, o, u64::MAX)? {
            Ok(_) => Err(damaged(path, "its IFD chain does not end")),
            Err(n) => Ok(n),
        }
    }

    pub(super) fn describe(path: &Path) -> Result<ImageInfo, ReadError> {
        let o = open(path)?;
        if o.writing {
            if let Some(sc) = live_sidecar(path)? {
                let d = sc.dataset;
                return Ok(ImageInfo {
                    width: d.width,
                    height: d.height,
                    pixel_type: d.pixel_type,
                    planes: count_planes(path, &o)?,
                    counters: None,
                    complete: false,
                    recovered: false,
                    detector: d.instrument.detector_model,
                    bytes: o.len,
                });
            }
        }
        if o.first == 0 {
            return Err(no_planes(path));
        }
        let xml = xml(path, &o)?;
        let map = ImageMap::parse(&xml)
            .ok_or_else(|| damaged(path, "its OME-XML has no Pixels sizes"))?;
        let pixels = element(&xml, "Pixels").unwrap_or_default();
        let number = |el: &str, key: &str| attr(el, key).and_then(|v| v.parse::<u32>().ok());
        let pixel_type = match attr(pixels, "Type") {
            Some("uint8") => PixelType::U8,
            Some("uint16") => PixelType::U16,
            other => return Err(damaged(path, format!("pixel type {other:?}"))),
        };
        let annotation = |key: &str| -> Option<u64> {
            let open = format!("<M K=\"{key}\">");
            let at = xml.find(&open)? + open.len();
            xml[at..].split('<').next()?.trim().parse().ok()
        };
        let counters = match (
            annotation("received"),
            annotation("written"),
            annotation("dropped"),
        ) {
            (Some(received), Some(written), Some(dropped)) => Some(Counters {
                received,
                written,
                dropped,
            }),
            _ => None,
        };
        Ok(ImageInfo {
            width: number(pixels, "SizeX").unwrap_or(0),
            height: number(pixels, "SizeY").unwrap_or(0),
            pixel_type,
            planes: map.planes(),
            counters,
            complete: true,
            recovered: xml.contains("<M K=\"recovered\">true</M>"),
            detector: element(&xml, "Detector")
                .and_then(|d| attr(d, "Model"))
                .unwrap_or_default()
                .to_owned(),
            bytes: o.len,
        })
    }

    /// One `TiffData`: its first IFD, the (t, c, z) of that plane, and its plane count.
    type TiffData = (u64, (u32, u32, u32), Option<u64>);

    /// Which plane holds which (t, c, z), as OME's `Pixels` and `TiffData` say: each TiffData
    /// maps `PlaneCount` planes from IFD `IFD` on to consecutive indices in DimensionOrder from
    /// (FirstT, FirstC, FirstZ).
    struct ImageMap {
        /// The axes after XY, fastest first, e.g. `ZCT`.
        order: [u8; 3],
        /// SizeT, SizeC, SizeZ.
        size: (u32, u32, u32),
        /// Each TiffData element.
        tiff_data: Vec<TiffData>,
    }

    impl ImageMap {
        fn parse(xml: &str) -> Option<Self> {
            let pixels = element(xml, "Pixels")?;
            let order = attr(pixels, "DimensionOrder")?.as_bytes();
            let order: [u8; 3] = order.get(2..5)?.try_into().ok()?;
            let size = |k| attr(pixels, k).and_then(|v| v.parse::<u32>().ok());
            let size = (size("SizeT")?, size("SizeC")?, size("SizeZ")?);
            let n = |el: &str, k: &str| attr(el, k).and_then(|v| v.parse::<u64>().ok());
            let tiff_data = elements(xml, "TiffData")
                .map(|el| {
                    let first = |k| n(el, k).unwrap_or(0) as u32;
                    (
                        n(el, "IFD").unwrap_or(0),
                        (first("FirstT"), first("FirstC"), first("FirstZ")),
                        n(el, "PlaneCount"),
                    )
                })
                .collect();
            Some(Self {
                order,
                size,
                tiff_data,
            })
        }

        fn total(&self) -> u64 {
            u64::from(self.size.0) * u64::from(self.size.1) * u64::from(self.size.2)
        }

        /// The index of (t, c, z) in DimensionOrder.
        fn linear(&self, (t, c, z): (u32, u32, u32)) -> u64 {
            let (mut index, mut stride) = (0u64, 1u64);
            for d in self.order {
                let (v, n) = match d {
                    b'T' => (t, self.size.0),
                    b'C' => (c, self.size.1),
                    _ => (z, self.size.2),
                };
                index += u64::from(v) * stride;
                stride *= u64::from(n);
            }
            index
        }

        fn count(&self, ifd: u64, explicit: Option<u64>) -> u64 {
            // Without PlaneCount, a lone TiffData from IFD 0 maps every plane (OME's rule).
            explicit.unwrap_or(if self.tiff_data.len() == 1 && ifd == 0 {
                self.total()
            } else {
                1
            })
        }

        fn planes(&self) -> u64 {
            self.tiff_data
                .iter()
                .map(|&(ifd, _, n)| self.count(ifd, n))
                .sum()
        }

        /// The plane index holding (t, c, z): out of range outside the sizes, not found for a
        /// plane within them that no TiffData maps (never taken).
        fn index_of(&self, path: &Path, tcz: (u32, u32, u32)) -> Result<u64, ReadError> {
            let (t, c, z) = tcz;
            let (st, sc, sz) = self.size;
            if t >= st || c >= sc || z >= sz {
                return Err(ReadError::OutOfRange(format!(
                    "{} holds {st} time point(s), {sc} channel(s) and {sz} z slice(s); t={t} c={c} z={z} is outside them",
                    path.display()
                )));
            }
            let target = self.linear(tcz);
            for &(ifd, first, n) in &self.tiff_data {
                let start = self.linear(first);
                if (start..start + self.count(ifd, n)).contains(&target) {
                    return Ok(ifd + (target - start));
                }
            }
            Err(ReadError::NotFound(format!(
                "{} has no plane at t={t} c={c} z={z}: the run ended before it was taken, or the frame was dropped",
                path.display()
            )))
        }
    }

    /// The attributes of the first `<name ...>` element of our OME-XML.
    fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
        elements(xml, name).next()
    }

    /// The attributes of every `<name ...>` element. Our XML escapes `>` in values, so the
    /// first `>` ends the tag.
    fn elements<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let open = format!("<{name} ");
        let mut rest = xml;
        std::iter::from_fn(move || {
            let at = rest.find(&open)? + open.len();
            let tail = &rest[at..];
            let end = tail.find('>').unwrap_or(tail.len());
            rest = &tail[end..];
            Some(&tail[..end])
        })
    }

    /// The value of attribute `key` in an element's attribute text (as written: `key="value"`,
    /// values escaped; the values read here are names and numbers).
    fn attr<'a>(el: &'a str, key: &str) -> Option<&'a str> {
        let pattern = format!("{key}=\"");
        let mut from = 0;
        while let Some(i) = el[from..].find(&pattern) {
            let at = from + i;
            if at == 0 || el.as_bytes()[at - 1] == b' ' {
                let value = &el[at + pattern.len()..];
                return value.split('"').next();
            }
            from = at + pattern.len();
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tiff_data_maps_planes_in_dimension_order() {
            let xml = r#"<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="4" SizeY="4" SizeZ="3" SizeC="2" SizeT="2">
<TiffData IFD="0" PlaneCount="12"/>"#;
            let m = ImageMap::parse(xml).unwrap();
            let p = Path::new("x.ome.tiff");
            assert_eq!(m.index_of(p, (0, 0, 2)).unwrap(), 2);
            assert_eq!(m.index_of(p, (0, 1, 0)).unwrap(), 3);
            assert_eq!(m.index_of(p, (1, 1, 2)).unwrap(), 11);
            assert!(matches!(
                m.index_of(p, (2, 0, 0)),
                Err(ReadError::OutOfRange(_))
            ));
            let xml = r#"<Pixels DimensionOrder="XYCZT" Type="uint8" SizeZ="2" SizeC="2" SizeT="1">
<TiffData IFD="0" FirstT="0" FirstC="1" FirstZ="0" PlaneCount="1"/>
<TiffData IFD="1" FirstT="0" FirstC="0" FirstZ="1" PlaneCount="1"/>"#;
            let m = ImageMap::parse(xml).unwrap();
            assert_eq!(m.planes(), 2);
            assert_eq!(m.index_of(p, (0, 1, 0)).unwrap(), 0);
            assert_eq!(m.index_of(p, (0, 0, 1)).unwrap(), 1);
            assert!(matches!(
                m.index_of(p, (0, 0, 0)),
                Err(ReadError::NotFound(_))
            ));
        }

        #[test]
        fn attributes_are_matched_whole() {
            let el = r#"ID="Pixels:0" SizeX="5" X="7""#;
            assert_eq!(attr(el, "X"), Some("7"));
            assert_eq!(attr(el, "SizeX"), Some("5"));
            assert_eq!(attr(el, "ID"), Some("Pixels:0"));
            assert_eq!(attr(el, "Y"), None);
        }
    }
}
