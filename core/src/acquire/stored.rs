//! Datasets on disk: the `summary.json` every run keeps beside its files, reading a run's
//! planes back (whatever format its images are in: `storage::read_plane` dispatches), and the
//! index of the data root made at start, so that runs from before the daemon started are
//! listed and read like the ones since.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use microscoped_driver_api::{FrameShape, PixelType};
use serde_json::{json, Value};
use tracing::{info, warn};

use super::plan_run::{PlanCheck, PlanProgress, PlanStatus};
use super::run::Run;
use super::{validate_dataset_name, Acquisitions, RunState, Status};
use crate::error::{Error, Kind};
use crate::ring::RingCounters;
use crate::storage::{self, ImageInfo, PlaneAddress, PlaneData};

/// The summary every dataset folder holds.
const SUMMARY: &str = "summary.json";

/// Writes `summary.json` beside a run's files: what it is, its state, counters and, for a
/// plan, the check, progress and files. Called at a plan's start and at every run's end; a
/// failure is logged, never fatal (the data matters more). A run that took no frame and left
/// no folder gets none.
pub(super) fn write_summary(run: &Run) {
    let status = run.status();
    let c = status.counters;
    let mut summary = json!({
        "kind": if run.plan.is_some() { "plan" } else { "sequence" },
        "name": status.name,
        "camera": status.camera,
        "state": state_name(status.state),
        "error": status.error,
        "elapsed_s": status.elapsed.as_secs_f64(),
        "frames_planned": status.frames_planned,
        "frames": {"received": c.received, "written": c.written, "dropped": c.dropped},
    });
    let folder = match (&run.plan, &mut summary) {
        (Some(plan), Value::Object(m)) => {
            m.extend(plan.summary_json());
            plan.folder().to_path_buf()
        }
        (_, Value::Object(m)) => {
            let file = run
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned());
            m.insert("files".into(), json!([file]));
            run.path.parent().map(Path::to_path_buf).unwrap_or_default()
        }
        _ => return,
    };
    if !folder.is_dir() {
        return;
    }
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if let Err(e) = std::fs::write(folder.join(SUMMARY), text) {
        warn!(error = %e, folder = %folder.display(), "cannot write the dataset summary");
    }
}

fn state_name(s: RunState) -> &'static str {
    match s {
        RunState::Running => "running",
        RunState::Finished => "finished",
        RunState::Stopped => "stopped",
        RunState::Failed => "failed",
        RunState::Paused => "paused",
    }
}

/// The images of an acquisition, one per stage position and grid tile, in position order:
/// a plan's files, or a sequence's one file.
pub fn images(s: &Status) -> Vec<PathBuf> {
    match &s.plan {
        Some(p) => p.files.clone(),
        None => vec![s.path.clone()],
    }
}

impl Acquisitions {
    /// Plane `addr` of the image of `position` (its index in [`images`]) of acquisition `s`,
    /// finished or still being written.
    pub async fn read_plane(
        &self,
        s: &Status,
        position: u32,
        addr: PlaneAddress,
    ) -> Result<PlaneData, Error> {
        let images = images(s);
        let Some(path) = images.get(position as usize).cloned() else {
            return Err(Error::new(
                Kind::InvalidArgument,
                format!(
                    "acquisition {} ({}) has {} position(s), 0 to {}; there is no position {position}",
                    s.id,
                    s.name,
                    images.len(),
                    images.len().saturating_sub(1)
                ),
            ));
        };
        let file = path.clone();
        let read = tokio::task::spawn_blocking(move || storage::read_plane(&file, addr))
            .await
            .map_err(|_| Error::new(Kind::Unknown, "reading the plane panicked"))?;
        read.map_err(|e| {
            let e = Error::from(e);
            // `recover` only for a file no run writes any more: run on one the daemon is
            // still writing, it would race the writer.
            let live = matches!(s.state, RunState::Running | RunState::Paused);
            let hint =
                if !live && e.kind == Kind::OutOfRange && storage::sidecar_path(&path).exists() {
                    format!("; `microscoped recover {}` completes it", path.display())
                } else {
                    String::new()
                };
            Error::new(
                e.kind,
                format!("acquisition {} ({}): {}{hint}", s.id, s.name, e.message),
            )
        })
    }

    /// Lists the datasets under the data root (`<owner>/<name>/`), oldest first, as ended
    /// acquisitions with ids of their own, so that runs from before the daemon started are
    /// listed, watched and read like the ones since. Called once, before the daemon serves.
    /// Returns how many it found.
    pub fn index_data_root(&self) -> usize {
        let root = self.0.storage.data_root.clone();
        let mut found: Vec<(SystemTime, Status)> = Vec::new();
        for (owner, owner_dir) in real_dirs(&root) {
            for (name, dir) in real_dirs(&owner_dir) {
                if let Some(found_one) = stored_status(&owner, &name, &dir) {
                    found.push(found_one);
                }
            }
        }
        found.sort_by(|a, b| (a.0, &a.1.owner, &a.1.name).cmp(&(b.0, &b.1.owner, &b.1.name)));
        let n = found.len();
        let mut past = self.past();
        for (_, mut s) in found {
            s.id = self
                .0
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            past.push(s);
        }
        if n > 0 {
            info!(datasets = n, root = %root.display(), "indexed the datasets already in the data root");
        }
        n
    }
}

/// The folders in `dir` whose names are valid dataset/user names, as (name, path); links and
/// files are left out (a planted link must not lead the daemon elsewhere), and so are hidden
/// folders such as the audit log's.
fn real_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            validate_dataset_name(&name).ok()?;
            Some((name, e.path()))
        })
        .collect()
}

/// A dataset found on disk as an ended acquisition (id 0 until listed), and when it was last
/// changed; `None` for a folder that holds no dataset.
fn stored_status(owner: &str, name: &str, dir: &Path) -> Option<(SystemTime, Status)> {
    let summary: Option<Value> = std::fs::read(dir.join(SUMMARY))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let get = |k: &str| summary.as_ref().and_then(|s| s.get(k));
    let files: Vec<PathBuf> = match get("files").and_then(Value::as_array) {
        Some(names) => names
            .iter()
            .filter_map(Value::as_str)
            // Names only: a summary must not send the reader out of the folder.
            .filter(|n| !n.is_empty() && !n.contains('/') && *n != "." && *n != "..")
            .map(|n| dir.join(n))
            .collect(),
        None => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .ok()?
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .filter(|p| storage::Format::of(p).is_some())
                .collect();
            files.sort();
            files
        }
    };
    if files.is_empty() {
        return None;
    }
    // Only regular files are read: a link planted in the folder is not followed. A position
    // without a file took no frame; a damaged file is listed, failed, saying so.
    let mut damaged = None;
    let infos: Vec<Option<ImageInfo>> = files
        .iter()
        .map(|f| {
            if !std::fs::symlink_metadata(f).is_ok_and(|m| m.is_file()) {
                return None;
            }
            match storage::describe(f) {
                Ok(i) => Some(i),
                Err(e) => {
                    if matches!(e, storage::ReadError::Corrupt(_)) {
                        damaged.get_or_insert(e.to_string());
                    }
                    None
                }
            }
        })
        .collect();
    if summary.is_none() && damaged.is_none() && infos.iter().all(Option::is_none) {
        return None;
    }
    let changed = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let present = || infos.iter().flatten();
    let first = present().next();
    let planes: u64 = present().map(|i| i.planes).sum();
    let unfinished: Vec<&PathBuf> = files
        .iter()
        .zip(&infos)
        .filter(|(_, i)| i.as_ref().is_some_and(|i| !i.complete))
        .map(|(f, _)| f)
        .collect();
    let recovered = present().any(|i| i.recovered);
    let said = get("state").and_then(Value::as_str);
    let said_error = get("error").and_then(Value::as_str).map(str::to_owned);
    let (state, error) = if let Some(f) = unfinished.first() {
        // One command for all of them: `recover` takes the folder and completes every file.
        let what = if unfinished.len() > 1 {
            dir
        } else {
            f.as_path()
        };
        (
            RunState::Failed,
            Some(format!(
                "the daemon stopped during this acquisition (killed or crashed) and left {} \
                 unfinished file(s) holding the planes taken; `microscoped recover {}` completes {}",
                unfinished.len(),
                what.display(),
                if unfinished.len() > 1 { "them" } else { "it" }
            )),
        )
    } else if let Some(why) = damaged {
        (RunState::Failed, Some(why))
    } else {
        match said {
            Some("finished") => (RunState::Finished, None),
            Some("stopped") => (RunState::Stopped, None),
            Some("failed") => (RunState::Failed, said_error),
            // No summary of its end: the daemon stopped during it, and `recover` finished it.
            Some(_) => (
                RunState::Failed,
                Some("the daemon stopped during this acquisition; its files were recovered".into()),
            ),
            None if recovered => (
                RunState::Failed,
                Some("the daemon stopped during this acquisition; its file was recovered".into()),
            ),
            None => (RunState::Finished, None),
        }
    };
    let ended_normally = matches!(said, Some("finished" | "stopped" | "failed"));
    let frames = get("frames");
    let frame = |k: &str| frames.and_then(|f| f.get(k)).and_then(Value::as_u64);
    let counters = match (frame("received"), frame("written"), frame("dropped")) {
        (Some(received), Some(written), Some(dropped))
            if ended_normally && unfinished.is_empty() =>
        {
            RingCounters {
                received,
                written,
                dropped,
                ..Default::default()
            }
        }
        _ => {
            // What the files record, or failing that what they hold.
            let recorded: Vec<_> = present().filter_map(|i| i.counters).collect();
            if !recorded.is_empty() && unfinished.is_empty() {
                RingCounters {
                    received: recorded.iter().map(|c| c.received).sum(),
                    written: recorded.iter().map(|c| c.written).sum(),
                    dropped: recorded.iter().map(|c| c.dropped).sum(),
                    ..Default::default()
                }
            } else {
                RingCounters {
                    received: planes,
                    written: planes,
                    ..Default::default()
                }
            }
        }
    };
    let is_plan = get("events_total").is_some();
    let events_total = get("events_total").and_then(Value::as_u64).unwrap_or(0);
    let frames_planned = if is_plan {
        Some(events_total)
    } else {
        get("frames_planned").and_then(Value::as_u64)
    };
    let plan = is_plan.then(|| {
        let n = |k: &str| get(k).and_then(Value::as_u64).unwrap_or(0);
        PlanStatus {
            // A summary from the plan's start (the daemon was killed) knows neither what was
            // done nor where it stood: the files hold one plane per event taken.
            progress: PlanProgress {
                events_done: if ended_normally {
                    n("events_done")
                } else {
                    planes
                },
                current: get("current")
                    .filter(|_| ended_normally)
                    .and_then(|c| serde_json::from_value(c.clone()).ok()),
                channel: get("channel")
                    .filter(|_| ended_normally)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                position_name: get("position_name")
                    .filter(|_| ended_normally)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                late_events: n("late_time_points"),
                max_late_s: get("max_late_s").and_then(Value::as_f64).unwrap_or(0.0),
                ..Default::default()
            },
            paused: false,
            events_total,
            folder: dir.to_path_buf(),
            files: files.clone(),
            check: PlanCheck {
                summary: get("plan")
                    .and_then(|p| serde_json::from_value(p.clone()).ok())
                    .unwrap_or_default(),
                bytes: n("estimated_bytes"),
                free_bytes: None,
                files: files.len() as u32,
                open_files: n("open_files").min(u64::from(u32::MAX)) as u32,
            },
        }
    });
    let status = Status {
        id: 0,
        name: name.to_owned(),
        owner: owner.to_owned(),
        camera: get("camera")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| first.map(|i| i.detector.clone()))
            .unwrap_or_default(),
        state,
        frames_planned,
        counters,
        bytes: present().map(|i| i.bytes).sum(),
        path: if is_plan {
            dir.to_path_buf()
        } else {
            files[0].clone()
        },
        error,
        elapsed: Duration::from_secs_f64(
            get("elapsed_s")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(0.0),
        ),
        ring_slots: 0,
        shape: FrameShape {
            width: first.map_or(0, |i| i.width),
            height: first.map_or(0, |i| i.height),
            pixel_type: first.map_or(PixelType::U16, |i| i.pixel_type),
        },
        plan,
    };
    Some((changed, status))
}
