"""`litestar polls create` gives the manage link once and takes the results visibility."""

from __future__ import annotations

import json
import sqlite3

from tests.test_cli import run_cli


def test_polls_create_prints_the_manage_link_and_keeps_only_its_hash(tmp_path):
    result = run_cli(
        "polls", "create", "--question", "Tea?", "--option", "Yes", "--option", "No",
        "--results-visibility", "after-closing", data_dir=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    poll = json.loads(result.stdout)
    token = poll["manage_url"].split("#key=")[1]
    assert poll["manage_url"] == f"http://127.0.0.1:8000/polls/{poll['id']}/manage#key={token}"
    assert poll["results_visibility"] == "after-closing"
    for file in tmp_path.rglob("*"):  # the database, its WAL, the data dir
        assert not file.is_file() or token.encode() not in file.read_bytes(), file
    with sqlite3.connect(tmp_path / "votes.db") as db:
        stored = db.execute("SELECT results_visibility FROM polls WHERE id = ?", (poll["id"],)).fetchone()
    assert stored == ("after-closing",)


def test_polls_create_refuses_an_unknown_visibility(tmp_path):
    result = run_cli(
        "polls", "create", "--question", "Tea?", "--option", "Yes", "--option", "No",
        "--results-visibility", "never", data_dir=tmp_path,
    )  # fmt: skip

    assert result.returncode != 0
    assert "never" in result.stderr
