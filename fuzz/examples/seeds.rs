//! Writes the seed corpora under `fuzz/corpus/<target>/` (see `microscoped_fuzz::seeds`).
//! Built without the fuzzing instrumentation, which needs libFuzzer's runtime:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```

use std::path::Path;

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = here.join("corpus");
    microscoped_fuzz::seeds::write_all(&here.join(".."), &corpus);
    println!("seeds written under {}", corpus.display());
}
