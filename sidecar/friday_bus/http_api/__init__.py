"""The HTTP door of the sidecar (FastAPI)."""

from .app import create_app

__all__ = ["create_app"]
