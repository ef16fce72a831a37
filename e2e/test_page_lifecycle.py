"""Votes outlive the browser and the service worker: a restart, and a new worker version."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, BrowserType, Page, expect
from voter import open_poll

pytestmark = pytest.mark.e2e

VOTES = "**/api/v1/polls/*/votes"
WORKER_UPDATE_TIMEOUT_MS = 15_000
UPDATED_TO_NEW_WORKER = """async (timeoutMs) => {
  const sw = navigator.serviceWorker;
  const changed = new Promise((resolve) => sw.addEventListener("controllerchange", resolve, { once: true }));
  const late = new Promise((_, reject) => setTimeout(() => reject(new Error("no new worker took over")), timeoutMs));
  await (await sw.getRegistration()).update();
  await Promise.race([changed, late]);
}"""


MARK_EVERY_VOTE_SENDING = """async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("vote");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const tx = db.transaction("outbox", "readwrite");
  const store = tx.objectStore("outbox");
  const votes = await new Promise((resolve) => { store.getAll().onsuccess = (e) => resolve(e.target.result); });
  for (const vote of votes) store.put({ ...vote, status: "sending" });
  await new Promise((resolve) => { tx.oncomplete = resolve; });
  db.close();
  return votes.length;
}"""


def release_next_worker_version(service) -> None:
    """Puts a new sw.js in the service's dist/, as the next release would ship it."""
    sw = service.dist_dir / "sw.js"
    script, count = re.subn(r'VERSION="[0-9a-f]+"', 'VERSION="0000000000"', sw.read_text())
    assert count == 1
    sw.write_text(script)
    for stale in ("sw.js.br", "sw.js.gz"):
        (service.dist_dir / stale).unlink()


def update_worker(page: Page) -> None:
    page.evaluate(UPDATED_TO_NEW_WORKER, WORKER_UPDATE_TIMEOUT_MS)


@pytest.fixture
def browser_on_one_profile(
    browser_type: BrowserType, browser_type_launch_args: dict, tmp_path: Path
) -> Callable[[], AbstractContextManager[BrowserContext]]:
    """Starts Chromium on the same profile each time: a browser restart keeps what the device stored."""

    @contextmanager
    def launch() -> Iterator[BrowserContext]:
        context = browser_type.launch_persistent_context(tmp_path / "profile", **browser_type_launch_args)
        try:
            yield context
        finally:
            context.close()

    return launch


def test_page_and_queued_vote_survive_a_browser_restart_offline(browser_on_one_profile, private_service) -> None:
    service = private_service
    poll = service.create_poll("Which colour?", ("Red", "Blue"))
    with browser_on_one_profile() as first:
        first.route(VOTES, lambda route: route.abort("internetdisconnected"))
        voter = open_poll(first.pages[0], service.poll_url(poll), poll)
        voter.wait_until_offline_ready()
        voter.vote("Blue")
        voter.expect_state("Queued")
    service.stop()  # nothing answers any more: only the device's copies can show the page

    with browser_on_one_profile() as again:
        voter = open_poll(again.pages[0], service.poll_url(poll), poll)

        expect(voter.device_votes).to_contain_text("Blue — Queued")


def test_queued_vote_is_delivered_by_the_next_worker_version(page: Page, private_service) -> None:
    service = private_service
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.route(VOTES, lambda route: route.abort("internetdisconnected"))
    voter.vote("Red")
    expect(voter.status).to_contain_text("Last try: network error")
    release_next_worker_version(service)

    update_worker(page)
    page.context.unroute(VOTES)

    expect(voter.status).to_have_text("Confirmed · receipt #1")


def test_page_still_works_offline_after_a_worker_update(page: Page, private_service) -> None:
    service = private_service
    poll = service.create_poll()
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    release_next_worker_version(service)
    update_worker(page)
    page.context.set_offline(True)

    page.reload()

    expect(voter.vote_button).to_be_visible()
    expect(voter.vote_button).to_have_css("min-height", "48px")


def test_vote_cut_off_mid_send_is_confirmed_after_a_restart(browser_on_one_profile, service) -> None:
    poll = service.create_poll()
    with browser_on_one_profile() as first:
        first.route(VOTES, lambda route: route.abort("internetdisconnected"))
        page = first.pages[0]
        voter = open_poll(page, service.poll_url(poll), poll)
        voter.wait_until_offline_ready()
        voter.vote("Red")
        expect(voter.status).to_contain_text("Last try: network error")
        # Leave the poll page, so nothing nudges the worker, then record the vote as a crash
        # mid-send leaves it. (A request held open instead would stall the browser's close.)
        page.goto(f"{service.base_url}/polls/no-such-poll")
        assert page.evaluate(MARK_EVERY_VOTE_SENDING) == 1

    with browser_on_one_profile() as again:
        voter = open_poll(again.pages[0], service.poll_url(poll), poll)

        expect(voter.status).to_have_text("Confirmed · receipt #1")
