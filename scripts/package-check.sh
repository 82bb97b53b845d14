#!/usr/bin/env bash
# Packages every publishable crate of the workspace, then builds each one from its tarball as a
# user would get it from crates.io (issue 10, item 3).
#
#   1. `cargo package` of every workspace member that may be published (`cargo metadata` says
#      which: `publish = false` members such as the examples are left out). Cargo packages members
#      that depend on each other through a local overlay of the ones packaged before them.
#   2. Unpacks every `.crate` into a temporary workspace whose `[patch.crates-io]` points the crates
#      at each other's unpacked copies: crates.io as it will be once all of them are published.
#      Nothing from the repository is visible there, so a test or doctest that reaches outside its
#      package (`../../README.md`, an unpublished dev-dependency) fails to build.
#   3. Builds every test, example and bench target (`cargo test --all-features --no-run`), runs
#      every doctest, and runs the tests that need no real component (core's, and each crate's
#      unit tests). Tests against real nginx, Traefik or Docker are built, not run: they build the
#      demo app from the repository (set PACKAGE_CHECK_RUN_ALL=1 to try them anyway).
#
# Usage: scripts/package-check.sh            (CARGO_TARGET_DIR is honoured and shared)
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d -t bluegreen-package-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Members that may be published: `publish` is null (anywhere) or a non-empty registry list.
mapfile -t crates < <(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
for p in meta["packages"]:
    if p["id"] in members and p.get("publish") != []:
        print(p["name"], p["version"])
')
if [ "${#crates[@]}" -eq 0 ]; then
    echo "no publishable crate in the workspace" >&2
    exit 1
fi

echo "== cargo package (${#crates[@]} crates)"
package_args=()
for c in "${crates[@]}"; do package_args+=(-p "${c% *}"); done
# --no-verify: step 3 builds every package from its tarball anyway, tests included (verification
# would build each library once more). --allow-dirty only with PACKAGE_CHECK_ALLOW_DIRTY=1.
dirty=()
[ "${PACKAGE_CHECK_ALLOW_DIRTY:-0}" = 1 ] && dirty=(--allow-dirty)
rm -rf "$target_dir/package"
cargo package "${package_args[@]}" --no-verify "${dirty[@]}"

echo "== unpacking into $work"
members=()
{
    echo '[workspace]'
    echo 'resolver = "2"'
    echo -n 'members = ['
    for c in "${crates[@]}"; do
        name=${c% *} version=${c#* }
        tar -xzf "$target_dir/package/$name-$version.crate" -C "$work"
        members+=("$name-$version")
        echo -n "\"$name-$version\", "
    done
    echo ']'
    echo
    echo '[patch.crates-io]'
    for c in "${crates[@]}"; do
        name=${c% *} version=${c#* }
        echo "$name = { path = \"$name-$version\" }"
    done
} > "$work/Cargo.toml"
# The repository's lock file pins third-party versions, so the check does not drift with new
# releases on crates.io (cargo adds what the packages need beyond it).
cp Cargo.lock "$work/Cargo.lock"
cat "$work/Cargo.toml"

cd "$work"
echo "== cargo test --workspace --all-features --no-run (every test, example and bench target)"
cargo test --workspace --all-features --all-targets --no-run
echo "== cargo check --workspace --all-targets with default features (a test needing a feature says so)"
cargo check --workspace --all-targets
echo "== doctests"
cargo test --workspace --all-features --doc
if [ "${PACKAGE_CHECK_RUN_ALL:-0}" = 1 ]; then
    echo "== every test (real components included)"
    cargo test --workspace --all-features
else
    echo "== tests without real components: bluegreen-core's, and every crate's unit tests"
    cargo test -p bluegreen-core --all-features
    cargo test --workspace --exclude bluegreen-core --all-features --lib
fi
echo "== package check passed: ${members[*]}"
