"""GET /api/v1/polls/{poll_id}/results: counts, ETag and CDN caching."""

from __future__ import annotations

import csv
import io

from tests.helpers import Voter, create_poll, send_vote


async def test_results_count_each_option_and_the_total(client, poll):
    for option in ("yes", "yes", "no"):
        assert (await send_vote(client, Voter().vote(poll["id"], option))).status_code == 201
    body = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
    assert body["poll_id"] == poll["id"]
    assert body["total"] == 3
    assert body["options"] == [{"id": "yes", "label": "Yes", "votes": 2}, {"id": "no", "label": "No", "votes": 1}]


async def test_results_carry_cdn_cache_control(client, poll):
    response = await client.get(f"/api/v1/polls/{poll['id']}/results")
    cache_control = response.headers["cache-control"]
    assert "public" in cache_control
    assert "max-age=1" in cache_control
    assert "stale-while-revalidate" in cache_control


async def test_results_unchanged_answer_304_to_if_none_match(client, poll):
    first = await client.get(f"/api/v1/polls/{poll['id']}/results")
    again = await client.get(f"/api/v1/polls/{poll['id']}/results", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


async def test_results_etag_changes_when_a_vote_arrives(client, poll):
    first = await client.get(f"/api/v1/polls/{poll['id']}/results")
    await send_vote(client, Voter().vote(poll["id"], "yes"))
    again = await client.get(f"/api/v1/polls/{poll['id']}/results", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200
    assert again.json()["total"] == 1


async def test_results_for_unknown_poll_is_404(client):
    response = await client.get("/api/v1/polls/nope/results")
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/poll-not-found"


async def test_results_answer_304_to_a_list_naming_their_etag_or_to_a_star(client, poll):
    etag = (await client.get(f"/api/v1/polls/{poll['id']}/results")).headers["etag"]
    url = f"/api/v1/polls/{poll['id']}/results"
    assert (await client.get(url, headers={"If-None-Match": f'"stale", W/{etag}'})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 304


async def test_results_csv_has_one_row_per_option(client, poll):
    for option in ("yes", "yes", "no"):
        assert (await send_vote(client, Voter().vote(poll["id"], option))).status_code == 201

    response = await client.get(f"/api/v1/polls/{poll['id']}/results.csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv; charset=utf-8")
    assert response.headers["content-disposition"] == f'attachment; filename="{poll["id"]}-results.csv"'
    assert list(csv.reader(io.StringIO(response.text))) == [
        ["option_id", "label", "votes"],
        ["yes", "Yes", "2"],
        ["no", "No", "1"],
    ]


async def test_results_csv_quotes_labels_and_keeps_formulas_as_text(client):
    poll = await create_poll(client, question="Which?", options=['Say "hi", then go', "=1+1", "@SUM(A1)"])

    rows = list(csv.reader(io.StringIO((await client.get(f"/api/v1/polls/{poll['id']}/results.csv")).text)))

    assert [row[1] for row in rows[1:]] == ['Say "hi", then go', "'=1+1", "'@SUM(A1)"]


async def test_results_csv_for_unknown_poll_is_a_problem(client):
    response = await client.get("/api/v1/polls/no-such-poll/results.csv")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
