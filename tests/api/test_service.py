"""Health, readiness, receipt keys, security headers, unknown routes and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from app import create_app
from app.core.keys import rotate
from app.core.settings import Settings
from tests.helpers import Voter, send_vote, verify_receipt
from tests.lifespan import serve

SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
)


async def test_healthz_is_ok(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client):
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    # Nothing listens on port 1. The lifespan is not run: it would fail on the migrations.
    settings = Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", data_dir=tmp_path)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["type"] == "/problems/service-unavailable"
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/keys", "/api/v1/polls/nope", "/no/such/route"])
async def test_every_response_carries_security_headers(client, path):
    response = await client.get(path)
    for header in SECURITY_HEADERS:
        assert header in response.headers, header
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert "unsafe-inline" not in response.headers["content-security-policy"]


async def test_unknown_route_is_404_problem(client):
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_wrong_method_is_405_problem(client):
    response = await client.delete("/api/v1/keys")
    assert response.status_code == 405
    assert response.json()["type"] == "/problems/method-not-allowed"


async def test_keys_list_the_active_ed25519_key(client):
    keys = (await client.get("/api/v1/keys")).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["alg"] == "Ed25519"
    assert keys[0]["active"] is True


async def test_receipts_signed_before_a_rotation_still_verify(client, poll, settings):
    vote = Voter().vote(poll["id"], "yes")
    receipt = (await send_vote(client, vote)).json()
    rotate(settings.data_dir)
    # A node restarted after the rotation publishes both keys and signs with the new one.
    async with serve(settings) as restarted:
        keys = (await restarted.get("/api/v1/keys")).json()["keys"]
        new_receipt = (await send_vote(restarted, Voter().vote(poll["id"], "no"))).json()
    assert len(keys) == 2
    verify_receipt(receipt, keys, vote)
    assert new_receipt["kid"] != receipt["kid"]
    assert new_receipt["kid"] == next(k["kid"] for k in keys if k["active"])


async def test_openapi_describes_every_endpoint_with_its_errors(client):
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/v1/polls",
        "/api/v1/polls/{poll_id}",
        "/api/v1/polls/{poll_id}/votes",
        "/api/v1/polls/{poll_id}/results",
        "/api/v1/keys",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    vote_responses = paths["/api/v1/polls/{poll_id}/votes"]["post"]["responses"]
    for status in ("200", "201", "400", "404", "409", "410", "413", "415", "422"):
        assert status in vote_responses, status
    assert "application/problem+json" in vote_responses["409"]["content"]
