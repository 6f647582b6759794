"""The conformance suite runs every scenario through both doors of a real `friday serve` process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.sidecar_fixture import Sidecar, launch_sidecar

from .doors import Door, make_door

DOORS = ["grpc", "http"]


@pytest.fixture(scope="session")
def steady_sidecar(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """A sidecar that never reclaims during a test (claim_idle 10 min): for scenarios where a
    reclaim by another consumer would be a false duplicate on a slow machine."""
    car = launch_sidecar(tmp_path_factory.mktemp("steady-sidecar"), redis_server.url, {"FRIDAY_CLAIM_IDLE_MS": "600000"})
    yield car
    car.stop()


@pytest.fixture
async def doors(sidecar: Sidecar, steady_sidecar: Sidecar) -> AsyncIterator[Callable[..., Door]]:
    """``doors(kind, steady=False)`` opens a door of the fast-recovery (or steady) sidecar."""
    opened: list[Door] = []

    def open_door(kind: str, steady: bool = False) -> Door:
        d = make_door(kind, steady_sidecar if steady else sidecar)
        opened.append(d)
        return d

    yield open_door
    for d in opened:
        await d.close()


@pytest.fixture(params=DOORS)
def door_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
