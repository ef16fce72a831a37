"""Who may vote, in Chromium: an invitation link works offline and across a restart and admits
one device only; a proof-of-work vote reaches Confirmed on a slow (4× throttled) CPU."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, BrowserType, Page, expect
from voter import open_poll

from tests.service_process import ServiceProcess

pytestmark = pytest.mark.e2e

SLOW_SOLVE_TIMEOUT_MS = 120_000  # a bad draw at 4× throttling; the median is measured in docs/abuse.md


def issue_invitations(service, poll: dict, count: int) -> list[dict]:
    with service.client() as http:
        response = http.post(
            f"/api/v1/polls/{poll['id']}/invitations", json={"count": count}, headers=service.admin_headers()
        )
    response.raise_for_status()
    return response.json()["invitations"]


@pytest.fixture
def browser_on_one_profile(
    browser_type: BrowserType, browser_type_launch_args: dict, tmp_path: Path
) -> Callable[[], AbstractContextManager[BrowserContext]]:
    """Chromium on the same profile each time: a restart keeps what the device stored."""

    @contextmanager
    def launch() -> Iterator[BrowserContext]:
        context = browser_type.launch_persistent_context(tmp_path / "profile", **browser_type_launch_args)
        try:
            yield context
        finally:
            context.close()

    return launch


def test_invitation_opened_once_votes_offline_and_is_counted_after_a_restart(browser_on_one_profile, service) -> None:
    poll = service.create_poll("Invited?", ("Yes", "No"), eligibility="invite")
    [invitation] = issue_invitations(service, poll, 1)
    with browser_on_one_profile() as first:
        page = first.pages[0]
        voter = open_poll(page, invitation["url"], poll)
        voter.wait_until_offline_ready()
        assert "#invite" not in page.url  # the code left the address bar, kept on the device
        first.set_offline(True)
        voter.vote("Yes")
        voter.expect_state("Queued")

    with browser_on_one_profile() as again:
        voter = open_poll(again.pages[0], service.poll_url(poll), poll)
        expect(voter.status).to_have_text("Confirmed · receipt #1")
    assert service.results(poll["id"])["total"] == 1


def test_invitation_first_opened_offline_is_queued_with_the_vote(page: Page, service) -> None:
    poll = service.create_poll("Invited?", ("Yes", "No"), eligibility="invite")
    [invitation] = issue_invitations(service, poll, 1)
    voter = open_poll(page, service.poll_url(poll), poll)  # an earlier visit, without the code
    voter.wait_until_offline_ready()
    page.context.set_offline(True)
    voter = open_poll(page, invitation["url"], poll)  # the page from the device's copy
    voter.vote("No")
    voter.expect_state("Queued")

    page.context.set_offline(False)

    expect(voter.status).to_have_text("Confirmed · receipt #1")
    assert service.results(poll["id"])["total"] == 1


def test_a_second_device_with_the_same_invitation_is_refused_in_words(page: Page, service, browser) -> None:
    poll = service.create_poll("Invited?", ("Yes", "No"), eligibility="invite")
    [invitation] = issue_invitations(service, poll, 1)
    first = open_poll(page, invitation["url"], poll)
    first.vote("Yes")
    expect(first.status).to_have_text("Confirmed · receipt #1")

    other_device = browser.new_context(base_url=service.base_url)
    try:
        second = open_poll(other_device.new_page(), invitation["url"], poll)
        second.vote("No")
        expect(second.status).to_have_text(
            "Failed: this invitation was already used on another device. Each invitation admits one device. "
            "Vote on the device that first opened it, or ask the organiser for another."
        )
    finally:
        other_device.close()
    assert service.results(poll["id"])["total"] == 1


def test_a_device_without_an_invitation_is_told_so(page: Page, service) -> None:
    poll = service.create_poll("Invited?", ("Yes", "No"), eligibility="invite")
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.vote("Yes")
    expect(voter.status).to_have_text(
        "Failed: this poll takes votes by invitation only, and this device has none. "
        "Open the invitation link you were sent on this device, then vote again."
    )


def test_proof_of_work_vote_is_confirmed_under_4x_cpu_throttling(page: Page, service) -> None:
    poll = service.create_poll("Worked?", ("Yes", "No"), eligibility="proof-of-work")  # the default difficulty
    assert poll["difficulty"] >= 16
    page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 4})
    voter = open_poll(page, service.poll_url(poll), poll)

    voter.vote("Yes")

    voter.expect_state("Queued")  # at once, before the stamp is found
    expect(voter.status).to_have_text("Confirmed · receipt #1", timeout=SLOW_SOLVE_TIMEOUT_MS)
    assert service.results(poll["id"])["total"] == 1


STAMP_VECTORS = json.loads((Path(__file__).parent.parent / "tests" / "vectors" / "stamp-v1.json").read_text())

SOLVE_IN_THE_WORKER = """async ([pollId, publicKey, difficulty]) => {
  const worker = new Worker(document.getElementById("vote-form").dataset.powWorker);
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (event) => {
        if (event.data.stamp !== undefined) resolve(event.data);
        if (event.data.error !== undefined) reject(new Error(event.data.error));
      };
      worker.onerror = (event) => reject(new Error(event.message));
      worker.postMessage({ pollId, publicKey, difficulty });
    });
  } finally {
    worker.terminate();
  }
}"""


def test_the_page_worker_finds_the_published_stamps(page: Page, service) -> None:
    poll = service.create_poll("Vectors?", ("Yes", "No"), eligibility="proof-of-work")
    open_poll(page, service.poll_url(poll), poll)
    for case in STAMP_VECTORS["stamps"]:
        found = page.evaluate(SOLVE_IN_THE_WORKER, [case["poll_id"], STAMP_VECTORS["public_key"], case["difficulty"]])
        assert found == {"stamp": case["stamp"], "engine": "own"}, case  # not Web Crypto's fallback


WINDOW_WAIT_TIMEOUT_MS = 120_000  # the limit's one-minute window, plus the page's next look


def test_the_queue_delivers_everything_past_a_rate_limit(page: Page, dist_dir: Path, tmp_path: Path) -> None:
    """A real limit of one vote request a minute per client: the page's batch is refused with
    429 and Retry-After, waits it out, and then every queued vote is confirmed."""
    env = {"VOTE_RATE_LIMIT_PER_CLIENT": "1"}
    with ServiceProcess(tmp_path / "service", dist_dir=dist_dir, env=env) as service:
        polls = [service.create_poll(f"Question {n}?", ("Yes", "No")) for n in (1, 2)]
        voters = []
        for poll in polls:
            voter = open_poll(page.context.new_page(), service.poll_url(poll), poll)
            voter.wait_until_offline_ready()
            voters.append(voter)
        page.context.set_offline(True)
        for voter in voters:
            voter.vote("Yes")
            voter.expect_state("Queued")
        with service.client() as http:  # this address's one request of the minute
            assert http.post("/api/v1/votes/batch", json={"votes": []}).status_code == 400

        page.context.set_offline(False)

        expect(voters[0].status).to_contain_text("server busy (429)")
        for voter in voters:
            expect(voter.status).to_have_text("Confirmed · receipt #1", timeout=WINDOW_WAIT_TIMEOUT_MS)
        assert [service.results(poll["id"])["total"] for poll in polls] == [1, 1]
