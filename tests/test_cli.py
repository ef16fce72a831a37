"""The command line, run as an operator would from the repo root: `litestar …` and `python -m app`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from app.storage.migrate import alembic_config
from tests.service_process import ROOT, ServiceProcess

LITESTAR = str(Path(sys.executable).with_name("litestar"))


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VOTE_DATA_DIR": str(data_dir),
        "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'votes.db'}",
    }
    return subprocess.run([LITESTAR, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_polls_create_prints_one_json_object_with_id_and_url(tmp_path):
    result = run_cli("polls", "create", "--question", "Tea?", "--option", "Yes", "--option", "No", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    poll = json.loads(result.stdout)
    assert poll["question"] == "Tea?"
    assert poll["url"] == f"http://127.0.0.1:8000/polls/{poll['id']}"
    assert [o["label"] for o in poll["options"]] == ["Yes", "No"]


def test_polls_create_takes_a_closing_time(tmp_path):
    closes = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    result = run_cli(
        "polls", "create", "--question", "Q?", "--option", "A", "--option", "B",
        "--closes-at", closes.isoformat(), data_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["closes_at"] == int(closes.timestamp()) * 1000


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["Yes", "Yes"], "options[1] reads the same as options[0]"),
        (["Yes", "\u202eseY"], "U+202E"),
        (["Yes", " "], "options[1] has no visible text"),
    ],
)
def test_polls_create_validates_as_the_api_does(tmp_path, options, named):
    option_args = [arg for option in options for arg in ("--option", option)]
    result = run_cli("polls", "create", "--question", "Q?", *option_args, data_dir=tmp_path)
    assert result.returncode != 0
    assert named in result.stderr


def test_polls_create_refuses_a_closing_time_in_the_past(tmp_path):
    result = run_cli(
        "polls", "create", "--question", "Q?", "--option", "A", "--option", "B",
        "--closes-at", "2020-01-01T00:00:00Z", data_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "closes_at must lie in the future" in result.stderr


def test_polls_create_refuses_a_bad_closing_time(tmp_path):
    result = run_cli(
        "polls", "create", "--question", "Q?", "--option", "A", "--option", "B", "--closes-at", "soon",
        data_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "ISO 8601" in result.stderr


def test_db_upgrade_reports_the_head_revision(tmp_path):
    result = run_cli("db", "upgrade", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert json.loads(result.stdout) == {"revision": head}


@pytest.fixture
def first_run(tmp_path: Path):
    """`python -m app` (what `make run` starts) on an empty data dir; stopped afterwards."""
    service = ServiceProcess(tmp_path / "var", admin_token="")
    service.start()
    try:
        yield service
    finally:
        service.stop()


def test_first_run_prints_the_demo_poll_url_and_serves_it(first_run):
    printed = [line for line in first_run.log().splitlines() if line.startswith("Demo poll: ")]
    assert len(printed) == 1
    poll_id = printed[0].rsplit("/", 1)[1]
    poll = httpx.get(f"{first_run.base_url}/api/v1/polls/{poll_id}").json()
    assert len(poll["options"]) >= 2


def test_first_run_keeps_secrets_private_under_the_data_dir(first_run):
    key_files = list((first_run.data_dir / "receipt-keys").glob("*.key"))
    assert len(key_files) == 1
    for secret in (*key_files, first_run.data_dir / "admin-token"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret


def test_restart_keeps_the_demo_poll_and_the_signing_key(first_run):
    keys_before = httpx.get(f"{first_run.base_url}/api/v1/keys").json()
    first_run.stop()
    first_run.start()
    demo_lines = [line for line in first_run.log().splitlines() if line.startswith("Demo poll: ")]
    assert len(set(demo_lines)) == 1
    assert httpx.get(f"{first_run.base_url}/api/v1/keys").json() == keys_before


def test_polls_close_closes_the_poll_now(tmp_path):
    created = run_cli("polls", "create", "--question", "Q?", "--option", "A", "--option", "B", data_dir=tmp_path)
    poll_id = json.loads(created.stdout)["id"]
    before = int(datetime.now(UTC).timestamp() * 1000)

    result = run_cli("polls", "close", poll_id, data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    closed = json.loads(result.stdout)
    assert closed["id"] == poll_id
    assert before <= closed["closes_at"] <= int(datetime.now(UTC).timestamp() * 1000)


def test_polls_close_names_an_unknown_poll(tmp_path):
    run_cli("db", "upgrade", data_dir=tmp_path)

    result = run_cli("polls", "close", "no-such-poll", data_dir=tmp_path)

    assert result.returncode != 0
    assert "There is no poll 'no-such-poll'." in result.stderr


def test_poll_ids_never_start_with_a_dash_a_command_line_would_take_for_an_option():
    from app.polls.store import new_poll_id

    ids = [new_poll_id() for _ in range(2000)]  # about 1 in 64 random ids would start with "-"

    assert not [poll_id for poll_id in ids if poll_id.startswith("-")]
    assert all(len(poll_id) == 16 for poll_id in ids)
