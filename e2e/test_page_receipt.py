"""A vote is confirmed only by a receipt that the browser has verified."""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import Page, Route, expect
from voter import open_poll

pytestmark = pytest.mark.e2e

VOTES = "**/api/v1/polls/*/votes"


def _flip_first_byte(text: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw[0] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def tamper_signature(route: Route) -> None:
    """Passes the vote to the real service, then breaks the receipt's signature on the way back."""
    response = route.fetch()
    receipt = response.json()
    receipt["signature"] = _flip_first_byte(receipt["signature"])
    route.fulfill(response=response, json=receipt)


def test_tampered_receipt_does_not_confirm(page: Page, service) -> None:
    poll = service.create_poll()
    # The context's routes also see the service worker's requests.
    page.context.route(VOTES, tamper_signature)
    voter = open_poll(page, service.poll_url(poll), poll)

    voter.vote("Red")

    expect(voter.status).to_contain_text("receipt did not verify")
    voter.expect_state("Queued")


def test_vote_is_confirmed_when_the_genuine_receipt_arrives_after_a_tampered_one(page: Page, service) -> None:
    poll = service.create_poll()
    page.context.route(VOTES, tamper_signature, times=1)
    voter = open_poll(page, service.poll_url(poll), poll)

    voter.vote("Red")

    expect(voter.status).to_have_text("Confirmed · receipt #1")
