"""The poll page is accessible: axe-core's WCAG 2.2 A/AA rules, narrow screens, dark mode."""

from __future__ import annotations

from typing import Literal

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page
from voter import open_poll

pytestmark = pytest.mark.e2e

WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _violations(page: Page) -> list[str]:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_22_AA}})
    return [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in results.response["violations"]]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_poll_page_with_votes_has_no_axe_violations(page: Page, service, scheme: Literal["light", "dark"]) -> None:
    page.emulate_media(color_scheme=scheme)
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.vote("Red")
    voter.expect_state("Confirmed")

    assert _violations(page) == []


def test_poll_page_fits_a_320px_screen(page: Page, service) -> None:
    page.set_viewport_size({"width": 320, "height": 640})
    poll = service.create_poll(
        "Which of these rather long-winded options should the committee adopt?",
        ("A deliberately verbose option label that must wrap", "Short"),
    )
    open_poll(page, service.poll_url(poll), poll)

    assert page.evaluate("document.documentElement.scrollWidth") <= 320


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_poll_page_offline_with_a_queued_vote_has_no_axe_violations(
    page: Page, service, scheme: Literal["light", "dark"]
) -> None:
    page.emulate_media(color_scheme=scheme)
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.set_offline(True)
    voter.vote("Blue")
    voter.expect_state("Queued")

    assert _violations(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_poll_page_with_a_failed_vote_has_no_axe_violations(
    page: Page, service, scheme: Literal["light", "dark"]
) -> None:
    page.emulate_media(color_scheme=scheme)
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    service.close_poll(poll)  # by its organiser, early: this page has not heard of it
    voter.vote("Red")
    voter.expect_state("Failed")

    assert _violations(page) == []
