"""Poll routes for organisers and result screens: create a poll, read it, read its counts."""

from __future__ import annotations

import csv
import hmac
import io
import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter

from app.core import problems
from app.core.settings import Settings
from app.edge.deps import DatabaseDep, PollNewsDep, SettingsDep
from app.edge.errors import problem_specs
from app.edge.http import ClosedJsonBody, JsonBodyRequest, PollId, get_or_head, none_match, require_json_body
from app.eligibility import invitations
from app.polls.results import Results, load_results
from app.polls.store import Option, Poll, PollSpec, close_poll, create_poll, load_poll
from app.polls.validation import INVITE, InvalidPoll

RESULTS_CACHE_CONTROL = "public, max-age=1, stale-while-revalidate=5"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8; header=present"


class PollCreated(msgspec.Struct):
    id: str
    question: str
    options: list[Option]
    closes_at: int | None
    late_grace_seconds: int
    url: str
    eligibility: str
    difficulty: int


def poll_created(poll: Poll, settings: Settings) -> PollCreated:
    return PollCreated(
        id=poll.id,
        question=poll.question,
        options=poll.options,
        closes_at=poll.closes_at,
        late_grace_seconds=poll.late_grace_seconds,
        url=poll_url(poll.id, settings),
        eligibility=poll.eligibility,
        difficulty=poll.difficulty,
    )


def poll_url(poll_id: str, settings: Settings) -> str:
    return f"{settings.base_url}/polls/{poll_id}"


class InvitationRequest(msgspec.Struct, forbid_unknown_fields=True):
    count: Annotated[int, msgspec.Meta(ge=1, le=invitations.MAX_PER_REQUEST)]


class Invitation(msgspec.Struct):
    code: str
    url: str
    """The poll page with the code in the fragment: a browser never sends it in a request."""


class InvitationList(msgspec.Struct):
    poll_id: str
    invitations: list[Invitation]


async def issue_invitations(db: Any, key: bytes, poll_id: str, count: int, settings: Settings) -> InvitationList:
    """New invitations for an `invite` poll (the admin API and `litestar polls invite`)."""
    poll = await load_poll(db, poll_id)
    if poll is None:
        raise problems.PollNotFound.named(poll_id)
    if poll.eligibility != INVITE:
        raise problems.InvalidRequest(
            f"Poll {poll_id!r} is a {poll.eligibility!r} poll; invitations are for invite polls."
        )
    codes = await invitations.issue(db, key, poll_id, count)
    url = poll_url(poll_id, settings)
    return InvitationList(poll_id, [Invitation(code, f"{url}#invite={code}") for code in codes])


def invitations_csv(issued: InvitationList) -> str:
    """One row per invitation, for a mail merge or printing."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["poll_id", "code", "url"])
    writer.writerows([issued.poll_id, i.code, i.url] for i in issued.invitations)
    return out.getvalue()


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    token: str = connection.app.state.admin_token
    scheme, _sep, presented = connection.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    # An empty token never opens anything, whatever the configured one turned out to be.
    if scheme.lower() != "bearer" or not presented or not hmac.compare_digest(presented.encode(), token.encode()):
        raise problems.Unauthorized(headers={"WWW-Authenticate": 'Bearer realm="admin"'})


class PollController(Controller):
    path = "/api/v1/polls"
    request_class = JsonBodyRequest
    tags = ("polls",)

    @post(
        "/",
        guards=[require_admin],
        operation_id="createPoll",
        summary="Create a poll (admin)",
        description="Texts are NFC-normalised and trimmed; the limits the schema cannot state (visible text, "
        "labels a voter can tell apart, closes_at ahead but not too far) answer 422 invalid-poll. "
        "See docs/protocol.md, Polls.",
        before_request=require_json_body,
        opt={"invalid_body_problem": problems.InvalidRequest},
        responses=problem_specs(
            problems.InvalidRequest,
            problems.MalformedJson,
            problems.DuplicateHeader,
            problems.Unauthorized,
            problems.PayloadTooLarge,
            problems.UnsupportedMediaType,
            problems.InvalidPoll,
        ),
        security=[{"bearer": []}],
    )
    async def create(
        self, data: ClosedJsonBody[PollSpec], db: DatabaseDep, settings: SettingsDep, poll_news: PollNewsDep
    ) -> PollCreated:
        try:
            poll = await create_poll(db, data)
        except InvalidPoll as error:
            raise problems.InvalidPoll(str(error)) from None
        await poll_news.announce(poll.id)
        return poll_created(poll, settings)

    @post(
        "/{poll_id:str}/close",
        guards=[require_admin],
        status_code=200,
        operation_id="closePoll",
        summary="Close a poll now (admin)",
        description="Votes cast before now may still arrive within the poll's late-delivery grace, from devices "
        "the service saw before now; every other vote is refused (410 poll-closed) from this answer on, on every "
        "node. A poll that has closed already stays as it was. See docs/protocol.md, Polls.",
        responses=problem_specs(problems.InvalidRequest, problems.Unauthorized, problems.PollNotFound),
        security=[{"bearer": []}],
    )
    async def close(self, db: DatabaseDep, poll_id: PollId, poll_news: PollNewsDep) -> Poll:
        poll = await close_poll(db, poll_id, int(time.time() * 1000))
        if poll is None:
            raise problems.PollNotFound.named(poll_id)
        await poll_news.announce(poll.id)
        return poll

    @post(
        "/{poll_id:str}/invitations",
        guards=[require_admin],
        operation_id="issueInvitations",
        summary="Issue single-use invitations for an invite poll (admin)",
        description="Each code admits one device key, forever; only its keyed hash is kept, so this answer is "
        "the only copy. `format=csv` answers text/csv for a mail merge. See docs/abuse.md.",
        before_request=require_json_body,
        opt={"invalid_body_problem": problems.InvalidRequest},
        status_code=201,
        responses=problem_specs(
            problems.InvalidRequest,
            problems.MalformedJson,
            problems.DuplicateHeader,
            problems.Unauthorized,
            problems.PollNotFound,
            problems.UnsupportedMediaType,
        ),
        security=[{"bearer": []}],
    )
    async def invite(
        self,
        request: Request[Any, Any, Any],
        data: ClosedJsonBody[InvitationRequest],
        db: DatabaseDep,
        settings: SettingsDep,
        poll_id: PollId,
        format: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
    ) -> Response[Any]:
        issued = await issue_invitations(db, request.app.state.eligibility_key, poll_id, data.count, settings)
        if format == "csv":
            return Response(invitations_csv(issued), media_type="text/csv; charset=utf-8", status_code=201)
        return Response(issued, status_code=201)

    @get_or_head(
        "/{poll_id:str}",
        operation_id="getPoll",
        summary="A poll and its options",
        responses=problem_specs(problems.InvalidRequest, problems.PollNotFound),
    )
    async def show(self, db: DatabaseDep, poll_id: PollId) -> Poll:
        poll = await load_poll(db, poll_id)
        if poll is None:
            raise problems.PollNotFound.named(poll_id)
        return poll

    @get_or_head(
        "/{poll_id:str}/results",
        operation_id="getResults",
        summary="Counts per option; cacheable, with an ETag",
        responses=problem_specs(problems.InvalidRequest, problems.PollNotFound),
    )
    async def results(self, request: Request[Any, Any, Any], db: DatabaseDep, poll_id: PollId) -> Response[Any]:
        results = await load_results(db, poll_id)
        if results is None:
            raise problems.PollNotFound.named(poll_id)
        headers = {"ETag": results.etag, "Cache-Control": RESULTS_CACHE_CONTROL}
        if none_match(request.headers.get("if-none-match"), results.etag):
            return Response(content=b"", status_code=304, headers=headers)
        return Response(content=results, headers=headers)

    @get_or_head(
        "/{poll_id:str}/results.csv",
        operation_id="getResultsCsv",
        summary="Counts per option as CSV (RFC 4180): option_id,label,votes, one row per option",
        media_type=CSV_MEDIA_TYPE,
        responses=problem_specs(problems.InvalidRequest, problems.PollNotFound),
    )
    async def results_csv(self, db: DatabaseDep, poll_id: PollId) -> Response[str]:
        results = await load_results(db, poll_id)
        if results is None:
            raise problems.PollNotFound.named(poll_id)
        headers = {
            "Cache-Control": RESULTS_CACHE_CONTROL,
            "Content-Disposition": f'attachment; filename="{poll_id}-results.csv"',
        }
        return Response(content=results_as_csv(results), media_type=CSV_MEDIA_TYPE, headers=headers)


def results_as_csv(results: Results) -> str:
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\r\n")
    writer.writerow(("option_id", "label", "votes"))
    for option in results.options:
        writer.writerow((option.id, spreadsheet_safe(option.label), option.votes))
    return rows.getvalue()


def spreadsheet_safe(text: str) -> str:
    """A label a spreadsheet would run as a formula (=, +, -, @ first) is kept as text (OWASP, CSV
    injection): organisers open these files, and a label is anyone's text."""
    return f"'{text}" if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text
