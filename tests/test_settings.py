"""Settings from VOTE_* variables: defaults, one clear line per bad value, all documented."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from app.core.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_embedded_sqlite_setup():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite+aiosqlite:///var/votes.db"
    assert settings.data_dir == Path("var")
    assert settings.port == 8000
    assert settings.base_url == "http://127.0.0.1:8000"


def test_postgres_url_is_accepted():
    url = "postgresql+asyncpg://vote@db.internal:5432/votes"
    assert Settings.from_env({"VOTE_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"VOTE_DATABASE_URL": "mysql://x/y"}, "VOTE_DATABASE_URL"),
        ({"VOTE_DATABASE_URL": "not a url"}, "VOTE_DATABASE_URL"),
        ({"VOTE_DATABASE_URL": "sqlite+aiosqlite://"}, "VOTE_DATABASE_URL"),
        ({"VOTE_ADMIN_TOKEN": "short"}, "VOTE_ADMIN_TOKEN"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"VOTE_WORKERS": "0"}, "VOTE_WORKERS"),
        ({"VOTE_WORKERS": "two"}, "VOTE_WORKERS"),
        ({"VOTE_PUBLIC_URL": "ftp://x"}, "VOTE_PUBLIC_URL"),
        ({"VOTE_REDIS_URL": "http://x"}, "VOTE_REDIS_URL"),
        ({"VOTE_LOG_LEVEL": "LOUD"}, "VOTE_LOG_LEVEL"),
        ({"VOTE_KEY_ENCRYPTION_KEY_FILE": ""}, "VOTE_KEY_ENCRYPTION_KEY_FILE"),
        ({"VOTE_KEY_REFRESH_SECONDS": "0"}, "VOTE_KEY_REFRESH_SECONDS"),
    ],
)
def test_bad_setting_names_the_variable(env, variable):
    with pytest.raises(SettingsError, match=rf"^{variable}: "):
        Settings.from_env(env)


def test_bad_setting_stops_the_start_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "VOTE_DATABASE_URL": "mysql://nope", "VOTE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: VOTE_DATABASE_URL: driver 'mysql' is not supported; use one of "
        "('sqlite+aiosqlite', 'postgresql+asyncpg')"
    ]


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`((?:VOTE_[A-Z_]+)|PORT)`", readme))
    source = (ROOT / "app" / "core" / "settings.py").read_text()
    read_from_env = set(re.findall(r'"((?:VOTE_[A-Z_]+)|PORT)"', source))
    assert len(read_from_env) == len(fields(Settings))
    assert read_from_env <= documented, read_from_env - documented


def test_bad_setting_stops_uvicorn_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app:create_app", "--factory", "--port", "1"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "VOTE_ADMIN_TOKEN": "short", "VOTE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "error: VOTE_ADMIN_TOKEN: must be at least 16 characters"
