"""The seeded chaos run in every engine: devices vote in several polls while their networks and
the service fail at random. The faults come from each device's fault proxy, so the run is the
same in engines whose driver cannot fake a network (WebKitGTK's WebDriver cannot).

Everything random comes from one seed, printed at the start; VOTE_CHAOS_SEED=<seed> replays the
same votes, faults and service outages (as e2e/loss/test_chaos.py, whose seed it shares).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable

import pytest
from fault_proxy import Fault, Seen
from loss.test_chaos import SEED_VARIABLE, ChaosLog, chaos_seed

from .lab import VOTES, Device, EngineLab

pytestmark = [pytest.mark.e2e, pytest.mark.engines]

DEVICES = 2
POLLS = 3  # every device votes once in every poll
OPTIONS = ("Red", "Green", "Blue")
FAULTY_ATTEMPTS = 2  # a vote's first attempts may meet a fault; later ones meet only outages
MAX_PAUSE_S = 0.4  # between two votes, at most
CHAOS_TIME_LIMIT_S = 240
SETTLED = r"^(Queued|Transmitting|Confirmed)\b"
# A fault for one attempt, by weight.
FAULTS = {
    Fault.PASS: 30,
    Fault.DROP: 15,
    Fault.RESET_AFTER_COMMIT: 20,
    Fault.UNAVAILABLE: 15,
    Fault.TAMPER: 10,
}
# Before each vote, at most one of these happens to the world, by weight.
DISRUPTIONS = {"nothing": 45, "toggle a device's network": 30, "SIGKILL the service": 12, "stop the service": 8}


class FaultPlan:
    """Which fault meets attempt n of the vote device d casts in poll p: a function of the seed."""

    def __init__(self, seed: int, polls: list[dict], log: ChaosLog) -> None:
        self.seed = seed
        self.poll_index = {poll["id"]: index for index, poll in enumerate(polls)}
        self.attempts: dict[tuple[int, int], int] = {}
        self.log = log

    def fault(self, device: int, poll: int, attempt: int) -> Fault:
        if attempt > FAULTY_ATTEMPTS:
            return Fault.PASS
        chooser = random.Random(f"{self.seed}/{device}/{poll}/{attempt}")
        return chooser.choices(list(FAULTS), weights=list(FAULTS.values()))[0]

    def chooser(self, device: int) -> Callable[[Seen], Fault]:
        def choose(seen: Seen) -> Fault:
            # One vote, or a backlog in one batch: the request meets the fault of its first vote.
            body = json.loads(seen.body or b"{}")
            polls = [self.poll_index[vote["poll_id"]] for vote in body.get("votes", [body])]
            attempts = []
            for poll in polls:
                self.attempts[device, poll] = self.attempts.get((device, poll), 0) + 1
                attempts.append(self.attempts[device, poll])
            fault = self.fault(device, polls[0], attempts[0])
            self.log.append(
                f"device {device} sends poll {', '.join(map(str, polls))} (attempt {attempts[0]}): {fault.value}"
            )
            return fault

        return choose


@pytest.mark.timeout(CHAOS_TIME_LIMIT_S)
def test_chaos_every_vote_is_confirmed_and_counted_once_with_a_verified_receipt(engine_lab: EngineLab) -> None:
    seed = chaos_seed()
    print(f"chaos seed {seed}; replay: {SEED_VARIABLE}={seed} .venv/bin/python -m pytest e2e/engines -k chaos")
    log = ChaosLog()
    log.append(f"{engine_lab.engine}, seed {seed}")
    rng = random.Random(seed)
    polls = [engine_lab.create_poll(f"Question {n}?", OPTIONS) for n in range(POLLS)]
    urls = [engine_lab.poll_url(poll) for poll in polls]
    plan = FaultPlan(seed, polls, log)
    devices: list[Device] = []
    for index in range(DEVICES):
        device = engine_lab.new_device()
        for url in urls:  # each poll page is then on the device, for offline votes
            device.window.open(url)
            device.window.wait_until_offline_ready()
        device.proxy.when(VOTES, plan.chooser(index))
        devices.append(device)
    service_up = True
    ballots = [(device, poll) for device in range(DEVICES) for poll in range(POLLS)]
    rng.shuffle(ballots)

    try:
        for device, poll in ballots:
            disruption = rng.choices(list(DISRUPTIONS), weights=list(DISRUPTIONS.values()))[0]
            if not service_up and disruption != "toggle a device's network":
                engine_lab.service.start()
                service_up = True
                log.append("service started")
            elif disruption == "toggle a device's network":
                proxy = devices[rng.randrange(DEVICES)].proxy
                proxy.set_offline(not proxy.offline)
                log.append(f"a device {'offline' if proxy.offline else 'online'}")
            elif disruption == "SIGKILL the service":
                engine_lab.service.kill()
                service_up = False
                log.append("service SIGKILLed")
            elif disruption == "stop the service":
                engine_lab.service.stop()
                service_up = False
                log.append("service stopped")
            label = rng.choice(OPTIONS)
            window = devices[device].window
            window.open(urls[poll])
            window.vote(label)
            window.wait_for_status(SETTLED)
            log.append(f"device {device} voted {label} in poll {poll}")
            time.sleep(rng.random() * MAX_PAUSE_S)  # a seeded pause between voters, not a wait for a state

        log.append("calm: the service up, every device online")
        if not service_up:
            engine_lab.service.start()
        for device in devices:
            device.proxy.set_offline(False)
            device.nudge_as_if_reconnected()

        for device in devices:
            settled = device.settled_votes(POLLS)
            log.append(f"{device.name}: {len(settled['receipts'])} confirmed, waiting: {settled['outbox']}")
        for device in devices:
            for url in urls:
                device.window.open(url)
                device.window.wait_for_status(r"^Confirmed · receipt #\d+$")
        tally = engine_lab.prove_zero_loss(devices, expected_cast=DEVICES * POLLS)
        log.append(tally.line())
    finally:
        print("\n".join(log))
    assert [engine_lab.service.results(poll["id"])["total"] for poll in polls] == [DEVICES] * POLLS, f"seed {seed}"
