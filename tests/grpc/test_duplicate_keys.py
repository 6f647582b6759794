"""payload_json that repeats a key (at any depth, inside arrays too) is refused with INVALID_ARGUMENT
naming the key and where it is, on every publishing call, and nothing is written (issue 12, section 3).
Everything else parses exactly as ``json.loads`` does."""

from __future__ import annotations

import json

import grpc
import pytest
from friday_bus.core.errors import InvalidArgument
from friday_bus.grpc_api.convert import parse_payload
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

from .helpers import MD, expect_invalid

# (payload_json, key, where): where is also the error's field
REPEATS = [
    ('{"a":1,"a":2}', "a", "payload_json"),
    ('{"to":"x","b":true,"to":"y"}', "to", "payload_json"),
    ('{"a":{"b":1,"b":1}}', "b", "payload_json.a"),
    ('{"a":{"n":{"deep":[1],"deep":[2]}}}', "deep", "payload_json.a.n"),
    ('{"items":[{"k":1},{"k":1,"k":2}]}', "k", "payload_json.items[1]"),
    ('{"m":[[{"x":null,"x":null}]]}', "x", "payload_json.m[0][0]"),
    ('{"\\u00e9":1,"é":2}', "é", "payload_json"),  # the same key, once escaped
]


def field_of(err: grpc.aio.AioRpcError) -> str:
    return dict(err.trailing_metadata() or ())["friday-error-field"]


@pytest.fixture
async def existing(door) -> str:
    """A stream holding one event, so that "nothing written" is an unchanged XLEN."""
    s = door.stream()
    async with door.channel() as ch:
        await pb_grpc.EventBusStub(ch).Publish(pb.PublishRequest(stream=s, payload_json='{"first":1}'), metadata=MD)
    assert int(await door.bus.redis.xlen(s)) == 1
    return s


@pytest.mark.parametrize(("text", "key", "where"), REPEATS)
async def test_publish_refuses_a_repeated_key(door, stub, existing, text, key, where):
    err = await expect_invalid(stub.Publish(pb.PublishRequest(stream=existing, payload_json=text), metadata=MD))
    assert f'duplicate key "{key}" in {where}' in err.details(), err.details()
    assert field_of(err) == where
    assert int(await door.bus.redis.xlen(existing)) == 1


async def test_batch_refuses_a_repeat_in_any_event_and_writes_none(door, stub, existing):
    events = [pb.PublishRequest(stream=existing, payload_json='{"ok":1}'),
              pb.PublishRequest(stream=existing, payload_json='{"p":{"id":1,"id":2}}')]
    err = await expect_invalid(stub.PublishBatch(pb.PublishBatchRequest(events=events), metadata=MD))
    assert err.details().startswith('events[1]: duplicate key "id" in payload_json.p'), err.details()
    assert int(await door.bus.redis.xlen(existing)) == 1


async def test_publish_stream_answers_the_repeat_in_place_and_writes_only_the_others(door, stub, existing):
    call = stub.PublishStream(metadata=MD)
    for ref, text in enumerate(['{"n":0}', '{"n":1,"n":2}', '{"n":3}']):
        await call.write(pb.PublishStreamRequest(ref=ref, event=pb.PublishRequest(stream=existing, payload_json=text)))
    await call.done_writing()
    answers = [m async for m in call]
    assert [a.HasField("error") for a in answers] == [False, True, False]
    assert answers[1].error.kind == "invalid_argument"
    assert 'duplicate key "n" in payload_json' in answers[1].error.message
    assert answers[1].error.field == "payload_json"
    assert [e[1]["n"] for e in (await door.bus.redis.xrange(existing))[1:]] == ["0", "3"]


async def test_publish_info_refuses_a_repeated_key(door, stub):
    err = await expect_invalid(stub.PublishInfo(
        pb.PublishInfoRequest(channel=f"{door.uniq}.info", payload_json='{"a":[{"b":1,"b":2}]}'), metadata=MD))
    assert 'duplicate key "b" in payload_json.a[0]' in err.details()


@pytest.mark.parametrize("text", [
    '{"big":123456789012345678901234567890,"neg":-98765432109876543210}',
    '{"f":0.1,"e":1e-7,"z":-0.0,"huge":1e400,"i":1.0}',
    '{"u":"\\u00e9t\\u00e9 \\ud83d\\ude00","raw":"été 😀","nul":"a\\u0000b","lone":"\\udc00"}',
    '{"nested":{"a":[1,{"b":[]},{}],"c":{"d":null}},"t":true,"n":null}',
    '{"a":1, "b" : 2 }',
])
def test_everything_else_parses_exactly_as_json_loads(text):
    assert repr(parse_payload(text)) == repr(json.loads(text))


@pytest.mark.parametrize(("text", "fragment"), [
    ('{"a":NaN}', "NaN is not valid JSON"),
    ('{"a":1,}', "not valid JSON"),
    ("[1]", "must be a JSON object"),
    ("", "payload_json is required"),
])
def test_other_refusals_are_unchanged(text, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        parse_payload(text)
