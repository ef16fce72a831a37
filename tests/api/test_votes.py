"""POST /api/v1/polls/{poll_id}/votes: each status code of docs/protocol.md, through HTTP."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from app.core.protocol import b64encode
from app.storage.schema import polls
from tests.helpers import Voter, b64decode, close_poll, create_poll, now_ms, register_device, send_vote, verify_receipt
from tests.lifespan import serve


async def keys(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return (await client.get("/api/v1/keys")).json()["keys"]


async def total(client: httpx.AsyncClient, poll_id: str) -> int:
    return (await client.get(f"/api/v1/polls/{poll_id}/results")).json()["total"]


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]


async def test_vote_accepted_returns_201_with_verifiable_receipt(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    response = await send_vote(client, vote)
    assert response.status_code == 201
    payload = verify_receipt(response.json(), await keys(client), vote)
    assert payload["seq"] == 1
    assert payload["accepted_at"] >= vote["created_at"]


async def test_vote_replayed_with_same_key_returns_same_receipt_bytes(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    first = await send_vote(client, vote)
    again = await send_vote(client, vote)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content
    assert await total(client, poll["id"]) == 1


async def test_vote_replayed_after_restart_returns_same_receipt_bytes(client, poll, voter, settings):
    vote = voter.vote(poll["id"], "yes")
    first = await send_vote(client, vote)
    async with serve(settings) as restarted:
        again = await send_vote(restarted, vote)
        assert await total(restarted, poll["id"]) == 1
    assert again.status_code == 200
    assert again.content == first.content


async def test_bare_idempotency_key_header_is_accepted(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    response = await client.post(
        f"/api/v1/polls/{poll['id']}/votes", json=vote, headers={"Idempotency-Key": vote["idempotency_key"]}
    )
    assert response.status_code == 201


async def test_votes_get_consecutive_seq_numbers(client, poll):
    seqs = []
    for _ in range(3):
        vote = Voter().vote(poll["id"], "no")
        response = await send_vote(client, vote)
        seqs.append(verify_receipt(response.json(), await keys(client), vote)["seq"])
    assert seqs == [1, 2, 3]


async def test_missing_idempotency_key_is_400(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    response = await client.post(f"/api/v1/polls/{poll['id']}/votes", json=vote)
    assert_problem(response, 400, "invalid-idempotency-key")


@pytest.mark.parametrize("header", ['"not-a-uuid"', '"unterminated', '"bad\\escape"', "?1", ""])
async def test_malformed_idempotency_key_is_400(client, poll, voter, header):
    vote = voter.vote(poll["id"], "yes")
    response = await client.post(f"/api/v1/polls/{poll['id']}/votes", json=vote, headers={"Idempotency-Key": header})
    assert_problem(response, 400, "invalid-idempotency-key")


async def test_header_and_body_keys_differing_is_400(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    other = voter.vote(poll["id"], "yes")["idempotency_key"]
    assert_problem(await send_vote(client, vote, key=other), 400, "idempotency-key-mismatch")


async def test_malformed_json_is_400(client, poll, voter):
    key = voter.vote(poll["id"], "yes")["idempotency_key"]
    response = await client.post(
        f"/api/v1/polls/{poll['id']}/votes",
        content=b'{"vote_id": ',
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed-json")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vote_id", "not-a-uuid"),
        ("idempotency_key", "0B6F2B8E-9D43-4E39-8F2A-3C4D5E6F7A8B"),
        ("option_id", "has space"),
        ("created_at", -1),
        ("created_at", 1.5),
        ("public_key", "AAAA"),
        ("signature", "A" * 85 + "="),
    ],
)
async def test_vote_with_bad_field_is_400_naming_the_field(client, poll, voter, field, value):
    vote = voter.vote(poll["id"], "yes")
    vote[field] = value
    # A valid header key, so that only the body is at fault.
    response = await send_vote(client, vote, key=voter.vote(poll["id"], "yes")["idempotency_key"])
    assert_problem(response, 400, "invalid-vote")
    assert [e["key"] for e in response.json()["errors"]] == [field]
    assert response.json()["detail"].startswith(f"{field}: ")


async def test_vote_with_missing_field_is_400(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    del vote["signature"]
    assert_problem(await send_vote(client, vote), 400, "invalid-vote")


async def test_vote_for_other_poll_than_url_is_400(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    other = await create_poll(client, question="Other?", options=["A", "B"])
    assert_problem(await send_vote(client, vote, poll_id=other["id"]), 400, "poll-mismatch")


async def test_non_json_content_type_is_415(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    response = await client.post(
        f"/api/v1/polls/{poll['id']}/votes",
        data={"vote": "yes"},
        headers={"Idempotency-Key": vote["idempotency_key"]},
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_oversized_body_is_413(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    vote["padding"] = "x" * 8192
    assert_problem(await send_vote(client, vote), 413, "payload-too-large")


async def test_key_reused_with_different_body_is_422_and_first_vote_stands(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    assert (await send_vote(client, vote)).status_code == 201
    changed = Voter().vote(poll["id"], "no", idempotency_key=vote["idempotency_key"])
    assert_problem(await send_vote(client, changed), 422, "idempotency-key-reused")
    results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
    assert {o["id"]: o["votes"] for o in results["options"]} == {"yes": 1, "no": 0}


async def test_bad_signature_is_422(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    signature = bytearray(b64decode(vote["signature"]))
    signature[0] ^= 1
    vote["signature"] = b64encode(bytes(signature))
    assert_problem(await send_vote(client, vote), 422, "invalid-signature")
    assert await total(client, poll["id"]) == 0


async def test_signature_by_another_key_is_422(client, poll, voter):
    vote = voter.vote(poll["id"], "yes", public_key=Voter().public_key)
    assert_problem(await send_vote(client, vote), 422, "invalid-signature")


async def test_unknown_option_is_422(client, poll, voter):
    assert_problem(await send_vote(client, voter.vote(poll["id"], "maybe")), 422, "unknown-option")


async def test_vote_dated_far_in_future_is_422(client, poll, voter):
    vote = voter.vote(poll["id"], "yes", created_at=now_ms() + 6 * 60 * 1000)
    assert_problem(await send_vote(client, vote), 422, "clock-in-future")


async def test_vote_dated_slightly_ahead_is_accepted(client, poll, voter):
    vote = voter.vote(poll["id"], "yes", created_at=now_ms() + 60 * 1000)
    assert (await send_vote(client, vote)).status_code == 201


async def test_second_vote_from_same_device_is_409(client, poll, voter):
    assert (await send_vote(client, voter.vote(poll["id"], "yes"))).status_code == 201
    assert_problem(await send_vote(client, voter.vote(poll["id"], "no")), 409, "already-voted")
    assert await total(client, poll["id"]) == 1


async def test_same_device_key_may_vote_in_another_poll(client, poll, voter):
    other = await create_poll(client, question="Other?", options=["A", "B"])
    assert (await send_vote(client, voter.vote(poll["id"], "yes"))).status_code == 201
    assert (await send_vote(client, voter.vote(other["id"], "a"))).status_code == 201


async def test_unknown_poll_is_404(client, voter):
    assert_problem(await send_vote(client, voter.vote("no-such-poll", "yes")), 404, "poll-not-found")


async def test_vote_created_after_close_is_410(client, voter):
    closes_at = now_ms() + 60_000
    poll = await create_poll(client, question="Q?", options=["A", "B"], closes_at=closes_at, late_grace_seconds=3600)
    vote = voter.vote(poll["id"], "a", created_at=closes_at + 1)
    assert_problem(await send_vote(client, vote), 410, "poll-closed")


async def test_vote_arriving_after_close_without_grace_is_410(client, voter):
    poll = await create_poll(client, question="Q?", options=["A", "B"], closes_at=now_ms() + 60_000)
    closes_at = await close_poll(client, poll["id"])
    vote = voter.vote(poll["id"], "a", created_at=closes_at - 60_000)
    assert_problem(await send_vote(client, vote), 410, "poll-closed")


async def test_vote_cast_before_close_arriving_within_grace_is_accepted(client, voter):
    closes_at = now_ms() + 60_000
    poll = await create_poll(client, question="Q?", options=["A", "B"], closes_at=closes_at, late_grace_seconds=600)
    # The page registered the device while the poll was open (docs/protocol.md, Late delivery).
    assert (await register_device(client, poll["id"], voter)).status_code == 200
    closes_at = await close_poll(client, poll["id"])
    vote = voter.vote(poll["id"], "a", created_at=closes_at - 60_000)
    assert (await send_vote(client, vote)).status_code == 201


async def test_fifty_identical_requests_at_once_store_one_vote_with_identical_receipts(client, poll, voter):
    vote = voter.vote(poll["id"], "yes")
    responses = await asyncio.gather(*(send_vote(client, vote) for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [201]
    assert len({r.content for r in responses}) == 1
    assert await total(client, poll["id"]) == 1


async def test_fifty_different_votes_from_one_key_at_once_accept_exactly_one(client, poll, voter):
    votes = [voter.vote(poll["id"], "yes" if i % 2 else "no") for i in range(50)]
    responses = await asyncio.gather(*(send_vote(client, v) for v in votes))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1
    assert statuses.count(409) == 49
    assert all(r.json()["type"] == "/problems/already-voted" for r in responses if r.status_code == 409)
    assert await total(client, poll["id"]) == 1


async def test_fifty_devices_at_once_are_all_counted(client, poll):
    votes = [Voter().vote(poll["id"], "yes") for _ in range(50)]
    responses = await asyncio.gather(*(send_vote(client, v) for v in votes))
    assert [r.status_code for r in responses] == [201] * 50
    assert await total(client, poll["id"]) == 50


async def test_replay_after_poll_closed_still_returns_receipt(client, voter):
    poll = await create_poll(client, question="Q?", options=["A", "B"], closes_at=now_ms() + 60_000)
    vote = voter.vote(poll["id"], "a")
    first = await send_vote(client, vote)
    assert first.status_code == 201
    # The poll closes between the first delivery and the retry (whose response was lost).
    async with client.app.state.db.write() as conn:
        await conn.execute(update(polls).where(polls.c.id == poll["id"]).values(closes_at=now_ms() - 1))
    again = await send_vote(client, vote)
    assert again.status_code == 200
    assert again.content == first.content


async def test_same_key_with_different_body_while_first_in_flight_is_409(client, poll, voter, settings):
    if not settings.is_sqlite:
        pytest.skip("holds the SQLite write lock from outside to keep the first request in flight")
    vote = voter.vote(poll["id"], "yes")
    rival = Voter().vote(poll["id"], "no", idempotency_key=vote["idempotency_key"])
    blocker = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.create_task(send_vote(client, vote))
        votes_service = client.app.state.votes
        while not votes_service.in_flight(vote["idempotency_key"]):  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0)
        assert_problem(await send_vote(client, rival), 409, "request-in-flight")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await first).status_code == 201
    assert (await send_vote(client, rival)).status_code == 422
