"""Group commit: many votes share one transaction, and each still gets exactly its own answer."""

from __future__ import annotations

import asyncio
import json

from tests.helpers import Voter, b64decode, send_vote
from tests.lifespan import serve


def seq_of(response) -> int:
    return json.loads(b64decode(response.json()["payload"]))["seq"]


async def test_concurrent_votes_share_commits_and_get_distinct_seqs(client, poll):
    engine = client.app.state.votes.committer.engine
    commits_before = engine.commits
    votes = [Voter().vote(poll["id"], "yes" if i % 2 else "no") for i in range(100)]
    responses = await asyncio.gather(*(send_vote(client, v) for v in votes))
    assert [r.status_code for r in responses] == [201] * 100
    assert sorted(seq_of(r) for r in responses) == list(range(1, 101))
    assert 0 < engine.commits - commits_before < 50
    results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
    assert {o["id"]: o["votes"] for o in results["options"]} == {"yes": 50, "no": 50}


async def test_mixed_batch_gives_each_vote_its_own_answer(client, poll):
    earlier_device = Voter()
    earlier = earlier_device.vote(poll["id"], "yes")
    first = await send_vote(client, earlier)
    assert first.status_code == 201
    # A key whose vote is already committed (a key still in flight would get 409 request-in-flight).
    first_of_its_key = Voter().vote(poll["id"], "no")
    assert (await send_vote(client, first_of_its_key)).status_code == 201
    twice_device = Voter()
    cases = {
        "replay": earlier,
        "key reused": Voter().vote(poll["id"], "no", idempotency_key=first_of_its_key["idempotency_key"]),
        "device voted earlier": earlier_device.vote(poll["id"], "no"),
        "fresh 1": Voter().vote(poll["id"], "yes"),
        "fresh 2": Voter().vote(poll["id"], "no"),
        "same device A": twice_device.vote(poll["id"], "yes"),
        "same device B": twice_device.vote(poll["id"], "no"),
    }
    responses = dict(zip(cases, await asyncio.gather(*(send_vote(client, v) for v in cases.values())), strict=True))
    assert responses["replay"].status_code == 200
    assert responses["replay"].content == first.content
    assert responses["key reused"].json()["type"] == "/problems/idempotency-key-reused"
    assert responses["device voted earlier"].json()["type"] == "/problems/already-voted"
    assert responses["fresh 1"].status_code == responses["fresh 2"].status_code == 201
    same_device = sorted(responses[k].status_code for k in ("same device A", "same device B"))
    assert same_device == [201, 409]
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 5


async def test_two_workers_racing_on_one_vote_count_it_once(client, poll, settings):
    vote = Voter().vote(poll["id"], "yes")
    async with serve(settings) as other_worker:
        answers = await asyncio.gather(send_vote(client, vote), send_vote(other_worker, vote))
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert answers[0].content == answers[1].content
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 1


async def test_two_workers_racing_on_one_device_accept_one_vote(client, poll, settings):
    device = Voter()
    async with serve(settings) as other_worker:
        for _ in range(5):
            poll_votes = [device.vote(poll["id"], "yes"), device.vote(poll["id"], "no")]
            answers = await asyncio.gather(send_vote(client, poll_votes[0]), send_vote(other_worker, poll_votes[1]))
            assert all(a.status_code in (201, 409) for a in answers)
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 1


async def test_failing_listener_does_not_turn_a_committed_vote_into_an_error(client, poll):
    def broken(poll_id: str, option_id: str) -> None:
        raise RuntimeError("listener bug")

    client.app.state.votes.on_accepted.append(broken)
    response = await send_vote(client, Voter().vote(poll["id"], "yes"))
    assert response.status_code == 201
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 1


async def test_forged_votes_in_a_shared_commit_are_refused_and_only_they(client, poll):
    votes = [Voter().vote(poll["id"], "yes") for _ in range(20)]
    forged = {3, 9, 15}
    for index in forged:
        votes[index]["signature"] = Voter().vote(poll["id"], "yes")["signature"]
    for _ in range(2):  # the second round finds the signature helper process started
        responses = await asyncio.gather(*(send_vote(client, v) for v in votes))
        refused = {i for i, r in enumerate(responses) if r.status_code == 422}
        assert refused == forged
        assert {responses[i].json()["type"] for i in forged} == {"/problems/invalid-signature"}
        votes = [Voter().vote(poll["id"], "no") if i not in forged else v for i, v in enumerate(votes)]
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 2 * (20 - len(forged))
