"""The poll page after one visit: it works offline, and keeps votes until the network is back."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from voter import open_poll

pytestmark = pytest.mark.e2e


def test_offline_reload_shows_the_page_and_the_queued_vote(page: Page, service) -> None:
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.set_offline(True)
    voter.vote("Blue")
    voter.expect_state("Queued")

    page.reload()

    expect(voter.question).to_be_visible()
    expect(voter.device_votes).to_contain_text("Blue — Queued")


def test_new_tab_opened_offline_shows_the_poll(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.set_offline(True)

    second = open_poll(page.context.new_page(), service.poll_url(poll), poll)

    expect(second.vote_button).to_be_visible()


def test_offline_indicator_shows_the_votes_waiting(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.set_offline(True)

    voter.vote("Red")

    expect(page.get_by_text("You are offline.")).to_be_visible()
    expect(page.get_by_text("1 vote waiting to be sent.")).to_be_visible()


def test_vote_cast_offline_is_confirmed_after_reconnect(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.set_offline(True)
    voter.vote("Red")
    voter.expect_state("Queued")

    page.context.set_offline(False)

    expect(voter.status).to_have_text("Confirmed · receipt #1")
    assert service.results(poll["id"])["total"] == 1


def test_page_shows_its_offline_copy_when_the_network_hangs(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    hanging = []
    # The connection stays up but the page never arrives: the worker's own fetch is held here.
    page.context.route(f"**/polls/{poll['id']}", lambda route: hanging.append(route))
    try:
        page.reload(wait_until="commit")

        expect(voter.question).to_be_visible(timeout=15_000)
        assert hanging, "the reload did not reach the network"
    finally:
        for route in hanging:
            route.abort()


def test_page_shows_its_offline_copy_when_the_service_behind_the_proxy_is_down(page: Page, service) -> None:
    """A reverse proxy answers 502 for a dead service: that is no page, the copy on the device is."""
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    answered = []

    def bad_gateway(route) -> None:
        answered.append(route.request.url)
        route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")

    page.context.route(f"**/polls/{poll['id']}", bad_gateway)

    page.reload()

    expect(voter.question).to_be_visible()
    expect(page.get_by_text("502 Bad Gateway")).to_be_hidden()
    assert answered, "the reload did not reach the network"
