"""The device's clock never extends a vote's window (docs/protocol.md, Late delivery): after the
close, only a key the service registered while the poll was open may deliver a vote, within the
grace; and no vote may be dated before its poll existed."""

from __future__ import annotations

from tests.helpers import Voter, close_poll, create_poll, now_ms, register_device, send_vote

GRACE_S = 3600


async def open_poll_with_grace(client) -> dict:
    return await create_poll(
        client, question="Late?", options=["A", "B"], closes_at=now_ms() + 60_000, late_grace_seconds=GRACE_S
    )


def problem_type(response) -> str:
    return response.json()["type"]


async def test_a_backdated_vote_from_an_unregistered_key_cannot_reopen_a_closed_poll(client):
    poll = await open_poll_with_grace(client)
    closes_at = await close_poll(client, poll["id"])
    # Cast after the close, with the device's clock set back before it.
    response = await send_vote(client, Voter().vote(poll["id"], "a", created_at=closes_at - 1))
    assert response.status_code == 410
    assert problem_type(response) == "/problems/poll-closed"
    assert "registered" in response.json()["detail"]
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 0


async def test_a_key_registered_while_open_delivers_its_vote_late(client):
    poll = await open_poll_with_grace(client)
    voter = Voter()
    assert (await register_device(client, poll["id"], voter)).status_code == 200
    closes_at = await close_poll(client, poll["id"])
    assert (await send_vote(client, voter.vote(poll["id"], "a", created_at=closes_at - 1000))).status_code == 201


async def test_a_late_batch_admits_registered_keys_only(client):
    poll = await open_poll_with_grace(client)
    registered = Voter()
    await register_device(client, poll["id"], registered)
    closes_at = await close_poll(client, poll["id"])
    votes = [
        registered.vote(poll["id"], "a", created_at=closes_at - 1),
        Voter().vote(poll["id"], "b", created_at=closes_at - 1),
    ]
    results = (await client.post("/api/v1/votes/batch", json={"votes": votes})).json()["results"]
    assert [r["status"] for r in results] == [201, 410]


async def test_registering_after_the_close_is_refused(client):
    poll = await open_poll_with_grace(client)
    await close_poll(client, poll["id"])
    response = await register_device(client, poll["id"], Voter())
    assert response.status_code == 410
    assert problem_type(response) == "/problems/poll-closed"


async def test_registering_again_keeps_the_first_time(client):
    poll = await open_poll_with_grace(client)
    voter = Voter()
    first = (await register_device(client, poll["id"], voter)).json()["registered_at"]
    again = (await register_device(client, poll["id"], voter)).json()["registered_at"]
    assert again == first


async def test_registering_for_an_unknown_poll_is_404(client):
    response = await register_device(client, "no-such-poll", Voter())
    assert response.status_code == 404
    assert problem_type(response) == "/problems/poll-not-found"


async def test_a_registration_that_is_not_a_key_is_400(client, poll):
    response = await client.post(f"/api/v1/polls/{poll['id']}/devices", json={"public_key": "not a key"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_vote_dated_before_its_poll_existed_is_refused(client, poll):
    response = await send_vote(client, Voter().vote(poll["id"], "yes", created_at=0))
    assert response.status_code == 422
    assert problem_type(response) == "/problems/dated-before-poll"


async def test_a_device_clock_a_little_behind_still_votes_in_a_new_poll(client, poll):
    response = await send_vote(client, Voter().vote(poll["id"], "yes", created_at=now_ms() - 60_000))
    assert response.status_code == 201


async def test_a_vote_accepted_in_time_replays_its_receipt_after_the_close(client):
    poll = await open_poll_with_grace(client)
    vote = Voter().vote(poll["id"], "a")
    first = await send_vote(client, vote)
    assert first.status_code == 201
    await close_poll(client, poll["id"])
    again = await send_vote(client, vote)
    assert again.status_code == 200
    assert again.content == first.content
