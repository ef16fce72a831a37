"""The results page is accessible: axe-core's WCAG 2.2 A/AA rules, light and dark, and narrow."""

from __future__ import annotations

from typing import Literal

import pytest
from playwright.sync_api import Page, expect
from test_page_a11y import _violations
from voter import open_poll, open_results

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_results_page_with_votes_has_no_axe_violations(page: Page, service, scheme: Literal["light", "dark"]) -> None:
    page.emulate_media(color_scheme=scheme)
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.vote("Red")
    voter.expect_state("Confirmed")
    results = open_results(page, f"{service.poll_url(poll)}/results")
    expect(results.freshness).to_have_text("Live: updated as votes arrive.")

    assert _violations(page) == []


def test_results_page_fits_a_320px_screen(page: Page, service) -> None:
    page.set_viewport_size({"width": 320, "height": 640})
    poll = service.create_poll(
        "Which of these rather long-winded options should the committee adopt?",
        ("A deliberately verbose option label that must wrap", "Short"),
    )
    open_results(page, f"{service.poll_url(poll)}/results")

    assert page.evaluate("document.documentElement.scrollWidth") <= 320


def test_results_change_is_announced_politely(page: Page, browser, service) -> None:
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    results = open_results(page, f"{service.poll_url(poll)}/results")
    expect(results.freshness).to_have_text("Live: updated as votes arrive.")
    announcer = results.region.locator("[aria-live='polite']")
    other = browser.new_context()
    voter = open_poll(other.new_page(), service.poll_url(poll), poll)

    voter.vote("Blue")

    expect(announcer).to_have_text("Results: Red 0 (0%), Blue 1 (100%). 1 vote in total.")
    other.close()
