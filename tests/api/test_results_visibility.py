"""A poll's results visibility is honoured by every route that shows counts: the JSON, the CSV,
the stream and the pages; organisers always see them, and everyone once the poll closes."""

from __future__ import annotations

import pytest

from tests.helpers import Voter, admin_headers, close_poll, create_poll, send_vote

ROUTES = ("/api/v1/polls/{id}/results", "/api/v1/polls/{id}/results.csv", "/api/v1/polls/{id}/stream")


async def _refused(client, url: str, **headers: str) -> dict:
    """The problem a withheld route answers; HEAD first, which ends even where a stream would not
    (httpx's ASGI transport waits for the whole body)."""
    assert (await client.head(url, headers=headers)).status_code == 403
    hidden = await client.get(url, headers=headers)
    assert (hidden.status_code, hidden.json()["type"]) == (403, "/problems/results-hidden")
    return hidden.json()


async def _poll(client, visibility: str) -> dict:
    return await create_poll(client, question="Lunch?", options=["Soup", "Salad"], results_visibility=visibility)


@pytest.mark.parametrize("route", ROUTES)
async def test_after_closing_hides_the_counts_until_the_poll_closes(client, route):
    poll = await _poll(client, "after-closing")

    hidden = await _refused(client, route.format(id=poll["id"]))

    assert "after the poll closes" in hidden["detail"]
    await close_poll(client, poll["id"])
    assert (await client.head(route.format(id=poll["id"]))).status_code == 200


@pytest.mark.parametrize("route", ROUTES[:2])
async def test_organisers_read_hidden_counts(client, route):
    poll = await _poll(client, "after-closing")

    response = await client.get(route.format(id=poll["id"]), headers=admin_headers())

    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("route", ROUTES)
async def test_after_voting_shows_the_counts_to_a_device_with_a_counted_vote(client, route):
    poll = await _poll(client, "after-voting")
    voter, onlooker = Voter(), Voter()
    assert (await send_vote(client, voter.vote(poll["id"], "soup"))).status_code == 201

    hidden = await _refused(client, route.format(id=poll["id"]), **{"Vote-Public-Key": onlooker.public_key})
    assert "after you vote" in hidden["detail"]
    shown = await client.head(route.format(id=poll["id"]), headers={"Vote-Public-Key": voter.public_key})
    assert shown.status_code == 200


async def test_always_is_the_default(client, poll):
    assert (await client.get(f"/api/v1/polls/{poll['id']}")).json()["results_visibility"] == "always"
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).status_code == 200


@pytest.mark.parametrize(
    ("visibility", "words"), [("after-voting", "after you vote"), ("after-closing", "after the poll closes")]
)
@pytest.mark.parametrize("page_path", ["/polls/{id}", "/polls/{id}/results"])
async def test_pages_say_when_results_are_shown_and_show_no_counts(client, visibility, words, page_path):
    poll = await _poll(client, visibility)
    assert (await send_vote(client, Voter().vote(poll["id"], "soup"))).status_code == 201

    html = (await client.get(page_path.format(id=poll["id"]))).text

    assert f"Results are shown {words}" in html
    assert "data-results=" not in html
    assert "1 vote in total" not in html


async def test_hiding_the_counts_takes_effect_at_once(client, poll):
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).status_code == 200  # the poll is in memory

    changed = await client.post(
        f"/api/v1/polls/{poll['id']}/results-visibility",
        json={"results_visibility": "after-closing"},
        headers=admin_headers(),
    )

    assert changed.status_code == 200
    assert (await client.get(f"/api/v1/polls/{poll['id']}/results")).status_code == 403
