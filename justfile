# Conveniences over the plain commands in README.md.

# Run the service in embedded mode with data in ./data.
run *ARGS:
    cargo run --release --bin accessd -- serve {{ARGS}}

# Every check and test, as CI runs them.
test:
    ./scripts/test.sh

# Format the code.
fmt:
    cargo fmt --all

# Lints as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# The command-line client against a local accessd.
ctl *ARGS:
    cargo run --release --bin accessctl -- {{ARGS}}

# The benchmark harness: one table, also written to BENCHMARKS.md
# (`just bench --quick` takes about six minutes on two cores).
bench *ARGS:
    cargo build --release --workspace --bins
    ./target/release/access-bench {{ARGS}}
