"""Results offline: the last known counts, with their age, also in a page reloaded offline."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from voter import ResultsView, open_poll

pytestmark = pytest.mark.e2e


def test_page_reloaded_offline_shows_the_last_known_results_with_their_age(page: Page, service) -> None:
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()  # the offline copy of the page, made before the vote: 0 votes
    voter.vote("Red")
    results = ResultsView(page)
    expect(results.votes("Red")).to_have_text("1")
    page.context.set_offline(True)

    page.reload()

    expect(results.votes("Red")).to_have_text("1")
    expect(results.freshness).to_have_text("Offline: the last known results, from just now.")
