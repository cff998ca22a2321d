//! The BigTIFF structures microscoped writes, and a reader for them (used by recovery and tests).
//!
//! File layout (all little-endian, every IFD and plane 8-byte aligned):
//!
//! ```text
//! 0   header: "II", 43, 8, 0, first-IFD offset (u64, 0 until plane 0 is linked)
//! 16  "microscoped\0"         (the Software value, shared by every IFD)
//! 32  planned OME-XML, NUL    (IFD 0's ImageDescription until finish)
//!     per plane: pixel data, padding, IFD (next = 0), padding
//!     at finish/recover: corrected OME-XML, NUL (IFD 0's tag 270 patched to point here)
//! ```
//!
//! Each IFD ends on an 8-byte boundary, so the end of the last complete plane is
//! `align8(ifd_offset + ifd_size(entries))`; recovery relies on that to find where garbage starts.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Where the header keeps the first IFD's offset.
pub(crate) const FIRST_IFD_POS: u64 = 8;
/// The Software value every IFD points to.
pub(crate) const SOFTWARE: &[u8] = b"microscoped\0";
/// Where [`SOFTWARE`] lives.
pub(crate) const SOFTWARE_AT: u64 = 16;
/// Where the planned OME-XML starts.
pub(crate) const XML_AT: u64 = 32;

/// Bytes per BigTIFF IFD entry.
const ENTRY_LEN: u64 = 20;
/// Sanity bound for entry counts when reading: we write 12 or 13.
const MAX_ENTRIES: u64 = 64;

/// TIFF tags we write.
pub(crate) mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const IMAGE_DESCRIPTION: u16 = 270;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const SOFTWARE: u16 = 305;
    pub const SAMPLE_FORMAT: u16 = 339;
}

/// TIFF field types we write.
mod ty {
    pub const ASCII: u16 = 2;
    pub const SHORT: u16 = 3;
    pub const LONG: u16 = 4;
    pub const LONG8: u16 = 16;
}

/// One IFD entry. `value` holds the 8-byte value field as a little-endian integer: the value
/// itself when it fits (left-justified, which little-endian integers give for free), else an
/// offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub tag: u16,
    pub typ: u16,
    pub count: u64,
    pub value: u64,
}

impl Entry {
    const fn one(tag: u16, typ: u16, value: u64) -> Self {
        Self {
            tag,
            typ,
            count: 1,
            value,
        }
    }
}

/// Rounds up to the next multiple of 8.
pub(crate) fn align8(x: u64) -> u64 {
    x.div_ceil(8) * 8
}

/// Bytes of an IFD with `n` entries (count, entries, next pointer).
pub(crate) fn ifd_size(n: usize) -> u64 {
    8 + n as u64 * ENTRY_LEN + 8
}

/// Where an IFD at `ifd_at` keeps entry `index`.
pub(crate) fn entry_pos(ifd_at: u64, index: usize) -> u64 {
    ifd_at + 8 + index as u64 * ENTRY_LEN
}

/// Where an IFD at `ifd_at` with `n` entries keeps its next-IFD pointer.
pub(crate) fn next_pointer_pos(ifd_at: u64, n: usize) -> u64 {
    entry_pos(ifd_at, n)
}

/// The 16 bytes (count, offset) that re-point an ASCII entry, written at `entry_pos + 4`.
pub(crate) fn ascii_patch(count: u64, offset: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&count.to_le_bytes());
    b[8..].copy_from_slice(&offset.to_le_bytes());
    b
}

/// The header, the Software string and the planned XML: everything before plane 0.
/// Returns the bytes; their length is where plane 0 starts.
pub(crate) fn preamble(xml: &str) -> Vec<u8> {
    let end = align8(XML_AT + xml.len() as u64 + 1);
    let mut b = Vec::with_capacity(end as usize);
    b.extend_from_slice(b"II");
    b.extend_from_slice(&43u16.to_le_bytes());
    b.extend_from_slice(&8u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(SOFTWARE);
    b.resize(XML_AT as usize, 0);
    b.extend_from_slice(xml.as_bytes());
    b.resize(end as usize, 0);
    b
}

/// What one plane's IFD says.
pub(crate) struct PlaneIfd {
    pub width: u32,
    pub height: u32,
    pub bits: u16,
    pub strip_offset: u64,
    pub strip_len: u64,
    /// (count including NUL, offset) of the OME-XML: IFD 0 only.
    pub description: Option<(u64, u64)>,
}

/// The most entries one of our IFDs has.
pub(crate) const MAX_PLANE_ENTRIES: usize = 13;

/// Index of the ImageDescription entry in IFD 0 (entries are sorted by tag).
pub(crate) const DESCRIPTION_INDEX: usize = 6;

/// The entries of one plane's IFD, sorted by tag as TIFF requires. Returns them and their count.
pub(crate) fn plane_entries(p: &PlaneIfd) -> ([Entry; MAX_PLANE_ENTRIES], usize) {
    let filler = Entry::one(0, 0, 0);
    let mut e = [filler; MAX_PLANE_ENTRIES];
    let mut n = 0;
    let mut push = |entry: Entry| {
        e[n] = entry;
        n += 1;
    };
    push(Entry::one(tag::NEW_SUBFILE_TYPE, ty::LONG, 0));
    push(Entry::one(tag::IMAGE_WIDTH, ty::LONG, p.width.into()));
    push(Entry::one(tag::IMAGE_LENGTH, ty::LONG, p.height.into()));
    push(Entry::one(tag::BITS_PER_SAMPLE, ty::SHORT, p.bits.into()));
    push(Entry::one(tag::COMPRESSION, ty::SHORT, 1));
    // BlackIsZero.
    push(Entry::one(tag::PHOTOMETRIC, ty::SHORT, 1));
    if let Some((count, offset)) = p.description {
        push(Entry {
            tag: tag::IMAGE_DESCRIPTION,
            typ: ty::ASCII,
            count,
            value: offset,
        });
    }
    push(Entry::one(tag::STRIP_OFFSETS, ty::LONG8, p.strip_offset));
    push(Entry::one(tag::SAMPLES_PER_PIXEL, ty::SHORT, 1));
    push(Entry::one(tag::ROWS_PER_STRIP, ty::LONG, p.height.into()));
    push(Entry::one(tag::STRIP_BYTE_COUNTS, ty::LONG8, p.strip_len));
    push(Entry {
        tag: tag::SOFTWARE,
        typ: ty::ASCII,
        count: SOFTWARE.len() as u64,
        value: SOFTWARE_AT,
    });
    // Unsigned integer.
    push(Entry::one(tag::SAMPLE_FORMAT, ty::SHORT, 1));
    (e, n)
}

/// Encodes an IFD (next pointer 0) into `buf` for writing at `block_at`, with zero padding before
/// it (to align the IFD) and after it (so the next plane starts aligned). Returns the IFD offset.
/// Reuses `buf`'s allocation.
pub(crate) fn encode_ifd_block(buf: &mut Vec<u8>, block_at: u64, entries: &[Entry]) -> u64 {
    let ifd_at = align8(block_at);
    buf.clear();
    buf.resize((ifd_at - block_at) as usize, 0);
    buf.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for e in entries {
        buf.extend_from_slice(&e.tag.to_le_bytes());
        buf.extend_from_slice(&e.typ.to_le_bytes());
        buf.extend_from_slice(&e.count.to_le_bytes());
        buf.extend_from_slice(&e.value.to_le_bytes());
    }
    buf.extend_from_slice(&0u64.to_le_bytes());
    let end = align8(ifd_at + ifd_size(entries.len()));
    buf.resize((end - block_at) as usize, 0);
    ifd_at
}

/// An IFD as read back from a file.
#[derive(Debug, Clone)]
pub(crate) struct Ifd {
    pub offset: u64,
    pub entries: Vec<Entry>,
    pub next: u64,
}

impl Ifd {
    pub fn index_of(&self, tag: u16) -> Option<usize> {
        self.entries.iter().position(|e| e.tag == tag)
    }

    pub fn get(&self, tag: u16) -> Option<Entry> {
        self.index_of(tag).map(|i| self.entries[i])
    }

    /// The end of this IFD including the padding we write after it.
    pub fn padded_end(&self) -> u64 {
        align8(self.offset + ifd_size(self.entries.len()))
    }

    pub fn next_pointer_pos(&self) -> u64 {
        next_pointer_pos(self.offset, self.entries.len())
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Checks the BigTIFF little-endian header and returns the first IFD offset.
pub(crate) fn read_header(file: &File, file_len: u64) -> io::Result<u64> {
    if file_len < 16 {
        return Err(invalid("too short for a BigTIFF header"));
    }
    let mut h = [0u8; 16];
    file.read_exact_at(&mut h, 0)?;
    if &h[..8] != b"II\x2b\x00\x08\x00\x00\x00" {
        return Err(invalid("not a little-endian BigTIFF"));
    }
    Ok(u64::from_le_bytes(h[8..].try_into().unwrap_or_default()))
}

/// Reads the IFD at `offset`; errors when it does not fit in `file_len` bytes or looks unlike ours.
pub(crate) fn read_ifd(file: &File, offset: u64, file_len: u64) -> io::Result<Ifd> {
    if offset & 7 != 0 || offset < XML_AT || offset.saturating_add(8) > file_len {
        return Err(invalid(format!("IFD offset {offset} out of range")));
    }
    let mut count = [0u8; 8];
    file.read_exact_at(&mut count, offset)?;
    let n = u64::from_le_bytes(count);
    if n == 0 || n > MAX_ENTRIES {
        return Err(invalid(format!("IFD at {offset} has {n} entries")));
    }
    let size = ifd_size(n as usize);
    if offset.saturating_add(size) > file_len {
        return Err(invalid(format!(
            "IFD at {offset} runs past the end of the file"
        )));
    }
    let mut raw = vec![0u8; (size - 8) as usize];
    file.read_exact_at(&mut raw, offset + 8)?;
    let u16_at = |i: usize| u16::from_le_bytes([raw[i], raw[i + 1]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let entries = (0..n as usize)
        .map(|k| {
            let i = k * ENTRY_LEN as usize;
            Entry {
                tag: u16_at(i),
                typ: u16_at(i + 2),
                count: u64_at(i + 4),
                value: u64_at(i + 12),
            }
        })
        .collect();
    let next = u64_at(n as usize * ENTRY_LEN as usize);
    Ok(Ifd {
        offset,
        entries,
        next,
    })
}

/// True when `ifd`'s Software tag says microscoped.
pub(crate) fn software_is_ours(file: &File, ifd: &Ifd, file_len: u64) -> io::Result<bool> {
    let Some(e) = ifd.get(tag::SOFTWARE) else {
        return Ok(false);
    };
    if e.count != SOFTWARE.len() as u64 || e.value.saturating_add(e.count) > file_len {
        return Ok(false);
    }
    let mut b = [0u8; SOFTWARE.len()];
    file.read_exact_at(&mut b, e.value)?;
    Ok(b == SOFTWARE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sorted_and_description_index_matches() {
        for description in [None, Some((10, XML_AT))] {
            let p = PlaneIfd {
                width: 3,
                height: 2,
                bits: 16,
                strip_offset: 64,
                strip_len: 12,
                description,
            };
            let (e, n) = plane_entries(&p);
            assert!(e[..n].windows(2).all(|w| w[0].tag < w[1].tag));
            if description.is_some() {
                assert_eq!(n, MAX_PLANE_ENTRIES);
                assert_eq!(e[DESCRIPTION_INDEX].tag, tag::IMAGE_DESCRIPTION);
            } else {
                assert_eq!(n, MAX_PLANE_ENTRIES - 1);
            }
        }
    }

    #[test]
    fn ifd_block_is_aligned_and_padded() {
        let p = PlaneIfd {
            width: 3,
            height: 3,
            bits: 8,
            strip_offset: 40,
            strip_len: 9,
            description: Some((5, XML_AT)),
        };
        let (e, n) = plane_entries(&p);
        let mut buf = Vec::new();
        let at = encode_ifd_block(&mut buf, 49, &e[..n]);
        assert_eq!(at, 56);
        assert_eq!((49 + buf.len() as u64) % 8, 0);
        assert_eq!(49 + buf.len() as u64, align8(at + ifd_size(n)));
        assert!(buf[..7].iter().all(|&b| b == 0));
        assert_eq!(u64::from_le_bytes(buf[7..15].try_into().unwrap()), n as u64);
    }
}
