#!/usr/bin/env bash
# Builds the documentation as docs.rs does (issue 10, item 3): every workspace member, every
# feature, `--cfg docsrs` (which turns on `doc_cfg`, so feature-gated items are labelled), and
# every rustdoc warning (a broken intra-doc link, a missing doc) an error. docs.rs uses nightly;
# RUSTC_BOOTSTRAP=1 lets our stable toolchain accept the nightly-only `doc_cfg` the same way.
#
# Usage: scripts/docs-check.sh [extra cargo doc args]   (CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/.."

RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="--cfg docsrs -D warnings" \
    cargo doc --workspace --all-features --no-deps "$@"
echo "== docs check passed"
