"""The vote service. `create_app()` is found by Litestar's CLI autodiscovery."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that a helper process (app.votes.helper_worker) starts without the web stack.
    if name == "create_app":
        from app.factory import create_app

        return create_app
    raise AttributeError(name)
