"""Casting a vote on the poll page, in real Chromium against the real service."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from voter import open_poll

pytestmark = pytest.mark.e2e


def test_keyboard_only_vote_is_confirmed_with_receipt(page: Page, service) -> None:
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    voter = open_poll(page, service.poll_url(poll), poll)

    page.keyboard.press("Tab")  # into the radio group
    page.keyboard.press("ArrowDown")  # Red -> Blue, which also selects it
    page.keyboard.press("Tab")  # to the Vote button
    page.keyboard.press("Enter")

    expect(voter.status).to_have_text("Confirmed · receipt #1")
    assert {o["label"]: o["votes"] for o in service.results(poll["id"])["options"]} == {"Red": 0, "Blue": 1}


def test_vote_says_queued_before_the_network_answers(page: Page, service) -> None:
    poll = service.create_poll()
    held = []
    # Hold the vote request so the page's answer cannot depend on the network.
    page.context.route("**/api/v1/polls/*/votes", lambda route: held.append(route))
    voter = open_poll(page, service.poll_url(poll), poll)

    voter.vote("Red")

    expect(voter.status).to_have_text(re.compile(r"^(Queued|Transmitting)"))
    expect(voter.device_votes).to_contain_text("Red")


def test_second_vote_from_same_device_is_not_queued(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.vote("Red")
    voter.expect_state("Confirmed")

    voter.vote("Blue")

    expect(page.get_by_text("This device has already voted in this poll.")).to_be_visible()
    expect(voter.device_votes.get_by_role("listitem")).to_have_count(1)


def test_vote_refused_by_the_service_shows_failed_with_reason(page: Page, service) -> None:
    poll = service.create_closed_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.offer_the_form_as_a_stale_page()

    voter.vote("Red")

    expect(voter.status).to_have_text("Failed: poll closed")
