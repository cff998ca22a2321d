//! Reading planes back from a dataset, finished or still being written.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::layout::{self, tag};
use super::recover::plausible;

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
}

/// Plane `index` (from 0) of an OME-TIFF written by microscoped, or `None` when the file does
/// not hold it (yet). Safe while the writer appends: a plane counts once its IFD is linked
/// into the chain, which happens after its pixels are on disk.
pub fn read_plane(path: &Path, index: u64) -> io::Result<Option<PlaneData>> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut next = layout::read_header(&file, file_len)?;
    let mut prev_end = layout::XML_AT;
    let mut at = 0u64;
    // Offsets only grow (checked by `plausible`), so the walk ends within the file.
    while next != 0 {
        let ifd = layout::read_ifd(&file, next, file_len)?;
        if !plausible(&ifd, prev_end, None) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the IFD of plane {at} is damaged"),
            ));
        }
        if at == index {
            let get = |t| ifd.get(t).map(|e| e.value).unwrap_or(0);
            let (offset, len) = (get(tag::STRIP_OFFSETS), get(tag::STRIP_BYTE_COUNTS));
            let (width, height) = (get(tag::IMAGE_WIDTH) as u32, get(tag::IMAGE_LENGTH) as u32);
            let bits = (get(tag::BITS_PER_SAMPLE) & 0xffff) as u16;
            let expected = u64::from(width) * u64::from(height) * u64::from(bits / 8);
            if len != expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("plane {index} holds {len} bytes, not the {expected} of a {width}x{height} {bits}-bit plane"),
                ));
            }
            let mut data = vec![0u8; len as usize];
            file.read_exact_at(&mut data, offset)?;
            return Ok(Some(PlaneData {
                width,
                height,
                bits_per_sample: bits,
                data,
            }));
        }
        prev_end = ifd.padded_end();
        next = ifd.next;
        at += 1;
    }
    Ok(None)
}
