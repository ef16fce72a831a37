"""Who may vote (docs/abuse.md): each poll's mode, chosen at creation, and each refusal, on the
single endpoint, its fast path and the batch endpoint alike."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.eligibility.stamps import leading_zero_bits, solve, stamp_input, stamp_valid
from app.polls.validation import DEFAULT_DIFFICULTY
from tests.helpers import Voter, admin_headers, create_poll, send_vote
from tests.test_cli import run_cli

LOW = 8  # a cheap difficulty, so that tests solve stamps in milliseconds


async def batch(client: httpx.AsyncClient, *votes: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post("/api/v1/votes/batch", json={"votes": list(votes)})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return response.json()["type"]


# Polls


async def test_new_polls_take_proof_of_work_by_default(client):
    poll = await create_poll(client, question="Q?", options=["A", "B"], eligibility="proof-of-work")
    plain = (
        await client.post("/api/v1/polls", json={"question": "Q?", "options": ["A", "B"]}, headers=admin_headers())
    ).json()
    assert (plain["eligibility"], plain["difficulty"]) == ("proof-of-work", DEFAULT_DIFFICULTY)
    shown = (await client.get(f"/api/v1/polls/{poll['id']}")).json()
    assert (shown["eligibility"], shown["difficulty"]) == ("proof-of-work", DEFAULT_DIFFICULTY)


@pytest.mark.parametrize("mode", ["invite", "anyone"])
async def test_other_modes_are_explicit_and_have_no_difficulty(client, mode):
    poll = await create_poll(client, question="Q?", options=["A", "B"], eligibility=mode)
    shown = (await client.get(f"/api/v1/polls/{poll['id']}")).json()
    assert (shown["eligibility"], shown["difficulty"]) == (mode, 0)


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"eligibility": "everyone"}, 400),
        ({"eligibility": "proof-of-work", "difficulty": 7}, 422),
        ({"eligibility": "proof-of-work", "difficulty": 25}, 422),
        ({"eligibility": "anyone", "difficulty": 10}, 422),
    ],
)
async def test_unknown_modes_and_difficulties_out_of_range_are_refused(client, spec, status):
    response = await client.post(
        "/api/v1/polls", json={"question": "Q?", "options": ["A", "B"], **spec}, headers=admin_headers()
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


# Proof of work


def test_a_stamp_is_bound_to_its_poll_and_key():
    nonce = solve("poll-a", "k" * 43, 12)
    assert stamp_valid("poll-a", "k" * 43, nonce, 12)
    assert leading_zero_bits(hashlib.sha256(stamp_input("poll-a", "k" * 43, nonce)).digest()) >= 12
    # Almost surely not valid elsewhere: each of these has a 1 in 4096 chance.
    assert not stamp_valid("poll-b", "k" * 43, nonce, 12) or not stamp_valid("poll-a", "j" * 43, nonce, 12)


STAMP_VECTORS = json.loads((Path(__file__).parent / "vectors" / "stamp-v1.json").read_text())


@pytest.mark.parametrize("case", STAMP_VECTORS["stamps"], ids=lambda c: f"{len(c['poll_id'])}-{c['difficulty']}")
def test_stamp_vectors(case):
    public_key = STAMP_VECTORS["public_key"]
    hashed = stamp_input(case["poll_id"], public_key, case["stamp"])
    assert hashed.decode() == case["hash_input"]
    assert hashlib.sha256(hashed).hexdigest() == case["sha256_hex"]
    assert stamp_valid(case["poll_id"], public_key, case["stamp"], case["difficulty"])
    assert solve(case["poll_id"], public_key, case["difficulty"]) == case["stamp"]  # the first that meets it


async def test_proof_of_work_vote_needs_its_own_stamp(client, voter):
    poll = await create_poll(client, question="Q?", options=["A", "B"], eligibility="proof-of-work", difficulty=LOW)
    option = poll["options"][0]["id"]
    missing = await send_vote(client, voter.vote(poll["id"], option))
    assert missing.status_code == 403
    assert problem_type(missing) == "/problems/proof-of-work-required"

    other = Voter()
    someone_elses = solve(poll["id"], other.public_key, LOW)
    if not stamp_valid(poll["id"], voter.public_key, someone_elses, LOW):  # 255 times in 256
        wrong = await send_vote(client, voter.vote(poll["id"], option, stamp=someone_elses))
        assert (wrong.status_code, problem_type(wrong)) == (403, "/problems/proof-of-work-required")

    stamped = await send_vote(client, voter.vote(poll["id"], option, stamp=solve(poll["id"], voter.public_key, LOW)))
    assert stamped.status_code == 201, stamped.text


async def test_the_stamp_is_checked_before_the_signature(client, voter):
    poll = await create_poll(client, question="Q?", options=["A", "B"], eligibility="proof-of-work", difficulty=LOW)
    forged = voter.vote(poll["id"], poll["options"][0]["id"], signature="A" * 86)
    response = await send_vote(client, forged)
    assert (response.status_code, problem_type(response)) == (403, "/problems/proof-of-work-required")


async def test_the_batch_endpoint_checks_stamps_per_vote(client):
    poll = await create_poll(client, question="Q?", options=["A", "B"], eligibility="proof-of-work", difficulty=LOW)
    option = poll["options"][0]["id"]
    good, bad = Voter(), Voter()
    results = await batch(
        client,
        good.vote(poll["id"], option, stamp=solve(poll["id"], good.public_key, LOW)),
        bad.vote(poll["id"], option),
    )
    assert results[0]["status"] == 201
    assert (results[1]["status"], results[1]["problem"]["type"]) == (403, "/problems/proof-of-work-required")


async def test_anyone_polls_take_votes_without_the_new_fields(client, voter):
    poll = await create_poll(client, question="Q?", options=["A", "B"], eligibility="anyone")
    response = await send_vote(client, voter.vote(poll["id"], poll["options"][0]["id"]))
    assert response.status_code == 201, response.text


# Invitations


async def invite(client: httpx.AsyncClient, poll_id: str, count: int) -> list[dict[str, str]]:
    response = await client.post(f"/api/v1/polls/{poll_id}/invitations", json={"count": count}, headers=admin_headers())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["poll_id"] == poll_id
    return body["invitations"]


@pytest.fixture
async def invite_poll(client) -> dict[str, Any]:
    return await create_poll(client, question="Q?", options=["A", "B"], eligibility="invite")


async def test_invitation_urls_carry_the_code_in_the_fragment(client, invite_poll):
    [invitation] = await invite(client, invite_poll["id"], 1)
    assert invitation["url"] == f"{invite_poll['url']}#invite={invitation['code']}"


async def test_invitations_export_as_csv(client, invite_poll):
    response = await client.post(
        f"/api/v1/polls/{invite_poll['id']}/invitations?format=csv", json={"count": 2}, headers=admin_headers()
    )
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/csv")
    header, *rows = response.text.strip().split("\r\n")
    assert header == "poll_id,code,url"
    assert len(rows) == 2
    assert all(row.startswith(invite_poll["id"] + ",") and "#invite=" in row for row in rows)


async def test_invitations_need_the_admin_and_an_invite_poll(client, invite_poll):
    unauthorised = await client.post(f"/api/v1/polls/{invite_poll['id']}/invitations", json={"count": 1})
    assert unauthorised.status_code == 401
    open_poll = await create_poll(client, question="Q?", options=["A", "B"], eligibility="anyone")
    wrong_mode = await client.post(
        f"/api/v1/polls/{open_poll['id']}/invitations", json={"count": 1}, headers=admin_headers()
    )
    assert (wrong_mode.status_code, problem_type(wrong_mode)) == (400, "/problems/invalid-request")
    too_many = await client.post(
        f"/api/v1/polls/{invite_poll['id']}/invitations", json={"count": 10_001}, headers=admin_headers()
    )
    assert too_many.status_code == 400


async def test_a_key_without_an_invitation_is_not_eligible(client, invite_poll, voter):
    response = await send_vote(client, voter.vote(invite_poll["id"], invite_poll["options"][0]["id"]))
    assert (response.status_code, problem_type(response)) == (403, "/problems/not-eligible")


async def test_an_unknown_code_is_refused(client, invite_poll, voter):
    await invite(client, invite_poll["id"], 1)
    vote = voter.vote(invite_poll["id"], invite_poll["options"][0]["id"], invitation="x" * 22)
    response = await send_vote(client, vote)
    assert (response.status_code, problem_type(response)) == (403, "/problems/invitation-unknown")


async def test_a_code_admits_one_key_for_good(client, invite_poll):
    [invitation] = await invite(client, invite_poll["id"], 1)
    option = invite_poll["options"][0]["id"]
    first, second = Voter(), Voter()
    vote = first.vote(invite_poll["id"], option, invitation=invitation["code"])
    assert (await send_vote(client, vote)).status_code == 201
    # A retry, with or without the code, gets the same receipt: the key stays admitted.
    retry = await send_vote(client, {k: v for k, v in vote.items() if k != "invitation"})
    assert retry.status_code == 200
    used = await send_vote(client, second.vote(invite_poll["id"], option, invitation=invitation["code"]))
    assert (used.status_code, problem_type(used)) == (403, "/problems/invitation-used")
    [item] = await batch(client, second.vote(invite_poll["id"], option, invitation=invitation["code"]))
    assert (item["status"], item["problem"]["type"]) == (403, "/problems/invitation-used")


async def test_a_code_binds_nothing_for_a_forged_vote(client, invite_poll, voter):
    [invitation] = await invite(client, invite_poll["id"], 1)
    option = invite_poll["options"][0]["id"]
    forged = voter.vote(invite_poll["id"], option, invitation=invitation["code"], signature="A" * 86)
    assert (await send_vote(client, forged)).status_code == 422
    honest = Voter().vote(invite_poll["id"], option, invitation=invitation["code"])
    assert (await send_vote(client, honest)).status_code == 201


async def test_fifty_first_uses_of_one_code_at_once_admit_exactly_one(client, invite_poll):
    [invitation] = await invite(client, invite_poll["id"], 1)
    option = invite_poll["options"][0]["id"]
    votes = [Voter().vote(invite_poll["id"], option, invitation=invitation["code"]) for _ in range(50)]
    responses = await asyncio.gather(*(send_vote(client, v) for v in votes))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [403] * 49
    assert {problem_type(r) for r in responses if r.status_code == 403} == {"/problems/invitation-used"}
    results = (await client.get(f"/api/v1/polls/{invite_poll['id']}/results")).json()
    assert results["total"] == 1


async def test_codes_are_not_in_the_database_in_clear(client, invite_poll, settings):
    invitations = await invite(client, invite_poll["id"], 20)
    option = invite_poll["options"][0]["id"]
    assert (
        await send_vote(client, Voter().vote(invite_poll["id"], option, invitation=invitations[0]["code"]))
    ).status_code == 201
    dump = await database_dump(client)
    for invitation in invitations:
        assert invitation["code"] not in dump
        assert invitation["code"].encode() not in dump.encode("latin-1", "replace")


async def database_dump(client: httpx.AsyncClient) -> str:
    """Every row of every table, as text (binary columns as latin-1), on SQLite and PostgreSQL."""
    from sqlalchemy import select

    from app.storage.schema import metadata

    rows = []
    async with client.app.state.db.read() as conn:  # type: ignore[attr-defined]
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                rows.append(" ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row))
    return "\n".join(rows)


def test_the_cli_issues_invitations_as_json_and_csv(tmp_path):
    created = run_cli(
        "polls", "create", "--question", "Q?", "--option", "A", "--option", "B", "--eligibility", "invite",
        data_dir=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    poll = json.loads(created.stdout)
    assert poll["eligibility"] == "invite"
    issued = run_cli("polls", "invite", poll["id"], "--count", "3", data_dir=tmp_path)
    assert issued.returncode == 0, issued.stderr
    body = json.loads(issued.stdout)
    assert body["poll_id"] == poll["id"]
    assert len(body["invitations"]) == 3
    assert all(i["url"].endswith(f"#invite={i['code']}") for i in body["invitations"])
    assert (tmp_path / "eligibility-key").stat().st_mode & 0o777 == 0o600
    rows = run_cli("polls", "invite", poll["id"], "--count", "2", "--csv", data_dir=tmp_path)
    assert rows.stdout.splitlines()[0] == "poll_id,code,url"
    assert len(rows.stdout.splitlines()) == 3


def test_an_empty_eligibility_key_stops_the_start(tmp_path):
    (tmp_path / "eligibility-key").write_bytes(b"")
    created = run_cli("polls", "create", "--question", "Q?", "--option", "A", "--option", "B", data_dir=tmp_path)
    assert created.returncode == 0  # making a poll needs no key
    poll = json.loads(created.stdout)
    issued = run_cli("polls", "invite", poll["id"], "--count", "1", data_dir=tmp_path)
    assert issued.returncode != 0
    words = " ".join(issued.stderr.replace("│", " ").split())  # the CLI frames its message
    assert "expected 32 random bytes, found 0" in words
