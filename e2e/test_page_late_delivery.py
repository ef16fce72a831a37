"""A vote cast offline before the poll closes still counts when it arrives after the close: the
page registered its device while the poll was open (docs/protocol.md, Late delivery)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page
from voter import open_poll

pytestmark = pytest.mark.e2e

CLOSES_IN_MS = 4000  # long enough to load the page and vote offline on a slow machine


def test_a_vote_cast_offline_before_the_close_is_confirmed_after_it(page: Page, service) -> None:
    closes_at = int(time.time() * 1000) + CLOSES_IN_MS
    poll = service.create_poll(closes_at=closes_at, late_grace_seconds=3600)
    with page.expect_response("**/api/v1/polls/*/devices") as registration:
        voter = open_poll(page, service.poll_url(poll), poll)
    assert registration.value.status == 200

    page.context.set_offline(True)
    voter.vote("Red")
    voter.expect_state("Queued")
    # The service decides lateness by its own clock: let real time pass the close. There is no
    # event to await for a moment of the wall clock.
    time.sleep(max(0.0, closes_at / 1000 - time.time()) + 0.5)
    page.context.set_offline(False)

    voter.expect_state("Confirmed")
    assert service.results(poll["id"])["total"] == 1
