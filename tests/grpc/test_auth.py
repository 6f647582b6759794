"""Auth on EVERY method, table-driven over the service descriptor: a new RPC without a role fails here."""

from __future__ import annotations

import contextlib

import grpc
import pytest
from friday_bus.grpc_api.interceptors import METHOD_ROLES, SERVICE
from friday_bus_client._proto import eventbus_pb2 as pb
from google.protobuf import message_factory

SERVICE_DESC = pb.DESCRIPTOR.services_by_name["EventBus"]
METHODS = list(SERVICE_DESC.methods)
KEY_BY_ROLE = {"publish": "pub-key", "consume": "con-key", "admin": "adm-key"}
DENIED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def test_every_method_of_the_service_has_a_role():
    assert set(METHOD_ROLES) == {f"/{SERVICE}/{m.name}" for m in METHODS}


async def call_code(channel: grpc.aio.Channel, method, api_key: str | None) -> grpc.StatusCode:
    """Call ``method`` with an empty request; return the final status code."""
    path = f"/{SERVICE}/{method.name}"
    req_cls = message_factory.GetMessageClass(method.input_type)
    resp_cls = message_factory.GetMessageClass(method.output_type)
    md = (("authorization", f"Bearer {api_key}"),) if api_key else ()
    kw = {"request_serializer": req_cls.SerializeToString, "response_deserializer": resp_cls.FromString}
    if method.client_streaming and method.server_streaming:
        call = channel.stream_stream(path, **kw)(metadata=md)
        with contextlib.suppress(Exception):  # the call may already be over
            await call.done_writing()
    elif method.server_streaming:
        call = channel.unary_stream(path, **kw)(req_cls(), metadata=md)
    elif method.client_streaming:  # pragma: no cover - the service has none today
        call = channel.stream_unary(path, **kw)(metadata=md)
        await call.done_writing()
    else:
        call = channel.unary_unary(path, **kw)(req_cls(), metadata=md, timeout=10)
    code = await call.code()
    call.cancel()
    return code


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
async def test_method_refuses_missing_wrong_and_roleless_keys(door, method):
    path = f"/{SERVICE}/{method.name}"
    allowed = METHOD_ROLES.get(path, ())
    async with door.channel() as ch:
        assert await call_code(ch, method, None) == grpc.StatusCode.UNAUTHENTICATED
        assert await call_code(ch, method, "not-a-key") == grpc.StatusCode.UNAUTHENTICATED
        for role, key in KEY_BY_ROLE.items():
            code = await call_code(ch, method, key)
            if role in allowed:
                assert code not in DENIED, f"{method.name} refused a {role} key"
            else:
                assert code == grpc.StatusCode.PERMISSION_DENIED, f"{method.name} let a {role} key through: {code}"
        assert await call_code(ch, method, "all-key") not in DENIED


async def test_denial_messages_say_what_to_fix(door):
    c = door.client(api_key=None)
    from friday_bus_client import PermissionDenied, Unauthenticated

    with pytest.raises(Unauthenticated, match="authorization: Bearer"):
        await c.publish(door.stream(), {"a": 1})
    c2 = door.client(api_key="con-key")
    with pytest.raises(PermissionDenied, match="publish"):
        await c2.publish(door.stream(), {"a": 1})
    assert int(await door.bus.redis.xlen(door.stream())) == 0


async def test_no_keys_configured_means_auth_off_on_loopback(start_door):
    d = await start_door(api_keys="")
    c = d.client(api_key=None)
    r = await c.publish(d.stream(), {"a": 1})
    assert r.kind == "stream" and r.entry_id
    assert await c.list_channels() == [f"{d.uniq}.info"]


async def test_scheme_is_case_insensitive_and_other_schemes_refused(door):
    async with door.channel() as ch:
        stub = __import__("friday_bus_client._proto.eventbus_pb2_grpc", fromlist=["x"]).EventBusStub(ch)
        r = await stub.ListChannels(pb.ListChannelsRequest(), metadata=(("authorization", "bearer adm-key"),))
        assert list(r.channels) == [f"{door.uniq}.info"]
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.ListChannels(pb.ListChannelsRequest(), metadata=(("authorization", "Basic adm-key"),))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
