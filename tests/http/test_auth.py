"""Auth: keys and roles on EVERY route and method (table-driven over the app's own route list), the two
exempt probes and the path tricks around them, bind security, and no secret in bodies, logs or metrics."""

from __future__ import annotations

import secrets
import types

import httpx
import pytest
from friday_bus import auth
from friday_bus.auth import ApiKeys, ConfigError, check_bind_security, is_loopback_host
from friday_bus.core import Runtime, load_settings
from friday_bus.http_api import create_app
from friday_bus.http_api.security import route_table

from .helpers import assert_error, raw_request

ANY = frozenset({"publish", "consume", "admin"})
PUBLISH, CONSUME, ADMIN = frozenset({"publish"}), frozenset({"consume"}), frozenset({"admin"})
# Every (method, path) the app serves and the roles it accepts. A new route fails test_route_table_is_known
# until it is listed here, and then it is checked by test_every_route_and_method_needs_the_right_key.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/openapi.json"): ANY, ("HEAD", "/openapi.json"): ANY,
    ("GET", "/docs"): ANY, ("HEAD", "/docs"): ANY,
    ("GET", "/docs/oauth2-redirect"): ANY, ("HEAD", "/docs/oauth2-redirect"): ANY,
    ("POST", "/api/v1/events/publish"): PUBLISH,
    ("POST", "/api/v1/events/publish/batch"): PUBLISH,
    ("POST", "/api/v1/streams/{stream}/groups/{group}/read"): CONSUME,
    ("POST", "/api/v1/streams/{stream}/groups/{group}/ack"): CONSUME,
    ("POST", "/api/v1/streams/{stream}/groups/{group}/nack"): CONSUME,
    ("POST", "/api/v1/streams/{stream}/groups/{group}/extend"): CONSUME,
    ("POST", "/api/v1/streams/{stream}/groups/{group}/release"): CONSUME,
    ("GET", "/api/v1/streams/{stream}/next"): CONSUME,
    ("GET", "/api/v1/channels/{channel}/subscribe"): CONSUME,
    ("GET", "/api/v1/streams"): ANY,
    ("GET", "/api/v1/channels"): ANY,
    ("GET", "/api/v1/groups"): ANY,
    ("GET", "/api/v1/status"): ADMIN,
    ("GET", "/api/v1/streams/{stream}/status"): ADMIN,
    ("POST", "/api/v1/streams/{stream}/groups"): ADMIN,
    ("DELETE", "/api/v1/streams/{stream}/groups/{group}"): ADMIN,
    ("POST", "/api/v1/streams/{stream}/groups/{group}/rewind"): ADMIN,
    ("GET", "/api/v1/streams/{stream}/dlq"): ADMIN,
    ("POST", "/api/v1/streams/{stream}/dlq/replay"): ADMIN,
    ("GET", "/metrics"): ADMIN,
    ("GET", "/healthz"): ANY, ("GET", "/readyz"): ANY,  # exempt only as exactly GET /healthz, GET /readyz
}
EXEMPT = {("GET", "/healthz"), ("GET", "/readyz")}


def app_routes() -> dict[tuple[str, str], frozenset[str]]:
    app = create_app(Runtime(load_settings(_env_file=None)))
    return {(m, path): frozenset(roles) for path, methods, roles in route_table(app) for m in methods}


# ---------------------------------------------------------------- auth.py (pure)
def test_parse_specs():
    keys = ApiKeys.parse(" all-key , pub:publish, ops:consume+admin ")
    assert keys.enabled and len(keys) == 3
    assert keys.check("all-key", "admin") == "ok"
    assert keys.check("pub", "publish") == "ok" and keys.check("pub", "consume") == "forbidden"
    assert keys.check("ops", "admin") == "ok" and keys.check("ops", "publish") == "forbidden"
    assert keys.check("nope", "publish") == "unauthenticated"
    assert keys.check(None, "publish") == "unauthenticated" and keys.check("", "publish") == "unauthenticated"
    assert keys.check_any("pub", ["consume", "publish"]) == "ok"
    assert not ApiKeys.parse("").enabled and ApiKeys.parse("").check(None, "admin") == "ok"
    assert "all-key" not in repr(keys) and "all-key" not in repr(keys._keys) and "ops" not in repr(keys._keys)


@pytest.mark.parametrize("spec", ["a,,b", "a:", ":publish", "a:publish+", "a:root", "a,a:admin", "a b", "k\x00:admin"])
def test_bad_specs_fail_with_a_fix_and_without_the_key(spec):
    with pytest.raises(ConfigError) as exc:
        ApiKeys.parse(spec)
    text = str(exc.value)
    assert "FRIDAY_API_KEYS" in text and "entry" in text
    key = spec.split(",")[0].split(":")[0]
    if len(key) > 1:
        assert key not in text


def test_every_key_is_compared(monkeypatch):
    keys = ApiKeys.parse("first,second,third:publish")
    calls = []
    real = auth.hmac.compare_digest

    def counting(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    assert keys.check("first", "admin") == "ok"
    assert len(calls) == 3  # no early exit on the first match
    calls.clear()
    assert keys.check("unknown", "admin") == "unauthenticated"
    assert len(calls) == 3


def test_bind_security():
    def settings(http, grpc, keys=""):
        return types.SimpleNamespace(http_host=http, grpc_host=grpc, api_keys=keys)

    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert is_loopback_host(host)
        check_bind_security(settings(host, "127.0.0.1"))
    for http, grpc in (("0.0.0.0", "127.0.0.1"), ("127.0.0.1", "0.0.0.0"), ("10.1.2.3", "::1"), ("::", "::1"),
                       ("example.com", "127.0.0.1")):
        with pytest.raises(ConfigError, match="FRIDAY_API_KEYS"):
            check_bind_security(settings(http, grpc))
        check_bind_security(settings(http, grpc, "k"))


# ---------------------------------------------------------------- the route table
def test_route_table_is_known():
    assert app_routes() == EXPECTED


@pytest.fixture(scope="module")
def keyed(redis_server, tmp_path_factory):
    """A sidecar with one key per role plus an all-roles key."""
    from tests.sidecar_fixture import launch_sidecar

    keys = {role: f"{role}-{secrets.token_urlsafe(16)}" for role in ("publish", "consume", "admin")}
    keys["all"] = "all-" + secrets.token_urlsafe(16)
    spec = ",".join(f"{k}:{r}" for r, k in keys.items() if r != "all") + "," + keys["all"]
    car = launch_sidecar(tmp_path_factory.mktemp("keyed"), redis_server.url, {"FRIDAY_API_KEYS": spec})
    car.keys = keys
    yield car
    car.stop()


def _fill(path: str, stream: str) -> str:
    return path.replace("{stream}", stream).replace("{group}", "no-such-group").replace("{channel}", "file.uploaded")


def _call(car, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=car.http_url, timeout=20) as c:
        body = {} if method in ("POST",) else None
        with c.stream(method, path, headers=headers, json=body) as r:
            if r.status_code in (401, 403):
                r.read()
            return r


def test_every_route_and_method_needs_the_right_key(keyed, uniq):
    stream = f"{uniq}.auth"
    wrong = "wrong-" + secrets.token_urlsafe(16)
    for (method, path), roles in sorted(EXPECTED.items()):
        url = _fill(path, stream)
        for key in (None, wrong):
            r = _call(keyed, method, url, key)
            if (method, path) in EXEMPT:
                assert r.status_code == 200, (method, path)
            else:
                assert r.status_code == 401, (method, path, key is None, r.status_code)
                if method != "HEAD":
                    assert_error(r, 401, "unauthenticated")
                    assert wrong not in r.text
                assert r.headers["www-authenticate"] == "Bearer"
        for role in ("publish", "consume", "admin", "all"):
            r = _call(keyed, method, url, keyed.keys[role])
            if role == "all" or role in roles:
                assert r.status_code not in (401, 403), (method, path, role, r.status_code)
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
                if method != "HEAD":
                    assert_error(r, 403, "permission_denied")


def test_unknown_paths_and_methods_need_a_key_first(keyed):
    for method, target in (("GET", "/nope"), ("PUT", "/api/v1/streams"), ("DELETE", "/api/v1/status"), ("PATCH", "/healthz")):
        status, _ = raw_request(keyed.http_url, method, target)
        assert status == 401, (method, target)
    with httpx.Client(base_url=keyed.http_url, headers={"Authorization": f"Bearer {keyed.keys['publish']}"}) as c:
        assert_error(c.get("/nope"), 404, "not_found")
        assert_error(c.put("/api/v1/streams"), 405)


EXEMPT_TRICKS = [
    ("GET", "/healthz?x="), ("GET", "/readyz?probe=1"), ("GET", "//healthz"), ("GET", "//healthz/../"),
    ("GET", "/healthz/"), ("GET", "/healthz/."), ("GET", "/./healthz"), ("GET", "/%68ealthz"), ("GET", "/HEALTHZ"),
    ("GET", "/healthz%00"), ("GET", "/healthz/../api/v1/status"), ("GET", "/api/v1/x?y=/healthz"),
    ("GET", "/api/v1/status?/healthz"), ("GET", "/api/v1/status#/healthz"), ("HEAD", "/healthz"), ("POST", "/healthz"),
    ("HEAD", "/readyz"), ("OPTIONS", "/readyz"), ("GET", "/metrics?/healthz"),
]


@pytest.mark.parametrize(("method", "target"), EXEMPT_TRICKS)
def test_only_the_exact_probe_paths_are_exempt(keyed, method, target):
    status, body = raw_request(keyed.http_url, method, target)
    assert status == 401, body[:300]
    status, _ = raw_request(keyed.http_url, method, target, {"Authorization": f"Bearer {keyed.keys['all']}"})
    assert status != 401


def test_the_exact_probes_need_no_key(keyed):
    for target in ("/healthz", "/readyz"):
        status, body = raw_request(keyed.http_url, "GET", target)
        assert status == 200, body


def test_bearer_scheme_variants(keyed):
    key = keyed.keys["admin"]
    for header, ok in ((f"Bearer {key}", True), (f"bearer {key}", True), (f"Basic {key}", False), (key, False),
                       (f"Bearer {key}x", False), (f"Bearer  {key}", True), ("Bearer", False)):
        status, _ = raw_request(keyed.http_url, "GET", "/api/v1/status", {"Authorization": header})
        assert (status == 200) is ok, header


def test_no_secret_in_logs_bodies_or_metrics(keyed):
    wrong = "wrong-" + secrets.token_urlsafe(16)
    with httpx.Client(base_url=keyed.http_url) as c:
        r = c.get("/api/v1/status", headers={"Authorization": f"Bearer {wrong}"})
        assert wrong not in r.text
        metrics = c.get("/metrics", headers={"Authorization": f"Bearer {keyed.keys['admin']}"}).text
    log = keyed.log_tail(10**7)
    for secret in [*keyed.keys.values(), wrong]:
        assert secret not in log
        assert secret not in metrics


def test_open_bind_without_key_refuses_to_start(start_sidecar):
    for host_var in ("FRIDAY_HTTP_HOST", "FRIDAY_GRPC_HOST"):
        car = start_sidecar(wait_ready=False, FRIDAY_API_KEYS="", **{host_var: "0.0.0.0"})
        assert car.wait(30) != 0
        assert "FRIDAY_API_KEYS" in car.log_tail() and host_var in car.log_tail()


def test_bad_key_spec_refuses_to_start_without_echoing_the_key(start_sidecar):
    secret = "distinctive-" + secrets.token_urlsafe(12)
    car = start_sidecar(wait_ready=False, FRIDAY_API_KEYS=f"{secret}:superuser")
    assert car.wait(30) != 0
    assert "unknown role" in car.log_tail()
    assert secret not in car.log_tail(10**6)


def test_auth_off_on_loopback_without_keys(start_sidecar):
    car = start_sidecar(FRIDAY_API_KEYS="")
    assert car.api_key is None
    with httpx.Client(base_url=car.http_url) as c:
        assert c.get("/api/v1/status").status_code == 200
        assert c.get("/metrics").status_code == 200
