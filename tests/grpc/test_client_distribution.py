"""The client as agents install it: only clients/python in a fresh venv (grpcio and protobuf,
no Redis, no sidecar), then the README's agent (examples/agent.py) against a real sidecar."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from friday_bus_client import FridayClient

from tests.conftest import ROOT, RedisServer

CHECK = """
import importlib.util, sys
import friday_bus_client
from friday_bus_client import FridayClient, Subscription, Delivery, Event, NotFound
import friday_bus_client.client, friday_bus_client.subscription, friday_bus_client.publish_stream
assert friday_bus_client.__file__.startswith(sys.prefix), friday_bus_client.__file__
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('friday_bus', 'redis', 'fastapi', 'pydantic'))
assert not loaded, loaded
missing = [name for name in ('friday_bus', 'redis', 'fastapi', 'pydantic') if importlib.util.find_spec(name) is not None]
assert not missing, f'installed but should not be: {missing}'
print('ok')
"""


CLEAN_ENV = {"PATH": "/usr/bin:/bin"}


@pytest.fixture
def client_python(tmp_path) -> str:
    """The python of a fresh venv holding only clients/python (a plain, non-editable install: pip
    fetches grpcio and protobuf as configured on this machine), checked to lack the sidecar."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRIDAY_", "PYTHON", "VIRTUAL_ENV"))}
    res = subprocess.run([python, "-m", "pip", "install", "-q", str(ROOT / "clients" / "python")],
                         check=False, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert res.returncode == 0, f"pip install ./clients/python failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    res = subprocess.run([python, "-c", CHECK], check=False, capture_output=True, text=True, timeout=60,
                         env=CLEAN_ENV, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    return python


async def test_the_client_alone_runs_the_readme_agent(client_python, start_sidecar, tmp_path):
    python = client_python

    redis = RedisServer(tmp_path / "redis").start()  # its own Redis: the agent uses the seed's stream names
    agent = None
    try:
        car = start_sidecar(redis_url=redis.url)
        async with FridayClient(car.grpc_target, api_key=car.api_key) as bus:
            await bus.create_group("document.processed", "checker")
            env = {**CLEAN_ENV, "FRIDAY_GRPC_TARGET": car.grpc_target, "FRIDAY_API_KEY": car.api_key or ""}
            agent = await asyncio.create_subprocess_exec(python, str(ROOT / "examples" / "agent.py"), env=env, cwd=tmp_path)
            sent = await bus.publish("email.received", {"email_id": "abc"})
            async with bus.subscribe("document.processed", "checker", "t") as sub:
                d = await asyncio.wait_for(anext(sub), 60)
                assert d.payload == {"email_id": "abc"} and d.metadata.correlation_id == sent.entry_id
                await d.ack()
            deadline = time.monotonic() + 30
            while True:  # the agent acks right after publishing
                [st] = (await bus.status(["email.received"])).streams
                [group] = [g for g in st.groups if g.name == "email-processor"]
                if group.pending == 0 and group.last_delivered_id == sent.entry_id:
                    break
                assert time.monotonic() < deadline, f"the agent did not ack: {group}"
                await asyncio.sleep(0.05)
            assert agent.returncode is None, "the agent exited"
    finally:
        if agent is not None and agent.returncode is None:
            agent.kill()
            await agent.wait()
        redis.stop()
