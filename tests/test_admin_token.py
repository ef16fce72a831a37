"""The admin token: an empty, short or unsendable one never opens the admin API, it stops the start."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from app.core.admin_token import TOKEN_FILE
from app.core.settings import Settings, SettingsError
from app.storage.db import Database
from app.storage.migrate import upgrade
from tests.lifespan import serve
from tests.service_process import ROOT, ServiceProcess, free_port

POLL = {"question": "Open the admin API?", "options": ["Yes", "No"]}


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer    ", "bearer \t"])
async def test_empty_bearer_is_refused_even_against_an_empty_token(settings, header):
    async with serve(settings) as http:
        # What a 0-byte token file used to give the service; the guard must refuse on its own too.
        http.app.state.admin_token = ""  # type: ignore[attr-defined]
        response = await http.post("/api/v1/polls", json=POLL, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"fifteen-chars!!\n", "must be at least 16 characters"),
        ("säkerhetsnyckel-token".encode(), "must be visible ASCII characters, without spaces"),
    ],
    ids=["empty", "newline", "short", "not-ascii"],
)
def test_bad_token_file_stops_the_start_with_one_line(tmp_path, content, problem):
    service = ServiceProcess(tmp_path, admin_token="")
    # A data dir whose first start made the database, then left a bad token (a full disk, a bad copy).
    asyncio.run(_migrate(service.env["VOTE_DATABASE_URL"]))
    token_file = tmp_path / TOKEN_FILE
    token_file.write_bytes(content)
    try:
        with pytest.raises(RuntimeError, match="the service exited"):
            service.start()
    finally:
        service.stop()  # one that started anyway must not outlive the test
    assert service.log().strip().splitlines() == [
        f"error: {token_file}: the admin token {problem}; "
        "delete the file to have a new one generated, or set VOTE_ADMIN_TOKEN"
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty; unset it to have one generated into VOTE_DATA_DIR/admin-token"),
        (" " * 20, "must be visible ASCII characters, without spaces"),
        ("säkerhetsnyckel-token", "must be visible ASCII characters, without spaces"),
    ],
    ids=["empty", "spaces", "not-ascii"],
)
def test_unusable_VOTE_ADMIN_TOKEN_is_a_bad_setting(value, problem):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"VOTE_ADMIN_TOKEN": value})
    assert str(raised.value) == f"VOTE_ADMIN_TOKEN: {problem}"


def test_empty_VOTE_ADMIN_TOKEN_stops_the_start_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "VOTE_ADMIN_TOKEN": "",
            "VOTE_DATA_DIR": str(tmp_path),
            # Were the setting accepted, the service would start: on the test's own port and files.
            "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}",
            "PORT": str(free_port()),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: VOTE_ADMIN_TOKEN: is empty; unset it to have one generated into VOTE_DATA_DIR/admin-token"
    ]
    assert not (tmp_path / TOKEN_FILE).exists()


async def _migrate(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
