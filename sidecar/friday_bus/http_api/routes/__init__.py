"""HTTP routes, one module per area. They validate and convert, then delegate to the EventBus."""

from . import admin, channels, consume, probes, publish

ROUTERS = (publish.router, consume.router, channels.router, admin.router, probes.router)

__all__ = ["ROUTERS"]
