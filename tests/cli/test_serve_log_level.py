"""`friday serve` logs at FRIDAY_LOG_LEVEL (the CLI used to force INFO, so access lines were
always written: a cost on every request, and a setting that did nothing)."""

from __future__ import annotations

import time

import pytest

from tests.sidecar_fixture import Sidecar


def _wait_for_text(car: Sidecar, text: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in car.log_tail(200_000):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_serve_logs_at_the_configured_level(start_sidecar, level):
    car = start_sidecar(FRIDAY_LOG_LEVEL=level)
    with car.client() as c:
        assert c.get("/api/v1/no-such-route-for-the-log").status_code == 404
    car.stop()  # the log is complete once the process has exited
    log = car.log_tail(200_000)
    assert "friday: HTTP on" in log  # the startup line is printed, not logged: always there
    access_line = "/api/v1/no-such-route-for-the-log" in log
    assert access_line is (level == "INFO"), log[-2000:]
