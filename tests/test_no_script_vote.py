"""Voting without JavaScript in an `invite` poll (docs/protocol.md, Voting without JavaScript):
a plain form with the invitation code, a ballot the service signs for that code, counted once
through the same acceptance path however often the form is sent, and answered with a page."""

from __future__ import annotations

import html
import re

import httpx
from nacl.signing import VerifyKey
from sqlalchemy import select

from app.core.protocol import signing_bytes
from app.eligibility.no_script import ballot_key, grouped
from app.storage.schema import votes
from tests.helpers import Voter, admin_headers, create_poll, send_vote


async def _invite_poll(client: httpx.AsyncClient, count: int = 1) -> tuple[dict, list[str]]:
    poll = await create_poll(
        client, question="Lunch?", options=[{"id": "soup", "label": "Soup"}, "Salad"], eligibility="invite"
    )
    issued = await client.post(
        f"/api/v1/polls/{poll['id']}/invitations", json={"count": count}, headers=admin_headers()
    )
    assert issued.status_code == 201, issued.text
    return poll, [i["code"] for i in issued.json()["invitations"]]


async def _form(client: httpx.AsyncClient, poll_id: str) -> dict[str, str]:
    """The poll page's form fields as a browser without script has them."""
    page = (await client.get(f"/polls/{poll_id}")).text
    token = re.search(r'name="form_token" value="([^"]+)"', page)
    assert token, page
    assert '<label class="code-label" for="invitation">Invitation code</label>' in page
    return {"form_token": token[1]}


async def _total(client: httpx.AsyncClient, poll_id: str) -> int:
    return (await client.get(f"/api/v1/polls/{poll_id}/results")).json()["total"]


def _tracker(page: str) -> str:
    found = re.search(r'<p class="tracker"><code>([^<]+)</code>', page)
    assert found, page
    return found[1]


async def test_a_vote_without_script_is_counted_and_answered_with_a_page(client):
    poll, [code] = await _invite_poll(client)
    form = await _form(client, poll["id"])

    page = await client.post(f"/polls/{poll['id']}", data={**form, "option": "soup", "invitation": code})

    assert page.status_code == 201
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert 'Your vote for <strong dir="auto">Soup</strong> is counted.' in page.text
    assert re.fullmatch(rf"{poll['id']}:1:[A-Za-z0-9_-]{{8}}", _tracker(page.text))
    assert await _total(client, poll["id"]) == 1


async def test_the_same_form_sent_twice_counts_once_with_the_same_receipt(client):
    poll, [code] = await _invite_poll(client)
    fields = {**(await _form(client, poll["id"])), "option": "soup", "invitation": code}

    first = await client.post(f"/polls/{poll['id']}", data=fields)
    again = await client.post(f"/polls/{poll['id']}", data=fields)

    assert (first.status_code, again.status_code) == (201, 200)
    assert _tracker(first.text) == _tracker(again.text)
    assert await _total(client, poll["id"]) == 1


async def test_a_second_form_for_the_same_invitation_says_what_was_counted(client):
    poll, [code] = await _invite_poll(client)
    fields = {**(await _form(client, poll["id"])), "option": "soup", "invitation": code}
    await client.post(f"/polls/{poll['id']}", data=fields)

    second = await client.post(
        f"/polls/{poll['id']}", data={**(await _form(client, poll["id"])), "option": "salad", "invitation": code}
    )

    assert second.status_code == 200
    assert 'its vote for <strong dir="auto">Soup</strong> is counted' in second.text
    results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
    assert [(o["id"], o["votes"]) for o in results["options"]] == [("soup", 1), ("salad", 0)]


async def test_the_code_may_be_typed_in_its_printed_groups_or_pasted_as_the_link(client):
    poll, codes = await _invite_poll(client, 2)

    grouped_page = await client.post(
        f"/polls/{poll['id']}",
        data={**(await _form(client, poll["id"])), "option": "soup", "invitation": f" {grouped(codes[0])} "},
    )
    link_page = await client.post(
        f"/polls/{poll['id']}",
        data={**(await _form(client, poll["id"])), "option": "salad", "invitation": f"{poll['url']}#invite={codes[1]}"},
    )

    assert (grouped_page.status_code, link_page.status_code) == (201, 201)
    assert await _total(client, poll["id"]) == 2


async def test_a_wrong_code_or_no_choice_gives_the_form_again_in_words(client):
    poll, _ = await _invite_poll(client)
    form = await _form(client, poll["id"])

    unknown = await client.post(f"/polls/{poll['id']}", data={**form, "option": "soup", "invitation": "A" * 22})
    not_code = await client.post(f"/polls/{poll['id']}", data={**form, "option": "soup", "invitation": "my code"})
    no_option = await client.post(f"/polls/{poll['id']}", data={**form, "invitation": "A" * 22})

    assert [r.status_code for r in (unknown, not_code, no_option)] == [422, 422, 422]
    for response in (unknown, not_code, no_option):
        assert response.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in response.text
        assert 'name="form_token"' in response.text  # the form comes back, ready to send again
    assert "not one of this poll's invitations" in html.unescape(unknown.text)
    assert "That is not an invitation code" in not_code.text
    assert "Choose an option, then vote." in no_option.text
    assert re.search(r"value=\"soup\"[^>]* checked>", unknown.text)  # the choice is kept
    assert await _total(client, poll["id"]) == 0


async def test_an_invitation_used_by_a_device_is_refused_in_words(client):
    poll, [code] = await _invite_poll(client)
    device = Voter()
    sent = await send_vote(client, device.vote(poll["id"], "soup", invitation=code) | {"invitation": code})
    assert sent.status_code == 201, sent.text

    page = await client.post(
        f"/polls/{poll['id']}", data={**(await _form(client, poll["id"])), "option": "salad", "invitation": code}
    )

    assert page.status_code == 403
    assert "This invitation was already used on another device" in page.text
    assert await _total(client, poll["id"]) == 1


async def test_the_ballot_is_stored_signed_by_a_key_of_its_invitation_alone(client):
    poll, [code] = await _invite_poll(client)
    fields = {**(await _form(client, poll["id"])), "option": "soup", "invitation": code}
    await client.post(f"/polls/{poll['id']}", data=fields)

    async with client.app.state.db.read() as conn:
        row = (await conn.execute(select(votes).where(votes.c.poll_id == poll["id"]))).one()
    expected = ballot_key(client.app.state.eligibility_key, poll["id"], code).verify_key
    assert row.public_key == bytes(expected)
    signed = signing_bytes(poll["id"], row.option_id, row.vote_id, row.idempotency_key, row.created_at)
    VerifyKey(row.public_key).verify(signed, row.signature)  # as any auditor of the log checks it
    other_poll, _ = await _invite_poll(client)
    assert bytes(ballot_key(client.app.state.eligibility_key, other_poll["id"], code).verify_key) != row.public_key


async def test_a_closed_invite_poll_says_so_without_counting(client):
    poll, [code] = await _invite_poll(client)
    form = await _form(client, poll["id"])
    closed = await client.post(f"/api/v1/polls/{poll['id']}/close", headers=admin_headers())
    assert closed.status_code == 200

    page = await client.post(f"/polls/{poll['id']}", data={**form, "option": "soup", "invitation": code})

    assert page.status_code == 410
    assert "This poll has closed" in page.text
    assert await _total(client, poll["id"]) == 0
