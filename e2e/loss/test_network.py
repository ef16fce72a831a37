"""A bad network between the worker and the service: slow, lossy, or answered by a busy proxy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Route, expect
from voter import answer_problem

from .lab import (
    MIN_WAKE_MS,
    VOTES,
    Lab,
    Throttle,
    backoff_ceiling_ms,
    drop,
    lose_response,
    wait_for,
)

pytestmark = pytest.mark.e2e

SLOW_LATENCY_MS = 400
SLOW_BYTES_PER_S = 50 * 1024
# What the bounds allow for the trip from a failed answer to the next request: the worker's
# IndexedDB writes, the page's re-render and wake-up timer, the message back to the worker.
SCHEDULING_SLACK_MS = 1500


def test_vote_on_a_slow_network_shows_transmitting_then_confirmed(lab: Lab) -> None:
    poll = lab.create_poll()
    device = lab.new_device()
    voter = device.open_ready(poll)
    throttle = Throttle(lab.browser, voter.page, f"{lab.service.base_url}/sw.js")
    throttle.set(SLOW_LATENCY_MS, SLOW_BYTES_PER_S)

    voter.vote("Blue")

    expect(voter.status).to_have_text("Transmitting…")
    expect(voter.status).to_have_text("Confirmed · receipt #1")
    throttle.reset()
    throttle.detach()
    lab.prove_zero_loss([device], expected_cast=1)


def test_vote_whose_response_is_lost_is_retried_and_gets_the_same_receipt(lab: Lab) -> None:
    poll = lab.create_poll()
    device = lab.new_device()
    voter = device.open_ready(poll)
    answers: list[tuple[int, bytes]] = []  # what the service said to each attempt

    def lose_the_first_response(route: Route) -> None:
        if not answers:
            response = route.fetch()
            answers.append((response.status, response.body()))
            route.abort("connectionreset")
        else:
            response = route.fetch()
            answers.append((response.status, response.body()))
            route.fulfill(response=response)

    device.context.route(VOTES, lose_the_first_response)

    voter.vote("Red")

    expect(voter.status).to_have_text("Confirmed · receipt #1")
    statuses = [status for status, _ in answers]
    assert statuses == [201, 200], "the first attempt was committed, the retry answered from the stored vote"
    assert answers[1][1] == answers[0][1], "the retry's receipt is byte-identical to the lost one"
    (stored,) = device.stored_votes()["receipts"]
    assert stored["receipt"] == json.loads(answers[0][1])
    lab.prove_zero_loss([device], expected_cast=1)


# Each failure before the vote goes through, and the Retry-After (s) it carries, if any.
FAILURES: list[tuple[str, Callable[[Route], None], int | None]] = [
    ("dropped request", drop, None),
    ("503", lambda route: answer_problem(route, 503, retry_after_s=1), 1),
    ("429", lambda route: answer_problem(route, 429, retry_after_s=2), 2),
    ("lost response", lose_response, None),
]


def test_vote_after_drops_5xx_and_429_is_confirmed_within_the_backoff_bounds(lab: Lab) -> None:
    poll = lab.create_poll()
    device = lab.new_device()
    voter = device.open_ready(poll)
    arrived: list[float] = []  # when each attempt reached the network, s
    answered: list[float] = []  # when each failing attempt's answer (or its loss) was decided, s

    def fail_then_pass(route: Route) -> None:
        arrived.append(time.monotonic())
        if len(arrived) <= len(FAILURES):
            answered.append(time.monotonic())  # before the browser can see the failure
            FAILURES[len(arrived) - 1][1](route)
        else:
            route.continue_()

    device.context.route(VOTES, fail_then_pass)

    voter.vote("Blue")

    expect(voter.status).to_have_text("Confirmed · receipt #1", timeout=60_000)
    wait_for(voter.page, lambda: len(arrived) == len(FAILURES) + 1, "the last attempt's record")
    for retries, (name, _, retry_after_s) in enumerate(FAILURES, start=1):
        waited_ms = (arrived[retries] - answered[retries - 1]) * 1000
        floor_ms = (retry_after_s or 0) * 1000
        # frontend/backoff.js: max(jitter below the ceiling, Retry-After); page.js wakes no sooner than MIN_WAKE_MS.
        ceiling_ms = max(backoff_ceiling_ms(retries), floor_ms, MIN_WAKE_MS) + SCHEDULING_SLACK_MS
        print(f"attempt {retries + 1}: {waited_ms:.0f} ms after the {name} (allowed {floor_ms}..{ceiling_ms} ms)")
        assert floor_ms <= waited_ms <= ceiling_ms, (
            f"attempt {retries + 1} came {waited_ms:.0f} ms after the {name}; allowed {floor_ms}..{ceiling_ms} ms"
        )
    assert lab.results(poll)["total"] == 1
    lab.prove_zero_loss([device], expected_cast=1)
