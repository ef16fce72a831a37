"""Chaos: several devices vote in several polls while the network and the service fail at random.

Everything random comes from one seed, printed at the start (and kept in test-results/ with
the traces when the test fails). Replay a run with VOTE_CHAOS_SEED=<seed>: the same votes in
the same order, the same faults for each attempt of each vote, the same service restarts.
What the browser's own timing decides (which attempt happens while the service is down, say)
can still differ between two runs of one seed.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Error, Route, expect
from voter import answer_problem

from .lab import SENDS, Lab, drop, lose_response, votes_in

pytestmark = pytest.mark.e2e

SEED_VARIABLE = "VOTE_CHAOS_SEED"
DEVICES = 3
POLLS = 3  # every device votes once in every poll
OPTIONS = ("Red", "Green", "Blue")
FAULTY_ATTEMPTS = 2  # a vote's first attempts may meet a fault; later ones meet only outages
MAX_PAUSE_MS = 400  # between two votes, at most
CHAOS_TIME_LIMIT_S = 180  # a run takes 15-30 s; past this something is stuck
# A fault for one attempt, by weight. Retry-After stays short to keep the run tight.
FAULTS: dict[str, tuple[int, Callable[[Route], object]]] = {
    "pass": (30, lambda route: route.continue_()),
    "drop": (15, drop),
    "lost response": (20, lose_response),
    "503 Retry-After 1": (15, lambda route: answer_problem(route, 503, retry_after_s=1)),
    "429 Retry-After 1": (10, lambda route: answer_problem(route, 429, retry_after_s=1)),
    "500": (10, lambda route: answer_problem(route, 500)),
}
# Before each vote, at most one of these happens to the world, by weight.
DISRUPTIONS = {"nothing": 45, "toggle a device's network": 30, "SIGKILL the service": 12, "stop the service": 8}


class ChaosLog(list[str]):
    """What happened, with seconds since the start: printed, and kept with the traces."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.monotonic()

    def append(self, line: str) -> None:
        super().append(f"{time.monotonic() - self.start:7.2f} s  {line}")


def chaos_seed() -> int:
    value = os.environ.get(SEED_VARIABLE, "").strip()
    return int(value) if value else secrets.randbelow(2**32)


class FaultPlan:
    """Which fault meets attempt n of the vote device d casts in poll p: a function of the seed."""

    def __init__(self, seed: int, polls: list[dict], log: ChaosLog) -> None:
        self.seed = seed
        self.poll_index = {poll["id"]: index for index, poll in enumerate(polls)}
        self.attempts: dict[tuple[int, int], int] = {}
        self.log = log

    def fault(self, device: int, poll: int, attempt: int) -> str:
        if attempt > FAULTY_ATTEMPTS:
            return "pass"
        chooser = random.Random(f"{self.seed}/{device}/{poll}/{attempt}")
        return chooser.choices(list(FAULTS), weights=[weight for weight, _ in FAULTS.values()])[0]

    def handler(self, device: int) -> Callable[[Route], None]:
        def meet_the_fault(route: Route) -> None:
            # One vote, or a backlog in one batch: the request meets the fault of its first vote.
            polls = [self.poll_index[vote["poll_id"]] for vote in votes_in(route.request)]
            attempts = []
            for poll in polls:
                self.attempts[device, poll] = self.attempts.get((device, poll), 0) + 1
                attempts.append(self.attempts[device, poll])
            name = self.fault(device, polls[0], attempts[0])
            what = f"device {device} sends poll {', '.join(map(str, polls))} (attempt {attempts[0]})"
            self.log.append(f"{what}: {name}")
            try:
                FAULTS[name][1](route)
            except Error as error:  # the service went down under route.fetch(): the device sees a failure
                self.log.append(f"{what}: {error.message.splitlines()[0]}")
                route.abort("connectionrefused")

        return meet_the_fault


@pytest.mark.timeout(CHAOS_TIME_LIMIT_S)
def test_chaos_every_vote_is_confirmed_and_counted_once_with_a_verified_receipt(lab: Lab) -> None:
    seed = chaos_seed()
    print(f"chaos seed {seed}; replay: {SEED_VARIABLE}={seed} .venv/bin/python -m pytest e2e/loss -k chaos")
    log = ChaosLog()
    log.append(f"seed {seed}")
    rng = random.Random(seed)
    polls = [lab.create_poll(f"Question {n}?", OPTIONS) for n in range(POLLS)]
    plan = FaultPlan(seed, polls, log)
    devices = [lab.new_device() for _ in range(DEVICES)]
    pages = []
    for index, device in enumerate(devices):
        voter = device.open_ready(polls[0])
        for poll in polls[1:]:
            device.open_ready(poll, voter.page)  # each poll page is then on the device, for offline votes
        device.context.route(SENDS, plan.handler(index))
        pages.append(voter.page)
    offline = [False] * DEVICES
    service_up = True
    ballots = [(device, poll) for device in range(DEVICES) for poll in range(POLLS)]
    rng.shuffle(ballots)

    try:
        for device, poll in ballots:
            disruption = rng.choices(list(DISRUPTIONS), weights=list(DISRUPTIONS.values()))[0]
            if not service_up and disruption != "toggle a device's network":
                lab.service.start()
                service_up = True
                log.append("service started")
            elif disruption == "toggle a device's network":
                who = rng.randrange(DEVICES)
                offline[who] = not offline[who]
                devices[who].context.set_offline(offline[who])
                log.append(f"device {who} {'offline' if offline[who] else 'online'}")
            elif disruption == "SIGKILL the service":
                lab.service.kill()
                service_up = False
                log.append("service SIGKILLed")
            elif disruption == "stop the service":
                lab.service.stop()
                service_up = False
                log.append("service stopped")
            label = rng.choice(OPTIONS)
            voter = devices[device].open(polls[poll], pages[device])
            voter.vote(label)
            expect(voter.status).to_have_text(re.compile(r"^(Queued|Transmitting|Confirmed)\b"))
            log.append(f"device {device} voted {label} in poll {poll}")
            pages[device].wait_for_timeout(rng.randrange(MAX_PAUSE_MS))

        log.append("calm: the service up, every device online")
        if not service_up:
            lab.service.start()
        for index, device in enumerate(devices):
            if offline[index]:
                device.context.set_offline(False)
            device.nudge_as_if_reconnected()

        for device in devices:
            settled = device.settled_votes(POLLS)
            log.append(f"{device.name}: {len(settled['receipts'])} confirmed, waiting: {settled['outbox']}")
        for device, page in zip(devices, pages, strict=True):
            for poll in polls:
                voter = device.open(poll, page)
                expect(voter.status).to_have_text(re.compile(r"^Confirmed · receipt #\d+$"), timeout=60_000)
        tally = lab.prove_zero_loss(devices, expected_cast=DEVICES * POLLS)
        log.append(tally.line())
    finally:
        print("\n".join(log))
        lab.traces.mkdir(parents=True, exist_ok=True)
        (lab.traces / "chaos.log").write_text("\n".join(log) + "\n")
    assert [lab.results(poll)["total"] for poll in polls] == [DEVICES] * POLLS, f"seed {seed}"
