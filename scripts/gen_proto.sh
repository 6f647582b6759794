#!/usr/bin/env bash
# Regenerate clients/python/friday_bus_client/_proto from proto/ (see scripts/gen_proto.py; --check verifies only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" scripts/gen_proto.py "$@"
