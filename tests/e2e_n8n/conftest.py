"""Fixtures for tests that run a real n8n (scripts/n8n/install.sh installs it).

Tests here are marked `n8n`; select them with `-m n8n`, deselect with `-m "not n8n"`.
A missing install FAILS the tests (never skips them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from n8n_harness import N8nInstall, N8nNotInstalled


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "n8n: runs a real n8n from the scripts/n8n/install.sh cache (slow, ~1 GB RAM)")


@pytest.fixture(scope="session")
def n8n_install() -> N8nInstall:
    """The cached n8n install; fails (not skips) with the install hint when absent."""
    try:
        return N8nInstall.find()
    except N8nNotInstalled as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)
