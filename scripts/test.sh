#!/usr/bin/env bash
# The test command: installs what the suite needs on a fresh Debian machine, builds, runs everything.
# CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# gcc/make for the C parts of bundled SQLite, zstd, PCRE2 and ring; python3 for the corpus generators.
install_debs build-essential pkg-config python3 ca-certificates
require_cargo

if [ ! -d ../shared ]; then
    echo "note: ../shared is absent: conformance tests against external corpora will skip" >&2
fi

# End-to-end tests start the real binaries, so build them first.
cargo build --workspace --bins --locked
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
