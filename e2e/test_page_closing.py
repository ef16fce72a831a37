"""The page says when the poll closes, and closes its form at that moment, without a reload."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from voter import open_poll

pytestmark = pytest.mark.e2e

CLOSES_IN_MS = 4000  # long enough to load the page on a slow machine


def test_the_form_closes_when_the_poll_does(page: Page, service) -> None:
    poll = service.create_poll(closes_at=int(time.time() * 1000) + CLOSES_IN_MS)
    voter = open_poll(page, service.poll_url(poll), poll)
    closing = page.locator("#closing")
    expect(closing).to_contain_text("Voting closes in")  # the time left, written by the page's script
    expect(page.get_by_role("button", name="Vote")).to_be_enabled()

    expect(closing).to_contain_text("This poll is closed", timeout=CLOSES_IN_MS + 10_000)

    expect(page.get_by_role("button", name="Vote")).to_be_disabled()
    expect(voter.option("Red")).to_be_disabled()
    expect(page.locator("#notice")).to_have_text("This poll has just closed: no more votes can be cast.")


def test_a_closed_poll_opens_closed(page: Page, service) -> None:
    poll = service.create_closed_poll()

    open_poll(page, service.poll_url(poll), poll)

    expect(page.locator("#closing")).to_contain_text("This poll is closed: it closed on")
    expect(page.get_by_role("button", name="Vote")).to_be_disabled()
    expect(page.locator("#notice")).to_be_empty()
