#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (Python packages into .venv),
# checks formatting and lints, runs the Rust unit and end-to-end tests, then the Python interop
# tests against the real daemon binary. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "Python interop tests"
# `cargo test` built the daemon binary (the CLI tests run it); the Python tests use that one.
MICROSCOPED_BIN="$PWD/target/debug/microscoped" .venv/bin/python -m pytest -q tests/python
