//! Names that become folders, files or keys: datasets, users, devices. A leaf: it imports
//! nothing of the crate, so config, access and the acquisition engine all use the same rules.

/// How many characters of a user's input an error message repeats ([`quote`]).
pub const QUOTE_CHARS: usize = 64;

/// The most bytes of an error message a client is sent ([`cap_message`]): well under the
/// 8 KiB of metadata a gRPC client accepts by default.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// A message cut to [`MAX_MESSAGE_BYTES`]: the last guard for a message that repeats input some
/// parser quoted whole (serde's "invalid type: string ..."), where [`quote`] could not be used.
pub fn cap_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut cut = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… (message cut; {} bytes)",
        &message[..cut],
        message.len()
    )
}

/// User input as an error message quotes it: like `{:?}` (quoted, control characters escaped),
/// cut to its first [`QUOTE_CHARS`] characters with its length in bytes after a longer one.
/// Every message that repeats a name, key or value a client sent goes through here, so a 100 kB
/// name comes back as ~90 bytes and a client with default gRPC metadata limits still receives
/// the error instead of RESOURCE_EXHAUSTED.
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// Checks a dataset name: it becomes a folder and file name, so it must not be able to reach
/// outside the data root or mean something special to a file system.
pub fn validate_dataset_name(name: &str) -> Result<(), String> {
    const RESERVED: &[&str] = &[
        "CON", "PRN", "AUX", "NUL", "COM0", "LPT0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6",
        "COM7", "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
        "LPT9",
    ];
    let bad = |why: &str| {
        Err(format!(
            "dataset name {} is not allowed: {why}",
            quote(name)
        ))
    };
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
    fn quote_cuts_long_input_and_escapes_control_characters() {
        assert_eq!(quote("Laser488"), "\"Laser488\"");
        assert_eq!(quote("a\nb\u{1b}"), "\"a\\nb\\u{1b}\"");
        let long = "é".repeat(50_000);
        let q = quote(&long);
        assert_eq!(q, format!("{:?}… (100000 bytes)", "é".repeat(QUOTE_CHARS)));
        let e = validate_dataset_name(&"x".repeat(100_000)).unwrap_err();
        assert!(e.len() < 300 && e.contains("(100000 bytes)"), "{e}");
    }

    #[test]
    fn cap_message_keeps_short_messages_and_cuts_long_ones_on_a_char_boundary() {
        assert_eq!(cap_message("short".into()), "short");
        let m = cap_message("µ".repeat(5000));
        assert!(m.len() < MAX_MESSAGE_BYTES + 40, "{}", m.len());
        assert!(m.ends_with("… (message cut; 10000 bytes)"), "{m}");
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
