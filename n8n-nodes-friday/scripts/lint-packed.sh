#!/usr/bin/env bash
# Builds, packs and unpacks this package, then runs the community lint rules on the
# tarball exactly as published (see scripts/lint-packed.mjs for what is checked).
# The real scanner, @n8n/scan-community-package, also needs npm provenance, so it can
# only run after publishing; this is the offline equivalent.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${SKIP_BUILD:-0}" != "1" ]]; then
	npm run --silent build >/dev/null
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

tarball="$(npm pack --silent --pack-destination "$tmp" | tail -n 1)"
echo "Packed $tarball ($(du -h "$tmp/$tarball" | cut -f1))"
mkdir "$tmp/package"
tar -xzf "$tmp/$tarball" -C "$tmp/package" --strip-components=1

node scripts/lint-packed.mjs "$tmp/package"
