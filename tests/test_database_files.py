"""A receipt means the vote is kept: not when the database under the running service is gone.

Each test runs `python -m app` (tests/service_process.py) on a real SQLite file and changes that
file behind its back, as an operator's mistake or a cleanup script would.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from app.storage.sqlite_files import LOW_DISK_BYTES
from tests.helpers import Voter
from tests.service_process import ServiceProcess

TMPFS_BYTES = LOW_DISK_BYTES + 16 * 1024 * 1024  # room to start, and to fill


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path / "service") as process:
        yield process


def post_vote(service: ServiceProcess, vote: dict) -> httpx.Response:
    with service.client() as http:
        return http.post(
            f"/api/v1/polls/{vote['poll_id']}/votes", json=vote, headers={"Idempotency-Key": vote["idempotency_key"]}
        )


def readiness(service: ServiceProcess) -> httpx.Response:
    with service.client() as http:
        return http.get("/readyz")


def delete_database(database: Path) -> None:
    database.unlink()


def replace_database(database: Path) -> None:
    """A copy renamed over it, as a restore from a backup while the service runs would do."""
    copy = database.with_name("restored.db")
    shutil.copyfile(database, copy)
    os.replace(copy, database)


def delete_wal(database: Path) -> None:
    database.with_name(f"{database.name}-wal").unlink()


LOSSES: dict[str, tuple[Callable[[Path], None], str]] = {
    "database deleted": (delete_database, "votes.db was deleted"),
    "database replaced": (replace_database, "votes.db was replaced"),
    "WAL deleted": (delete_wal, "votes.db-wal was deleted"),
}


@pytest.mark.parametrize("loss", LOSSES, ids=list(LOSSES))
def test_no_receipt_once_the_database_or_its_wal_is_lost_and_readyz_says_why(service, loss):
    lose, reason = LOSSES[loss]
    poll = service.create_poll()
    assert post_vote(service, Voter().vote(poll["id"], "red")).status_code == 201

    lose(service.data_dir / "votes.db")

    refused = post_vote(service, Voter().vote(poll["id"], "blue"))
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    unready = readiness(service)
    assert unready.status_code == 503
    assert reason in unready.json()["detail"]
    # Final for this worker: a vote after it is refused too, though no file changes any more.
    assert post_vote(service, Voter().vote(poll["id"], "red")).status_code == 503


def test_readyz_notices_a_deleted_database_before_any_vote_does(service):
    poll = service.create_poll()
    (service.data_dir / "votes.db").unlink()

    unready = readiness(service)
    assert unready.status_code == 503
    assert "votes.db was deleted" in unready.json()["detail"]
    assert post_vote(service, Voter().vote(poll["id"], "red")).status_code == 503


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of TMPFS_BYTES: a disk that really fills up (needs root, as in the CI container)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def fill(path: Path) -> None:
    """Writes until the filesystem refuses: ENOSPC, in whole chunks, then in the last few bytes."""
    with path.open("wb", buffering=0) as filler:
        for size in (65536, 512):
            while (refused := _write(filler, b"\0" * size)) is None:
                pass
            assert refused.errno == errno.ENOSPC


def _write(file: BinaryIO, data: bytes) -> OSError | None:
    try:
        file.write(data)
    except OSError as error:
        return error
    return None


def test_full_disk_refuses_votes_turns_readyz_unready_and_recovers(tmp_path, small_disk):
    service = ServiceProcess(small_disk / "service")
    service.log_path = tmp_path / "service.log"  # the log must not need the full disk
    with service:
        poll = service.create_poll()
        kept = Voter().vote(poll["id"], "red")
        receipt = post_vote(service, kept)
        assert receipt.status_code == 201

        fill(small_disk / "filler")
        refused = post_vote(service, Voter().vote(poll["id"], "blue"))
        assert refused.status_code == 503, refused.text
        assert "Retry-After" in refused.headers
        unready = readiness(service)
        assert unready.status_code == 503
        assert unready.headers["content-type"].startswith("application/problem+json")
        assert "disk holding the database is full" in unready.json()["detail"]

        (small_disk / "filler").unlink()
        assert readiness(service).status_code == 200
        assert post_vote(service, Voter().vote(poll["id"], "blue")).status_code == 201
        replay = post_vote(service, kept)
        assert (replay.status_code, replay.content) == (200, receipt.content)
