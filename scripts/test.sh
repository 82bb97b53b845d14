#!/usr/bin/env bash
# The project's test command (README.md): formatting, lints, and every test of the workspace.
#
# Tests that need a real component (nginx, Traefik, Docker) skip with a message when it is absent,
# and fail instead when BLUEGREEN_REQUIRE_REAL=1 (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== real components (nginx, Traefik, Docker)"
scripts/install-components.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== cargo test"
cargo test --workspace --all-features "$@"
