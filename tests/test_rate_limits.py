"""Rate limits on vote requests (docs/abuse.md): per client address and per poll, counted in
requests, answered with 429, Retry-After and the RateLimit fields; shared through Redis."""

from __future__ import annotations

import dataclasses
import os

import pytest

from app.core.settings import Settings
from tests.helpers import Voter, create_poll, send_vote
from tests.lifespan import serve
from tests.service_process import ServiceProcess

REDIS_URL_ENV = "VOTE_TEST_REDIS_URL"


def limited(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, **changes)


async def test_a_client_past_its_limit_gets_429_with_the_ratelimit_fields(settings):
    async with serve(limited(settings, rate_limit_per_client=3)) as client:
        poll = await create_poll(client, question="Q?", options=["A", "B"])
        statuses = [(await send_vote(client, Voter().vote(poll["id"], "a"))).status_code for _ in range(3)]
        assert statuses == [201, 201, 201]
        refused = await send_vote(client, Voter().vote(poll["id"], "a"))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/rate-limited"
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert refused.headers["ratelimit-policy"] == '"client";q=3;w=60, "client-burst";q=5;w=1'
    assert refused.headers["ratelimit"] == f'"client";r=0;t={retry_after}'


async def test_a_batch_of_a_hundred_votes_is_one_request(settings):
    async with serve(limited(settings, rate_limit_per_client=2)) as client:
        poll = await create_poll(client, question="Q?", options=["A", "B"])
        votes = [Voter().vote(poll["id"], "a") for _ in range(100)]
        first = await client.post("/api/v1/votes/batch", json={"votes": votes})
        assert first.status_code == 200
        assert {item["status"] for item in first.json()["results"]} == {201}
        assert (await send_vote(client, Voter().vote(poll["id"], "a"))).status_code == 201
        assert (await client.post("/api/v1/votes/batch", json={"votes": votes[:1]})).status_code == 429


async def test_the_burst_allowance_stops_a_flood_within_a_second(settings):
    # 60 a minute allows 1 a second on average, and a burst of 5 within one second.
    async with serve(limited(settings, rate_limit_per_client=60)) as client:
        poll = await create_poll(client, question="Q?", options=["A", "B"])
        statuses = [(await send_vote(client, Voter().vote(poll["id"], "a"))).status_code for _ in range(6)]
    # Unless a second boundary falls within these six requests, the sixth is refused.
    assert statuses[:5] == [201] * 5
    assert statuses[5] in (201, 429)


async def test_zero_turns_the_client_limit_off(settings):
    async with serve(limited(settings, rate_limit_per_client=0)) as client:
        poll = await create_poll(client, question="Q?", options=["A", "B"])
        for _ in range(20):
            assert (await send_vote(client, Voter().vote(poll["id"], "a"))).status_code == 201


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(settings):
    proxied = limited(settings, rate_limit_per_client=1, client_address_header="X-Forwarded-For")
    async with serve(proxied) as client:
        poll = await create_poll(client, question="Q?", options=["A", "B"])

        async def from_(chain: str) -> int:
            vote = Voter().vote(poll["id"], "a")
            response = await client.post(
                f"/api/v1/polls/{poll['id']}/votes",
                json=vote,
                headers={"Idempotency-Key": vote["idempotency_key"], "X-Forwarded-For": chain},
            )
            return response.status_code

        # The last entry is the one the trusted proxy added; a client can only prepend to it.
        assert await from_("198.51.100.1, 203.0.113.5") == 201
        assert await from_("198.51.100.2, 203.0.113.5") == 429
        assert await from_("203.0.113.6") == 201


async def test_a_poll_past_its_limit_gets_429_on_both_endpoints(settings):
    async with serve(limited(settings, rate_limit_per_poll=2)) as client:
        busy = await create_poll(client, question="Q?", options=["A", "B"])
        quiet = await create_poll(client, question="Q?", options=["A", "B"])
        for _ in range(2):
            assert (await send_vote(client, Voter().vote(busy["id"], "a"))).status_code == 201
        refused = await send_vote(client, Voter().vote(busy["id"], "a"))
        assert (refused.status_code, refused.json()["type"]) == (429, "/problems/rate-limited")
        assert refused.headers["ratelimit-policy"] == '"poll";q=2;w=60'
        results = (
            await client.post(
                "/api/v1/votes/batch",
                json={"votes": [Voter().vote(busy["id"], "a"), Voter().vote(quiet["id"], "a")]},
            )
        ).json()["results"]
    assert [item["status"] for item in results] == [429, 201]
    assert results[0]["problem"]["type"] == "/problems/rate-limited"


def test_no_client_address_is_stored_or_logged(tmp_path):
    """A real service, logging at DEBUG behind a trusted proxy's header, past its limit."""
    address = "203.0.113.77"
    env = {"VOTE_CLIENT_ADDRESS_HEADER": "X-Real-IP", "VOTE_RATE_LIMIT_PER_CLIENT": "2", "VOTE_LOG_LEVEL": "DEBUG"}
    with ServiceProcess(tmp_path / "service", env=env) as service:
        poll = service.create_poll()
        statuses = []
        with service.client() as http:
            for _ in range(3):  # the last one over the limit
                vote = Voter().vote(poll["id"], poll["options"][0]["id"])
                headers = {"Idempotency-Key": vote["idempotency_key"], "X-Real-IP": address}
                statuses.append(http.post(f"/api/v1/polls/{poll['id']}/votes", json=vote, headers=headers).status_code)
        assert statuses == [201, 201, 429]
        service.stop()
        assert address not in service.log()
        paths = [p for p in (tmp_path / "service").rglob("*") if p.is_file() and p.name != "service.log"]
    assert paths  # the database, its WAL and the keys
    assert [p for p in paths if address.encode() in p.read_bytes()] == []


@pytest.mark.skipif(not os.environ.get(REDIS_URL_ENV), reason=f"Redis tests need {REDIS_URL_ENV} (.ci/run sets it)")
async def test_nodes_sharing_redis_share_one_limit(settings, tmp_path):
    shared = limited(
        settings,
        rate_limit_per_client=2,
        redis_url=os.environ[REDIS_URL_ENV],
        redis_channel_prefix=f"test-{os.getpid()}-{tmp_path.name}"[:64],
    )
    async with serve(shared) as first:
        poll = await create_poll(first, question="Q?", options=["A", "B"])
        assert (await send_vote(first, Voter().vote(poll["id"], "a"))).status_code == 201
        async with serve(shared) as second:
            assert (await send_vote(second, Voter().vote(poll["id"], "a"))).status_code == 201
            assert (await send_vote(second, Voter().vote(poll["id"], "a"))).status_code == 429
