"""Polls through HTTP: creation with the admin token, lookup, ids."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ADMIN_TOKEN, admin_headers, create_poll, now_ms


async def test_create_poll_with_admin_token_returns_201_with_id_and_url(client):
    poll = await create_poll(client, question="Lunch?", options=["Pizza", "Soup"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", poll["id"])
    assert poll["url"].endswith(f"/polls/{poll['id']}")
    assert [o["label"] for o in poll["options"]] == ["Pizza", "Soup"]


async def test_create_poll_without_token_is_401(client):
    response = await client.post("/api/v1/polls", json={"question": "Q?", "options": ["A", "B"]})
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_create_poll_with_wrong_token_is_401(client):
    response = await client.post(
        "/api/v1/polls",
        json={"question": "Q?", "options": ["A", "B"]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    )
    assert response.status_code == 401


async def test_poll_ids_are_random(client):
    ids = {(await create_poll(client, question="Q?", options=["A", "B"]))["id"] for _ in range(5)}
    assert len(ids) == 5


async def test_option_ids_are_url_safe_and_unique(client):
    poll = await create_poll(client, question="Q?", options=["Ça va?", "Ça va!", "!!!"])
    ids = [o["id"] for o in poll["options"]]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", option_id) for option_id in ids)


async def test_get_poll_returns_question_options_and_close(client):
    closes_at = now_ms() + 86_400_000
    created = await create_poll(client, question="Q?", options=[{"id": "y", "label": "Yes"}, "No"], closes_at=closes_at)
    response = await client.get(f"/api/v1/polls/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"]
    assert body["question"] == "Q?"
    assert body["options"] == [{"id": "y", "label": "Yes"}, {"id": "no", "label": "No"}]
    assert body["closes_at"] == closes_at


async def test_unknown_poll_is_404_problem(client):
    response = await client.get("/api/v1/polls/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/poll-not-found"


async def test_poll_id_outside_the_alphabet_is_400(client):
    response = await client.get("/api/v1/polls/" + "a" * 65)
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-request"


@pytest.mark.parametrize(
    "spec",
    [
        {"question": "Q?", "options": ["Only one"]},
        {"question": "", "options": ["A", "B"]},
        {"question": "Q?", "options": [{"id": "bad id", "label": "A"}, "B"]},
        {"question": "Q?", "options": ["A", "B"], "closes_at": "tomorrow"},
    ],
)
async def test_invalid_poll_spec_is_400(client, spec):
    response = await client.post("/api/v1/polls", json=spec, headers=admin_headers())
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/invalid-request"
