"""TLS: with FRIDAY_TLS_CERT_FILE/KEY_FILE the HTTP door speaks HTTPS only (self-signed cert from the openssl CLI)."""

from __future__ import annotations

import httpx
import pytest

from tests.sidecar_fixture import openssl_self_signed


def test_https_with_a_self_signed_certificate(start_sidecar, tmp_path):
    cert, key = openssl_self_signed(tmp_path)
    car = start_sidecar(FRIDAY_TLS_CERT_FILE=str(cert), FRIDAY_TLS_KEY_FILE=str(key))
    assert car.http_url.startswith("https://")
    with car.client() as c:  # verifies against the self-signed certificate
        assert c.get("/readyz").status_code == 200
        r = c.post("/api/v1/events/publish", json={"stream": "email.received", "payload": {"tls": True}})
        assert r.status_code == 200 and r.json()["kind"] == "stream"
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
        httpx.get(car.http_url + "/healthz", verify=True)
    plain = car.http_url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port
        httpx.get(plain + "/healthz", timeout=5)


def test_missing_certificate_file_refuses_to_start(start_sidecar, tmp_path):
    car = start_sidecar(wait_ready=False, FRIDAY_TLS_CERT_FILE=str(tmp_path / "none.pem"),
                        FRIDAY_TLS_KEY_FILE=str(tmp_path / "none.key"))
    assert car.wait(30) != 0
    assert "FRIDAY_TLS_CERT_FILE" in car.log_tail()
