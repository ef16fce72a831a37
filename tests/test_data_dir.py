"""The data dir and the database: private whatever the umask, and never silently started afresh."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.core.keys import load_or_create
from app.core.settings import Settings
from app.storage.first_start import LostDatabase
from tests.conftest import PG_URL_ENV, _fresh_pg_database
from tests.helpers import ADMIN_TOKEN
from tests.lifespan import serve
from tests.service_process import ROOT, ServiceProcess

LITESTAR = str(Path(sys.executable).with_name("litestar"))
UMASK = 0o022  # the usual one, under which SQLite made votes.db and its WAL 0644


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process's umask for the block, so that a service started in it inherits it."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def lines_since(service: ServiceProcess, offset: int) -> list[str]:
    return service.log(offset).strip().splitlines()


def run_cli(service: ServiceProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LITESTAR, *args], cwd=ROOT, env=service.env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("database_dir", ["var", "db"], ids=["database-in-data-dir", "database-apart"])
def test_database_wal_and_data_dir_are_private_whatever_the_umask(tmp_path, database_dir):
    data_dir, database = tmp_path / "var", tmp_path / database_dir / "votes.db"
    service = ServiceProcess(
        tmp_path,
        admin_token="",
        env={"VOTE_DATA_DIR": str(data_dir), "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )
    with umask(UMASK):
        service.start()
    try:  # while the service runs, its WAL and -shm exist
        modes = {
            path.name: oct(mode(path))
            for path in (
                data_dir,
                data_dir / "admin-token",
                data_dir / "receipt-keys",
                database.parent,
                database,
                database.with_name("votes.db-wal"),
                database.with_name("votes.db-shm"),
            )
        }
    finally:
        service.stop()
    assert modes == {
        "var": "0o700",
        "admin-token": "0o600",
        "receipt-keys": "0o700",
        database.parent.name: "0o700",
        "votes.db": "0o600",
        "votes.db-wal": "0o600",
        "votes.db-shm": "0o600",
    }


@pytest.fixture
def used_service(tmp_path) -> Iterator[ServiceProcess]:
    """A service that has started, made a poll and stopped: its data dir has keys and a token."""
    service = ServiceProcess(tmp_path, admin_token="")
    service.start()
    try:
        with service.client() as http:
            token = (tmp_path / "admin-token").read_text()
            http.post(
                "/api/v1/polls",
                json={"question": "Kept?", "options": ["Yes", "No"]},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
    finally:
        service.stop()
    yield service
    service.stop()


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_restart_without_its_database_stops_with_one_line(used_service, loss):
    database = used_service.data_dir / "votes.db"
    for path in (database, database.with_name("votes.db-wal"), database.with_name("votes.db-shm")):
        path.unlink(missing_ok=True)
    if loss == "emptied":
        database.write_bytes(b"")
    offset = used_service.log_size()
    with pytest.raises(RuntimeError, match="the service exited"):
        used_service.start()
    assert lines_since(used_service, offset) == [
        f"error: the database {database} is missing or empty, but {used_service.data_dir} has receipt keys "
        "and an admin token from an earlier start: a new database would lose every vote receipted before. "
        "Restore the database, or make a new one on purpose with `litestar db create`"
    ]


def test_cli_does_not_make_a_database_in_place_of_a_lost_one(used_service):
    (used_service.data_dir / "votes.db").unlink()
    result = run_cli(used_service, "polls", "create", "--question", "Q?", "--option", "A", "--option", "B")
    assert result.returncode != 0
    assert "is missing or empty" in " ".join(result.stderr.replace("│", " ").split())  # in a box, wrapped
    assert result.stdout == ""


def test_db_create_makes_a_new_database_on_purpose(used_service):
    (used_service.data_dir / "votes.db").unlink()
    created = run_cli(used_service, "db", "create")
    assert created.returncode == 0, created.stderr
    used_service.start()
    with used_service.client() as http:
        assert http.get("/readyz").status_code == 200


async def test_lifespan_refuses_a_new_database_on_a_used_data_dir(tmp_path):
    # What uvicorn or `litestar run` start, without `python -m app`'s own check first.
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}", data_dir=tmp_path, admin_token=ADMIN_TOKEN
    )
    load_or_create(settings.data_dir)  # the keys of an earlier start; its database is gone
    with pytest.raises(RuntimeError, match=LostDatabase.__name__):
        async with serve(settings):
            pass


@pytest.mark.skipif(not os.environ.get(PG_URL_ENV), reason=f"PostgreSQL tests need {PG_URL_ENV}")
def test_emptied_postgres_database_stops_the_start(tmp_path):
    with contextmanager(_fresh_pg_database)(os.environ[PG_URL_ENV]) as database_url:
        service = ServiceProcess(tmp_path, database_url=database_url)
        service.start()
        service.stop()
        asyncio.run(_empty_pg_database(database_url))
        offset = service.log_size()
        try:
            with pytest.raises(RuntimeError, match="the service exited"):
                service.start()
        finally:
            service.stop()
    shown = make_url(database_url).render_as_string(hide_password=True)
    [line] = lines_since(service, offset)
    assert line.startswith(f"error: the database {shown} has no tables, but {tmp_path} has receipt keys from ")


async def _empty_pg_database(database_url: str) -> None:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
