"""Fixtures for the queue-mode end-to-end tests (real n8n main + worker, PostgreSQL, Bull Redis).

Marked `n8n` like tests/e2e_n8n; a missing n8n install or PostgreSQL FAILS the tests (never skips).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent / "e2e_n8n"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
