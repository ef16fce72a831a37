"""Arbitrary and mutated requests never get a 500, and never change what was accepted."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Voter, send_vote

# The client fixture is shared by every example on purpose: state accumulates as in production.
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)


def mutate(vote: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    changed = dict(vote)
    if value is None:
        changed.pop(field, None)
    else:
        changed[field] = value
    return changed


@FUZZ
@given(body=st.binary(max_size=600), header=st.text(max_size=60))
async def test_arbitrary_bytes_never_give_500(client, poll, body, header):
    response = await client.post(
        f"/api/v1/polls/{poll['id']}/votes",
        content=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": header.encode("ascii", "ignore").decode()},
    )
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


@FUZZ
@given(body=json_values)
async def test_arbitrary_json_never_gives_500(client, poll, body):
    response = await client.post(
        f"/api/v1/polls/{poll['id']}/votes",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", "Idempotency-Key": "0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b"},
    )
    assert 400 <= response.status_code < 500, response.text


@FUZZ
@given(
    field=st.sampled_from(
        ["vote_id", "idempotency_key", "poll_id", "option_id", "created_at", "public_key", "signature"]
    ),
    value=json_values,
)
async def test_mutated_votes_never_give_500_or_extra_counts(client, poll, field, value):
    vote = Voter().vote(poll["id"], "yes")
    before = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"]
    response = await send_vote(client, mutate(vote, field, value), poll_id=poll["id"], key=vote["idempotency_key"])
    assert response.status_code < 500, response.text
    after = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"]
    assert after == before + (1 if response.status_code == 201 else 0)
