#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit tests and
# black-box tests against the real binaries. Needs only the Rust toolchain; it
# installs any test-only system part it needs when that part is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==> formatting"
cargo fmt --all --check

echo "==> lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> build (the black-box tests start these binaries)"
cargo build --workspace --bins --locked

echo "==> tests"
cargo test --workspace --locked
