#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (Debian packages for the
# GenICam driver, Python packages into .venv),
# checks formatting and lints, runs the Rust unit and end-to-end tests, then the Python interop
# tests against the real daemon binary. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Debian packages (aravis for the GenICam driver)"
# The GenICam driver builds against libaravis through pkg-config; libaravis's .pc file needs
# libusb's. Installed once; later runs find them and skip this.
if ! pkg-config --exists aravis-0.8 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq libaravis-dev libusb-1.0-0-dev pkg-config
    elif command -v sudo >/dev/null; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libaravis-dev libusb-1.0-0-dev pkg-config
    else
        echo "error: the GenICam driver needs libaravis-dev, libusb-1.0-0-dev and pkg-config;" >&2
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

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test"
cargo test --workspace --all-features --locked

step "Python interop tests"
# `cargo test` built the daemon binary (the CLI tests run it); the Python tests use that one.
MICROSCOPED_BIN="$PWD/target/debug/microscoped" .venv/bin/python -m pytest -q tests/python
