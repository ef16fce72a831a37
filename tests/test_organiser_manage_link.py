"""Each poll's manage link: a capability shown once, kept only as a SHA-256, that closes the poll
and changes its results visibility, and opens nothing else."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from sqlalchemy import select

from app.storage.schema import polls
from tests.helpers import Voter, admin_headers, create_poll, send_vote


def _token(created: dict) -> str:
    fragment = urlsplit(created["manage_url"]).fragment
    assert fragment.startswith("key=")
    return fragment.removeprefix("key=")


async def test_creation_answers_a_manage_link_whose_token_is_in_the_fragment(client):
    created = await create_poll(client, question="Lunch?", options=["Soup", "Salad"])

    parts = urlsplit(created["manage_url"])

    assert parts.path == f"/polls/{created['id']}/manage"
    assert not parts.query  # a query string would reach access logs; a fragment never leaves the browser
    assert len(_token(created)) >= 22  # 128 bits or more in base64url


async def test_the_database_holds_only_the_tokens_sha256(client):
    created = await create_poll(client, question="Lunch?", options=["Soup", "Salad"])
    token = _token(created)

    async with client.app.state.db.read() as conn:
        row = (await conn.execute(select(polls).where(polls.c.id == created["id"]))).one()

    assert token.encode() not in b"".join(str(value).encode() for value in row)
    assert bytes(row.manage_hash) == hashlib.sha256(token.encode()).digest()


async def test_the_manage_token_closes_its_poll(client):
    created = await create_poll(client, question="Lunch?", options=["Soup", "Salad"])

    response = await client.post(
        f"/api/v1/polls/{created['id']}/close", headers={"Authorization": f"Manage {_token(created)}"}
    )

    assert response.status_code == 200
    assert (await send_vote(client, Voter().vote(created["id"], "soup"))).status_code == 410


async def test_a_manage_token_does_not_manage_another_poll(client):
    mine = await create_poll(client, question="Lunch?", options=["Soup", "Salad"])
    other = await create_poll(client, question="Dinner?", options=["Fish", "Rice"])

    response = await client.post(
        f"/api/v1/polls/{other['id']}/close", headers={"Authorization": f"Manage {_token(mine)}"}
    )

    assert (response.status_code, response.json()["type"]) == (403, "/problems/forbidden")
    assert (await send_vote(client, Voter().vote(other["id"], "fish"))).status_code == 201


async def test_no_token_or_an_empty_one_is_401(client, poll):
    for headers in ({}, {"Authorization": "Manage "}, {"Authorization": "Bearer "}):
        response = await client.post(f"/api/v1/polls/{poll['id']}/close", headers=headers)
        assert response.status_code in (401, 403), headers
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await send_vote(client, Voter().vote(poll["id"], "yes"))).status_code == 201


async def test_visibility_changes_with_the_manage_token_or_the_admin_token(client):
    created = await create_poll(client, question="Lunch?", options=["Soup", "Salad"])
    url = f"/api/v1/polls/{created['id']}/results-visibility"

    by_manager = await client.post(
        url, json={"results_visibility": "after-closing"}, headers={"Authorization": f"Manage {_token(created)}"}
    )
    by_admin = await client.post(url, json={"results_visibility": "after-voting"}, headers=admin_headers())
    by_nobody = await client.post(url, json={"results_visibility": "always"})
    unknown = await client.post(url, json={"results_visibility": "never"}, headers=admin_headers())

    assert (by_manager.status_code, by_manager.json()["results_visibility"]) == (200, "after-closing")
    assert (by_admin.status_code, by_admin.json()["results_visibility"]) == (200, "after-voting")
    assert by_nobody.status_code == 401
    assert (unknown.status_code, unknown.json()["type"]) == (400, "/problems/invalid-request")
    assert (await client.get(f"/api/v1/polls/{created['id']}")).json()["results_visibility"] == "after-voting"
