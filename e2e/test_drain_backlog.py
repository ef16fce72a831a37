"""A device that comes back online with a backlog of 1,000 votes sends it in batches, and every
vote ends Confirmed and counted once.

The backlog is one vote in each of 1,000 polls: a device holds one key per poll and casts one
vote per poll, so that is the backlog the page itself can hold (a kiosk or a polling station
that was offline through many polls). The votes are real: the page's own modules make a
non-extractable Ed25519 key per poll, sign each vote and queue it in the outbox, exactly as a
cast does (bench/offline_drain.py, which also times the drain; this test asserts no timing).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from voter import answer_problem

from bench.offline_drain import Device, counted_votes, create_polls

pytestmark = pytest.mark.e2e

BACKLOG = 1000
BATCH = "**/api/v1/votes/batch"


def test_backlog_of_1000_votes_is_confirmed_and_counted_once(browser: Browser, service) -> None:
    polls = create_polls(service.base_url, service.admin_token, BACKLOG)
    device = Device(browser.new_context(), service.base_url, polls[0])
    device.queue_offline(polls)

    drain = device.reconnect_and_drain(BACKLOG)

    assert (drain.confirmed, drain.still_waiting) == (BACKLOG, 0)
    assert counted_votes(service.base_url, polls) == [1] * BACKLOG
    device.context.close()


def test_backlog_is_sent_in_one_batch_request(browser: Browser, service) -> None:
    polls = create_polls(service.base_url, service.admin_token, 5)
    device = Device(browser.new_context(), service.base_url, polls[0])
    device.queue_offline(polls)

    drain = device.reconnect_and_drain(len(polls))

    assert (drain.confirmed, drain.requests) == (len(polls), 1)
    device.context.close()


def test_vote_refused_inside_a_batch_fails_with_its_reason_while_the_others_are_confirmed(
    browser: Browser, service
) -> None:
    polls = [*create_polls(service.base_url, service.admin_token, 2), service.create_closed_poll()]
    device = Device(browser.new_context(), service.base_url, polls[0])
    device.queue_offline(polls)

    drain = device.reconnect_and_drain(2)

    # A refusal is recorded by its problem type (the page words it in its language).
    assert (drain.confirmed, drain.failed) == (2, ["poll-closed"])
    device.context.close()


def test_batch_refused_whole_by_a_busy_service_is_sent_again_and_confirmed(browser: Browser, service) -> None:
    polls = create_polls(service.base_url, service.admin_token, 3)
    device = Device(browser.new_context(), service.base_url, polls[0])
    device.queue_offline(polls)
    device.context.route(
        BATCH,
        lambda route: answer_problem(route, 503, retry_after_s=1),
        times=1,
    )

    drain = device.reconnect_and_drain(len(polls))

    assert (drain.confirmed, drain.still_waiting) == (len(polls), 0)
    device.context.close()
