//! Recovery of files left by a crash (see [`recover`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::layout::{self, tag, Ifd};
use super::ometiff::finalize_file;
use super::sidecar::{self, sidecar_path};
use super::xml::{self, Contents, XmlPlane};

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverReport {
    /// The .ome.tiff path.
    pub path: PathBuf,
    /// Complete planes in the file (kept).
    pub planes: u64,
    /// Bytes cut off the end (a half-written plane, an unlinked IFD, an earlier XML).
    pub truncated_bytes: u64,
    /// The file was finished cleanly (no sidecar): nothing was changed.
    pub already_complete: bool,
    /// Planes the sidecar had no record for; their Plane elements carry only indices
    /// (TheT = plane index).
    pub planes_without_metadata: u64,
    /// Bytes of the file afterwards.
    pub bytes: u64,
    /// The file held no plane (the daemon was stopped before the first frame reached it):
    /// nothing was recorded, so nothing was kept (see [`removed`](Self::removed)).
    pub empty: bool,
    /// What recovery of an empty file removed: the file, its sidecar, and the dataset folder
    /// when nothing else was left in it. Empty otherwise.
    pub removed: Vec<PathBuf>,
}

/// The error for a file we did not write. Like other errors from [`recover`] it does not repeat
/// the path, which the caller knows.
fn not_ours(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not an OME-TIFF written by microscoped ({why})"),
    )
}

/// The frames a sidecar announces, which every plane of its file must be.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frames {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bits per sample (BitsPerSample).
    pub bits: u16,
    /// Bytes of one plane's strip.
    pub bytes: u64,
}

/// Checks that an IFD can be one of our planes following the previous one (ending at
/// `prev_end`): it lies after it, its strip lies between the two, and when the dataset is known
/// its shape and sample size match. Offsets only grow, so a corrupt chain cannot loop.
pub(super) fn plausible(ifd: &Ifd, prev_end: u64, expect: Option<Frames>) -> bool {
    let (Some(off), Some(len)) = (ifd.get(tag::STRIP_OFFSETS), ifd.get(tag::STRIP_BYTE_COUNTS))
    else {
        return false;
    };
    let (off, len) = (off.value, len.value);
    if ifd.offset < prev_end || off < prev_end || off.saturating_add(len) > ifd.offset {
        return false;
    }
    match expect {
        None => true,
        Some(f) => {
            // A SHORT value sits in the low bytes of the value field.
            let bits = ifd.get(tag::BITS_PER_SAMPLE).map(|e| e.value & 0xffff);
            ifd.get(tag::IMAGE_WIDTH).map(|e| e.value) == Some(f.width.into())
                && ifd.get(tag::IMAGE_LENGTH).map(|e| e.value) == Some(f.height.into())
                && bits == Some(f.bits.into())
                && len == f.bytes
        }
    }
}

/// Walks the IFD chain from `first`, stopping at the first IFD that is missing or implausible.
/// Returns the good IFDs and, when the chain went on past them, where the offending link is.
fn walk(file: &File, first: u64, file_len: u64, expect: Option<Frames>) -> (Vec<Ifd>, Option<u64>) {
    let mut ifds = Vec::new();
    let mut link_pos = layout::FIRST_IFD_POS;
    let mut prev_end = layout::XML_AT;
    let mut next = first;
    while next != 0 {
        match layout::read_ifd(file, next, file_len) {
            Ok(ifd) if plausible(&ifd, prev_end, expect) => {
                prev_end = ifd.padded_end();
                link_pos = ifd.next_pointer_pos();
                next = ifd.next;
                ifds.push(ifd);
            }
            _ => return (ifds, Some(link_pos)),
        }
    }
    (ifds, None)
}

/// Repairs a file left by a crash (the daemon killed mid-acquisition).
///
/// Walks the IFD chain and keeps every complete plane (a plane counts once its IFD is linked);
/// cuts off whatever follows the last one (a half-written plane, an unlinked IFD); appends
/// OME-XML built from the sidecar (per-plane metadata; planes it lacks get TheT = their index
/// and no positions; the MapAnnotation says `written` and `recovered`); points IFD 0 at it;
/// fsyncs; removes the sidecar.
///
/// A file finished cleanly (no sidecar) is left alone and reported `already_complete`. A file
/// with no plane linked (killed before the first frame) is cleaned up as the daemon cleans up a
/// run that ends without a frame: see [`remove_empty`]; it is reported `empty`. Errors: the path
/// is not a BigTIFF of ours (`InvalidData`), the sidecar's header is unreadable, or IFD 0 does
/// not match the sidecar. Running it again after an interruption is safe.
pub fn recover(path: &Path) -> io::Result<RecoverReport> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let file_len = file.metadata()?.len();
    let first = layout::read_header(&file, file_len).map_err(not_ours)?;
    let side = sidecar_path(path);
    let has_sidecar = side.try_exists()?;
    if first == 0 && has_sidecar {
        return remove_empty(path, &side, &file, file_len);
    }
    let ifd0 = layout::read_ifd(&file, first, file_len).map_err(|e| {
        if first == 0 {
            not_ours("it holds no image")
        } else {
            not_ours(e)
        }
    })?;
    if !layout::software_is_ours(&file, &ifd0, file_len)? {
        return Err(not_ours("its Software tag is not microscoped"));
    }
    let desc_index = ifd0
        .index_of(tag::IMAGE_DESCRIPTION)
        .ok_or_else(|| not_ours("IFD 0 has no ImageDescription"))?;

    if !has_sidecar {
        let (ifds, _) = walk(&file, first, file_len, None);
        return Ok(RecoverReport {
            path: path.to_path_buf(),
            planes: ifds.len() as u64,
            truncated_bytes: 0,
            already_complete: true,
            planes_without_metadata: 0,
            bytes: file_len,
            empty: false,
            removed: Vec::new(),
        });
    }

    let sc = sidecar::read(&side)?;
    let meta = sc.dataset;
    let sample_bytes = meta.pixel_type.bytes() as u64;
    let frames = Frames {
        width: meta.width,
        height: meta.height,
        bits: (sample_bytes * 8) as u16,
        bytes: u64::from(meta.width) * u64::from(meta.height) * sample_bytes,
    };
    let (ifds, bad_link) = walk(&file, first, file_len, Some(frames));
    let Some(last) = ifds.last() else {
        return Err(not_ours(format!(
            "IFD 0 does not match the sidecar's {}x{} frames",
            meta.width, meta.height
        )));
    };
    let good_len = last.padded_end();
    if let Some(pos) = bad_link {
        file.write_all_at(&0u64.to_le_bytes(), pos)?;
    }
    let truncated_bytes = file_len.saturating_sub(good_len);
    file.set_len(good_len)?;

    let mut without = 0u64;
    let planes: Vec<XmlPlane> = ifds
        .iter()
        .enumerate()
        .map(|(i, ifd)| match sc.planes.get(&ifd.offset) {
            Some(p) => XmlPlane::from(p),
            None => {
                without += 1;
                XmlPlane {
                    the_t: i as u32,
                    the_c: 0,
                    the_z: 0,
                    meta: None,
                }
            }
        })
        .collect();
    let annotations = [
        ("written", planes.len().to_string()),
        ("recovered", "true".to_string()),
    ];
    let xml = xml::ome_xml(
        &meta,
        &sc.uuid,
        Contents::Written {
            planes: &planes,
            annotations: &annotations,
        },
    );
    let bytes = finalize_file(path, file, ifd0.offset, desc_index, good_len, xml, &side)?;
    Ok(RecoverReport {
        path: path.to_path_buf(),
        planes: planes.len() as u64,
        truncated_bytes,
        already_complete: false,
        planes_without_metadata: without,
        bytes,
        empty: false,
        removed: Vec::new(),
    })
}

/// Cleans up a file that holds no plane: a header, our Software string and the planned XML,
/// with its sidecar beside it (the daemon was stopped between creating the file and linking the
/// first frame). Nothing was recorded, and a TIFF without an IFD is no image a reader opens, so
/// like a run that ends without a frame it leaves nothing behind: the file and sidecar are
/// removed, and so is the folder holding them if it is the dataset's own folder (named as the
/// sidecar's dataset, as the daemon lays datasets out) and nothing else is left in it. Files we
/// did not write are refused as [`recover`] refuses them.
fn remove_empty(path: &Path, side: &Path, file: &File, file_len: u64) -> io::Result<RecoverReport> {
    let mut software = [0u8; layout::SOFTWARE.len()];
    if file_len < layout::XML_AT
        || file
            .read_exact_at(&mut software, layout::SOFTWARE_AT)
            .is_err()
        || software != layout::SOFTWARE
    {
        return Err(not_ours("it holds no image"));
    }
    let dataset = sidecar::read(side)?.dataset.name;
    std::fs::remove_file(path)?;
    let mut removed = vec![path.to_path_buf()];
    match std::fs::remove_file(side) {
        Ok(()) => removed.push(side.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(folder) = path.parent() {
        let dataset_folder = folder.file_name() == Some(std::ffi::OsStr::new(&dataset));
        // remove_dir removes only an empty folder: anything else in it keeps it.
        if dataset_folder && std::fs::remove_dir(folder).is_ok() {
            removed.push(folder.to_path_buf());
        }
    }
    Ok(RecoverReport {
        path: path.to_path_buf(),
        planes: 0,
        truncated_bytes: 0,
        already_complete: false,
        planes_without_metadata: 0,
        bytes: 0,
        empty: true,
        removed,
    })
}
