"""The public ballot log, checked in the browser: a confirmed vote is found in it, a log that does
not check out is said so plainly (the vote stays confirmed), and /verify checks a tracker code."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect
from voter import open_poll

from tests.helpers import Voter
from tests.service_process import ServiceProcess

pytestmark = pytest.mark.e2e

IN_LOG_TIMEOUT_MS = 15_000  # the log takes a vote within 1 s; the page then fetches and checks


def _send_other_vote(service: ServiceProcess, poll: dict) -> None:
    """Another device's vote, so that the log's tree has more than the voter's own leaf."""
    with service.client() as http:
        vote = Voter().vote(poll["id"], poll["options"][1]["id"])
        response = http.post(
            f"/api/v1/polls/{poll['id']}/votes", json=vote, headers={"Idempotency-Key": vote["idempotency_key"]}
        )
        assert response.status_code == 201


def test_a_vote_confirmed_offline_then_online_is_found_in_the_log(page: Page, service) -> None:
    poll = service.create_poll()
    _send_other_vote(service, poll)
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.set_offline(True)
    voter.vote("Red")
    voter.expect_state("Queued")

    page.context.set_offline(False)

    expect(voter.status).to_have_text("Confirmed · receipt #2")
    expect(voter.device_votes).to_contain_text("In the public ballot log, entry 2", timeout=IN_LOG_TIMEOUT_MS)
    tracker = re.search(r"tracker (\S+)", voter.device_votes.inner_text())
    assert tracker is not None
    assert tracker.group(1).startswith(f"{poll['id']}:2:")

    # Later, on /verify, with the tracker code written down; then offline, from what it cached.
    page.goto(f"{service.base_url}/verify")
    page.get_by_label("Tracker code").fill(tracker.group(1))
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_have_text("In the public ballot log, entry 2 of 2.")
    page.context.set_offline(True)
    page.reload()
    page.get_by_label("Tracker code").fill(tracker.group(1))
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_have_text("In the public ballot log, entry 2 of 2.")
    page.get_by_label("Tracker code").fill(f"{poll['id']}:1:{tracker.group(1).split(':')[2]}")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_contain_text("Could not verify it in the public ballot log")


def _flip_a_byte(route: Route) -> None:
    """The tile as the service sent it, with one byte changed on the way (a bad mirror or proxy)."""
    response = route.fetch()
    body = bytearray(response.body())
    body[0] ^= 0x01
    route.fulfill(response=response, body=bytes(body))


def test_a_tampered_tile_is_said_plainly_and_the_vote_stays_confirmed(page: Page, service) -> None:
    poll = service.create_poll()
    _send_other_vote(service, poll)
    # The context's routes also see the service worker's requests.
    page.context.route("**/api/v1/polls/*/log/tile/0/**", _flip_a_byte)
    voter = open_poll(page, service.poll_url(poll), poll)

    voter.vote("Red")

    expect(voter.status).to_have_text("Confirmed · receipt #2")
    expect(voter.device_votes).to_contain_text(
        "Could not verify it in the public ballot log: the log's tree does not match its signed checkpoint",
        timeout=IN_LOG_TIMEOUT_MS,
    )
    expect(voter.status).to_have_text("Confirmed · receipt #2")
