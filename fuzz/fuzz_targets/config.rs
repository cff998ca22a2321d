//! The config parser: any bytes as a config file, read as `serve` and `check` read it
//! (`Config::load`: UTF-8, TOML, every section validated and cross-checked). A refusal is
//! fine; a panic, or an error that does not say where, is a finding.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use microscoped_core::config::{Config, ConfigError};
use microscoped_fuzz::files::Scratch;

const FILE: &str = "fuzz.toml";

/// Errors name the file, and a line unless the whole file is at fault.
fn check(e: &ConfigError, file: &str) {
    assert_eq!(e.file, file, "{e}");
    assert!(e.line.is_some(), "the error has no line: {e}");
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => {
            if let Err(e) = Config::parse(text, FILE) {
                check(&e, FILE);
            }
        }
        // Encoding errors are found by `load`, which reads bytes: through a file.
        Err(_) => {
            static SCRATCH: OnceLock<Scratch> = OnceLock::new();
            let scratch = SCRATCH.get_or_init(Scratch::new);
            std::fs::create_dir_all(scratch.root()).expect("the scratch folder");
            let path = scratch.root().join(FILE);
            std::fs::write(&path, data).expect("the scratch file");
            let e = Config::load(&path).expect_err("a config that is not UTF-8 is refused");
            check(&e, &path.display().to_string());
        }
    }
});
