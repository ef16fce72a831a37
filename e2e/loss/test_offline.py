"""Votes cast without a network, or with nothing answering, reach the service later, once."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from voter import VoterPage, answer_problem

from .browser_js import (
    HAS_BACKGROUND_SYNC,
    OUTBOX_ONCE_A_VOTE_FAILED_WITH,
    PENDING_SYNC_TAGS,
    REMOVE_BACKGROUND_SYNC,
    SETTLED_VOTES,
    SYNC_TAGS_AFTER_THE_EVENT,
)
from .lab import SENDS, Device, Lab

pytestmark = pytest.mark.e2e

SYNC_TAG = "vote-outbox"  # frontend/delivery.js


def test_vote_cast_offline_is_confirmed_after_reconnect(lab: Lab) -> None:
    poll = lab.create_poll()
    device = lab.new_device()
    voter = device.open_ready(poll)
    device.context.set_offline(True)

    voter.vote("Red")
    voter.expect_state("Queued")
    voter.page.reload()
    voter.expect_state("Queued")
    device.context.set_offline(False)

    expect(voter.status).to_have_text("Confirmed · receipt #1")
    assert lab.results(poll)["total"] == 1
    lab.prove_zero_loss([device], expected_cast=1)


def test_vote_cast_while_the_service_is_down_is_confirmed_after_a_browser_restart(lab: Lab) -> None:
    poll = lab.create_poll()
    profile = lab.workdir / "profile"
    device = lab.launch_device(profile)
    voter = device.open_ready(poll, device.context.pages[0])
    lab.service.stop()

    voter.vote("Blue")
    expect(voter.status).to_contain_text("Last try: network error")
    lab.close_device(device)
    lab.service.start()
    device = lab.launch_device(profile)
    voter = device.open(poll, device.context.pages[0])

    expect(voter.status).to_have_text("Confirmed · receipt #1")
    lab.prove_zero_loss([device], expected_cast=1)


def one_vote_queued_offline(lab: Lab) -> tuple[dict, Device, VoterPage]:
    """A device offline, with one vote queued and its Background Sync registered."""
    poll = lab.create_poll()
    device = lab.new_device()
    voter = device.open_ready(poll)
    device.context.set_offline(True)
    voter.vote("Red")
    voter.expect_state("Queued")
    assert SYNC_TAG in device.context.service_workers[0].evaluate(PENDING_SYNC_TAGS)
    return poll, device, voter


def test_vote_queued_with_no_page_open_is_delivered_by_a_sync_event(lab: Lab) -> None:
    poll, device, voter = one_vote_queued_offline(lab)
    worker = device.context.service_workers[0]

    voter.page.close()
    device.context.set_offline(False)

    # No page is open: only the worker, woken by the sync event, can send the vote.
    assert device.context.pages == []
    settled = worker.evaluate(SETTLED_VOTES, [1, 30_000])
    assert len(settled["receipts"]) == 1, settled
    assert lab.results(poll)["total"] == 1
    voter = device.open(poll)
    expect(voter.status).to_have_text("Confirmed · receipt #1")
    lab.prove_zero_loss([device], expected_cast=1)


def test_sync_event_that_meets_a_busy_service_with_no_page_open_is_fired_again(lab: Lab) -> None:
    poll, device, voter = one_vote_queued_offline(lab)
    device.context.route(SENDS, lambda route: answer_problem(route, 503, retry_after_s=1), times=1)
    worker = device.context.service_workers[0]
    voter.page.close()

    device.context.set_offline(False)

    # The sync event meets a 503. No page is open to wake the worker again, so only the browser
    # can: the handler must reject, which keeps the sync pending for a later retry.
    outbox = worker.evaluate(OUTBOX_ONCE_A_VOTE_FAILED_WITH, ["server busy (503)", 30_000])
    assert [v["lastError"] for v in outbox] == ["server busy (503)"]
    assert SYNC_TAG in worker.evaluate(SYNC_TAGS_AFTER_THE_EVENT, [SYNC_TAG, 3_000])
    voter = device.open(poll)
    expect(voter.status).to_have_text("Confirmed · receipt #1")
    lab.prove_zero_loss([device], expected_cast=1)


def test_without_background_sync_queued_votes_are_delivered_by_the_fallbacks(lab: Lab) -> None:
    closed_poll, shape_poll = lab.create_poll("Which colour?"), lab.create_poll("Which shape?", ("Round", "Square"))
    device = lab.new_device(init_script=REMOVE_BACKGROUND_SYNC)
    first = device.open_ready(closed_poll)
    second = device.open_ready(shape_poll)
    assert first.page.evaluate(HAS_BACKGROUND_SYNC) is False
    device.context.set_offline(True)
    first.vote("Red")
    first.expect_state("Queued")
    first.page.close()
    second.vote("Square")
    second.expect_state("Queued")
    assert device.context.service_workers[0].evaluate(PENDING_SYNC_TAGS) == []

    device.context.set_offline(False)

    # The open page hears `online` and asks the worker to send everything queued.
    expect(second.status).to_have_text("Confirmed · receipt #1")
    lab.prove_zero_loss([device], expected_cast=2)
    first = device.open(closed_poll)
    expect(first.status).to_have_text("Confirmed · receipt #1")
