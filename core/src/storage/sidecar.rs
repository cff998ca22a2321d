//! The crash-recovery sidecar `<file>.frames.jsonl`.
//!
//! Line 1 is the [`DatasetMeta`] as JSON (plus `format` and `uuid` keys, so recovery keeps the
//! file's UUID); every further line is one written plane: its [`PlaneMeta`] fields plus `ifd`,
//! the plane's IFD offset. Records are keyed by IFD offset rather than by line number, so a
//! missing or torn last line (a kill between linking the IFD and appending its record) costs
//! that plane's metadata, nothing else.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{DatasetMeta, PlaneMeta};

/// Identifies the sidecar format in its first line.
pub(crate) const FORMAT: &str = "microscoped-frames/1";

/// The sidecar of the `.ome.tiff` at `path`: `path` + ".frames.jsonl".
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".frames.jsonl");
    PathBuf::from(s)
}

#[derive(serde::Serialize)]
pub(crate) struct HeaderOut<'a> {
    pub format: &'a str,
    pub uuid: &'a str,
    #[serde(flatten)]
    pub dataset: &'a DatasetMeta,
}

#[derive(serde::Deserialize)]
struct HeaderIn {
    format: String,
    uuid: String,
    #[serde(flatten)]
    dataset: DatasetMeta,
}

#[derive(serde::Serialize)]
pub(crate) struct RecordOut<'a> {
    pub ifd: u64,
    #[serde(flatten)]
    pub plane: &'a PlaneMeta,
}

#[derive(serde::Deserialize)]
struct RecordIn {
    ifd: u64,
    #[serde(flatten)]
    plane: PlaneMeta,
}

/// A sidecar as read back by recovery.
pub(crate) struct Sidecar {
    pub dataset: DatasetMeta,
    pub uuid: String,
    /// Plane metadata by IFD offset.
    pub planes: HashMap<u64, PlaneMeta>,
}

/// Reads a sidecar. The header line must parse; plane lines that don't (a torn last line) are
/// skipped.
pub(crate) fn read(path: &Path) -> io::Result<Sidecar> {
    let mut lines = BufReader::new(File::open(path)?).split(b'\n');
    let bad_header = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: first line is not a microscoped dataset header: {why}",
                path.display()
            ),
        )
    };
    let first = lines.next().ok_or_else(|| bad_header("empty".into()))??;
    let header: HeaderIn = serde_json::from_slice(&first).map_err(|e| bad_header(e.to_string()))?;
    if header.format != FORMAT {
        return Err(bad_header(format!("unknown format {:?}", header.format)));
    }
    let mut planes = HashMap::new();
    for line in lines {
        if let Ok(rec) = serde_json::from_slice::<RecordIn>(&line?) {
            planes.insert(rec.ifd, rec.plane);
        }
    }
    Ok(Sidecar {
        dataset: header.dataset,
        uuid: header.uuid,
        planes,
    })
}
