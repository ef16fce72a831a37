"""A receipt means the vote is on disk: the service is killed with SIGKILL and restarted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import Voter, verify_receipt
from tests.service_process import ServiceProcess


@pytest.fixture
def service(tmp_path: Path, database_url: str) -> Iterator[ServiceProcess]:
    """A real `python -m app` process on the test's database; its log is shown when a test fails."""
    process = ServiceProcess(tmp_path / "service", database_url=database_url)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def post_vote(service: ServiceProcess, vote: dict) -> tuple[int, bytes]:
    with service.client() as http:
        response = http.post(
            f"/api/v1/polls/{vote['poll_id']}/votes", json=vote, headers={"Idempotency-Key": vote["idempotency_key"]}
        )
        return response.status_code, response.content


def test_receipted_votes_survive_sigkill_and_retries_get_the_same_receipts(service):
    with service.client() as http:
        poll = http.post(
            "/api/v1/polls",
            json={"question": "Q?", "options": ["A", "B"], "eligibility": "anyone"},
            headers=service.admin_headers(),
        ).json()
    votes = [Voter().vote(poll["id"], "a" if i % 3 else "b") for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda v: post_vote(service, v), votes))
    assert [status for status, _ in answers] == [201] * len(votes), service.log()

    service.kill()
    service.start()

    with service.client() as http:
        results = http.get(f"/api/v1/polls/{poll['id']}/results").json()
        keys = http.get("/api/v1/keys").json()["keys"]
    assert results["total"] == len(votes)
    assert {o["id"]: o["votes"] for o in results["options"]} == {
        "a": sum(1 for v in votes if v["option_id"] == "a"),
        "b": sum(1 for v in votes if v["option_id"] == "b"),
    }
    for vote, (_, receipt) in zip(votes, answers, strict=True):
        status, again = post_vote(service, vote)
        assert (status, again) == (200, receipt)
        verify_receipt(json.loads(again), keys, vote)


def test_service_log_holds_no_vote_bodies_or_client_addresses(service):
    with service.client() as http:
        poll = http.post(
            "/api/v1/polls",
            json={"question": "Q?", "options": ["A", "B"], "eligibility": "anyone"},
            headers=service.admin_headers(),
        ).json()
    vote = Voter().vote(poll["id"], "a")
    assert post_vote(service, vote)[0] == 201
    bad = dict(vote, signature="A" * 86, idempotency_key="00000000-0000-4000-8000-000000000000")
    assert post_vote(service, bad)[0] == 422
    service.stop()
    log = service.log()
    for secret in (vote["signature"], vote["public_key"], vote["vote_id"], vote["idempotency_key"]):
        assert secret not in log
    assert "127.0.0.1:" not in log.replace(service.base_url, "")
