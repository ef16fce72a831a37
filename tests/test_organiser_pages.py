"""The organiser's pages without a browser: the creation form (both creation modes, with and
without the page's script), the page that gives the links once, and the manage page."""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.core.settings import Settings, SettingsError
from app.storage.schema import polls
from tests.helpers import ADMIN_TOKEN, create_poll
from tests.lifespan import serve


def _form(**fields) -> dict:
    return {"question": "Lunch?", "option": ["Soup", "Salad", "", ""], "admin_token": ADMIN_TOKEN, **fields}


def _links(html: str) -> tuple[str, str]:
    share = re.search(r'id="share-url" href="([^"]+)"', html)
    manage = re.search(r'id="manage-url" href="([^"]+)"', html)
    assert share, html
    assert manage, html
    return share[1], manage[1]


async def _poll_count(client) -> int:
    async with client.app.state.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(polls))).scalar_one()


async def test_the_form_asks_for_the_admin_token_in_admin_mode(client):
    page = await client.get("/polls/new")

    assert page.status_code == 200
    assert 'name="admin_token" type="password"' in page.text
    assert page.text.count('name="option"') >= 2
    assert 'name="eligibility" value="proof-of-work" checked' in page.text  # the default mode


async def test_posting_the_form_creates_the_poll_and_gives_both_links_once(client):
    page = await client.post("/polls/new", data=_form(results_visibility="after-closing"))

    share, manage = _links(page.text)
    poll_id = share.rsplit("/", 1)[1]
    assert page.status_code == 201
    assert page.headers["cache-control"] == "no-store"
    assert "Save this link: it is the only way to manage your poll" in page.text
    assert manage.startswith(f"{share}/manage#key=")
    poll = (await client.get(f"/api/v1/polls/{poll_id}")).json()
    assert [o["label"] for o in poll["options"]] == ["Soup", "Salad"]  # blank fields left out
    assert poll["results_visibility"] == "after-closing"


@pytest.mark.parametrize("mode", ["invite", "anyone", "proof-of-work"])
async def test_the_form_sets_who_may_vote(client, mode):
    page = await client.post("/polls/new", data=_form(eligibility=mode))

    poll_id = _links(page.text)[0].rsplit("/", 1)[1]
    assert (await client.get(f"/api/v1/polls/{poll_id}")).json()["eligibility"] == mode


async def test_the_closing_time_is_read_in_the_organisers_zone(client):
    local = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0, tzinfo=None)

    page = await client.post(
        "/polls/new", data=_form(closes_at=local.isoformat(timespec="minutes"), tz_offset="-05:00")
    )
    poll_id = _links(page.text)[0].rsplit("/", 1)[1]

    expected = local.replace(tzinfo=UTC) + timedelta(hours=5)
    assert (await client.get(f"/api/v1/polls/{poll_id}")).json()["closes_at"] == expected.timestamp() * 1000


async def test_the_scripts_milliseconds_win_over_the_fields(client):
    closes_at = int((datetime.now(UTC) + timedelta(days=1)).timestamp()) * 1000

    page = await client.post("/polls/new", data=_form(closes_at="2000-01-01T00:00", closes_at_ms=str(closes_at)))
    poll_id = _links(page.text)[0].rsplit("/", 1)[1]

    assert (await client.get(f"/api/v1/polls/{poll_id}")).json()["closes_at"] == closes_at


async def test_a_wrong_admin_token_creates_nothing_and_says_so_in_words(client):
    page = await client.post("/polls/new", data=_form(admin_token="not-the-token-at-all"))

    assert page.status_code == 401
    assert "The admin token is not right" in page.text
    assert "Lunch?" in page.text  # what was typed is kept
    assert await _poll_count(client) == 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"option": ["Soup", ""]}, "Give at least two options."),
        ({"option": ["Soup", "soup"]}, "Option 2 reads the same as option 1: “soup”."),
        ({"question": "   "}, "Write the question voters will see."),
        ({"closes_at": "2000-01-01T00:00"}, "The closing time must be in the future"),
        ({"closes_at": "tomorrow"}, "The closing time could not be read"),
        ({"closes_at": "2030-01-01T00:00", "tz_offset": "CET"}, "The time zone offset could not be read"),
    ],
)
async def test_a_form_that_cannot_be_a_poll_says_why_in_words(client, fields, words):
    page = await client.post("/polls/new", data=_form(**fields))

    assert page.status_code == 422
    assert words in page.text.replace("&#39;", "'")
    assert "/problems/" not in page.text
    assert await _poll_count(client) == 0


async def test_the_manage_token_is_never_logged(client, caplog):
    caplog.set_level(logging.DEBUG)

    page = await client.post("/polls/new", data=_form())
    api = await create_poll(client, question="Dinner?", options=["Fish", "Rice"])

    tokens = [_links(page.text)[1].split("#key=")[1], api["manage_url"].split("#key=")[1]]
    assert all(token not in caplog.text for token in tokens)


async def test_the_manage_page_has_the_share_link_a_qr_code_and_no_withheld_counts(client):
    page = await client.post("/polls/new", data=_form(results_visibility="after-closing"))
    share, manage = _links(page.text)

    html = (await client.get(manage.split("#")[0].removeprefix("http://127.0.0.1:8000"))).text

    assert f'href="{share}"' in html
    assert re.search(r'<svg[^>]*class="qr"', html)
    assert f"QR code for {share}" in html
    assert "Voters do not see the results yet" in html
    assert "key=" not in html  # the page never holds the token: the browser keeps it in the fragment


async def test_the_manage_page_of_an_unknown_poll_is_a_page_of_words(client):
    page = await client.get("/polls/no-such-poll/manage", headers={"Accept": "text/html"})

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")


@pytest.fixture
async def open_client(settings):
    async with serve(dataclasses.replace(settings, poll_creation="open")) as http:
        yield http


async def test_in_open_mode_anyone_creates_from_the_form_or_the_api(open_client):
    form = await open_client.get("/polls/new")
    page = await open_client.post("/polls/new", data=_form(admin_token=""))
    api = await open_client.post("/api/v1/polls", json={"question": "Tea?", "options": ["Yes", "No"]})

    assert "admin_token" not in form.text
    assert page.status_code == 201
    assert api.status_code == 201


async def test_in_open_mode_creation_is_rate_limited(open_client):
    statuses = [
        (await open_client.post("/api/v1/polls", json={"question": f"Tea {n}?", "options": ["Yes", "No"]})).status_code
        for n in range(21)
    ]
    page = await open_client.post("/polls/new", data=_form(admin_token=""), headers={"Accept": "text/html"})

    assert statuses == [201] * 20 + [429]
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")


async def test_in_admin_mode_the_api_still_needs_the_token(client):
    response = await client.post("/api/v1/polls", json={"question": "Tea?", "options": ["Yes", "No"]})

    assert response.status_code == 401


def test_poll_creation_setting_is_admin_or_open():
    assert Settings.from_env({}).poll_creation == "admin"
    assert Settings.from_env({"VOTE_POLL_CREATION": "open"}).poll_creation == "open"
    with pytest.raises(SettingsError, match="VOTE_POLL_CREATION"):
        Settings.from_env({"VOTE_POLL_CREATION": "anyone"})
