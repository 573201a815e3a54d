#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit tests and
# black-box tests against the real binaries. Needs only the Rust toolchain; it
# installs any test-only system part it needs when that part is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# The mail tests talk SMTP to a real server: aiosmtpd, in its own process.
ensure_aiosmtpd() {
    if command -v python3 >/dev/null 2>&1 && python3 -c 'import aiosmtpd' 2>/dev/null; then
        return
    fi
    echo "==> installing the SMTP test server (aiosmtpd)"
    if ! command -v python3 >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3 python3-pip
    fi
    python3 -m pip install --quiet aiosmtpd 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null \
        || { apt-get update -qq && apt-get install -y -qq python3-aiosmtpd; }
    python3 -c 'import aiosmtpd'
}
ensure_aiosmtpd

echo "==> formatting"
cargo fmt --all --check

echo "==> lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> build (the black-box tests start these binaries)"
cargo build --workspace --bins --locked

echo "==> tests"
cargo test --workspace --locked
