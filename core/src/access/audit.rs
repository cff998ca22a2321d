//! The audit log: one JSON object per line of who did what and when, appended as it happens,
//! rotated by size, read back by admins over gRPC.
//!
//! Each entry is written (one `write` of the whole line to a file opened for appending) before
//! the request that caused it is answered, so a client that has its answer knows the action is
//! on record. Writing takes a mutex held for that one write; nothing on the frame path writes here.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::AuditConfig;

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, RFC 3339 UTC with microseconds.
    pub time: String,
    /// The same instant as Unix microseconds, for filtering without parsing dates.
    pub time_unix_us: i64,
    /// Who: a configured user, `local` (anonymous loopback admin), `daemon` for what the daemon
    /// does on its own, or empty when the caller could not be identified.
    pub user: String,
    /// Their role, empty when unknown.
    pub role: String,
    /// The client's address, empty for the daemon's own actions.
    pub peer: String,
    /// What was done or tried: the gRPC method ("SetProperty") or a daemon action
    /// ("LeaseExpired", "SafeStateAfterFailure").
    pub action: String,
    /// What it was done to: a device, "Laser488.power_setpoint_mw", an acquisition, a user.
    pub target: String,
    /// The values involved (position, power, dataset name, ...).
    pub detail: serde_json::Value,
    /// "ok", "denied" (refused by the daemon: permission, lease, limit, bad request) or
    /// "failed" (allowed but went wrong: device fault, timeout).
    pub outcome: String,
    /// Why it was denied or failed; empty when ok.
    pub reason: String,
}

/// What an entry reports, before the time is stamped on it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// See [`AuditEntry::user`].
    pub user: String,
    /// See [`AuditEntry::role`].
    pub role: String,
    /// See [`AuditEntry::peer`].
    pub peer: String,
    /// See [`AuditEntry::action`].
    pub action: String,
    /// See [`AuditEntry::target`].
    pub target: String,
    /// See [`AuditEntry::detail`].
    pub detail: serde_json::Value,
    /// See [`AuditEntry::outcome`].
    pub outcome: &'static str,
    /// See [`AuditEntry::reason`].
    pub reason: String,
}

struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

/// The audit log: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Audit(Arc<Mutex<Writer>>);

impl Audit {
    /// Opens (or creates) the log and its folder.
    pub fn open(config: &AuditConfig) -> io::Result<Self> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(&config.path)?;
        let size = file.metadata()?.len();
        Ok(Self(Arc::new(Mutex::new(Writer {
            path: config.path.clone(),
            file,
            size,
            max_bytes: config.max_bytes,
            keep: config.keep,
        }))))
    }

    /// The current file.
    pub fn path(&self) -> PathBuf {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path
            .clone()
    }

    /// Appends an entry stamped with the time now. A failure to write is logged, not returned:
    /// the instrument keeps working when the audit disk has trouble, and the log says so.
    pub fn record(&self, r: Record) {
        let now = SystemTime::now();
        let entry = AuditEntry {
            time: crate::time::iso8601(now),
            time_unix_us: crate::time::unix_us(now),
            user: r.user,
            role: r.role,
            peer: r.peer,
            action: r.action,
            target: r.target,
            detail: r.detail,
            outcome: r.outcome.to_owned(),
            reason: r.reason,
        };
        let mut line = match serde_json::to_string(&entry) {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot encode an audit entry");
                return;
            }
        };
        line.push('\n');
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.append(line.as_bytes()) {
            warn!(path = %w.path.display(), error = %e, action = %entry.action, user = %entry.user, "cannot write the audit log");
        }
    }

    /// The newest `max` entries at or after `since_unix_us`, oldest first, from the rotated
    /// files and the current one. Lines that do not parse (a line cut by a full disk) are
    /// skipped.
    pub fn read(&self, max: usize, since_unix_us: i64) -> io::Result<Vec<AuditEntry>> {
        let (path, keep) = {
            let w = self.0.lock().unwrap_or_else(|e| e.into_inner());
            (w.path.clone(), w.keep)
        };
        let mut out = std::collections::VecDeque::new();
        let files = (1..=keep)
            .rev()
            .map(|i| rotated(&path, i))
            .chain(std::iter::once(path.clone()));
        for file in files {
            let f = match File::open(&file) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in io::BufReader::new(f).lines() {
                let Ok(entry) = serde_json::from_str::<AuditEntry>(&line?) else {
                    continue;
                };
                if entry.time_unix_us >= since_unix_us {
                    out.push_back(entry);
                    if out.len() > max {
                        out.pop_front();
                    }
                }
            }
        }
        Ok(out.into())
    }
}

impl Writer {
    fn append(&mut self, line: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        // One write of the whole line to an O_APPEND file: a reader never sees half of it
        // unless the disk is full.
        self.file.write_all(line)?;
        self.file.flush()?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// PATH.keep is dropped, PATH.i becomes PATH.i+1, PATH becomes PATH.1, a new PATH starts.
    fn rotate(&mut self) -> io::Result<()> {
        let _ = std::fs::remove_file(rotated(&self.path, self.keep));
        for i in (1..self.keep).rev() {
            let from = rotated(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, i + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `audit.jsonl.3`
fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{i}"));
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> Record {
        Record {
            user: "alice".into(),
            role: "operator".into(),
            peer: "127.0.0.1:1".into(),
            action: action.into(),
            target: "XY".into(),
            detail: serde_json::json!({"position_um": [1.0, 2.0]}),
            outcome: "ok",
            reason: String::new(),
        }
    }

    #[test]
    fn entries_round_trip_and_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("audit.jsonl");
        let audit = Audit::open(&AuditConfig {
            path: path.clone(),
            max_bytes: 1000,
            keep: 2,
        })
        .unwrap();
        for i in 0..40 {
            audit.record(record(&format!("Move{i}")));
        }
        // Rotated: the current file stays under the limit, and only `keep` old files remain.
        assert!(std::fs::metadata(&path).unwrap().len() <= 1000);
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        let all = audit.read(1000, 0).unwrap();
        assert!(all.len() < 40, "the oldest went with the dropped file");
        assert_eq!(all.last().unwrap().action, "Move39");
        // Oldest first, in order, across files.
        let nums: Vec<u32> = all.iter().map(|e| e.action[4..].parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        let last3 = audit.read(3, 0).unwrap();
        assert_eq!(last3.len(), 3);
        assert_eq!(last3[2].action, "Move39");
        let e = &last3[0];
        assert_eq!(e.user, "alice");
        assert_eq!(e.detail["position_um"][1], 2.0);
        assert!(e.time.ends_with('Z'));
        let future = audit.read(100, e.time_unix_us + 3_600_000_000).unwrap();
        assert!(future.is_empty());
    }

    #[test]
    fn a_reopened_log_appends() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            path: dir.path().join("a.jsonl"),
            max_bytes: 1 << 20,
            keep: 1,
        };
        Audit::open(&config).unwrap().record(record("First"));
        let a = Audit::open(&config).unwrap();
        a.record(record("Second"));
        let actions: Vec<_> = a
            .read(10, 0)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["First", "Second"]);
    }
}
