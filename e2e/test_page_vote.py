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


def test_after_voting_the_page_says_what_was_counted_and_offers_no_second_vote(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.vote("Red")
    voter.expect_state("Confirmed")

    for _ in ("now", "after a reload"):
        expect(page.get_by_text("Your vote for Red is counted.")).to_be_visible()
        expect(voter.option("Red")).to_be_checked()
        expect(voter.option("Blue")).to_be_disabled()
        expect(voter.vote_button).to_be_disabled()
        page.reload()
    expect(voter.device_votes.get_by_role("listitem")).to_have_count(1)


def test_a_queued_vote_says_it_is_saved_and_offers_no_second_vote(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    page.context.set_offline(True)

    voter.vote("Blue")

    expect(
        page.get_by_text("Your vote for Blue is saved on this device. It is counted once it says Confirmed.")
    ).to_be_visible()
    expect(voter.vote_button).to_be_disabled()


def test_vote_refused_by_the_service_shows_failed_with_reason(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    service.close_poll(poll)  # by its organiser, early: this page has not heard of it

    voter.vote("Red")

    expect(voter.status).to_have_text(
        "Failed: poll closed. The poll closed before this vote reached it, so it was not counted."
    )
    # A failed vote counts for nothing: the form stays open for another try.
    expect(voter.vote_button).to_be_enabled()
