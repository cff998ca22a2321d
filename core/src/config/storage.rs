//! `[storage]`: where datasets land and how the frame ring is sized.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, OverflowPolicy, Parser};

/// Where datasets land and how the frame ring is sized.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Every dataset is a folder under this one.
    pub data_root: PathBuf,
    /// Memory for the frame ring of one acquisition, in bytes.
    pub ring_bytes: u64,
    /// The ring has at least this many slots whatever the budget.
    pub min_slots: usize,
    /// What happens when the writer falls behind and the ring is full.
    pub overflow: OverflowPolicy,
}

/// The ring budget when the config does not say: 1 GiB holds 128 full 2048x2048 16-bit frames.
pub const DEFAULT_RING_MB: u64 = 1024;
/// The minimum slot count when the config does not say.
pub const DEFAULT_MIN_SLOTS: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    #[serde(default = "default_data_root")]
    data_root: PathBuf,
    #[serde(default = "default_ring_mb")]
    ring_mb: u64,
    #[serde(default = "default_min_slots")]
    min_slots: usize,
    #[serde(default = "default_overflow")]
    overflow: OverflowPolicy,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            data_root: default_data_root(),
            ring_mb: DEFAULT_RING_MB,
            min_slots: DEFAULT_MIN_SLOTS,
            overflow: default_overflow(),
        }
    }
}

fn default_data_root() -> PathBuf {
    PathBuf::from("data")
}
fn default_ring_mb() -> u64 {
    DEFAULT_RING_MB
}
fn default_min_slots() -> usize {
    DEFAULT_MIN_SLOTS
}
fn default_overflow() -> OverflowPolicy {
    OverflowPolicy::Drop
}

impl<'a> Parser<'a> {
    pub(super) fn storage(&self, raw: RawStorage) -> Result<StorageConfig, ConfigError> {
        let at = |key: &str, message: String| {
            self.error(
                self.find_key(&["storage", key]),
                Some(format!("storage.{key}")),
                message,
            )
        };
        if raw.data_root.as_os_str().is_empty() {
            return Err(at("data_root", "must name a folder".into()));
        }
        if !(1..=1 << 20).contains(&raw.ring_mb) {
            return Err(at(
                "ring_mb",
                format!("must be from 1 to 1048576 MiB, got {}", raw.ring_mb),
            ));
        }
        if !(2..=100_000).contains(&raw.min_slots) {
            return Err(at(
                "min_slots",
                format!("must be from 2 to 100000, got {}", raw.min_slots),
            ));
        }
        Ok(StorageConfig {
            data_root: raw.data_root,
            ring_bytes: raw.ring_mb << 20,
            min_slots: raw.min_slots,
            overflow: raw.overflow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::Config;
    use super::*;

    #[test]
    fn storage_settings() {
        let c = Config::parse(
            &format!(
                "{HEAD}[server]\nanonymous_loopback_admin = true\n[storage]\ndata_root = \"/tmp/x\"\nring_mb = 64\noverflow = \"stop\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.storage.ring_bytes, 64 << 20);
        assert_eq!(c.storage.overflow, OverflowPolicy::Stop);
        let e = err(&format!("{HEAD}[storage]\noverflow = \"maybe\"\n"));
        assert_eq!(e.key.as_deref(), Some("storage.overflow"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
        let e = err(&format!("{HEAD}[storage]\nmin_slots = 1\n"));
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("storage.min_slots"), Some(4)),
            "{e}"
        );
    }
}
