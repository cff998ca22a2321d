#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (Debian packages for the
# GenICam driver and systemd-analyze, Python packages into .venv),
# checks formatting and lints, runs the Rust unit and end-to-end tests, a short run of each fuzz
# target, then the Python interop tests against the real daemon binary. `.ci/run` calls exactly
# this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints how long it took, and the run its total, so a slow step shows in the log.
started=$SECONDS
step_name=""
step_started=$SECONDS
end_step() {
    if [ -n "$step_name" ]; then
        printf '<== %s: %ds\n' "$step_name" $((SECONDS - step_started))
    fi
}
step() {
    end_step
    step_name="$*"
    step_started=$SECONDS
    printf '\n==> %s\n' "$*"
}
trap 'end_step; printf "\n==> total: %ds\n" $((SECONDS - started))' EXIT

if [ "${CI:-}" = true ]; then
    # A CI run builds once from scratch: incremental state and full debug info would only be
    # written, never used. Line tables keep file:line in backtraces.
    export CARGO_INCREMENTAL=0
    export CARGO_PROFILE_DEV_DEBUG=line-tables-only
fi

step "Debian packages (aravis for the GenICam driver, systemd-analyze for the unit file)"
# The GenICam driver builds against libaravis through pkg-config; libaravis's .pc file needs
# libusb's. tests/service.rs checks contrib/systemd/microscoped.service with systemd-analyze
# (package systemd). Installed once; later runs find them and skip this.
packages=()
if ! pkg-config --exists aravis-0.8 2>/dev/null; then
    packages+=(libaravis-dev libusb-1.0-0-dev pkg-config)
fi
if ! command -v systemd-analyze >/dev/null; then
    packages+=(systemd)
fi
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${packages[@]}"
    elif command -v sudo >/dev/null; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
    else
        echo "error: the tests need the Debian packages ${packages[*]};" >&2
        echo "       install them (apt-get install ...) or run this as root" >&2
        exit 1
    fi
fi

step "Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check

# One build serves clippy and the tests: clippy-driver stands in for rustc on the workspace's own
# crates (RUSTC_WORKSPACE_WRAPPER), so they are linted while they are compiled for the tests, and
# the dependencies are compiled once instead of once for `cargo clippy` and again for
# `cargo test`. `cargo test --all-targets --no-run` builds and lints every target (lib, bins,
# tests, lib tests, build scripts), as `cargo clippy --all-targets` would; the lints are
# `-D warnings`, passed the way `cargo clippy -- -D warnings` passes them. The test run keeps
# the same wrapper and arguments, so it finds everything built.
step "cargo clippy + build (clippy-driver on the workspace crates, -D warnings)"
clippy_driver="$(command -v clippy-driver || true)"
if [ -z "$clippy_driver" ]; then
    echo "error: clippy-driver not found (rustup component add clippy)" >&2
    exit 1
fi
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --workspace --all-targets --all-features --locked --no-run

step "cargo test"
cargo test --workspace --all-features --locked

# The fuzz targets (fuzz/README.md): their own workspace and target dir, built with the
# coverage instrumentation (and linted: the wrapper above covers the fuzz crate), then each run
# briefly over its committed corpus, which holds the inputs of every crash found so far. A
# crash fails the run and leaves its input in fuzz/artifacts/.
step "fuzz targets: build, then each for ${FUZZ_SECONDS:=10}s over its corpus"
bash fuzz/fuzz.sh build
bash fuzz/fuzz.sh smoke "$FUZZ_SECONDS"

step "Python interop tests"
# `cargo test` built the daemon binary (the CLI tests run it); the Python tests use that one.
MICROSCOPED_BIN="$PWD/target/debug/microscoped" .venv/bin/python -m pytest -q tests/python
