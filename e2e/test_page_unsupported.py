"""A browser that cannot vote is told so, in words, before the voter chooses; a device that fails
while saving a vote says what to do, never an exception's text. Each missing piece is removed
from Chromium before the page's scripts run, as an older or locked-down browser would lack it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from voter import open_poll

pytestmark = pytest.mark.e2e

WITHOUT_ED25519 = """
const generateKey = crypto.subtle.generateKey.bind(crypto.subtle);
crypto.subtle.generateKey = (algorithm, ...rest) =>
  (algorithm?.name ?? algorithm) === "Ed25519"
    ? Promise.reject(new DOMException("Algorithm: Unrecognized name", "NotSupportedError"))
    : generateKey(algorithm, ...rest);
"""
WITHOUT_INDEXEDDB = """
IDBFactory.prototype.open = function () { throw new DOMException("The operation is insecure.", "SecurityError"); };
"""
FULL_DISK = """() => {
  IDBObjectStore.prototype.add = function () {
    throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
  };
  IDBObjectStore.prototype.put = IDBObjectStore.prototype.add;
}"""


def test_a_browser_without_ed25519_is_told_before_choosing(page: Page, service) -> None:
    page.add_init_script(WITHOUT_ED25519)
    poll = service.create_poll()

    voter = open_poll(page, service.poll_url(poll), poll)

    expect(page.locator("#notice")).to_have_text(
        "This browser cannot sign a vote, so it cannot vote here. "
        "Update it, or open this page in a recent Chrome, Edge, Firefox or Safari."
    )
    expect(voter.vote_button).to_be_disabled()
    expect(voter.option("Red")).to_be_disabled()


def test_a_browser_that_cannot_keep_a_vote_is_told_before_choosing(page: Page, service) -> None:
    page.add_init_script(WITHOUT_INDEXEDDB)
    poll = service.create_poll()

    voter = open_poll(page, service.poll_url(poll), poll)

    expect(page.locator("#notice")).to_contain_text("does not let this page keep your vote on this device")
    expect(voter.vote_button).to_be_disabled()


def test_a_full_device_says_what_to_do_not_the_exception(page: Page, service) -> None:
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    expect(voter.vote_button).to_be_enabled()
    page.evaluate(FULL_DISK)

    voter.vote("Red")

    expect(page.locator("#notice")).to_have_text(
        "Your vote could not be saved: this device is out of storage space. Free some space, then vote again."
    )
    expect(page.locator("main")).not_to_contain_text("quota")
    assert service.results(poll["id"])["total"] == 0
