"""A vote gets the same answer whichever way it comes: the fast path, the Litestar handler, or an
item of the batch endpoint (app/votes/acceptance.py holds the rules all three apply)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers import Voter, admin_headers, close_poll, create_poll, now_ms, send_vote, verify_receipt

# Headers a response may differ in between two requests, whichever path served them.
PER_RESPONSE = {"date", "content-length"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    """The receipt's exact bytes, or the problem's JSON (its key order is the service's)."""


async def by_fast_path(
    client: httpx.AsyncClient, vote: dict[str, Any], *, url_poll: str | None = None, **headers: str
) -> httpx.Response:
    """What a device sends: a body of known length."""
    return await client.post(_url(vote, url_poll), content=json.dumps(vote).encode(), headers=_headers(vote, headers))


async def by_handler(
    client: httpx.AsyncClient, vote: dict[str, Any], *, url_poll: str | None = None, **headers: str
) -> httpx.Response:
    """A body sent in chunks, with no Content-Length: the fast path passes it to the Litestar handler."""

    async def chunks():
        yield json.dumps(vote).encode()

    return await client.post(_url(vote, url_poll), content=chunks(), headers=_headers(vote, headers))


def _url(vote: dict[str, Any], url_poll: str | None) -> str:
    return f"/api/v1/polls/{url_poll or vote.get('poll_id')}/votes"


def _headers(vote: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
    key = vote.get("idempotency_key")
    return {"Content-Type": "application/json", "Idempotency-Key": f'"{key}"', **extra}


async def by_batch(client: httpx.AsyncClient, vote: Any) -> Answer:
    response = await client.post("/api/v1/votes/batch", json={"votes": [vote]})
    assert response.status_code == 200, response.text
    item = response.json()["results"][0]
    if "receipt" in item:
        return Answer(item["status"], json.dumps(item["receipt"], separators=(",", ":")).encode())
    return Answer(item["status"], json.dumps(item["problem"], separators=(",", ":")).encode())


def answer(response: httpx.Response) -> Answer:
    return Answer(response.status_code, response.content)


def same_headers(one: httpx.Response, other: httpx.Response) -> bool:
    return {k: v for k, v in one.headers.items() if k not in PER_RESPONSE} == {
        k: v for k, v in other.headers.items() if k not in PER_RESPONSE
    }


async def test_fast_path_and_handler_give_the_same_answer_and_headers(client, poll):
    keys = (await client.get("/api/v1/keys")).json()["keys"]
    fast = Voter().vote(poll["id"], "yes")
    fast_answer = await send_vote(client, fast)
    # A body sent in chunks, with no Content-Length, is not what a device sends: the fast path
    # passes it on, and the Litestar handler serves it.
    slow = Voter().vote(poll["id"], "yes")
    slow_answer = await by_handler(client, slow)
    assert fast_answer.status_code == slow_answer.status_code == 201
    verify_receipt(fast_answer.json(), keys, fast)
    verify_receipt(slow_answer.json(), keys, slow)
    assert same_headers(fast_answer, slow_answer)


async def test_a_request_the_fast_path_passes_on_keeps_its_body(client, poll):
    vote = Voter().vote(poll["id"], "yes")
    # Mismatched key: the fast path reads the body, then hands it to the handler for the problem.
    answer = await send_vote(client, vote, key=Voter().vote(poll["id"], "yes")["idempotency_key"])
    assert answer.status_code == 400
    assert answer.json()["type"] == "/problems/idempotency-key-mismatch"
    assert (await send_vote(client, vote)).status_code == 201


async def test_a_new_vote_is_accepted_alike_by_every_path(client, poll):
    fast, slow, batched = (Voter().vote(poll["id"], "yes") for _ in range(3))
    assert (await by_fast_path(client, fast)).status_code == 201
    assert (await by_handler(client, slow)).status_code == 201
    assert (await by_batch(client, batched)).status == 201


@pytest.mark.parametrize("first_path", ["fast path", "handler", "batch"])
async def test_a_replay_gets_the_same_receipt_bytes_by_every_path(client, poll, first_path):
    vote = Voter().vote(poll["id"], "yes")
    first = {"fast path": by_fast_path, "handler": by_handler}.get(first_path)
    if first is not None:
        original = answer(await first(client, vote))
    else:
        original = await by_batch(client, vote)
    assert original.status == 201
    replays = [
        answer(await by_fast_path(client, vote)),
        answer(await by_handler(client, vote)),
        await by_batch(client, vote),
    ]
    assert replays == [Answer(200, original.body)] * 3


@dataclass(frozen=True)
class World:
    """What the problem cases need: an open poll, a closed one, and a device that has voted."""

    poll: dict[str, Any]
    closed: dict[str, Any]
    device: Voter
    accepted: dict[str, Any]


@pytest.fixture
async def world(client: httpx.AsyncClient, poll: dict[str, Any]) -> World:
    device = Voter()
    accepted = device.vote(poll["id"], "yes")
    assert (await send_vote(client, accepted)).status_code == 201
    closed = await create_poll(client, question="Closed?", options=["A", "B"], closes_at=now_ms() + 60_000)
    await close_poll(client, closed["id"])
    return World(poll, closed, device, accepted)


def _without(vote: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in vote.items() if k != name}


# Every problem a vote can get by any of the three paths, but two that need a stalled or broken
# database: request-in-flight (tests/api/test_votes.py) and service-unavailable (a failed fsync,
# by the single and the batch endpoint, in tests/test_wal_sync.py; the mapping in tests/test_errors.py).
ITEM_CASES: list[tuple[str, Callable[[World], Any]]] = [
    ("invalid-vote", lambda w: {**Voter().vote(w.poll["id"], "yes"), "vote_id": "not-a-uuid"}),
    ("invalid-vote", lambda w: _without(Voter().vote(w.poll["id"], "yes"), "signature")),
    ("invalid-vote", lambda w: {**Voter().vote(w.poll["id"], "yes"), "extra": 1}),
    ("invalid-vote", lambda w: {**Voter().vote(w.poll["id"], "yes"), "created_at": 1.5}),
    ("invalid-vote", lambda w: {**Voter().vote(w.poll["id"], "yes"), "created_at": "12"}),
    ("poll-not-found", lambda w: Voter().vote("no-such-poll", "yes")),
    ("unknown-option", lambda w: Voter().vote(w.poll["id"], "maybe")),
    ("clock-in-future", lambda w: Voter().vote(w.poll["id"], "yes", created_at=now_ms() + 3_600_000)),
    ("poll-closed", lambda w: Voter().vote(w.closed["id"], "a")),
    ("invalid-signature", lambda w: Voter().vote(w.poll["id"], "yes", signature="A" * 86)),
    ("already-voted", lambda w: w.device.vote(w.poll["id"], "no")),
    (
        "idempotency-key-reused",
        lambda w: Voter().vote(w.poll["id"], "no", idempotency_key=w.accepted["idempotency_key"]),
    ),
]


@pytest.mark.parametrize(("slug", "make"), ITEM_CASES, ids=[f"{i}-{slug}" for i, (slug, _) in enumerate(ITEM_CASES)])
async def test_every_problem_is_the_same_by_every_path(client, world, slug, make):
    vote = make(world)
    fast = await by_fast_path(client, vote)
    slow = await by_handler(client, vote)
    batched = await by_batch(client, vote)
    assert fast.headers["content-type"] == "application/problem+json"
    assert json.loads(fast.content)["type"] == f"/problems/{slug}"
    assert answer(fast) == answer(slow)
    assert same_headers(fast, slow)
    assert (batched.status, json.loads(batched.body)) == (fast.status_code, json.loads(fast.content))


REQUEST_CASES: list[tuple[str, dict[str, str]]] = [
    ("invalid-idempotency-key", {"Idempotency-Key": "not-a-uuid"}),
    ("idempotency-key-mismatch", {"Idempotency-Key": '"0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b"'}),
    ("poll-mismatch", {"url_poll": "another-poll"}),
    ("unsupported-media-type", {"Content-Type": "text/plain"}),
]


@pytest.mark.parametrize(("slug", "headers"), REQUEST_CASES, ids=[slug for slug, _ in REQUEST_CASES])
async def test_every_problem_of_the_request_is_the_same_on_the_fast_path_and_the_handler(client, poll, slug, headers):
    vote = Voter().vote(poll["id"], "yes")
    fast = await by_fast_path(client, vote, **headers)  # type: ignore[arg-type]
    slow = await by_handler(client, vote, **headers)  # type: ignore[arg-type]
    assert json.loads(fast.content)["type"] == f"/problems/{slug}"
    assert answer(fast) == answer(slow)
    assert same_headers(fast, slow)


async def test_malformed_json_is_the_same_on_the_fast_path_and_the_handler(client, poll):
    vote = Voter().vote(poll["id"], "yes")
    headers = {"Content-Type": "application/json", "Idempotency-Key": f'"{vote["idempotency_key"]}"'}
    url = f"/api/v1/polls/{poll['id']}/votes"

    async def chunks():
        yield b"{not json"

    fast = await client.post(url, content=b"{not json", headers=headers)
    slow = await client.post(url, content=chunks(), headers=headers)
    assert json.loads(fast.content)["type"] == "/problems/malformed-json"
    assert answer(fast) == answer(slow)
    assert same_headers(fast, slow)


def _duplicated(vote: dict[str, Any], name: str, values: tuple[str, str]) -> list[tuple[str, str]]:
    key = f'"{vote["idempotency_key"]}"'
    headers = [("Content-Type", "application/json"), ("Idempotency-Key", key)]
    return [(header, value) for header, value in headers if header != name] + [(name, value) for value in values]


# Each pair: one value the vote would pass with, and another; in either order, on every path.
DUPLICATED: list[tuple[str, tuple[str, str]]] = [
    ("Content-Type", ("application/json", "text/plain")),
    ("Content-Type", ("text/plain", "application/json")),
    ("Content-Type", ("application/json", "application/json")),
    ("Idempotency-Key", ("{key}", "0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b")),
    ("Idempotency-Key", ("0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b", "{key}")),
    ("Idempotency-Key", ("{key}", "{key}")),
]


@pytest.mark.parametrize(("name", "values"), DUPLICATED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(DUPLICATED)])
async def test_a_duplicated_header_is_the_same_400_on_the_fast_path_and_the_handler(client, poll, name, values):
    vote = Voter().vote(poll["id"], "yes")
    values = tuple(value.format(key=vote["idempotency_key"]) for value in values)
    url = f"/api/v1/polls/{poll['id']}/votes"

    async def chunks():
        yield json.dumps(vote).encode()

    fast = await client.post(url, content=json.dumps(vote).encode(), headers=_duplicated(vote, name, values))
    slow = await client.post(url, content=chunks(), headers=_duplicated(vote, name, values))
    assert fast.headers["content-type"] == "application/problem+json"
    assert json.loads(fast.content)["type"] == "/problems/duplicate-header"
    assert answer(fast) == answer(slow)
    assert same_headers(fast, slow)
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()["total"] == 0


@pytest.mark.parametrize("path", ["/api/v1/votes/batch", "/api/v1/polls", "/api/v1/polls/{poll_id}/devices"])
async def test_a_duplicated_content_type_is_a_400_on_every_json_endpoint(client, poll, path):
    headers = [("Content-Type", "text/plain"), ("Content-Type", "application/json"), *admin_headers().items()]
    body = {"votes": [Voter().vote(poll["id"], "yes")]}
    response = await client.post(path.format(poll_id=poll["id"]), content=json.dumps(body), headers=headers)
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/duplicate-header"
