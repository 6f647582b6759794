"""Friday Event Bus sidecar: Redis Streams for Friday 2.0's critical events, behind gRPC and HTTP."""

__version__ = "0.1.0"
