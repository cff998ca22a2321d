//! A driver's own config settings: the one error shape every driver reports from validating
//! them, and the trait the daemon's driver registry reads them through.

use std::fmt;

/// A setting that cannot be used, named by its key so the daemon can point at the config line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The settings key at fault, as written in the config ("x_travel_um", "labels").
    pub key: String,
    /// What is wrong with it and what would be accepted.
    pub message: String,
}

impl SettingError {
    /// An error about `key`.
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for SettingError {}

/// A driver's settings, as the config gives them (deserialized from the device's table less the
/// keys every device has). The daemon validates them when the config is read, so a mistake is
/// reported with its file and line before anything opens.
pub trait Settings {
    /// Checks every setting that can be checked without the hardware; the error names the
    /// first key at fault and says why.
    fn validate(&self) -> Result<(), SettingError>;

    /// A state device's position labels, when its settings list them (the config checks
    /// objective names against them).
    fn labels(&self) -> Option<&[String]> {
        None
    }
}
