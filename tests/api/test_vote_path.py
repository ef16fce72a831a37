"""The vote endpoint's fast path answers exactly as the Litestar handler does."""

from __future__ import annotations

import json

from tests.helpers import Voter, send_vote, verify_receipt

# Headers a response may differ in between two requests, whichever path served them.
PER_RESPONSE = {"date", "content-length"}


async def test_fast_path_and_handler_give_the_same_answer_and_headers(client, poll):
    keys = (await client.get("/api/v1/keys")).json()["keys"]
    fast = Voter().vote(poll["id"], "yes")
    fast_answer = await send_vote(client, fast)
    # A body sent in chunks, with no Content-Length, is not what a device sends: the fast path
    # passes it on, and the Litestar handler serves it.
    slow = Voter().vote(poll["id"], "yes")

    async def chunks():
        yield json.dumps(slow).encode()

    slow_answer = await client.post(
        f"/api/v1/polls/{poll['id']}/votes",
        content=chunks(),
        headers={"Content-Type": "application/json", "Idempotency-Key": f'"{slow["idempotency_key"]}"'},
    )
    assert fast_answer.status_code == slow_answer.status_code == 201
    verify_receipt(fast_answer.json(), keys, fast)
    verify_receipt(slow_answer.json(), keys, slow)
    assert {k: v for k, v in fast_answer.headers.items() if k not in PER_RESPONSE} == {
        k: v for k, v in slow_answer.headers.items() if k not in PER_RESPONSE
    }


async def test_a_request_the_fast_path_passes_on_keeps_its_body(client, poll):
    vote = Voter().vote(poll["id"], "yes")
    # Mismatched key: the fast path reads the body, then hands it to the handler for the problem.
    answer = await send_vote(client, vote, key=Voter().vote(poll["id"], "yes")["idempotency_key"])
    assert answer.status_code == 400
    assert answer.json()["type"] == "/problems/idempotency-key-mismatch"
    assert (await send_vote(client, vote)).status_code == 201
