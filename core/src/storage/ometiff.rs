//! The streaming OME-TIFF writer.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::layout::{self, PlaneIfd};
use super::sidecar::{self, sidecar_path};
use super::xml::{self, Contents, XmlPlane};
use super::{Counters, DatasetMeta, Finished, PlaneMeta};

/// A file we write with positioned writes, open or closed: a writer whose file is closed (to
/// spare the process a descriptor) keeps everything it knows and opens it again by its path.
/// In tests it can pretend the disk holds only `limit` bytes: a write past it is cut short and
/// fails like ENOSPC does.
struct Sink {
    /// Where the file is, to open it again.
    path: PathBuf,
    /// The open file; `None` while closed.
    file: Option<File>,
    #[cfg(test)]
    limit: Option<u64>,
}

impl Sink {
    fn new(path: &Path, file: File) -> Self {
        Self {
            path: path.to_path_buf(),
            file: Some(file),
            #[cfg(test)]
            limit: None,
        }
    }

    /// Opens the file again if it is closed. Never creates it: a file removed meanwhile is an
    /// error, not a new empty file.
    fn open(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.path)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("opening {} again: {e}", self.path.display()),
                    )
                })?;
            self.file = Some(file);
        }
        Ok(())
    }

    fn file(&self) -> io::Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other(format!("{} is closed", self.path.display())))
    }

    fn write_all_at(&self, buf: &[u8], at: u64) -> io::Result<()> {
        let file = self.file()?;
        #[cfg(test)]
        if let Some(limit) = self.limit {
            if at + buf.len() as u64 > limit {
                let fit = limit.saturating_sub(at).min(buf.len() as u64) as usize;
                file.write_all_at(&buf[..fit], at)?;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated: no space left on device",
                ));
            }
        }
        file.write_all_at(buf, at)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file()?.set_len(len)
    }
}

/// Writes one OME-TIFF plane by plane, keeping it a valid (Big)TIFF after every plane and a
/// sidecar from which [`recover`](super::recover) can rebuild the metadata after a crash.
///
/// Dropping the writer without [`finish`](Self::finish) leaves the file as a crash would: every
/// plane written is readable, the OME-XML is the planned one, and the sidecar remains.
///
/// The file and its sidecar may be [closed](Self::close) between planes (a run with more files
/// than descriptors to spare keeps only some open); the next plane, or `finish`, opens them
/// again and goes on where it was. Every write is positioned and nothing is buffered, so a
/// closed file is as complete, readable and recoverable as an open one.
pub struct OmeTiffWriter {
    path: PathBuf,
    out: Sink,
    sidecar_path: PathBuf,
    sidecar: Sink,
    sidecar_len: u64,
    meta: DatasetMeta,
    uuid: String,
    plane_bytes: u64,
    /// End of the last complete plane: the file's length unless `dirty`.
    len: u64,
    /// A failed write may have left bytes past `len` (and an IFD linked at `link_pos`, and a
    /// partial sidecar line past `sidecar_len`); undone before anything else is written.
    dirty: bool,
    /// Where the next IFD's offset goes: the header's first-IFD field, then the last IFD's next
    /// pointer.
    link_pos: u64,
    /// The planned XML's length with its NUL, for IFD 0's ImageDescription.
    planned_xml_len: u64,
    /// IFD 0's offset, once there is one.
    ifd0: Option<u64>,
    planes: Vec<PlaneMeta>,
    /// Reused for every IFD and sidecar line, so the hot path does not allocate.
    ifd_buf: Vec<u8>,
    line_buf: Vec<u8>,
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn validate(meta: &DatasetMeta) -> io::Result<()> {
    if meta.width == 0 || meta.height == 0 {
        return Err(invalid_input(format!(
            "frame size {}x{} is empty",
            meta.width, meta.height
        )));
    }
    if !xml::valid_dimension_order(&meta.dimension_order) {
        return Err(invalid_input(format!(
            "dimension order {:?} is not one of XYZCT, XYZTC, XYCTZ, XYCZT, XYTCZ, XYTZC",
            meta.dimension_order
        )));
    }
    Ok(())
}

impl OmeTiffWriter {
    /// Creates `path` (which must not exist: never overwrites, fails with `AlreadyExists`) and
    /// its sidecar `path + ".frames.jsonl"` (which must not exist either). Writes the TIFF
    /// header with the planned OME-XML (no planes yet) and the sidecar's first line.
    pub fn create(path: &Path, meta: DatasetMeta) -> io::Result<Self> {
        validate(&meta)?;
        let plane_bytes =
            u64::from(meta.width) * u64::from(meta.height) * meta.pixel_type.bytes() as u64;
        let uuid = xml::new_uuid();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let sidecar_path = sidecar_path(path);
        let planned_xml = xml::ome_xml(&meta, &uuid, Contents::Planned);
        let planned_xml_len = planned_xml.len() as u64 + 1;
        let init = || -> io::Result<(File, u64, u64)> {
            let preamble = layout::preamble(&planned_xml);
            file.write_all_at(&preamble, 0)?;
            let sidecar = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&sidecar_path)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("creating sidecar {}: {e}", sidecar_path.display()),
                    )
                })?;
            let mut line = serde_json::to_vec(&sidecar::HeaderOut {
                format: sidecar::FORMAT,
                uuid: &uuid,
                dataset: &meta,
            })?;
            line.push(b'\n');
            if let Err(e) = sidecar.write_all_at(&line, 0) {
                let _ = std::fs::remove_file(&sidecar_path);
                return Err(e);
            }
            Ok((sidecar, preamble.len() as u64, line.len() as u64))
        };
        let (sidecar, len, sidecar_len) = match init() {
            Ok(v) => v,
            Err(e) => {
                // The file is ours (create_new) and holds nothing of value yet.
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
        };
        // Plans are usually modest; cap the up-front reservation for open-ended ones.
        let planned = u64::from(meta.size_t) * u64::from(meta.size_c) * u64::from(meta.size_z);
        Ok(Self {
            path: path.to_path_buf(),
            out: Sink::new(path, file),
            sidecar: Sink::new(&sidecar_path, sidecar),
            sidecar_path,
            sidecar_len,
            meta,
            uuid,
            plane_bytes,
            len,
            dirty: false,
            link_pos: layout::FIRST_IFD_POS,
            planned_xml_len,
            ifd0: None,
            planes: Vec::with_capacity(planned.min(100_000) as usize),
            ifd_buf: Vec::with_capacity(512),
            line_buf: Vec::with_capacity(512),
        })
    }

    /// Appends one plane: `data` is exactly width * height * bytes-per-pixel bytes, u16 pixels
    /// little-endian. On `Ok` the plane is in the IFD chain and written to the OS (durable against
    /// a process kill, not fsynced). On `Err` the plane is not in the file (a partial write is
    /// undone) and the writer stays usable: a later plane or [`finish`](Self::finish) may succeed.
    pub fn write_plane(&mut self, data: &[u8], plane: &PlaneMeta) -> io::Result<()> {
        if data.len() as u64 != self.plane_bytes {
            return Err(invalid_input(format!(
                "plane has {} bytes, expected {} ({}x{} {:?})",
                data.len(),
                self.plane_bytes,
                self.meta.width,
                self.meta.height,
                self.meta.pixel_type
            )));
        }
        self.open()?;
        self.discard_partial()?;
        let result = self.append_plane(data, plane);
        if result.is_err() {
            // Best effort now; if it fails, `dirty` makes the next call or finish retry.
            let _ = self.discard_partial();
        }
        result
    }

    fn append_plane(&mut self, data: &[u8], plane: &PlaneMeta) -> io::Result<()> {
        let data_at = self.len;
        let ifd_block_at = data_at + self.plane_bytes;
        let description = match self.ifd0 {
            None => Some((self.planned_xml_len, layout::XML_AT)),
            Some(_) => None,
        };
        let (entries, n) = layout::plane_entries(&PlaneIfd {
            width: self.meta.width,
            height: self.meta.height,
            bits: (self.meta.pixel_type.bytes() * 8) as u16,
            strip_offset: data_at,
            strip_len: self.plane_bytes,
            description,
        });
        let ifd_at = layout::encode_ifd_block(&mut self.ifd_buf, ifd_block_at, &entries[..n]);

        self.dirty = true;
        // Data and IFD first, then the link: a kill at any point leaves a valid chain.
        self.out.write_all_at(data, data_at)?;
        self.out.write_all_at(&self.ifd_buf, ifd_block_at)?;
        self.out
            .write_all_at(&ifd_at.to_le_bytes(), self.link_pos)?;

        self.line_buf.clear();
        serde_json::to_writer(
            &mut self.line_buf,
            &sidecar::RecordOut { ifd: ifd_at, plane },
        )?;
        self.line_buf.push(b'\n');
        self.sidecar
            .write_all_at(&self.line_buf, self.sidecar_len)?;

        self.sidecar_len += self.line_buf.len() as u64;
        self.len = ifd_block_at + self.ifd_buf.len() as u64;
        self.link_pos = layout::next_pointer_pos(ifd_at, n);
        self.ifd0.get_or_insert(ifd_at);
        self.planes.push(*plane);
        self.dirty = false;
        Ok(())
    }

    /// Undoes what a failed write may have left: unlinks a possibly linked IFD, cuts the file
    /// and the sidecar back to their last complete plane.
    fn discard_partial(&mut self) -> io::Result<()> {
        if self.dirty {
            self.out.write_all_at(&0u64.to_le_bytes(), self.link_pos)?;
            self.out.set_len(self.len)?;
            self.sidecar.set_len(self.sidecar_len)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Opens the file and its sidecar again if they were [closed](Self::close).
    pub fn open(&mut self) -> io::Result<()> {
        self.out.open()?;
        self.sidecar.open()
    }

    /// Closes the file and its sidecar, giving their descriptors back; the writer keeps its
    /// place and the next plane opens them again. What was written is on the OS already.
    pub fn close(&mut self) {
        self.out.file = None;
        self.sidecar.file = None;
    }

    /// Whether the file and its sidecar are open.
    pub fn is_open(&self) -> bool {
        self.out.file.is_some() && self.sidecar.file.is_some()
    }

    /// Whether every plane the file was laid out for (T × C × Z) is in it.
    pub fn is_complete(&self) -> bool {
        let planned =
            u64::from(self.meta.size_t) * u64::from(self.meta.size_c) * u64::from(self.meta.size_z);
        self.planes() >= planned
    }

    /// Planes written so far.
    pub fn planes(&self) -> u64 {
        self.planes.len() as u64
    }

    /// Bytes in the file so far (up to the end of the last complete plane).
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The dataset being written.
    pub fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    /// Finishes the file: appends OME-XML describing exactly the planes written (with `counters`
    /// as a MapAnnotation), points IFD 0's ImageDescription at it, fsyncs, removes the sidecar.
    ///
    /// Works after a failed [`write_plane`](Self::write_plane) (disk full): the partial plane is
    /// cut off first, which frees room for the XML. If finishing still fails, the file keeps
    /// every complete plane and its sidecar, so [`recover`](super::recover) can finish it later.
    ///
    /// With no plane written there is no IFD to carry the XML, so the file and its sidecar are
    /// removed and the result reports 0 planes and 0 bytes.
    pub fn finish(mut self, counters: Counters) -> io::Result<Finished> {
        self.open()?;
        self.discard_partial()?;
        let Some(ifd0) = self.ifd0 else {
            std::fs::remove_file(&self.path)?;
            std::fs::remove_file(&self.sidecar_path)?;
            return Ok(Finished {
                path: self.path,
                planes: 0,
                bytes: 0,
            });
        };
        let planes: Vec<XmlPlane> = self.planes.iter().map(XmlPlane::from).collect();
        let annotations = [
            ("received", counters.received.to_string()),
            ("written", counters.written.to_string()),
            ("dropped", counters.dropped.to_string()),
        ];
        let xml = xml::ome_xml(
            &self.meta,
            &self.uuid,
            Contents::Written {
                planes: &planes,
                annotations: &annotations,
            },
        );
        let bytes = finalize(&self.out, ifd0, layout::DESCRIPTION_INDEX, self.len, xml)?;
        remove_sidecar(&self.sidecar_path)?;
        Ok(Finished {
            path: self.path,
            planes: self.planes.len() as u64,
            bytes,
        })
    }

    /// Test hook: pretend the file's disk (or the sidecar's) holds only so many bytes.
    #[cfg(test)]
    pub(crate) fn set_limits(&mut self, file: Option<u64>, sidecar: Option<u64>) {
        self.out.limit = file;
        self.sidecar.limit = sidecar;
    }
}

/// Appends `xml` (NUL-terminated) at `at`, points the ImageDescription entry (`desc_index`) of
/// the IFD at `ifd0` to it, and fsyncs. Returns the file's new length. On failure the appended
/// bytes are cut off again (best effort) so the file stays as it was.
fn finalize(out: &Sink, ifd0: u64, desc_index: usize, at: u64, xml: String) -> io::Result<u64> {
    let mut bytes = xml.into_bytes();
    bytes.push(0);
    if let Err(e) = out.write_all_at(&bytes, at) {
        let _ = out.set_len(at);
        return Err(e);
    }
    let end = at + bytes.len() as u64;
    // Count and offset are adjacent in the entry: one 16-byte write re-points the tag.
    out.write_all_at(
        &layout::ascii_patch(bytes.len() as u64, at),
        layout::entry_pos(ifd0, desc_index) + 4,
    )?;
    out.file()?.sync_all()?;
    Ok(end)
}

/// Removes a sidecar after its file is complete and synced, then syncs the directory so the
/// removal sticks (best effort: some filesystems refuse to fsync directories).
fn remove_sidecar(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// For recovery: finish a file given its IFD 0 and where the XML goes.
pub(crate) fn finalize_file(
    path: &Path,
    file: File,
    ifd0: u64,
    desc_index: usize,
    at: u64,
    xml: String,
    sidecar: &Path,
) -> io::Result<u64> {
    let end = finalize(&Sink::new(path, file), ifd0, desc_index, at, xml)?;
    remove_sidecar(sidecar)?;
    Ok(end)
}
