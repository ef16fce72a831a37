"""The vote service. `create_app()` is found by Litestar's CLI autodiscovery."""

from __future__ import annotations

from app.factory import create_app

__all__ = ["create_app"]
