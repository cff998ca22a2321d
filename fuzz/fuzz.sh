#!/usr/bin/env bash
# Builds and runs the fuzz targets on the stable toolchain: libFuzzer (libfuzzer-sys) with the
# sanitizer-coverage instrumentation `cargo fuzz build -s none` asks rustc for, passed as
# stable codegen options. See README.md.
#
#   fuzz/fuzz.sh build                      build every target (fuzz/target)
#   fuzz/fuzz.sh run TARGET [ARGS...]       fuzz TARGET over its corpus; ARGS go to libFuzzer
#   fuzz/fuzz.sh smoke SECONDS              every target for SECONDS over its committed corpus,
#                                           failing on the first crash (the test command's step)
#
# CARGO names the cargo to build with (default `cargo`; /work/bin/xcargo on a shared machine).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cargo="${CARGO:-cargo}"
host="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="${CARGO_TARGET_DIR:-$here/target}/$host/release"

# Every target of Cargo.toml's [[bin]] tables.
targets() {
    sed -n 's/^name = "\(.*\)"$/\1/p' "$here/Cargo.toml" | grep -v '^microscoped-fuzz$'
}

build() {
    # What cargo-fuzz passes for `-s none`: edge coverage with inline 8-bit counters and a PC
    # table (libFuzzer's `cov:`/`ft:`), comparison tracing (so it learns the magic numbers and
    # keywords a parser compares against), and `cfg(fuzzing)`. `--target` keeps these flags
    # off build scripts and proc macros, which run on the host without libFuzzer.
    local flags=(
        -Cpasses=sancov-module
        -Cllvm-args=-sanitizer-coverage-level=4
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
        -Cllvm-args=-sanitizer-coverage-pc-table
        -Cllvm-args=-sanitizer-coverage-trace-compares
        --cfg fuzzing
    )
    RUSTFLAGS="${flags[*]}" "$cargo" build --manifest-path "$here/Cargo.toml" --release \
        --target "$host" --locked --bins
}

run() {
    local target="$1"
    shift
    mkdir -p "$here/corpus/$target" "$here/artifacts/$target"
    "$bin_dir/$target" -artifact_prefix="$here/artifacts/$target/" "$@" "$here/corpus/$target"
}

case "${1:-}" in
    build) build ;;
    run)
        [ $# -ge 2 ] || { echo "usage: $0 run TARGET [LIBFUZZER ARGS...]" >&2; exit 2; }
        shift
        run "$@"
        ;;
    smoke)
        [ $# -eq 2 ] || { echo "usage: $0 smoke SECONDS" >&2; exit 2; }
        # The committed corpus is copied, so what is found on the way is not added to it; the
        # targets' scratch files go to a temporary folder removed afterwards.
        scratch="$(mktemp -d)"
        trap 'rm -rf "$scratch"' EXIT
        for t in $(targets); do
            echo "--- fuzz $t for $2 s"
            mkdir -p "$scratch/$t" "$here/artifacts/$t"
            cp -r "$here/corpus/$t/." "$scratch/$t/"
            if ! TMPDIR="$scratch" "$bin_dir/$t" -max_total_time="$2" -timeout=10 \
                -rss_limit_mb=2048 -artifact_prefix="$here/artifacts/$t/" "$scratch/$t" \
                2>"$scratch/$t.log"; then
                tail -n 60 "$scratch/$t.log" >&2
                echo "fuzz target $t failed: its input is in fuzz/artifacts/$t/ (see fuzz/README.md)" >&2
                exit 1
            fi
            # libFuzzer's last line: runs, time, and the coverage reached.
            grep -E '^#[0-9]+[[:space:]]+DONE' "$scratch/$t.log" || tail -n 1 "$scratch/$t.log"
        done
        ;;
    *)
        sed -n '2,12p' "$0" >&2
        exit 2
        ;;
esac
