"""Votes through the balancer into three nodes while a node is SIGKILLed, Redis restarted and
PostgreSQL restarted, in an order and on nodes drawn from one seed (printed; replay with
VOTE_FLEET_SEED=S). Scripted clients keep a steady load; Chromium devices vote online and from
an offline queue that is delivered during the PostgreSQL outage.

Every vote cast is counted once, with the receipt bytes it was first given; live results cross
from node to node again after Redis's restart; the ballot log's audit through the balancer agrees
with the results, and so does every node."""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from loss.browser_js import SETTLED_VOTES
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy.engine import make_url
from voter import VoterPage, open_poll

from deploy.fleet import Fleet, is_ready, run_async
from deploy.local_servers import OwnPostgres, OwnRedis
from tests.helpers import Voter, verify_receipt

from .clients import Observed, ScriptedVoters
from .conftest import tally

pytestmark = pytest.mark.e2e

SEED_VARIABLE = "VOTE_FLEET_SEED"
CLIENTS = 4
OPTIONS = ("Red", "Green", "Blue")
RECEIPTS_BETWEEN_FAULTS = 40  # the load goes on between faults: this many more receipts each time
REPLAYED = 50  # receipted votes sent again at the end: each must get the same bytes
FAULT_TIMEOUT_S = 60.0  # each step of the schedule is much quicker; past this something is stuck
SETTLE_TIMEOUT_MS = 90_000
LITESTAR = str(Path(sys.executable).with_name("litestar"))
ROOT = Path(__file__).resolve().parents[2]


def fleet_seed() -> int:
    value = os.environ.get(SEED_VARIABLE, "").strip()
    return int(value) if value else secrets.randbelow(2**32)


class Schedule:
    """What happened, with seconds since the start; printed as it goes."""

    def __init__(self, seed: int) -> None:
        self.start = time.monotonic()
        print(f"fleet seed {seed}; replay: {SEED_VARIABLE}={seed} .venv/bin/python -m pytest e2e/fleet -s", flush=True)

    def say(self, line: str) -> None:
        print(f"{time.monotonic() - self.start:7.2f} s  {line}", flush=True)


def await_condition(condition: Callable[[], bool], what: str, timeout_s: float = FAULT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)  # other processes and threads: there is no one event to await


def create_poll(fleet: Fleet, question: str) -> dict:
    response = httpx.post(
        f"{fleet.url}/api/v1/polls",
        json={"question": question, "options": list(OPTIONS), "eligibility": "anyone"},
        headers=fleet.admin_headers(),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


# --- browsers ---


def open_ready(context: BrowserContext, fleet: Fleet, poll: dict) -> VoterPage:
    voter = open_poll(context.new_page(), f"{fleet.url}/polls/{poll['id']}", poll)
    voter.wait_until_offline_ready()
    return voter


def settled(page: Page) -> dict:
    """The device's votes once none waits to be sent."""
    return page.evaluate(SETTLED_VOTES, [0, SETTLE_TIMEOUT_MS])


# --- the server's view ---


def balancer_retries(fleet: Fleet) -> str:
    """How often HAProxy sent a request again, to the same node or another (its `show stat`)."""
    header, *rows = fleet.balancer.command("show stat").strip().split("\n")
    names = header.removeprefix("# ").split(",")
    for row in rows:
        stat = dict(zip(names, row.split(","), strict=False))
        if (stat["pxname"], stat["svname"]) == ("nodes", "BACKEND"):
            return f"HAProxy retried {stat['wretr']} requests, {stat['wredis']} on another node"
    return "HAProxy's counters not found"


def next_total(lines: Iterator[str]) -> int:
    """The total of the stream's next `results` event (its id)."""
    for line in lines:
        if line.startswith("id:"):
            return int(line.removeprefix("id:").strip())
    raise EOFError("the results stream ended")


def vote_reaches_a_stream_on_another_node(fleet: Fleet, poll: dict, seen: Observed) -> None:
    """A vote taken by one node shows on a results stream open on another: the fan-out through
    Redis works again after Redis's restart. The vote joins the count like every other."""
    watcher, taker = fleet.nodes[0], fleet.nodes[1]
    timeout = httpx.Timeout(10)
    with httpx.stream("GET", f"{watcher.url}/api/v1/polls/{poll['id']}/stream", timeout=timeout) as stream:
        lines = stream.iter_lines()
        before = next_total(lines)  # the counts on connect
        vote = Voter().vote(poll["id"], poll["options"][0]["id"])
        response = httpx.post(f"{taker.url}/api/v1/polls/{poll['id']}/votes", json=vote, timeout=timeout,
                              headers={"Idempotency-Key": f'"{vote["idempotency_key"]}"'})  # fmt: skip
        assert response.status_code == 201, response.text
        with seen.lock:
            seen.receipts[vote["vote_id"]] = response.content
            seen.votes[vote["vote_id"]] = vote
        assert next_total(lines) == before + 1


def stored_receipts(fleet: Fleet, poll_ids: list[str]) -> dict[str, bytes]:
    """vote id → the receipt bytes stored with it, straight from PostgreSQL; a vote stored twice fails."""
    dsn = make_url(fleet.database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def read() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch("SELECT vote_id, receipt FROM votes WHERE poll_id = ANY($1::text[])", poll_ids)
        finally:
            await conn.close()

    stored: dict[str, bytes] = {}
    for row in run_async(read):
        assert row["vote_id"] not in stored, f"vote {row['vote_id']} is stored twice"
        stored[row["vote_id"]] = bytes(row["receipt"])
    return stored


def results(url: str, poll_id: str) -> dict:
    response = httpx.get(f"{url}/api/v1/polls/{poll_id}/results", timeout=10)
    response.raise_for_status()
    return response.json()


def log_size(url: str, poll_id: str) -> int:
    response = httpx.get(f"{url}/api/v1/polls/{poll_id}/log/checkpoint", timeout=10)
    return int(response.text.split("\n")[1]) if response.status_code == 200 else -1


def audit(fleet: Fleet, poll_id: str, workdir: Path) -> dict:
    """`litestar polls audit URL` through the balancer, as an auditor runs it."""
    env = {**os.environ, "VOTE_DATA_DIR": str(workdir / "auditor"),
           "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'auditor.db'}"}  # fmt: skip
    result = subprocess.run(
        [LITESTAR, "polls", "audit", f"{fleet.url}/api/v1/polls/{poll_id}/log/"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"audit of {poll_id} failed: {result.stderr}"
    return json.loads(result.stdout)


# --- the test ---


def test_votes_through_the_balancer_are_counted_once_across_a_node_kill_and_redis_and_postgresql_restarts(
    fleet: Fleet, own_postgres: OwnPostgres, own_redis: OwnRedis, browser: Browser, request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:  # fmt: skip
    seed = fleet_seed()
    rng = random.Random(seed)
    schedule = Schedule(seed)
    polls = [create_poll(fleet, f"Fleet question {i}?") for i in range(2)]
    poll_ids = [poll["id"] for poll in polls]

    # A device with one vote queued offline in each poll: delivered during the PostgreSQL outage.
    offline = browser.new_context()
    queued = [open_ready(offline, fleet, poll) for poll in polls]
    offline.set_offline(True)
    for voter in queued:
        voter.vote(rng.choice(OPTIONS))
        voter.expect_state("Queued")
    schedule.say("device 1: one vote queued offline in each poll")

    clients = ScriptedVoters(fleet.url, polls, CLIENTS, seed)
    clients.start()
    seen = clients.observed
    await_condition(lambda: seen.count() >= RECEIPTS_BETWEEN_FAULTS, "the first receipts through the balancer")

    # A device that votes online while the load runs.
    online = browser.new_context()
    for poll in polls:
        open_ready(online, fleet, poll).vote(rng.choice(OPTIONS))
    schedule.say("device 2: voted online in each poll")

    def load_goes_on(what: str) -> None:
        before = seen.count()
        await_condition(lambda: seen.count() >= before + RECEIPTS_BETWEEN_FAULTS, what)

    def kill_a_node() -> None:
        node = rng.choice(fleet.nodes)
        schedule.say(f"SIGKILL {node.name}")
        node.kill()
        load_goes_on(f"receipts from the other nodes while {node.name} is dead")
        node.start()
        node.wait_ready()
        schedule.say(f"{node.name} restarted and ready")

    def restart_redis() -> None:
        schedule.say("Redis stopped")
        own_redis.stop()
        load_goes_on("receipts while Redis is down (votes never depend on Redis)")
        own_redis.start()
        schedule.say("Redis started again")

    def restart_postgres() -> None:
        refused = seen.saw(503)
        schedule.say("PostgreSQL stopped")
        own_postgres.stop()
        offline.set_offline(False)  # device 1's queue meets the outage
        await_condition(lambda: seen.saw(503) > refused, "a 503 for a vote while PostgreSQL is down")
        own_postgres.start()
        schedule.say("PostgreSQL started again")
        await_condition(lambda: all(is_ready(node.url) for node in fleet.nodes), "every node ready again by itself")
        schedule.say("every node ready again")

    faults = [kill_a_node, restart_redis, restart_postgres]
    rng.shuffle(faults)
    for fault in faults:
        fault()
        load_goes_on(f"receipts after {fault.__name__}")
    clients.stop()
    schedule.say(f"scripted clients done: {seen.count()} receipts, statuses {seen.statuses}, "
                 f"{seen.transport_errors} dropped connections, {seen.retried} votes retried; "
                 f"{balancer_retries(fleet)}")  # fmt: skip

    vote_reaches_a_stream_on_another_node(fleet, polls[0], seen)
    schedule.say(f"a vote on {fleet.nodes[1].name} reached a results stream on {fleet.nodes[0].name}")

    devices = [settled(context.pages[0]) for context in (offline, online)]
    browser_receipts = {r["voteId"]: r for device in devices for r in device["receipts"]}
    unconfirmed = [v for device in devices for v in device["outbox"]]
    schedule.say(f"browsers settled: {len(browser_receipts)} confirmed, {len(unconfirmed)} not")

    # The count: every vote cast once, none missing, none twice.
    stored = stored_receipts(fleet, poll_ids)
    cast = set(seen.receipts) | set(browser_receipts) | {v["id"] for v in unconfirmed}
    counted = sum(results(fleet.url, poll_id)["total"] for poll_id in poll_ids)
    found = cast & set(stored)
    fleet_tally = tally(request.config)
    fleet_tally.cast += len(cast)
    fleet_tally.counted += counted
    fleet_tally.duplicates += counted - len(found)
    fleet_tally.lost += len(cast - found)
    schedule.say(f"fleet: {fleet_tally.line()}")

    assert not unconfirmed, f"browser votes never confirmed: {[(v['status'], v['lastError']) for v in unconfirmed]}"
    assert len(browser_receipts) == 2 * len(polls)
    assert not (cast - found), f"lost votes: {sorted(cast - found)[:10]}"
    assert counted == len(found) == len(stored), f"{counted} counted, {len(found)} cast votes stored of {len(stored)}"

    # What a client relies on: every refusal said when to retry; every receipt is the stored one.
    assert not seen.without_retry_after, f"5xx or 429 without Retry-After: {seen.without_retry_after[:5]}"
    assert not seen.different_receipts, f"a retry got other receipt bytes: {seen.different_receipts[:5]}"
    mismatched = [vote_id for vote_id, receipt in seen.receipts.items() if stored[vote_id] != receipt]
    assert not mismatched, f"receipts other than the stored bytes: {mismatched[:5]}"
    for vote_id, record in browser_receipts.items():
        assert json.loads(stored[vote_id]) == record["receipt"], f"device keeps other receipt bytes for {vote_id}"
    keys = httpx.get(f"{fleet.url}/api/v1/keys", timeout=10).json()["keys"]
    for vote_id, receipt in seen.receipts.items():
        verify_receipt(json.loads(receipt), keys, seen.votes[vote_id])
    with httpx.Client(base_url=fleet.url, timeout=10) as http:
        for vote_id in rng.sample(sorted(seen.receipts), min(REPLAYED, len(seen.receipts))):
            vote = seen.votes[vote_id]
            again = http.post(f"/api/v1/polls/{vote['poll_id']}/votes", json=vote,
                              headers={"Idempotency-Key": f'"{vote["idempotency_key"]}"'})  # fmt: skip
            assert (again.status_code, again.content) == (200, seen.receipts[vote_id])

    # Every node publishes the same keys and, once the news has spread, the same results.
    for node in fleet.nodes:
        assert httpx.get(f"{node.url}/api/v1/keys", timeout=10).json()["keys"] == keys, f"{node.name}'s keys differ"
    for poll_id in poll_ids:
        expected = results(fleet.url, poll_id)
        await_condition(
            lambda poll_id=poll_id, expected=expected: all(
                results(node.url, poll_id)["options"] == expected["options"] for node in fleet.nodes
            ),
            f"every node's results for {poll_id}",
        )

    # The ballot log, audited through the balancer, recounts every vote to the same results. A
    # node killed mid-commit leaves seqs no vote took: they are void entries (docs/ballot-log.md),
    # so the log holds total + voids entries once every vote is in it.
    voids = 0
    for poll_id in poll_ids:
        total = results(fleet.url, poll_id)["total"]
        await_condition(lambda poll_id=poll_id, total=total: log_size(fleet.url, poll_id) >= total,
                        f"the log of {poll_id} to reach {total} entries")  # fmt: skip
        reports: list[dict] = []

        def audit_counts_every_vote(poll_id: str = poll_id, total: int = total, reports: list = reports) -> bool:
            reports.append(audit(fleet, poll_id, tmp_path))
            return reports[-1]["entries"] - reports[-1]["voids"] == total

        await_condition(audit_counts_every_vote, f"the audit of {poll_id} to count {total} votes")
        assert reports[-1]["results_match"] is True
        voids += reports[-1]["voids"]
    schedule.say(f"audit through the balancer and every node's results agree ({voids} void entries)")
