"""Request bodies are strict JSON (issue 12, section 3): an object that repeats a key is refused (400,
naming the key and where it is), and a body must be sent as ``Content-Type: application/json`` in
UTF-8 (anything else is 415). Either way nothing is written. Everything else parses as before."""

from __future__ import annotations

import json

import pytest

from .helpers import assert_error

PUBLISH = "/api/v1/events/publish"
BATCH = "/api/v1/events/publish/batch"
JSON_CT = {"content-type": "application/json"}


@pytest.fixture
def snapshot(rds):
    """DBSIZE before the test; call it to assert nothing was written."""
    before = rds.dbsize()

    def check():
        assert rds.dbsize() == before, "the request wrote to Redis"

    return check


@pytest.fixture
def existing(api, rds, stream) -> str:
    """A stream holding one event, so that "nothing written" is also an unchanged XLEN."""
    assert api.post(PUBLISH, json={"stream": stream, "payload": {"first": 1}}).status_code == 200
    assert rds.xlen(stream) == 1
    return stream


def post_text(api, path: str, text: str, headers: dict[str, str] | None = None):
    return api.post(path, content=text.encode(), headers=JSON_CT if headers is None else headers)


# --------------------------------------------------------------------------- duplicate keys

# (body with {s} for the stream, key, where, field)
REPEATS = [
    ('{"stream":"{s}","stream":"{s}","payload":{"a":1}}', "stream", "the request body", "body"),
    ('{"stream":"{s}","payload":{"a":1},"payload":{"a":2}}', "payload", "the request body", "body"),
    ('{"stream":"{s}","payload":{"a":1,"b":2,"a":3}}', "a", "payload", "payload"),
    ('{"stream":"{s}","payload":{"nested":{"a":1,"a":1}}}', "a", "payload.nested", "payload.nested"),
    ('{"stream":"{s}","payload":{"x":{"y":{"z":[],"z":{}}}}}', "z", "payload.x.y", "payload.x.y"),
    ('{"stream":"{s}","payload":{"items":[{"k":1},{"k":1,"k":2}]}}', "k", "payload.items[1]", "payload.items[1]"),
    ('{"stream":"{s}","payload":{"m":[[{"q":null,"q":true}]]}}', "q", "payload.m[0][0]", "payload.m[0][0]"),
    ('{"stream":"{s}","payload":{"\\u00e9":1,"é":2}}', "é", "payload", "payload"),  # once escaped: the same key
]


def _body(template: str, stream: str) -> str:
    return template.replace("{s}", stream)


@pytest.mark.parametrize(("template", "key", "where", "field"), REPEATS)
def test_publish_refuses_a_repeated_key(api, rds, existing, snapshot, template, key, where, field):
    err = assert_error(post_text(api, PUBLISH, _body(template, existing)), 400, "invalid_argument", field)
    assert f'duplicate key "{key}" in {where}' in err["message"], err
    assert rds.xlen(existing) == 1
    snapshot()


@pytest.mark.parametrize(("event", "key", "where"), [
    ('{"stream":"{s}","payload":{"a":1},"stream":"{s}"}', "stream", "events[1]"),
    ('{"stream":"{s}","payload":{"id":1,"id":2}}', "id", "events[1].payload"),
    ('{"stream":"{s}","payload":{"p":[{"id":1,"id":2}]}}', "id", "events[1].payload.p[0]"),
])
def test_batch_refuses_a_repeat_in_any_event_and_writes_none(api, rds, existing, snapshot, event, key, where):
    text = '{"events":[{"stream":"{s}","payload":{"ok":1}},' + event + "]}"
    err = assert_error(post_text(api, BATCH, _body(text, existing)), 400, "invalid_argument", where)
    assert f'duplicate key "{key}" in {where}' in err["message"], err
    assert rds.xlen(existing) == 1
    snapshot()


def test_batch_refuses_a_repeated_events_key(api, rds, existing, snapshot):
    text = _body('{"events":[{"stream":"{s}","payload":{"a":1}}],"events":[{"stream":"{s}","payload":{"a":2}}]}', existing)
    err = assert_error(post_text(api, BATCH, text), 400, "invalid_argument", "body")
    assert 'duplicate key "events" in the request body' in err["message"]
    assert rds.xlen(existing) == 1
    snapshot()


def test_every_body_route_refuses_repeats(api, rds, existing, snapshot):
    base = f"/api/v1/streams/{existing}"
    groups = rds.xinfo_groups(existing)
    for path, text, key in [
        (f"{base}/groups", '{"group":"g1","group":"g2"}', "group"),
        (f"{base}/groups/workers/rewind", '{"to_id":"0-0","to_id":"0-0"}', "to_id"),
        (f"{base}/groups/workers/read", '{"consumer":"c","count":1,"count":2}', "count"),
        (f"{base}/groups/workers/ack", '{"ids":["1-0"],"ids":["2-0"]}', "ids"),
        (f"{base}/groups/workers/extend", '{"consumer":"c","ids":["1-0"],"consumer":"d"}', "consumer"),
        (f"{base}/groups/workers/nack", '{"id":"1-0","reason":"a","reason":"b"}', "reason"),
        (f"{base}/dlq/replay", '{"all":true,"all":true}', "all"),
    ]:
        err = assert_error(post_text(api, path, text), 400, "invalid_argument", "body")
        assert f'duplicate key "{key}" in the request body' in err["message"], (path, err)
    assert rds.xinfo_groups(existing) == groups  # no group created, none rewound, no consumer made by a read
    snapshot()


def test_the_same_key_in_different_objects_is_fine_and_values_are_exact(api, existing):
    payload_text = ('{"a":{"k":1},"b":{"k":1},"list":[{"k":1},{"k":2}],"big":123456789012345678901234567890,'
                    '"f":0.1,"e":1e-7,"i":1.0,"u":"\\u00e9t\\u00e9 \\ud83d\\ude00","raw":"été 😀","t":true,"n":null}')
    r = post_text(api, PUBLISH, f'{{"stream":"{existing}","payload":{payload_text}}}')
    assert r.status_code == 200, r.text
    r = api.post(f"/api/v1/streams/{existing}/groups/workers/read", json={"consumer": "c", "count": 2})
    assert r.status_code == 200, r.text
    payloads = [d["payload"] for d in r.json()["deliveries"]]
    assert payloads[1] == json.loads(payload_text)
    assert repr(payloads[1]) == repr(json.loads(payload_text))  # 1.0 stays a float, the big int an int


# --------------------------------------------------------------------------- Content-Type

REFUSED_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/vnd.api+json",
    "application/json; charset=utf-16",
    "application/json; charset=latin-1",
    "application/json; charset=ascii",
    "application/json; version=2",
    "application/jsonl",
    "application/x-ndjson",
    "text/json",
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "*/*",
    "",
]


@pytest.mark.parametrize("content_type", REFUSED_TYPES)
def test_a_body_that_is_not_application_json_is_415(api, rds, existing, snapshot, content_type):
    text = json.dumps({"stream": existing, "payload": {"a": 1}})  # a valid UTF-8 JSON body
    err = assert_error(post_text(api, PUBLISH, text, {"content-type": content_type}), 415, "invalid_argument", "content-type")
    assert "Content-Type: application/json" in err["message"] and "UTF-8" in err["message"], err
    assert rds.xlen(existing) == 1
    snapshot()


def test_a_body_without_content_type_is_415(api, rds, existing, snapshot):
    request = api.build_request("POST", PUBLISH, content=json.dumps({"stream": existing, "payload": {"a": 1}}).encode())
    assert "content-type" not in request.headers  # httpx adds none for bytes
    err = assert_error(api.send(request), 415, "invalid_argument", "content-type")
    assert "no Content-Type" in err["message"] and "Content-Type: application/json" in err["message"], err
    assert rds.xlen(existing) == 1
    snapshot()


def test_two_content_types_are_415(api, rds, existing, snapshot):
    body = json.dumps({"stream": existing, "payload": {"a": 1}}).encode()
    r = api.post(PUBLISH, content=body, headers=[("content-type", "application/json"), ("content-type", "text/plain")])
    assert_error(r, 415, "invalid_argument", "content-type")
    assert rds.xlen(existing) == 1
    snapshot()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_in_another_unicode_encoding_is_415(api, rds, existing, snapshot, encoding):
    body = json.dumps({"stream": existing, "payload": {"a": 1}}).encode(encoding)
    err = assert_error(api.post(PUBLISH, content=body, headers=JSON_CT), 415, "invalid_argument", "content-type")
    assert "UTF-8" in err["message"], err
    assert rds.xlen(existing) == 1
    snapshot()


@pytest.mark.parametrize("content_type", [
    "application/json",
    "Application/JSON",
    "application/json ; charset=utf-8",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "application/json; Charset=Utf-8",
    'application/json; charset="utf-8"',
])
def test_application_json_in_utf8_is_accepted(api, rds, existing, content_type):
    text = json.dumps({"stream": existing, "payload": {"a": "été"}}, ensure_ascii=False)
    r = post_text(api, PUBLISH, text, {"content-type": content_type})
    assert r.status_code == 200, r.text
    assert rds.xlen(existing) == 2


def test_a_utf8_bom_is_still_tolerated(api, rds, existing):
    body = b"\xef\xbb\xbf" + json.dumps({"stream": existing, "payload": {"a": 1}}).encode()
    assert api.post(PUBLISH, content=body, headers=JSON_CT).status_code == 200
    assert rds.xlen(existing) == 2


def test_bytes_that_are_not_utf8_are_still_a_400(api, rds, existing, snapshot):
    body = b'{"stream":"' + existing.encode() + b'","payload":{"a":"\xff\xfe"}}'
    err = assert_error(api.post(PUBLISH, content=body, headers=JSON_CT), 400, "invalid_argument", "body")
    assert "could not be parsed" in err["message"], err
    assert rds.xlen(existing) == 1
    snapshot()


def test_auth_comes_first(sidecar, existing):
    with sidecar.client(key=None) as anonymous:
        r = anonymous.post(PUBLISH, content=b'{"a":1,"a":2}', headers={"content-type": "text/plain"})
        assert_error(r, 401, "unauthenticated")
        assert_error(anonymous.post(PUBLISH, content=b'{"a":1,"a":2}', headers=JSON_CT), 401, "unauthenticated")


def test_requests_without_a_body_are_not_affected(api, existing):
    # routes without a body, whatever Content-Type says
    assert api.get("/api/v1/streams", headers={"content-type": "text/plain"}).status_code == 200
    assert api.get(f"/api/v1/streams/{existing}/status").status_code == 200
    assert api.request("GET", "/api/v1/streams", content=b"ignored", headers={"content-type": "text/plain"}).status_code == 200
    # a body route without a body: the usual 400 (body required), not 415
    assert_error(api.post(PUBLISH, headers={"content-type": "text/plain"}), 400, "invalid_argument", "body")
    err = assert_error(api.post(f"/api/v1/streams/{existing}/dlq/replay"), 400, "invalid_argument", "body")
    assert "ids" in err["message"]
    assert api.delete(f"/api/v1/streams/{existing}/groups/workers", params={"force": "true"}).status_code == 200


def test_openapi_documents_415_on_every_operation_with_a_body(api):
    doc = api.get("/openapi.json").json()
    with_body = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items() if "requestBody" in op]
    assert len(with_body) >= 9
    for path, method, op in with_body:
        response = op["responses"].get("415")
        assert response, f"{method.upper()} {path}"
        assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
        assert "application/json" in response["description"]
    without = [op for ops in doc["paths"].values() for op in ops.values() if "requestBody" not in op]
    assert all("415" not in op["responses"] for op in without)
