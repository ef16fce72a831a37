"""Scripted voters: threads that sign votes as a device does and send each through the balancer
until it has a receipt, retrying as the page's worker would (same bytes, same Idempotency-Key).

Each keeps what a client relies on: the receipt of every vote, that a retry got the same receipt
bytes, and whether every 5xx and 429 said when to retry (Retry-After)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.helpers import Voter

RETRY_AFTER_CAP_S = 2.0  # honoured, but kept short so that a run stays a few minutes
TRANSPORT_RETRY_S = 0.2  # a connection the balancer dropped: retry soon, another node answers
PAUSE_S = 0.02  # between one client's votes: several clients, a steady load, room for the browsers


@dataclass
class Observed:
    """What every client saw, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    receipts: dict[str, bytes] = field(default_factory=dict)  # vote id → its first receipt, as sent
    votes: dict[str, dict] = field(default_factory=dict)  # vote id → the vote
    statuses: dict[int, int] = field(default_factory=dict)
    without_retry_after: list[str] = field(default_factory=list)  # "503 on …": each a failure
    different_receipts: list[str] = field(default_factory=list)  # vote ids: each a failure
    transport_errors: int = 0
    retried: int = 0  # votes that needed more than one attempt

    def count(self) -> int:
        with self.lock:
            return len(self.receipts)

    def saw(self, status: int) -> int:
        with self.lock:
            return self.statuses.get(status, 0)


class ScriptedVoters:
    """`clients` threads voting in `polls` until `stop()`; every vote started is carried to a receipt."""

    def __init__(self, url: str, polls: list[dict], clients: int, seed: int) -> None:
        self.url = url
        self.polls = polls
        self.observed = Observed()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(random.Random(seed * 100 + i),), name=f"voter-{i}", daemon=True)
            for i in range(clients)
        ]
        self.failures: list[BaseException] = []

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout_s: float = 120) -> None:
        """No new votes; waits until every vote begun has its receipt."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout_s)
            assert not thread.is_alive(), f"{thread.name} still has a vote without a receipt after {timeout_s} s"
        if self.failures:
            raise self.failures[0]

    def _run(self, rng: random.Random) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=10) as http:
                while not self.stopping.is_set():
                    poll = rng.choice(self.polls)
                    vote = Voter().vote(poll["id"], rng.choice(poll["options"])["id"])
                    self._deliver(http, vote)
                    time.sleep(PAUSE_S)
        except BaseException as error:  # shown by stop(): a thread's exception is otherwise silent
            self.failures.append(error)

    def _deliver(self, http: httpx.Client, vote: dict) -> None:
        seen = self.observed
        attempts = 0
        while True:
            attempts += 1
            try:
                response = http.post(
                    f"/api/v1/polls/{vote['poll_id']}/votes",
                    json=vote,
                    headers={"Idempotency-Key": f'"{vote["idempotency_key"]}"'},
                )
            except httpx.TransportError:
                with seen.lock:
                    seen.transport_errors += 1
                time.sleep(TRANSPORT_RETRY_S)
                continue
            with seen.lock:
                seen.statuses[response.status_code] = seen.statuses.get(response.status_code, 0) + 1
            if response.status_code in (200, 201):
                receipt = response.content
                with seen.lock:
                    first = seen.receipts.setdefault(vote["vote_id"], receipt)
                    seen.votes[vote["vote_id"]] = vote
                    if first != receipt:
                        seen.different_receipts.append(vote["vote_id"])
                    if attempts > 1:
                        seen.retried += 1
                return
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = response.headers.get("Retry-After")
                if retry_after is None or not retry_after.isdigit():
                    with seen.lock:
                        seen.without_retry_after.append(f"{response.status_code}: {response.text[:200]}")
                    retry_after = "1"
                time.sleep(min(float(retry_after), RETRY_AFTER_CAP_S))
                continue
            raise AssertionError(f"vote {vote['vote_id']} refused: {response.status_code} {response.text}")
