#!/usr/bin/env bash
# The public API of every published crate, compared with the listing committed under api/.
#
#   scripts/check-public-api.sh           fails with a diff when an API differs from its listing
#   scripts/check-public-api.sh --bless   rewrites the listings (review the diff, then commit it)
#
# A change to the public surface is then a reviewed change to api/<crate>.txt in the same commit.
# The listing is made from rustdoc's JSON (an unstable rustdoc output, reached on our stable
# toolchain with RUSTC_BOOTSTRAP=1), with every feature on, as docs.rs shows the crates, and read by
# the `public-api` library through scripts/public-api (its own small package, built here).
set -euo pipefail

cd "$(dirname "$0")/.."
bless=false
case "${1:-}" in
  --bless) bless=true ;;
  "") ;;
  *) echo "usage: $0 [--bless]" >&2; exit 2 ;;
esac

crates=(bluegreen bluegreen-core bluegreen-docker bluegreen-nginx bluegreen-traefik)
target="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target"

cargo build --quiet --locked --release --manifest-path scripts/public-api/Cargo.toml
lister="$target/release/list-public-api"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p api
status=0
for crate in "${crates[@]}"; do
  RUSTC_BOOTSTRAP=1 cargo rustdoc --quiet --locked -p "$crate" --lib --all-features \
    -- -Zunstable-options --output-format json
  "$lister" "$target/doc/${crate//-/_}.json" > "$work/$crate.txt"
  if $bless; then
    cp "$work/$crate.txt" "api/$crate.txt"
    echo "api/$crate.txt: $(wc -l < "api/$crate.txt") items"
  elif ! diff -u "api/$crate.txt" "$work/$crate.txt"; then
    echo "error: the public API of $crate differs from api/$crate.txt (above: - listed, + now)." >&2
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "If the change is intended, run scripts/check-public-api.sh --bless and commit api/." >&2
fi
exit "$status"
