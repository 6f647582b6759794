#!/usr/bin/env python3
"""Regenerate the Python gRPC code from proto/ into clients/python/friday_bus_client/_proto/.

    python scripts/gen_proto.py            # regenerate (commit the result)
    python scripts/gen_proto.py --check    # exit 1 if the committed code is stale

protoc (from grpcio-tools) writes ``friday/eventbus/v1/eventbus_pb2*.py`` with the absolute
import ``from friday.eventbus.v1 import eventbus_pb2``. We keep the descriptor's file name
(``friday/eventbus/v1/eventbus.proto``, what reflection shows) but flatten the files into
the ``friday_bus_client._proto`` package (the client distribution, which the sidecar imports it
from) and turn that import into a relative one, so the code works inside the package without
touching ``sys.path``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTOS = ["friday/eventbus/v1/eventbus.proto"]
OUT = ROOT / "clients" / "python" / "friday_bus_client" / "_proto"

INIT = '''"""Generated gRPC code for friday.eventbus.v1. Do not edit: run `python scripts/gen_proto.py`."""

from . import eventbus_pb2, eventbus_pb2_grpc

__all__ = ["eventbus_pb2", "eventbus_pb2_grpc"]
'''

_ABS_IMPORT = re.compile(r"^from friday\.eventbus\.v1 import (\w+) as (\w+)$", re.MULTILINE)


def generate(out: Path) -> list[Path]:
    """Generate into ``out`` (created); return the written files."""
    from grpc_tools import protoc  # grpcio-tools: a dev dependency

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(PROTO_ROOT / p) for p in PROTOS],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed: see the messages above")
        written = []
        for src in sorted(Path(tmp).rglob("*.py*")):
            text = src.read_text()
            text = _ABS_IMPORT.sub(r"from . import \1 as \2", text)
            dst = out / src.name
            dst.write_text(text)
            written.append(dst)
    (out / "__init__.py").write_text(INIT)
    written.append(out / "__init__.py")
    return written


# Lines stamped with the generator's version: a different grpcio-tools release changes them
# without any change to the API, so the drift check ignores them.
_VERSION_LINES = re.compile(
    r"^(# Protobuf Python Version:.*|GRPC_GENERATED_VERSION = .*|\s+\d+,\s*)$", re.MULTILINE
)


def normalise(text: str) -> str:
    return _VERSION_LINES.sub("<version>", text)


def diff(committed: Path, fresh: Path) -> list[str]:
    """Human-readable differences between two generated folders (empty: identical)."""
    problems: list[str] = []
    names = {p.name for p in committed.glob("*.py*")} | {p.name for p in fresh.glob("*.py*")}
    for name in sorted(names):
        a, b = committed / name, fresh / name
        if not a.exists():
            problems.append(f"{name}: missing from {committed}")
            continue
        if not b.exists():
            problems.append(f"{name}: committed but no longer generated")
            continue
        ta, tb = normalise(a.read_text()), normalise(b.read_text())
        if ta != tb:
            d = difflib.unified_diff(ta.splitlines(), tb.splitlines(), f"committed/{name}", f"fresh/{name}", lineterm="", n=1)
            problems.append("\n".join(list(d)[:40]))
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="do not write; fail if the committed code differs")
    ns = ap.parse_args()
    if ns.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            problems = diff(OUT, Path(tmp))
        if problems:
            print("generated code is stale; run `python scripts/gen_proto.py` and commit:\n" + "\n".join(problems))
            return 1
        print("generated code is up to date")
        return 0
    for path in generate(OUT):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
