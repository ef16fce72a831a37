"""The organiser's flow in Chromium on a 390×844 phone screen: create a poll from the web (admin
mode), get the share and manage links, manage it (QR, poster, CSV, close now), by keyboard alone
too; axe finds nothing on each new page. Screenshots land in test-results/ for review."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect
from voter import open_poll

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
SHOTS = Path(__file__).resolve().parent.parent / "test-results"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
MAX_TABS = 60  # more Tab presses than any of these pages has stops: a control past it is unreachable


def _violations(page: Page) -> list[str]:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_22_AA}})
    return [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in results.response["violations"]]


def _screenshot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"organiser-{name}.png"), full_page=True)


def _tab_to(page: Page, selector: str) -> None:
    """Presses Tab until `selector` has the focus, as a keyboard user would reach it."""
    for _ in range(MAX_TABS):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"{selector} cannot be reached with Tab")


def _create(page: Page, service, question: str, options: list[str]) -> None:
    page.goto(f"{service.base_url}/polls/new")
    page.get_by_label("Question").fill(question)
    for index, label in enumerate(options, start=1):
        if index > 2:
            page.get_by_role("button", name="Add an option").click()
        page.get_by_label(f"Option {index}", exact=True).fill(label)
    page.get_by_label("Admin token").fill(service.admin_token)
    page.get_by_role("button", name="Create poll").click()
    expect(page.get_by_role("heading", name="Poll created")).to_be_visible()


def test_create_share_manage_export_and_close_from_a_phone(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{service.base_url}/polls/new")
    expect(page.get_by_role("heading", name="New poll", level=1)).to_be_visible()
    assert _violations(page) == []
    _screenshot(page, "new")

    _create(page, service, "Where shall we eat?", ["Soup bar", "Salad place", "Stew house"])

    expect(page.get_by_text("Save this link: it is the only way to manage your poll")).to_be_visible()
    share_url = page.locator("#share-url").inner_text()
    manage_url = page.locator("#manage-url").inner_text()
    assert manage_url.startswith(f"{share_url}/manage#key=")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert _violations(page) == []
    _screenshot(page, "created")

    page.locator("#manage-url").click()
    expect(page.get_by_role("heading", name="Where shall we eat?", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()  # the key was read from the fragment
    expect(page.get_by_role("img", name=f"QR code for {share_url}")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert _violations(page) == []
    _screenshot(page, "manage")
    page.emulate_media(media="print")
    _screenshot(page, "poster")
    page.emulate_media(media="screen")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download results (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows == [
        ["option_id", "label", "votes"],
        ["soup-bar", "Soup bar", "0"],
        ["salad-place", "Salad place", "0"],
        ["stew-house", "Stew house", "0"],
    ]

    page.get_by_role("button", name="Close now").click()
    page.get_by_role("button", name="Yes, close the poll").click()
    expect(page.get_by_role("status")).to_contain_text("The poll is closed")
    expect(page.get_by_role("button", name="Close now")).to_be_disabled()

    page.goto(share_url)
    expect(page.locator("#closing")).to_contain_text("closed")
    expect(page.get_by_role("button", name="Vote")).to_be_disabled()

    page.goto(f"{service.base_url}/polls/new")  # the browser kept the admin token
    expect(page.get_by_label("Admin token")).to_have_value(service.admin_token)


def test_an_organiser_creates_and_closes_a_poll_by_keyboard_alone(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{service.base_url}/polls/new")

    _tab_to(page, "#question")
    page.keyboard.type("Tea or coffee?")
    _tab_to(page, "#option-1")
    page.keyboard.type("Tea")
    _tab_to(page, "#option-2")
    page.keyboard.type("Coffee")
    _tab_to(page, "#add-option")
    page.keyboard.press("Enter")
    page.keyboard.type("Water")  # the new field has the focus
    _tab_to(page, "input[name='results_visibility']:checked")  # a radio group is one Tab stop
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator("input[value='after-closing']")).to_be_checked()
    _tab_to(page, "#admin-token")
    page.keyboard.type(service.admin_token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Poll created")).to_be_visible()
    manage_url = page.locator("#manage-url").inner_text()

    page.goto(manage_url)
    _tab_to(page, "#close-now")
    page.keyboard.press("Enter")
    expect(page.locator("#close-yes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("The poll is closed")

    poll_id = manage_url.split("/polls/")[1].split("/")[0]
    poll = service.client().get(f"/api/v1/polls/{poll_id}").json()
    assert [o["label"] for o in poll["options"]] == ["Tea", "Coffee", "Water"]
    assert poll["results_visibility"] == "after-closing"
    assert poll["closes_at"] is not None


def test_voters_are_told_when_results_are_shown(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Hidden counts?", ("Yes", "No"), results_visibility="after-closing")

    page.goto(service.poll_url(poll))

    expect(page.get_by_text("Results are shown after the poll closes.")).to_be_visible()
    assert _violations(page) == []
    _screenshot(page, "voter-results-hidden")


def test_the_manage_page_without_its_key_says_what_to_do(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Lost link?", ("Yes", "No"))

    page.goto(f"{service.poll_url(poll)}/manage")

    expect(page.get_by_role("alert")).to_contain_text("Open the manage link you saved")
    expect(page.get_by_role("button", name="Close now")).to_be_hidden()
    assert _violations(page) == []


def test_after_voting_the_device_sees_the_counts_once_its_vote_is_counted(page: Page, service) -> None:
    page.set_viewport_size(PHONE)
    poll = service.create_poll("Counts after voting?", ("Red", "Blue"), results_visibility="after-voting")
    voter = open_poll(page, service.poll_url(poll), poll)
    expect(page.get_by_text("Results are shown after you vote")).to_be_visible()

    voter.vote("Red")
    voter.expect_state("Confirmed")

    expect(page.locator("#results-withheld li")).to_have_text(["Red: 1 vote", "Blue: 0 votes"])
    page.reload()
    expect(page.locator("#results-withheld li")).to_have_text(["Red: 1 vote", "Blue: 0 votes"])
    assert _violations(page) == []
    _screenshot(page, "voter-results-after-vote")


def test_a_poll_is_created_without_javascript(browser, service) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{service.base_url}/polls/new")
        page.get_by_label("Question").fill("Made without a script?")
        page.get_by_label("Option 1", exact=True).fill("Yes")
        page.get_by_label("Option 2", exact=True).fill("No")
        page.get_by_label("Closes at (optional)").fill("2030-01-01T12:00")  # past the year ahead: refused
        page.get_by_label("Your time zone's offset from UTC").fill("+02:00")
        page.get_by_label("Admin token").fill(service.admin_token)
        page.get_by_role("button", name="Create poll").click()
        expect(page.get_by_role("alert")).to_contain_text("The closing time must be in the future")

        page.get_by_label("Closes at (optional)").fill("")
        page.get_by_label("Admin token").fill(service.admin_token)
        page.get_by_role("button", name="Create poll").click()

        expect(page.get_by_role("heading", name="Poll created")).to_be_visible()
        expect(page.get_by_text("Save this link: it is the only way to manage your poll")).to_be_visible()
        _screenshot(page, "created-without-javascript")
    finally:
        context.close()
