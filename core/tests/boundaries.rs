//! The module boundaries ARCHITECTURE.md promises, checked on the sources: the leaf modules use
//! nothing of the crate, and config uses only leaves (and the ring's policy type), so nothing
//! config needs can need config back. Rust allows cycles between modules of one crate, so the
//! compiler cannot hold this line; this test does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules anyone may use, which use nothing of the crate themselves.
const LEAVES: &[&str] = &["names", "role", "time", "token"];

/// What config may use besides the leaves: the driver registry (which uses only the driver
/// crates) and the ring's overflow policy (the ring uses only
/// storage's constants, which use only time).
const CONFIG_MAY_USE: &[&str] = &["registry", "ring", "storage"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The source files of module `name`: `name.rs`, or every file under `name/`.
fn module_files(name: &str) -> Vec<PathBuf> {
    let file = src().join(format!("{name}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut out = Vec::new();
    let mut dirs = vec![src().join(name)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "module {name} has no sources");
    out
}

/// The crate modules `name`'s code refers to as `crate::<module>`, with the file:line of the
/// first use of each. Doc comments may link anywhere, so they are left out.
fn uses(name: &str) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for path in module_files(name) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("///") || code.starts_with("//!") || code.starts_with("//") {
                continue;
            }
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                // `crate::{a, b}` hides its modules from this check: it counts as a module
                // named "{", which no rule allows.
                let module: String = if after.starts_with('{') {
                    "{".to_owned()
                } else {
                    after
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect()
                };
                if !module.is_empty() && seen.insert(module.clone()) {
                    out.push((module, format!("{}:{}", path.display(), n + 1)));
                }
                rest = after;
            }
        }
    }
    out
}

#[test]
fn leaves_use_nothing_of_the_crate() {
    for leaf in LEAVES {
        let used = uses(leaf);
        assert!(used.is_empty(), "leaf module {leaf} uses {used:?}");
    }
}

#[test]
fn config_uses_only_leaves_and_what_cannot_reach_config() {
    for (module, at) in uses("config") {
        assert!(
            LEAVES.contains(&module.as_str()) || CONFIG_MAY_USE.contains(&module.as_str()),
            "config uses crate::{module} ({at}); config is parsed before the subsystems and \
             must not depend on them: move what it needs into a leaf module"
        );
    }
    for module in CONFIG_MAY_USE {
        for (used, at) in uses(module) {
            assert!(
                used != "config",
                "{module}, which config uses, uses config back ({at})"
            );
        }
    }
}
