"""Poll routes for organisers and result screens: create a poll, read it, read its counts."""

from __future__ import annotations

import csv
import hmac
import io
import re
import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Headers
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter

from app.core import problems
from app.core.protocol import ID_PATTERN, PUBLIC_KEY_B64_LEN, b64url_checked
from app.core.settings import Settings
from app.edge.deps import DatabaseDep, PollNewsDep, SettingsDep
from app.edge.errors import problem_specs
from app.edge.http import ClosedJsonBody, JsonBodyRequest, PollId, get_or_head, none_match, require_json_body
from app.eligibility import invitations
from app.polls.results import Results, load_results
from app.polls.store import (
    Option,
    Poll,
    PollSpec,
    ResultsVisibility,
    close_poll,
    create_poll,
    has_voted,
    load_poll,
    manage_token_matches,
    new_manage_token,
    set_results_visibility,
)
from app.polls.validation import INVITE, InvalidPoll

RESULTS_CACHE_CONTROL = "public, max-age=1, stale-while-revalidate=5"
# Counts read with an organiser's token, or by a device that voted, are that reader's alone.
PRIVATE_CACHE_CONTROL = "private, no-store"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8; header=present"
WWW_AUTHENTICATE = 'Bearer realm="admin", Manage realm="poll"'
_VOTER_KEY = re.compile(rf"[A-Za-z0-9_-]{{{PUBLIC_KEY_B64_LEN}}}")


class PollCreated(msgspec.Struct):
    id: str
    question: str
    options: list[Option]
    closes_at: int | None
    late_grace_seconds: int
    url: str
    eligibility: str
    difficulty: int
    results_visibility: ResultsVisibility = "always"
    manage_url: str | None = None
    """The poll's manage link, given this once: only its SHA-256 is kept (docs/organisers.md)."""


class VisibilityChange(msgspec.Struct, forbid_unknown_fields=True):
    results_visibility: ResultsVisibility


def poll_created(poll: Poll, settings: Settings, manage_token: str | None = None) -> PollCreated:
    return PollCreated(
        id=poll.id,
        question=poll.question,
        options=poll.options,
        closes_at=poll.closes_at,
        late_grace_seconds=poll.late_grace_seconds,
        url=poll_url(poll.id, settings),
        eligibility=poll.eligibility,
        difficulty=poll.difficulty,
        results_visibility=poll.results_visibility,
        manage_url=None if manage_token is None else manage_url(settings, poll.id, manage_token),
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


def manage_url(settings: Settings, poll_id: str, token: str) -> str:
    """The token rides in the fragment, which browsers never send: it stays out of access logs,
    proxies and Referer headers; the manage page's script reads it and sends it as a header."""
    return f"{settings.base_url}/polls/{poll_id}/manage#key={token}"


def _credentials(headers: Headers) -> tuple[str, str]:
    scheme, _sep, presented = headers.get("authorization", "").partition(" ")
    return scheme.lower(), presented.strip()


def is_admin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    token: str = connection.app.state.admin_token
    scheme, presented = _credentials(connection.headers)
    # An empty token never opens anything, whatever the configured one turned out to be.
    return scheme == "bearer" and bool(presented) and hmac.compare_digest(presented.encode(), token.encode())


class CreationBudget:
    """Open creation (VOTE_POLL_CREATION=open): at most LIMIT new polls a minute in this worker,
    for everyone together. No client address is kept: it bounds the database's growth, not a person."""

    LIMIT = 20
    WINDOW_S = 60.0

    def __init__(self) -> None:
        self._times: list[float] = []

    def take(self, now: float) -> bool:
        self._times = [t for t in self._times if now - t < self.WINDOW_S]
        if len(self._times) >= self.LIMIT:
            return False
        self._times.append(now)
        return True


def may_create(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """The admin token always; anyone in open mode, within the creation budget (else RateLimited)."""
    if is_admin(connection):
        return True
    settings: Settings = connection.app.state.settings
    if settings.poll_creation != "open":
        return False
    budget = connection.app.state.setdefault("creation_budget", CreationBudget())
    if not budget.take(time.monotonic()):
        raise problems.RateLimited(
            "Many polls were created just now; try again in a minute.", headers={"Retry-After": "60"}
        )
    return True


def require_creator(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not may_create(connection):
        raise problems.Unauthorized(headers={"WWW-Authenticate": WWW_AUTHENTICATE})


async def is_organiser(connection: ASGIConnection[Any, Any, Any, Any], poll_id: str) -> bool:
    """The admin token, or this poll's manage token (`Authorization: Manage TOKEN`)."""
    scheme, presented = _credentials(connection.headers)
    if scheme == "manage":
        return await manage_token_matches(connection.app.state.db, poll_id, presented)
    return is_admin(connection)


async def require_organiser(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    poll_id = str(connection.path_params.get("poll_id", ""))
    if await is_organiser(connection, poll_id):
        return
    if _credentials(connection.headers)[0] == "manage":
        raise problems.Forbidden("This manage token does not manage this poll.")
    raise problems.Unauthorized(
        "Send the admin token (Authorization: Bearer …) or the poll's manage token (Authorization: Manage …).",
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


async def results_reader(request: Request[Any, Any, Any], db: Any, poll_id: str) -> str:
    """The Cache-Control for these counts, or ResultsHidden when this reader may not see them yet.

    after-voting: a device shows it voted by naming its per-poll public key with a counted vote in
    the Vote-Public-Key header (never the URL: access logs would pair it with an address). A key is
    no secret once a ballot log is published: this keeps counts from swaying voters, it does not
    keep them secret (docs/organisers.md). EventSource sends no headers: the stream stays closed
    to voters of such a poll until it closes."""
    if not re.fullmatch(ID_PATTERN, poll_id):
        raise problems.PollNotFound.named(poll_id)
    # The vote path's copy of the poll, no database read when warm: a change of visibility or a
    # close is announced to every worker, which forgets its copy (app/live/poll_news.py).
    cached = await request.app.state.votes.polls.get(poll_id)
    if cached is None:
        raise problems.PollNotFound.named(poll_id)
    withheld = cached.poll.results_withheld(int(time.time() * 1000))
    if withheld is None:
        return RESULTS_CACHE_CONTROL
    if await is_organiser(request, poll_id):
        return PRIVATE_CACHE_CONTROL
    if withheld == "after-voting":
        voter = request.headers.get("vote-public-key", "")
        if _VOTER_KEY.fullmatch(voter) and await has_voted(db, poll_id, b64url_checked(voter)):
            return PRIVATE_CACHE_CONTROL
        raise problems.ResultsHidden("Results are shown after you vote: a device sees them once its vote is counted.")
    raise problems.ResultsHidden("Results are shown after the poll closes.")


class PollController(Controller):
    path = "/api/v1/polls"
    request_class = JsonBodyRequest
    tags = ("polls",)

    @post(
        "/",
        guards=[require_creator],
        operation_id="createPoll",
        summary="Create a poll (admin; anyone when VOTE_POLL_CREATION=open)",
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
            problems.RateLimited,
        ),
        security=[{"bearer": []}],
    )
    async def create(
        self, data: ClosedJsonBody[PollSpec], db: DatabaseDep, settings: SettingsDep, poll_news: PollNewsDep
    ) -> PollCreated:
        token = new_manage_token()
        try:
            poll = await create_poll(db, data, manage_token=token)
        except InvalidPoll as error:
            raise problems.InvalidPoll(str(error)) from None
        await poll_news.announce(poll.id)
        return poll_created(poll, settings, token)

    @post(
        "/{poll_id:str}/close",
        guards=[require_organiser],
        status_code=200,
        operation_id="closePoll",
        summary="Close a poll now (admin, or the poll's manage token)",
        description="Votes cast before now may still arrive within the poll's late-delivery grace, from devices "
        "the service saw before now; every other vote is refused (410 poll-closed) from this answer on, on every "
        "node. A poll that has closed already stays as it was. See docs/protocol.md, Polls.",
        responses=problem_specs(
            problems.InvalidRequest, problems.Unauthorized, problems.Forbidden, problems.PollNotFound
        ),
        security=[{"bearer": []}, {"manage": []}],
    )
    async def close(self, db: DatabaseDep, poll_id: PollId, poll_news: PollNewsDep) -> Poll:
        poll = await close_poll(db, poll_id, int(time.time() * 1000))
        if poll is None:
            raise problems.PollNotFound.named(poll_id)
        await poll_news.announce(poll.id)
        return poll

    @post(
        "/{poll_id:str}/invitations",
        guards=[require_organiser],
        operation_id="issueInvitations",
        summary="Issue single-use invitations for an invite poll (admin, or the poll's manage token)",
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
            problems.Forbidden,
            problems.PollNotFound,
            problems.UnsupportedMediaType,
        ),
        security=[{"bearer": []}, {"manage": []}],
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

    @post(
        "/{poll_id:str}/results-visibility",
        guards=[require_organiser],
        status_code=200,
        operation_id="setResultsVisibility",
        summary="Who may see the counts before the poll closes (admin, or the poll's manage token)",
        description="always, after-voting or after-closing. See docs/organisers.md.",
        before_request=require_json_body,
        opt={"invalid_body_problem": problems.InvalidRequest},
        responses=problem_specs(
            problems.InvalidRequest,
            problems.MalformedJson,
            problems.Unauthorized,
            problems.Forbidden,
            problems.PollNotFound,
            problems.UnsupportedMediaType,
        ),
        security=[{"bearer": []}, {"manage": []}],
    )
    async def set_visibility(
        self, data: ClosedJsonBody[VisibilityChange], db: DatabaseDep, poll_id: PollId, poll_news: PollNewsDep
    ) -> Poll:
        poll = await set_results_visibility(db, poll_id, data.results_visibility)
        if poll is None:
            raise problems.PollNotFound.named(poll_id)
        await poll_news.announce(poll.id)
        return poll

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
        description="403 results-hidden while the poll's results visibility withholds them from this reader: "
        "an organiser's token, or a Vote-Public-Key header naming a device key with a counted vote (after-voting), "
        "reads them.",
        responses=problem_specs(problems.InvalidRequest, problems.PollNotFound, problems.ResultsHidden),
    )
    async def results(self, request: Request[Any, Any, Any], db: DatabaseDep, poll_id: PollId) -> Response[Any]:
        cache_control = await results_reader(request, db, poll_id)
        results = await load_results(db, poll_id)
        if results is None:
            raise problems.PollNotFound.named(poll_id)
        headers = {"ETag": results.etag, "Cache-Control": cache_control}
        if none_match(request.headers.get("if-none-match"), results.etag):
            return Response(content=b"", status_code=304, headers=headers)
        return Response(content=results, headers=headers)

    @get_or_head(
        "/{poll_id:str}/results.csv",
        operation_id="getResultsCsv",
        summary="Counts per option as CSV (RFC 4180): option_id,label,votes, one row per option",
        media_type=CSV_MEDIA_TYPE,
        responses=problem_specs(problems.InvalidRequest, problems.PollNotFound, problems.ResultsHidden),
    )
    async def results_csv(self, request: Request[Any, Any, Any], db: DatabaseDep, poll_id: PollId) -> Response[str]:
        cache_control = await results_reader(request, db, poll_id)
        results = await load_results(db, poll_id)
        if results is None:
            raise problems.PollNotFound.named(poll_id)
        headers = {
            "Cache-Control": cache_control,
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
