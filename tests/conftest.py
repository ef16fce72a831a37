"""Shared fixtures: a real database (SQLite file, or PostgreSQL when VOTE_TEST_PG_URL is set),
the app in-process over HTTP, and a voter that signs votes as a device would."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.settings import Settings
from tests.helpers import ADMIN_TOKEN, Voter, create_poll
from tests.lifespan import serve

PG_URL_ENV = "VOTE_TEST_PG_URL"


def _backends() -> list[Any]:
    pg = pytest.param(
        "postgres",
        marks=pytest.mark.skipif(
            not os.environ.get(PG_URL_ENV), reason=f"PostgreSQL tests need {PG_URL_ENV} (.ci/run sets it)"
        ),
    )
    return ["sqlite", pg]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}"
        return
    yield from _fresh_pg_database(os.environ[PG_URL_ENV])


def _fresh_pg_database(base_url: str) -> Iterator[str]:
    import asyncio

    url = make_url(base_url)
    name = f"vote_test_{secrets.token_hex(6)}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Tests send bursts of votes from one address; tests/test_rate_limits.py checks the limits.
    return Settings(
        database_url=database_url, data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN, rate_limit_per_client=0
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The whole service in-process over HTTP, lifespan included (migrations, keys).

    Requests run concurrently in the test's event loop, as they would in one uvicorn worker.
    `client.app` is the Litestar app.
    """
    async with serve(settings) as http:
        yield http


@pytest.fixture
async def poll(client: httpx.AsyncClient) -> dict[str, Any]:
    """An open poll with options `yes` and `no`."""
    return await create_poll(client, question="Ship it?", options=[{"id": "yes", "label": "Yes"}, "No"])


@pytest.fixture
def voter() -> Voter:
    return Voter()


# pytest-playwright's fixtures, parametrized per browser for the whole session: a test here that
# names one (even as a parametrize argument, as `page` once was) is regrouped by pytest among the
# browser tests, and its event loop then runs inside Playwright's, which fails every async test
# after it.
BROWSER_FIXTURES = {"browser_name", "browser", "context", "page"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(tests_dir) and BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(
                f"{item.nodeid} names a browser fixture ({', '.join(sorted(BROWSER_FIXTURES))}): "
                "rename it; browser tests belong in e2e/"
            )
