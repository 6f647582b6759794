"""Generated gRPC code for friday.eventbus.v1. Do not edit: run `python scripts/gen_proto.py`."""

from . import eventbus_pb2, eventbus_pb2_grpc

__all__ = ["eventbus_pb2", "eventbus_pb2_grpc"]
