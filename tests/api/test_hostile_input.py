"""Hostile input never gets a 5xx: each gets a 4xx problem naming what is wrong, alike on SQLite
and PostgreSQL (the `client` fixture runs each test on both)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from litestar.routes import HTTPRoute

from tests.helpers import Voter, admin_headers, create_poll, now_ms

PROBLEM = "application/problem+json"
# About 1,000 levels fit in the 4 KiB a vote may have; deep enough to exhaust Python's stack.
DEEP_ARRAY = b"[" * 1500 + b"]" * 1500
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000


def _assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert (response.status_code, response.headers["content-type"]) == (status, PROBLEM), response.text
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    return body


async def _json_bodies(client: httpx.AsyncClient, poll_id: str) -> list[tuple[str, dict[str, str]]]:
    """Every operation of the OpenAPI document that takes a JSON body, with the headers it needs."""
    document = (await client.get("/schema/openapi.json")).json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert method == "post"
                headers = {"Content-Type": "application/json", **admin_headers()}
                if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
                    headers["Idempotency-Key"] = "0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b"
                found.append((path.replace("{poll_id}", poll_id), headers))
    return found


@pytest.mark.parametrize(
    "body", [DEEP_ARRAY, DEEP_OBJECT, b'{"votes": [' + DEEP_ARRAY + b"]}"], ids=["array", "object", "batch-of-array"]
)
async def test_deeply_nested_json_is_a_400_on_every_json_endpoint(client, poll, body):
    endpoints = await _json_bodies(client, poll["id"])
    assert len(endpoints) >= 4  # polls, votes, batch, devices
    for url, headers in endpoints:
        response = await client.post(url, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (url, response.text)
        assert response.headers["content-type"] == PROBLEM


async def test_deeply_nested_batch_names_the_nesting(client):
    response = await client.post(
        "/api/v1/votes/batch", content=DEEP_ARRAY, headers={"Content-Type": "application/json"}
    )
    assert _assert_problem(response, 400, "malformed-json")["detail"] == "The JSON is nested too deeply."


async def test_deeply_nested_vote_sent_in_chunks_is_a_400(client, poll):
    async def chunks():
        yield DEEP_ARRAY

    response = await client.post(
        f"/api/v1/polls/{poll['id']}/votes",
        content=chunks(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM


BAD_POLLS: list[tuple[dict[str, Any], str]] = [
    ({"question": "Tea\x00?", "options": ["Yes", "No"]}, "question contains U+0000"),
    ({"question": "Tea?", "options": ["Yes\x00", "No"]}, "options[0] contains U+0000"),
    ({"question": "Tea?\x07", "options": ["Yes", "No"]}, "question contains U+0007"),
    ({"question": "Tea?", "options": ["Yes", "\u202eoN"]}, "options[1] contains U+202E"),
    ({"question": "Tea?", "options": ["Yes", "\u2066No\u2069"]}, "options[1] contains U+2066"),
    ({"question": "Tea?", "options": ["Yes", "Line\u2028break"]}, "options[1] contains U+2028"),
    ({"question": "   ", "options": ["Yes", "No"]}, "question has no visible text"),
    ({"question": "Tea?", "options": ["Yes", "\u200b\u200b"]}, "options[1] contains U+200B"),
    ({"question": "Tea?", "options": ["Yes", "\u3164"]}, "options[1] has no visible text"),
    ({"question": "Tea?", "options": ["Yes", "\u0301"]}, "options[1] has no visible text"),
    ({"question": "Tea?", "options": ["Yes", "Yes"]}, "options[1] reads the same as options[0]"),
    ({"question": "Tea?", "options": ["Yes", " yes "]}, "options[1] reads the same as options[0]"),
    ({"question": "Tea?", "options": ["Yes", "Ｙｅｓ"]}, "options[1] reads the same as options[0]"),
    ({"question": "Tea?", "options": [{"id": "a", "label": "A"}, {"id": "a", "label": "B"}]}, "appears twice"),
    ({"question": "Tea?", "options": ["Yes", "No"], "closes_at": 1}, "closes_at must lie in the future"),
    ({"question": "Tea?", "options": ["Yes", "No"], "closes_at": 2**53 - 1}, "closes_at must lie in the future"),
    ({"question": "\u0958" * 300, "options": ["Yes", "No"]}, "question is 600 characters long"),
]


@pytest.mark.parametrize(("spec", "named"), BAD_POLLS, ids=[named for _, named in BAD_POLLS])
async def test_a_poll_that_must_not_exist_is_a_422_naming_what_is_wrong(client, spec, named):
    response = await client.post("/api/v1/polls", json=spec, headers=admin_headers())
    assert named in _assert_problem(response, 422, "invalid-poll")["detail"]


async def test_poll_text_is_stored_trimmed_and_nfc_normalised(client):
    poll = await create_poll(client, question="  Cafe\u0301?  ", options=["\tOui ", "Non"])
    stored = (await client.get(f"/api/v1/polls/{poll['id']}")).json()
    assert stored["question"] == "Café?" == poll["question"]
    assert [option["label"] for option in stored["options"]] == ["Oui", "Non"]


async def test_poll_text_in_any_script_with_joiners_and_emoji_is_kept(client):
    labels = ["می‌خواهم", "👩‍👩‍👧", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "日本語", "עברית"]
    poll = await create_poll(client, question="Which?", options=labels, closes_at=now_ms() + 60_000)
    assert [option["label"] for option in poll["options"]] == labels


async def test_nul_in_a_poll_id_is_a_400_not_a_database_error(client):
    for url in ("/api/v1/polls/a%00b", "/api/v1/polls/a%00b/results", "/api/v1/polls/a%00b/stream"):
        _assert_problem(await client.get(url), 400, "invalid-request")
    assert (await client.get("/polls/a%00b")).status_code == 404


async def test_unicode_in_a_vote_is_refused_for_its_form(client, poll):
    vote = {**Voter().vote(poll["id"], "yes"), "option_id": "y\u0000es"}
    response = await client.post(
        f"/api/v1/polls/{poll['id']}/votes",
        content=json.dumps(vote),
        headers={"Content-Type": "application/json", "Idempotency-Key": vote["idempotency_key"]},
    )
    _assert_problem(response, 400, "invalid-vote")


GET_ROUTES = [
    "/api/v1/keys",
    "/api/v1/polls/{id}",
    "/api/v1/polls/{id}/results",
    "/api/v1/polls/no-such-poll",
    "/healthz",
    "/readyz",
    "/schema",
    "/schema/openapi.json",
    "/schema/no-such-page",
]


@pytest.mark.parametrize("route", GET_ROUTES)
async def test_head_answers_as_get_without_content(client, poll, route):
    url = route.replace("{id}", poll["id"])
    got = await client.get(url)
    head = await client.head(url)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert {k: v for k, v in head.headers.items() if k != "date"} == {
        k: v for k, v in got.headers.items() if k != "date"
    }


async def test_every_get_route_answers_head(client, poll):
    """Routes added later, or made by Litestar itself, included: none may answer HEAD with 405."""
    params = {
        "{poll_id:str}": poll["id"],
        "{name:str}": "no-such-asset",
        "{path:str}": "no-such-page",
        "{tile_path:path}": "0/000",
    }
    paths = [r.path for r in client.app.routes if isinstance(r, HTTPRoute) and "GET" in r.methods]
    assert "/schema/openapi.json" in paths
    for path in paths:
        for placeholder, value in params.items():
            path = path.replace(placeholder, value)
        assert "{" not in path, f"a path parameter this test does not fill: {path}"
        if path.endswith("/stream"):
            continue  # the next test: a stream's HEAD ends after its headers
        head, got = await client.head(path), await client.get(path)
        assert (path, head.status_code) == (path, got.status_code)


async def test_head_on_the_live_stream_ends_after_its_headers(client, poll):
    head = await client.head(f"/api/v1/polls/{poll['id']}/stream")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"].startswith("text/event-stream")
