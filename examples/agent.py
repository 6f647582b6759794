"""A Friday agent: consume email.received, publish a result, ack. Run: `python examples/agent.py`."""

import asyncio
import os

from friday_bus_client import FridayClient


async def main() -> None:
    async with FridayClient(os.getenv("FRIDAY_GRPC_TARGET", "127.0.0.1:50051"), api_key=os.getenv("FRIDAY_API_KEY")) as bus:
        async for event in bus.subscribe("email.received", "email-processor", "agent-1", max_in_flight=10):
            await bus.publish("document.processed", {"email_id": event.payload.get("email_id")}, correlation_id=event.id)
            await event.ack()  # or: await event.nack("why") -> redelivered after a backoff, then dead-lettered


asyncio.run(main())
