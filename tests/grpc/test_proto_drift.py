"""The committed generated code matches proto/: regenerate into a temp dir and compare."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_code_matches_proto(tmp_path):
    gen = _gen_module()
    gen.generate(tmp_path)
    problems = gen.diff(gen.OUT, tmp_path)
    assert not problems, "generated code is stale: run `python scripts/gen_proto.py` and commit\n" + "\n".join(problems)


def test_generated_code_imports_inside_the_package():
    from friday_bus_client._proto import eventbus_pb2, eventbus_pb2_grpc

    assert eventbus_pb2.DESCRIPTOR.package == "friday.eventbus.v1"
    assert hasattr(eventbus_pb2_grpc, "EventBusStub")
