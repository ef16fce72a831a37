"""Live results: a vote cast on one device shows up on another's screen without a reload,
through the stream, after the stream was dropped, and by polling where there is no EventSource."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect
from voter import open_poll, open_results

pytestmark = pytest.mark.e2e

# The requirement of issue 5: a vote appears in other viewers' results within 2 seconds.
LIVE_TIMEOUT_MS = 2000
NO_EVENT_SOURCE = "delete window.EventSource;"


def _vote_elsewhere(browser: Browser, service, poll: dict, label: str) -> None:
    """A vote from another device (its own browser profile), confirmed by the service."""
    context = browser.new_context()
    try:
        voter = open_poll(context.new_page(), service.poll_url(poll), poll)
        voter.vote(label)
        voter.expect_state("Confirmed")
    finally:
        context.close()


def test_vote_cast_in_one_browser_appears_in_anothers_results(page: Page, browser: Browser, service) -> None:
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    results = open_results(page, f"{service.poll_url(poll)}/results")
    expect(results.freshness).to_have_text("Live: updated as votes arrive.")

    _vote_elsewhere(browser, service, poll, "Blue")

    expect(results.votes("Blue")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)


def test_results_are_right_after_the_stream_drops_and_comes_back(page: Page, browser: Browser, service) -> None:
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    results = open_results(page, f"{service.poll_url(poll)}/results")
    _vote_elsewhere(browser, service, poll, "Red")
    expect(results.votes("Red")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    page.context.set_offline(True)
    expect(results.freshness).to_contain_text("Offline")
    _vote_elsewhere(browser, service, poll, "Red")
    _vote_elsewhere(browser, service, poll, "Blue")

    page.context.set_offline(False)

    expect(results.total).to_have_text("3 votes in total.", timeout=LIVE_TIMEOUT_MS)
    expect(results.votes("Red")).to_have_text("2")
    expect(results.votes("Blue")).to_have_text("1")


def test_results_update_by_polling_without_event_source(page: Page, browser: Browser, service) -> None:
    page.add_init_script(NO_EVENT_SOURCE)
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    results = open_results(page, f"{service.poll_url(poll)}/results")
    expect(results.freshness).to_have_text("Live: updated as votes arrive.")

    _vote_elsewhere(browser, service, poll, "Blue")

    expect(results.votes("Blue")).to_have_text("1")
    expect(results.share("Blue")).to_have_text("100%")
