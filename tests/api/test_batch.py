"""POST /api/v1/votes/batch: up to 100 votes, each answered exactly as the single endpoint would."""

from __future__ import annotations

import json

import pytest

from tests.helpers import Voter, create_poll, send_vote, verify_receipt


async def send_batch(client, votes):
    return await client.post("/api/v1/votes/batch", json={"votes": votes})


async def keys(client):
    return (await client.get("/api/v1/keys")).json()["keys"]


async def test_batch_of_new_votes_returns_a_receipt_for_each_in_order(client, poll):
    other = await create_poll(client, question="Other?", options=["A", "B"])
    votes = [Voter().vote(poll["id"], "yes") for _ in range(50)] + [Voter().vote(other["id"], "b") for _ in range(50)]
    response = await send_batch(client, votes)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201] * 100
    for vote, result in zip(votes, results, strict=True):
        verify_receipt(result["receipt"], await keys(client), vote)
    assert (await client.get(f"/api/v1/polls/{other['id']}/results")).json()["total"] == 50


async def test_batch_receipts_are_the_single_endpoints_bytes(client, poll):
    vote = Voter().vote(poll["id"], "yes")
    single = await send_vote(client, vote)
    batched = await send_batch(client, [vote])
    result = batched.json()["results"][0]
    assert result["status"] == 200
    assert json.dumps(result["receipt"], separators=(",", ":")).encode() == single.content
    assert single.content in batched.content


async def test_batch_retried_whole_counts_each_vote_once(client, poll):
    votes = [Voter().vote(poll["id"], "no") for _ in range(10)]
    first = (await send_batch(client, votes)).json()["results"]
    again = (await send_batch(client, votes)).json()["results"]
    assert [r["status"] for r in again] == [200] * 10
    assert [r["receipt"] for r in again] == [r["receipt"] for r in first]
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 10


async def test_each_vote_in_a_batch_gets_its_own_problem(client, poll):
    device = Voter()
    accepted = device.vote(poll["id"], "yes")
    bad_signature = Voter().vote(poll["id"], "yes", signature="A" * 86)
    votes = [
        accepted,
        device.vote(poll["id"], "no"),
        Voter().vote(poll["id"], "maybe"),
        bad_signature,
        Voter().vote("no-such-poll", "yes"),
        {"vote_id": "nope"},
        Voter().vote(poll["id"], "no"),
    ]
    results = (await send_batch(client, votes)).json()["results"]
    statuses = [r["status"] for r in results]
    types = [r.get("problem", {}).get("type") for r in results]
    # One device, two different votes in one batch: exactly one stands, whichever came first.
    assert sorted(zip(statuses[:2], types[:2], strict=True), key=lambda item: item[0]) == [
        (201, None),
        (409, "/problems/already-voted"),
    ]
    assert (statuses[2], types[2]) == (422, "/problems/unknown-option")
    assert (statuses[3], types[3]) == (422, "/problems/invalid-signature")
    assert (statuses[4], types[4]) == (404, "/problems/poll-not-found")
    assert (statuses[5], types[5]) == (400, "/problems/invalid-vote")
    assert statuses[6] == 201
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 2


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b"{", 400, "malformed-json"),
        (b'{"votes": []}', 400, "invalid-request"),
        (json.dumps({"votes": [{}] * 101}).encode(), 400, "invalid-request"),
        (b'{"votes": [], "extra": 1}', 400, "invalid-request"),
    ],
)
async def test_malformed_batches_are_refused_whole(client, body, status, slug):
    response = await client.post("/api/v1/votes/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["type"] == f"/problems/{slug}"


async def test_batch_must_be_json(client):
    response = await client.post("/api/v1/votes/batch", content=b"votes", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


async def test_batch_over_the_size_limit_is_413(client):
    response = await client.post(
        "/api/v1/votes/batch", content=b" " * (256 * 1024), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_batch_across_many_polls_counts_each_in_its_own_poll(client):
    polls = [await create_poll(client, question=f"Q{i}?", options=["A", "B"]) for i in range(30)]
    votes = [Voter().vote(poll["id"], "b") for poll in polls]
    results = (await send_batch(client, votes)).json()["results"]
    assert [r["status"] for r in results] == [201] * 30
    for poll in polls:
        counts = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
        assert (counts["total"], counts["options"][1]["votes"]) == (1, 1)
