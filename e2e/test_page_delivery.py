"""Delivery from the page's point of view: one sender at a time, and votes that wait for the service."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect
from voter import answer_problem, open_poll

pytestmark = pytest.mark.e2e

VOTES = "**/api/v1/polls/*/votes"
NUDGE_FIVE_TIMES = "() => { for (let i = 0; i < 5; i++) window.dispatchEvent(new Event('online')); }"


def test_vote_is_sent_once_while_every_tab_nudges_the_worker(page: Page, service) -> None:
    poll = service.create_poll()
    url = service.poll_url(poll)
    voter = open_poll(page, url, poll)
    voter.wait_until_offline_ready()
    other_tab = open_poll(page.context.new_page(), url, poll)
    sent: list[Route] = []

    def hold_the_first_send(route: Route) -> None:
        sent.append(route)
        if len(sent) > 1:
            route.continue_()

    page.context.route(VOTES, hold_the_first_send)
    voter.vote("Red")
    expect(voter.status).to_have_text("Transmitting…")
    page.evaluate(NUDGE_FIVE_TIMES)
    other_tab.page.evaluate(NUDGE_FIVE_TIMES)
    sent[0].continue_()

    expect(voter.status).to_have_text("Confirmed · receipt #1")
    expect(other_tab.status).to_have_text("Confirmed · receipt #1")
    assert len(sent) == 1


def test_vote_waits_out_a_busy_service_and_is_then_confirmed(page: Page, service) -> None:
    poll = service.create_poll()
    page.context.route(
        VOTES,
        lambda route: answer_problem(route, 503, retry_after_s=1),
        times=1,
    )
    voter = open_poll(page, service.poll_url(poll), poll)

    voter.vote("Blue")

    expect(voter.status).to_contain_text("Last try: server busy (503)")
    expect(voter.status).to_have_text("Confirmed · receipt #1")
