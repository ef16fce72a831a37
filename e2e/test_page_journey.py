"""The voter's and the organiser's pages of issue 15 in Chromium at 390×844: each state of the poll
page, voting without JavaScript in an invite poll, the invitation sheet and the ballot log export
from the manage page. axe finds nothing on each; a screenshot of each lands in test-results/."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from voter import open_poll

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
SHOTS = Path(__file__).resolve().parent.parent / "test-results" / "screens"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
MAX_TABS = 60
WITHOUT_ED25519 = """
const generateKey = crypto.subtle.generateKey.bind(crypto.subtle);
crypto.subtle.generateKey = (algorithm, ...rest) =>
  (algorithm?.name ?? algorithm) === "Ed25519"
    ? Promise.reject(new DOMException("Algorithm: Unrecognized name", "NotSupportedError"))
    : generateKey(algorithm, ...rest);
"""


def _violations(page: Page) -> list[str]:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_22_AA}})
    return [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in results.response["violations"]]


def _checked(page: Page, name: str) -> None:
    """axe finds nothing, the page fits the phone's width, and its screenshot is kept."""
    assert _violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _checked_without_script(page: Page, browser: Browser, base_url: str, name: str) -> None:
    """`_checked` for a page shown with JavaScript off, where axe (a script) cannot run: its DOM,
    as that browser built it (what <noscript> holds shown, no scripts), is checked in a browser
    that runs axe, on the same origin so that its styles apply."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    html = re.sub(r"<script\b[^>]*>.*?</script>", "", page.content(), flags=re.S)
    html = html.replace("<noscript>", "<div>").replace("</noscript>", "</div>")
    context = browser.new_context(viewport=PHONE)
    try:
        checker = context.new_page()
        address = f"{base_url}/__without_script__"
        checker.route(address, lambda route: route.fulfill(body=html, content_type="text/html"))
        checker.goto(address)
        assert _violations(checker) == []
        assert checker.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


def _tab_to(page: Page, selector: str) -> None:
    for _ in range(MAX_TABS):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"{selector} cannot be reached with Tab")


def _issue(service, poll: dict, count: int) -> list[dict]:
    with service.client() as http:
        response = http.post(
            f"/api/v1/polls/{poll['id']}/invitations", json={"count": count}, headers=service.admin_headers()
        )
    response.raise_for_status()
    return response.json()["invitations"]


def test_the_poll_page_open_voted_and_after_a_reload(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Where shall we eat?", ("Soup", "Salad", "Stew"), closes_at=None)
    voter = open_poll(page, service.poll_url(poll), poll)
    expect(page.locator("#results [data-results-freshness]")).to_have_text("Live: updated as votes arrive.")
    _checked(page, "poll-open")

    voter.vote("Soup")
    voter.expect_state("Confirmed")
    expect(page.locator("#own-vote")).to_have_text("Your vote for Soup is counted.")
    _checked(page, "poll-voted-confirmed")

    page.reload()  # from the service worker's copy: the vote is this device's, the counts refreshed
    expect(page.locator("#own-vote")).to_have_text("Your vote for Soup is counted.")
    expect(voter.vote_button).to_be_disabled()
    expect(page.locator("#results [data-results-freshness]")).to_have_text("Live: updated as votes arrive.")


def test_a_page_from_the_workers_copy_learns_that_the_poll_closed_early(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Closing soon?", ("Yes", "No"))
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.wait_until_offline_ready()  # the copy shows the poll open
    service.close_poll(poll)

    page.reload()

    expect(page.locator("#closing")).to_contain_text("closed")
    expect(voter.vote_button).to_be_disabled()
    _checked(page, "poll-closed-while-away")


def test_a_closed_poll_says_so(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_closed_poll("Was it good?", ("Yes", "No"))

    page.goto(service.poll_url(poll))

    expect(page.locator("#closing")).to_contain_text("This poll is closed")
    expect(page.get_by_role("button", name="Vote")).to_be_disabled()
    _checked(page, "poll-closed")


def test_a_failed_vote_says_what_to_do(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Closed under you?", ("Yes", "No"))
    voter = open_poll(page, service.poll_url(poll), poll)
    service.close_poll(poll)  # this page has not heard of it

    voter.vote("Yes")

    voter.expect_state("Failed")
    expect(voter.status).to_contain_text("The poll closed before this vote reached it, so it was not counted.")
    _checked(page, "poll-failed-advice")


def test_an_unsupported_browser_is_told_before_choosing(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    page.add_init_script(WITHOUT_ED25519)
    poll = service.create_poll("Can this browser vote?", ("Yes", "No"))

    voter = open_poll(page, service.poll_url(poll), poll)

    expect(page.locator("#notice")).to_contain_text("This browser cannot sign a vote")
    expect(voter.vote_button).to_be_disabled()
    _checked(page, "poll-unsupported-browser")


def test_without_javascript_an_invited_voter_votes_with_the_printed_code(browser: Browser, service) -> None:
    poll = service.create_poll("Lunch on Friday?", ("Soup", "Salad"), eligibility="invite")
    [invitation] = _issue(service, poll, 1)
    printed = " ".join(invitation["code"][i : i + 4] for i in range(0, len(invitation["code"]), 4))
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(service.poll_url(poll))
        expect(page.get_by_label("Invitation code")).to_be_visible()
        _checked_without_script(page, browser, service.base_url, "no-js-invite-form")

        page.get_by_label("Soup").check()
        page.get_by_label("Invitation code").fill("not a code")
        page.get_by_role("button", name="Vote").click()
        expect(page.get_by_role("alert")).to_contain_text("That is not an invitation code")
        _checked_without_script(page, browser, service.base_url, "no-js-invite-form-error")

        page.get_by_label("Invitation code").fill(printed)
        page.get_by_role("button", name="Vote").dblclick()  # a double submit

        expect(page.get_by_role("heading", name="Your vote is counted", level=1)).to_be_visible()
        expect(page.locator("main")).to_contain_text("Your vote for Soup is counted.")
        expect(page.locator(".tracker")).to_contain_text(f"{poll['id']}:1:")
        _checked_without_script(page, browser, service.base_url, "no-js-vote-counted")
        assert service.results(poll["id"])["total"] == 1
    finally:
        context.close()


def test_without_javascript_other_polls_say_why_voting_needs_it(browser: Browser, service) -> None:
    poll = service.create_poll("Open to all?", ("Yes", "No"))
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(service.poll_url(poll))
        # Playwright's text engine skips <noscript>: the element is named, and its words checked.
        expect(page.locator("noscript p")).to_have_text(
            "Voting needs JavaScript: your vote is signed on this device before it is sent."
        )
        _checked_without_script(page, browser, service.base_url, "no-js-poll")
        page.get_by_label("Yes").check()
        page.get_by_role("button", name="Vote").click()
        expect(page.get_by_role("heading", name="Your vote was not sent", level=1)).to_be_visible()
        _checked_without_script(page, browser, service.base_url, "no-js-vote-not-sent")
    finally:
        context.close()


def test_an_organiser_prints_an_invitation_sheet_by_keyboard(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Board election", ("Ada", "Grace"), eligibility="invite")
    page.goto(poll["manage_url"])
    expect(page.get_by_role("heading", name="Invitations")).to_be_visible()
    _checked(page, "organiser-manage-invite-poll")

    _tab_to(page, "#invitation-count")
    page.keyboard.press("Control+A")
    page.keyboard.type("4")
    _tab_to(page, "button[value='sheet']")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="4 invitations", level=1)).to_be_visible()
    cards = page.locator(".invitation")
    expect(cards).to_have_count(4)
    expect(cards.first.get_by_role("img", name="QR code of invitation 1")).to_be_visible()
    code = cards.first.locator(".invitation-code").inner_text().replace(" ", "")
    expect(cards.first.locator(".invitation-link")).to_have_text(f"{service.poll_url(poll)}#invite={code}")
    _checked(page, "organiser-invitation-sheet")
    page.emulate_media(media="print")
    page.screenshot(path=str(SHOTS / "organiser-invitation-sheet-print.png"), full_page=True)


def test_an_organiser_downloads_the_ballot_log(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Audited?", ("Yes", "No"))
    voter = open_poll(page, service.poll_url(poll), poll)
    voter.vote("Yes")
    voter.expect_state("Confirmed")
    # The log takes a vote in within about a second of its receipt; the page checks it then.
    expect(page.locator("#votes")).to_contain_text("tracker", timeout=30_000)

    page.goto(poll["manage_url"])
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the ballot log").click()

    assert download.value.suggested_filename == f"{poll['id']}-ballot-log.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(Path(download.value.path()).read_bytes()), mode="r:gz") as tar:
        names = tar.getnames()
    folder = f"{poll['id']}-ballot-log"
    assert {f"{folder}/checkpoint", f"{folder}/poll.json", f"{folder}/log-keys.json"} <= set(names)
    assert f"{folder}/tile/entries/000.p/1" in names


def test_too_many_invitations_for_a_sheet_are_refused_in_words(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Board election", ("Ada", "Grace"), eligibility="invite")
    page.goto(poll["manage_url"])

    page.get_by_label("How many invitations?").fill("300")
    page.get_by_role("button", name="Make an invitation sheet").click()

    expect(page.get_by_role("heading", name="No invitations were made", level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text("Ask for 1 to 200 invitations at a time.")
    _checked(page, "organiser-invitations-refused")


def test_the_share_link_is_copied_with_one_tap(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=service.base_url)
    poll = service.create_poll("Shared?", ("Yes", "No"))
    page.goto(poll["manage_url"])

    page.get_by_role("button", name="Copy").first.click()

    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == service.poll_url(poll)
