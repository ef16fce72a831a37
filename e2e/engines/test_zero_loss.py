"""No vote is lost, in every engine: each scenario runs in Chromium, Firefox ESR and WebKitGTK.

Firefox and WebKit have no Background Sync: there the page's own nudges deliver (page load, the
online event, the wake-up timer while the page is open). The network faults come from the fault
proxy in front of each browser, the same for every engine.
"""

from __future__ import annotations

import json

import pytest
from fault_proxy import Fault
from loss.browser_js import STORED_VOTES

from .lab import VOTES, EngineLab

pytestmark = [pytest.mark.e2e, pytest.mark.engines]

CONFIRMED_FIRST = r"^Confirmed · receipt #1$"
QUEUED = r"^Queued\b"
RETRY_AFTER_S = 3  # above the backoff's 1 s ceiling after one failure: only Retry-After explains the wait


def test_vote_cast_offline_survives_a_reload_and_a_restart_and_is_confirmed_when_the_network_returns(
    engine_lab: EngineLab,
) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()
    device.proxy.set_offline(True)

    device.window.vote("Red")
    device.window.wait_for_status(QUEUED)
    device.window.reload()
    device.window.wait_for_status(QUEUED)
    engine_lab.restart(device)
    device.window.open(engine_lab.poll_url(poll))  # from the worker's copy: the network is still gone
    device.window.wait_for_status(QUEUED)
    assert engine_lab.service.results(poll["id"])["total"] == 0
    device.proxy.set_offline(False)

    device.window.wait_for_status(CONFIRMED_FIRST)
    engine_lab.prove_zero_loss([device], expected_cast=1)


def test_vote_cast_while_the_service_is_down_is_confirmed_after_a_browser_restart(engine_lab: EngineLab) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()
    engine_lab.service.stop()

    device.window.vote("Blue")
    device.window.wait_for_status(r"Last try: ")
    engine_lab.close(device)
    engine_lab.service.start()
    engine_lab.launch(device)
    device.window.open(engine_lab.poll_url(poll))

    device.window.wait_for_status(CONFIRMED_FIRST)
    engine_lab.prove_zero_loss([device], expected_cast=1)


def test_tampered_receipt_is_never_confirmed_and_the_genuine_one_is(engine_lab: EngineLab) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()
    device.proxy.when(VOTES, lambda _: Fault.TAMPER)

    device.window.vote("Red")
    device.window.wait_for_status(r"^Queued\b.*receipt did not verify")
    device.proxy.clear()  # from now on the service's own receipt arrives

    device.window.wait_for_status(CONFIRMED_FIRST)
    tampered = [seen for seen in device.proxy.requests_to(VOTES) if seen.fault is Fault.TAMPER]
    assert tampered, "the device met a tampered receipt first"
    (stored,) = device.window.run(STORED_VOTES)["receipts"]
    assert stored["receipt"] == json.loads(tampered[0].answer), "the genuine receipt, the one the service signed"
    engine_lab.prove_zero_loss([device], expected_cast=1)  # verifies every receipt against GET /api/v1/keys


def test_vote_whose_response_is_lost_after_commit_is_retried_and_counted_once(engine_lab: EngineLab) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()
    device.proxy.next(VOTES, Fault.RESET_AFTER_COMMIT)

    device.window.vote("Red")

    device.window.wait_for_status(CONFIRMED_FIRST)
    sends = device.proxy.requests_to(VOTES)
    assert [seen.status for seen in sends] == [201, 200], "committed, then answered from the stored vote"
    assert sends[1].answer == sends[0].answer, "the retry's receipt is byte-identical to the lost one"
    assert engine_lab.service.results(poll["id"])["total"] == 1
    engine_lab.prove_zero_loss([device], expected_cast=1)


def test_503_with_retry_after_is_honoured(engine_lab: EngineLab) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()
    device.proxy.retry_after_s = RETRY_AFTER_S
    device.proxy.next(VOTES, Fault.UNAVAILABLE)

    device.window.vote("Blue")

    device.window.wait_for_status(CONFIRMED_FIRST, timeout_s=60)
    first, second = device.proxy.requests_to(VOTES)
    waited_s = second.arrived - first.arrived
    assert first.fault is Fault.UNAVAILABLE
    assert waited_s >= RETRY_AFTER_S, f"retried {waited_s:.2f} s after a 503 that said Retry-After: {RETRY_AFTER_S}"
    engine_lab.prove_zero_loss([device], expected_cast=1)


def test_service_killed_mid_delivery_loses_nothing_and_counts_nothing_twice(engine_lab: EngineLab) -> None:
    poll = engine_lab.create_poll()
    device = engine_lab.new_device()
    device.window.open(engine_lab.poll_url(poll))
    device.window.wait_until_offline_ready()
    # The service commits the vote and signs its receipt, then dies before the answer leaves.
    device.proxy.next(VOTES, Fault.RESET_AFTER_COMMIT)
    device.proxy.on_lost_answer = lambda _: engine_lab.service.kill()

    device.window.vote("Red")
    device.window.wait_for_status(r"Last try: ")
    engine_lab.service.start()

    device.window.wait_for_status(CONFIRMED_FIRST)
    first, *retries = device.proxy.requests_to(VOTES)
    assert first.status == 201, "the first attempt was committed before the kill"
    assert retries[-1].answer == first.answer, "the retry got the receipt signed before the kill"
    assert engine_lab.service.results(poll["id"])["total"] == 1
    engine_lab.prove_zero_loss([device], expected_cast=1)
