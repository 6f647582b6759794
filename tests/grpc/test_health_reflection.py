"""Health checking and server reflection answer, without an API key."""

from __future__ import annotations

import grpc
from friday_bus.grpc_api.interceptors import SERVICE
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


async def test_health_follows_runtime_readiness(door):
    async with door.channel() as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in ("", SERVICE):
            r = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert r.status == health_pb2.HealthCheckResponse.SERVING
        door.runtime.ready = False
        r = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert r.status == health_pb2.HealthCheckResponse.NOT_SERVING
        door.runtime.ready = True
        r = await stub.Check(health_pb2.HealthCheckRequest(service=""))
        assert r.status == health_pb2.HealthCheckResponse.SERVING
        try:
            await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND


async def test_health_watch_sees_the_change(door):
    async with door.channel() as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        call = stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert (await call.read()).status == health_pb2.HealthCheckResponse.SERVING
        door.runtime.ready = False
        assert (await call.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING  # within the poll period
        door.runtime.ready = True
        call.cancel()


async def test_reflection_lists_and_describes_the_service(door):
    async with door.channel() as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)

        async def ask(req):
            call = stub.ServerReflectionInfo(iter([req]))
            async for resp in call:
                return resp

        r = await ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        names = {s.name for s in r.list_services_response.service}
        assert {SERVICE, "grpc.health.v1.Health"} <= names
        r = await ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE))
        from google.protobuf import descriptor_pb2

        fd = descriptor_pb2.FileDescriptorProto.FromString(r.file_descriptor_response.file_descriptor_proto[0])
        assert fd.name == "friday/eventbus/v1/eventbus.proto" and fd.package == "friday.eventbus.v1"
        assert "Subscribe" in {m.name for m in fd.service[0].method}
