//! `[audit]`: where the log of who did what goes, and how it rotates.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Parser, StorageConfig};

/// The audit log: where, and how it rotates.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The current file; rotated files are `PATH.1` (newest) to `PATH.KEEP`.
    pub path: PathBuf,
    /// The current file is rotated before it grows past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files are kept.
    pub keep: u32,
}

/// The audit log's size limit when the config does not say, in MiB.
pub const DEFAULT_AUDIT_MB: u64 = 16;
/// Rotated audit files kept when the config does not say.
pub const DEFAULT_AUDIT_KEEP: u32 = 5;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    path: Option<PathBuf>,
    max_mb: Option<u64>,
    keep: Option<u32>,
}

impl<'a> Parser<'a> {
    pub(super) fn audit(
        &self,
        raw: RawAudit,
        storage: &StorageConfig,
    ) -> Result<AuditConfig, ConfigError> {
        let at = |key: &str, message: String| {
            self.error(
                self.find_key(&["audit", key]),
                Some(format!("audit.{key}")),
                message,
            )
        };
        let path = match raw.path {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(at("path", "must name a file".into()))
            }
            Some(p) => p,
            None => storage.data_root.join(".audit").join("audit.jsonl"),
        };
        let max_mb = raw.max_mb.unwrap_or(DEFAULT_AUDIT_MB);
        if !(1..=1 << 16).contains(&max_mb) {
            return Err(at(
                "max_mb",
                format!("must be from 1 to 65536 MiB, got {max_mb}"),
            ));
        }
        let keep = raw.keep.unwrap_or(DEFAULT_AUDIT_KEEP);
        if !(1..=1000).contains(&keep) {
            return Err(at("keep", format!("must be from 1 to 1000, got {keep}")));
        }
        Ok(AuditConfig {
            path,
            max_bytes: max_mb << 20,
            keep,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::Config;

    #[test]
    fn audit_settings() {
        let head = format!("{HEAD}[server]\nanonymous_loopback_admin = true\n");
        let c = Config::parse(
            &format!("{head}[audit]\npath = \"/var/log/m.jsonl\"\nmax_mb = 2\nkeep = 3\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!((c.audit.max_bytes, c.audit.keep), (2 << 20, 3));
        for (text, key) in [
            ("[audit]\nmax_mb = 0\n", "audit.max_mb"),
            ("[audit]\nkeep = 0\n", "audit.keep"),
            ("[audit]\nsize = 1\n", "audit.size"),
        ] {
            let e = err(&format!("{head}{text}"));
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(6), "{e}");
        }
    }
}
