"""The voter's page as a test drives it, through the page's contract: accessible names only."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Locator, Page, Route, expect

# Generous: the first visit installs the service worker and precaches the assets.
WORKER_TIMEOUT_MS = 15_000


CONTROLLED_BY_ACTIVE_WORKER = """async (timeoutMs) => {
  const sw = navigator.serviceWorker;
  const controlled = (async () => {
    await sw.ready;
    const controller = sw.controller ?? await new Promise((resolve) =>
      sw.addEventListener("controllerchange", () => resolve(sw.controller), { once: true }));
    while (controller.state !== "activated") {
      await new Promise((resolve) => controller.addEventListener("statechange", resolve, { once: true }));
    }
  })();
  const late = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("no active service worker controls the page")), timeoutMs));
  await Promise.race([controlled, late]);
}"""


def answer_problem(route: Route, status: int, retry_after_s: int | None = None) -> None:
    """A 5xx or 429 from a proxy or an overloaded service, without touching the service."""
    slug = {429: "rate-limited", 503: "service-unavailable"}.get(status, "internal-error")
    route.fulfill(
        status=status,
        headers={"Retry-After": str(retry_after_s)} if retry_after_s is not None else {},
        content_type="application/problem+json",
        body=json.dumps({"type": f"/problems/{slug}", "title": slug, "status": status}),
    )


class VoterPage:
    def __init__(self, page: Page, poll: dict) -> None:
        self.page = page
        self.poll = poll

    @property
    def status(self) -> Locator:
        return self.page.get_by_role("status")

    @property
    def question(self) -> Locator:
        return self.page.get_by_role("radiogroup", name=self.poll["question"])

    @property
    def vote_button(self) -> Locator:
        return self.page.get_by_role("button", name="Vote", exact=True)

    @property
    def device_votes(self) -> Locator:
        return self.page.get_by_role("list").filter(has=self.page.get_by_role("listitem"))

    def option(self, label: str) -> Locator:
        return self.question.get_by_role("radio", name=label, exact=True)

    def vote(self, label: str) -> None:
        self.option(label).check()
        self.vote_button.click()

    def expect_state(self, word: str) -> None:
        expect(self.status).to_contain_text(re.compile(rf"^{word}\b"))

    def wait_until_offline_ready(self) -> None:
        """Until the worker controls the page and has stored a copy of it."""
        # Awaits events rather than polling: the page's CSP forbids the eval that polling uses.
        self.page.evaluate(CONTROLLED_BY_ACTIVE_WORKER, WORKER_TIMEOUT_MS)
        expect(self.page.get_by_text("This page works offline.")).to_be_visible(timeout=WORKER_TIMEOUT_MS)


def open_poll(page: Page, url: str, poll: dict) -> VoterPage:
    page.goto(url)
    voter = VoterPage(page, poll)
    expect(voter.question).to_be_visible()
    return voter


class ResultsView:
    """The live results, on the poll page or on the results page, read as a screen reader would."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.region = page.get_by_role("region", name="Results")

    def row(self, label: str) -> Locator:
        return self.region.get_by_role("row").filter(has=self.page.get_by_role("rowheader", name=label, exact=True))

    def votes(self, label: str) -> Locator:
        return self.row(label).get_by_role("cell").first

    def share(self, label: str) -> Locator:
        return self.row(label).get_by_role("cell").nth(1)

    @property
    def total(self) -> Locator:
        return self.region.get_by_text(re.compile(r"^\d+ votes? in total\.$"))

    @property
    def freshness(self) -> Locator:
        return self.region.get_by_text(re.compile(r"^(Live|Offline)\b"))


def open_results(page: Page, url: str) -> ResultsView:
    """The results page of a poll (`{poll page}/results`), once its first counts are shown."""
    page.goto(url)
    results = ResultsView(page)
    expect(results.total).to_be_visible()
    return results
