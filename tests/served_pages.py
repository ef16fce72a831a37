"""The service in-process on a build of its own, for tests of the pages and the assets they link."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app import create_app
from app.core.settings import Settings
from tests.helpers import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parent.parent


def build_dist(out: Path) -> Path:
    """dist/ as `make build` writes it (every language's scripts included), in `out`."""
    subprocess.run([sys.executable, str(ROOT / "build.py"), "--out", str(out)], check=True, capture_output=True)
    return out


@asynccontextmanager
async def page_client(tmp_path: Path, dist: Path, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service on a fresh SQLite file, serving the assets in `dist`."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}",
        data_dir=tmp_path / "data",
        admin_token=admin_token,
        dist_dir=dist,
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


# Fixtures for a module to import: `from tests.served_pages import client, dist`.
@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build for the module's tests."""
    return build_dist(tmp_path_factory.mktemp("dist"))


@pytest.fixture
async def client(tmp_path: Path, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The service on the module's build, its admin token tests.helpers.ADMIN_TOKEN."""
    async with page_client(tmp_path, dist, ADMIN_TOKEN) as test_client:
        yield test_client
