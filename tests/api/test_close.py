"""Closing a poll early (POST /api/v1/polls/{poll_id}/close): from the commit on, no node takes a
vote cast after the close, even one whose copy of the poll in memory still says open."""

from __future__ import annotations

from sqlalchemy import update

from app.storage.schema import polls
from tests.helpers import Voter, admin_headers, create_poll, now_ms, send_vote


async def _close(client, poll_id: str, **headers: str):
    return await client.post(f"/api/v1/polls/{poll_id}/close", headers=headers or admin_headers())


async def test_close_answers_the_poll_closed_now(client, poll):
    before = now_ms()

    response = await _close(client, poll["id"])

    assert response.status_code == 200
    assert response.json()["id"] == poll["id"]
    assert before <= response.json()["closes_at"] <= now_ms()


async def test_a_vote_after_the_close_is_refused(client, poll):
    await _close(client, poll["id"])

    response = await send_vote(client, Voter().vote(poll["id"], "yes"))

    assert response.status_code == 410
    assert response.json()["type"] == "/problems/poll-closed"


async def test_closing_a_closed_poll_keeps_its_close(client, poll):
    first = (await _close(client, poll["id"])).json()["closes_at"]

    again = await _close(client, poll["id"])

    assert (again.status_code, again.json()["closes_at"]) == (200, first)


async def test_close_needs_the_admin_token(client, poll):
    response = await _close(client, poll["id"], Authorization="Bearer wrong-token")

    assert response.status_code == 401
    assert (await send_vote(client, Voter().vote(poll["id"], "yes"))).status_code == 201


async def test_close_of_an_unknown_poll_is_404(client):
    response = await _close(client, "no-such-poll")

    assert (response.status_code, response.json()["type"]) == (404, "/problems/poll-not-found")


async def test_a_node_whose_copy_says_open_refuses_a_vote_cast_after_the_close(client, poll):
    """Another node closed the poll: this one's cache still holds it open, and no news arrived."""
    assert (await send_vote(client, Voter().vote(poll["id"], "yes"))).status_code == 201  # the poll is cached
    async with client.app.state.db.write() as conn:
        await conn.execute(update(polls).where(polls.c.id == poll["id"]).values(closes_at=now_ms() - 1000))

    response = await send_vote(client, Voter().vote(poll["id"], "no"))

    assert response.status_code == 410
    results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
    assert results["total"] == 1


async def test_a_batch_keeps_the_votes_of_open_polls_when_another_closed_under_it(client, poll):
    other = await create_poll(client, question="Other?", options=["Up", "Down"])
    for warm in (poll, other):
        assert (await send_vote(client, Voter().vote(warm["id"], warm["options"][0]["id"]))).status_code == 201
    async with client.app.state.db.write() as conn:
        await conn.execute(update(polls).where(polls.c.id == poll["id"]).values(closes_at=now_ms() - 1000))
    batch = [Voter().vote(poll["id"], "yes"), Voter().vote(other["id"], "up"), Voter().vote(other["id"], "down")]

    response = await client.post("/api/v1/votes/batch", json={"votes": batch})

    statuses = [item["status"] for item in response.json()["results"]]
    assert statuses == [410, 201, 201]
    assert (await client.get(f"/api/v1/polls/{other['id']}/results")).json()["total"] == 3
