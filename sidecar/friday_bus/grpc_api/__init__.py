"""The gRPC door: converts and delegates to the core's EventBus (see proto/friday/eventbus/v1)."""

from .server import FridayGrpcServer, start_grpc_server

__all__ = ["FridayGrpcServer", "start_grpc_server"]
