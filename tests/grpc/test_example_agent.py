"""examples/agent.py works against a real sidecar (on its own Redis: it uses the seed's stream names)."""

from __future__ import annotations

import asyncio
import sys

from friday_bus_client import FridayClient

from tests.conftest import ROOT, RedisServer


async def test_example_agent_consumes_publishes_and_acks(start_sidecar, tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    agent = None
    try:
        car = start_sidecar(redis_url=redis.url)
        async with FridayClient(car.grpc_target, api_key=car.api_key) as bus:
            await bus.create_group("document.processed", "checker")
            env = {"FRIDAY_GRPC_TARGET": car.grpc_target, "FRIDAY_API_KEY": car.api_key, "PATH": "/usr/bin:/bin"}
            agent = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "examples" / "agent.py"), env=env)
            sent = await bus.publish("email.received", {"email_id": "abc"})
            async with bus.subscribe("document.processed", "checker", "t") as sub:
                d = await asyncio.wait_for(anext(sub), 60)
                assert d.payload == {"email_id": "abc"} and d.metadata.correlation_id == sent.entry_id
                await d.ack()
            [st] = (await bus.status(["email.received"])).streams
            while st.groups[0].pending:  # the agent acks right after publishing
                await asyncio.sleep(0.05)
                [st] = (await bus.status(["email.received"])).streams
    finally:
        if agent is not None and agent.returncode is None:
            agent.kill()
            await agent.wait()
        redis.stop()
