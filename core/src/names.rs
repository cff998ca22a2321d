//! Names that become folders, files or keys: datasets, users, devices. A leaf: it imports
//! nothing of the crate, so config, access and the acquisition engine all use the same rules.

/// Checks a dataset name: it becomes a folder and file name, so it must not be able to reach
/// outside the data root or mean something special to a file system.
pub fn validate_dataset_name(name: &str) -> Result<(), String> {
    const RESERVED: &[&str] = &[
        "CON", "PRN", "AUX", "NUL", "COM0", "LPT0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6",
        "COM7", "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
        "LPT9",
    ];
    let bad = |why: &str| Err(format!("dataset name {name:?} is not allowed: {why}"));
    if name.is_empty() || name.chars().count() > 128 {
        return bad("a name has 1 to 128 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return bad(&format!(
            "{c:?} is not allowed; use letters, digits, '_', '-' and '.' (a dataset is named, never given as a path)"
        ));
    }
    if name.starts_with('.') {
        return bad("it must not start with '.'");
    }
    if name.ends_with('.') {
        // Windows drops a trailing dot, so "a." and "a" would be the same folder.
        return bad("it must not end with '.'");
    }
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    if RESERVED.contains(&stem.as_str()) {
        return bad("it is a reserved device name on Windows file systems");
    }
    Ok(())
}

/// The user an anonymous loopback client acts as (`server.anonymous_loopback_admin`); reserved,
/// so no configured user may take it.
pub const ANONYMOUS_USER: &str = "local";

/// Checks a user name: it is a folder under the data root, so the dataset rules apply, and it
/// must not be [`ANONYMOUS_USER`]. The config's `[users.NAME]` and `microscoped token new`
/// both ask here, so a token is never made for a name the config then refuses.
pub fn validate_user_name(name: &str) -> Result<(), String> {
    validate_dataset_name(name).map_err(|why| why.replacen("dataset name", "user name", 1))?;
    if name == ANONYMOUS_USER {
        return Err(format!(
            "user name {ANONYMOUS_USER:?} is reserved for anonymous loopback access \
             (server.anonymous_loopback_admin); choose another name"
        ));
    }
    Ok(())
}

/// Whether a device (or preset group) name is 1 to 64 letters, digits, '_', '-' or '.'.
pub fn valid_device_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_dataset_names_are_refused() {
        for bad in [
            "",
            "a/b",
            "../x",
            "..",
            ".",
            "/abs",
            "a\\b",
            "tab\there",
            "nul\0",
            "CON",
            "nul.txt",
            "lpt1",
            ".hidden",
            "sp ace",
            "new\nline",
            "trailing.",
            "com0",
            "Aux.tar.gz",
            "C:x",
            "a\u{202e}b",
            "ü",
            &"x".repeat(129),
        ] {
            assert!(validate_dataset_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["run1", "cells_2026-11-22", "a.b", "CONSOLE", "x"] {
            assert!(validate_dataset_name(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn user_names_follow_the_dataset_rules_and_leave_local_to_anonymous_access() {
        assert!(validate_user_name("alice").is_ok());
        let e = validate_user_name("local").unwrap_err();
        assert!(e.contains("reserved"), "{e}");
        let e = validate_user_name("../x").unwrap_err();
        assert!(e.starts_with("user name \"../x\""), "{e}");
    }

    #[test]
    fn device_names() {
        assert!(valid_device_name("Laser488"));
        assert!(valid_device_name("a.b-c_d"));
        assert!(!valid_device_name(""));
        assert!(!valid_device_name("sp ace"));
        assert!(!valid_device_name(&"x".repeat(65)));
    }
}
