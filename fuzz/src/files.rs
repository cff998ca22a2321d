//! An OME-TIFF file and its sidecar as one fuzz input, put on disk for the storage code, which
//! reads paths.
//!
//! An input is the file's bytes, then, if [`SIDECAR_MARK`] follows, the sidecar's bytes after
//! it: without the mark the file has no sidecar (finished, or not ours).

use std::fs;
use std::path::{Path, PathBuf};

use microscoped_core::storage::sidecar_path;

/// Separates the file's bytes from its sidecar's in an input.
pub const SIDECAR_MARK: &[u8] = b"\n==microscoped-fuzz sidecar==\n";

/// The file and the sidecar of an input.
pub fn split(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data
        .windows(SIDECAR_MARK.len())
        .position(|w| w == SIDECAR_MARK)
    {
        Some(at) => (&data[..at], Some(&data[at + SIDECAR_MARK.len()..])),
        None => (data, None),
    }
}

/// An input made of a file and maybe its sidecar.
pub fn join(file: &[u8], sidecar: Option<&[u8]>) -> Vec<u8> {
    let mut out = file.to_vec();
    if let Some(s) = sidecar {
        out.extend_from_slice(SIDECAR_MARK);
        out.extend_from_slice(s);
    }
    out
}

/// A folder of this process's own under the temporary directory, where each input is laid out
/// as a dataset folder holding one image.
pub struct Scratch {
    root: PathBuf,
}

impl Scratch {
    /// The process's scratch folder (under `TMPDIR`), made empty.
    pub fn new() -> Self {
        let root = std::env::temp_dir().join(format!("microscoped-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        Self { root }
    }

    /// Writes `data`'s file (and sidecar) as `run/image.ome.tiff` (and its sidecar) in a fresh
    /// dataset folder named `run`, and returns the file's path.
    pub fn place(&self, data: &[u8]) -> PathBuf {
        let (file, sidecar) = split(data);
        let folder = self.root.join("run");
        let _ = fs::remove_dir_all(&folder);
        fs::create_dir_all(&folder).expect("the scratch folder");
        let path = folder.join("image.ome.tiff");
        fs::write(&path, file).expect("the scratch file");
        if let Some(s) = sidecar {
            fs::write(sidecar_path(&path), s).expect("the scratch sidecar");
        }
        path
    }

    /// The folder inputs are placed in.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}
