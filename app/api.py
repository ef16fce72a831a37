"""HTTP controllers: they translate between HTTP and the domain, and nothing more."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, JSONBody, Parameter

from app import problems
from app.batch import MAX_BATCH_BODY_BYTES, BatchRequest, BatchResponseDoc, submit_batch
from app.deps import DatabaseDep, ReceiptKeysDep, SettingsDep, VoteServiceDep
from app.idempotency import idempotency_key_from
from app.keys import PublicKeyInfo
from app.polls import DuplicateOption, Option, Poll, PollSpec, create_poll, load_poll
from app.protocol import ID_PATTERN, Receipt, Vote
from app.results import load_results
from app.settings import Settings
from app.vote_path import VoteFastPath

MAX_VOTE_BODY_BYTES = 4 * 1024
RESULTS_CACHE_CONTROL = "public, max-age=1, stale-while-revalidate=5"
PollId = Annotated[str, Parameter(pattern=ID_PATTERN, description="A poll id, [A-Za-z0-9_-]{1,64}.")]


class PollCreated(msgspec.Struct):
    id: str
    question: str
    options: list[Option]
    closes_at: int | None
    late_grace_seconds: int
    url: str


class KeyList(msgspec.Struct):
    keys: list[PublicKeyInfo]


class Health(msgspec.Struct):
    status: str


def _problem_specs(*kinds: type[problems.Problem]) -> dict[int, ResponseSpec]:
    by_status: dict[int, list[type[problems.Problem]]] = {}
    for kind in kinds:
        by_status.setdefault(kind.status, []).append(kind)
    return {
        status: ResponseSpec(
            data_container=problems.ProblemDetails,
            media_type=problems.PROBLEM_MEDIA_TYPE,
            description="; ".join(f"`{problems.TYPE_PREFIX}{k.slug}`: {k.title}" for k in group),
            examples=[
                Example(
                    summary=k.slug, value={"type": problems.TYPE_PREFIX + k.slug, "title": k.title, "status": status}
                )
                for k in group
            ],
        )
        for status, group in by_status.items()
    }


# Hot-path checks run as before_request hooks rather than guards: Litestar copies the route
# handler for every guard call, which costs more than the check itself.
async def require_json(request: Request[Any, Any, Any]) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise problems.UnsupportedMediaType(f"Send application/json, not {media_type or 'nothing'}.")


async def require_json_and_idempotency_key(request: Request[Any, Any, Any]) -> None:
    await require_json(request)
    request.state.idempotency_key = idempotency_key_from(request.headers.get("idempotency-key"))


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    token: str = connection.app.state.admin_token
    scheme, _sep, presented = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise problems.Unauthorized(headers={"WWW-Authenticate": 'Bearer realm="admin"'})


class PollController(Controller):
    path = "/api/v1/polls"
    tags = ("polls",)

    @post(
        "/",
        guards=[require_admin],
        operation_id="createPoll",
        summary="Create a poll (admin)",
        opt={"invalid_body_problem": problems.InvalidRequest},
        responses=_problem_specs(problems.InvalidRequest, problems.Unauthorized),
        security=[{"bearer": []}],
    )
    async def create(self, data: JSONBody[PollSpec], db: DatabaseDep, settings: SettingsDep) -> PollCreated:
        try:
            poll = await create_poll(db, data)
        except DuplicateOption as error:
            raise problems.InvalidRequest(str(error)) from None
        return poll_created(poll, settings)

    @get(
        "/{poll_id:str}",
        operation_id="getPoll",
        summary="A poll and its options",
        responses=_problem_specs(problems.InvalidRequest, problems.PollNotFound),
    )
    async def show(self, db: DatabaseDep, poll_id: PollId) -> Poll:
        poll = await load_poll(db, poll_id)
        if poll is None:
            raise problems.PollNotFound(f"There is no poll {poll_id!r}.")
        return poll

    @post(
        "/{poll_id:str}/votes",
        before_request=require_json_and_idempotency_key,
        request_max_body_size=MAX_VOTE_BODY_BYTES,
        # Well-formed votes are served by the fast path; this handler answers everything else.
        middleware=[VoteFastPath(MAX_VOTE_BODY_BYTES)],
        operation_id="castVote",
        summary="Cast a signed vote; safe to retry with the same Idempotency-Key and body",
        description="201 with a signed receipt on first acceptance, after the commit; 200 with the same "
        "receipt bytes on a retry. See docs/protocol.md.",
        opt={"invalid_body_problem": problems.InvalidVote},
        status_code=201,
        responses={
            200: ResponseSpec(Receipt, description="Accepted earlier: the byte-identical receipt."),
            **_problem_specs(
                problems.InvalidIdempotencyKey,
                problems.IdempotencyKeyMismatch,
                problems.MalformedJson,
                problems.InvalidVote,
                problems.PollMismatch,
                problems.PollNotFound,
                problems.AlreadyVoted,
                problems.RequestInFlight,
                problems.PollClosed,
                problems.PayloadTooLarge,
                problems.UnsupportedMediaType,
                problems.IdempotencyKeyReused,
                problems.InvalidSignature,
                problems.UnknownOption,
                problems.ClockInFuture,
                problems.ServiceUnavailable,
            ),
        },
    )
    async def cast_vote(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Vote],
        vote_service: VoteServiceDep,
        poll_id: PollId,
        # Declared so that OpenAPI documents the header; parsed (Structured Field) in before_request.
        idempotency_key: Annotated[
            str, HeaderParameter(name="Idempotency-Key", description="The vote's idempotency_key, quoted or bare.")
        ],
    ) -> Response[bytes]:
        if request.state.idempotency_key != data.idempotency_key:
            raise problems.IdempotencyKeyMismatch("The Idempotency-Key header must equal idempotency_key.")
        if data.poll_id != poll_id:
            raise problems.PollMismatch(f"The vote is for poll {data.poll_id!r}, sent to poll {poll_id!r}.")
        accepted = await vote_service.submit(data)
        return Response(
            content=accepted.receipt, status_code=201 if accepted.created else 200, media_type="application/json"
        )

    @get(
        "/{poll_id:str}/results",
        operation_id="getResults",
        summary="Counts per option; cacheable, with an ETag",
        responses=_problem_specs(problems.InvalidRequest, problems.PollNotFound),
    )
    async def results(self, request: Request[Any, Any, Any], db: DatabaseDep, poll_id: PollId) -> Response[Any]:
        results = await load_results(db, poll_id)
        if results is None:
            raise problems.PollNotFound(f"There is no poll {poll_id!r}.")
        headers = {"ETag": results.etag, "Cache-Control": RESULTS_CACHE_CONTROL}
        if results.etag in _etags(request.headers.get("if-none-match")):
            return Response(content=b"", status_code=304, headers=headers)
        return Response(content=results, headers=headers)


@post(
    "/api/v1/votes/batch",
    before_request=require_json,
    request_max_body_size=MAX_BATCH_BODY_BYTES,
    operation_id="castVotes",
    summary="Cast up to 100 signed votes of any polls; each answered as the single endpoint would",
    description="200 with one result per vote, in order: its status and its receipt, or its problem. "
    "Each vote's own idempotency_key makes it safe to retry the whole batch. See docs/protocol.md.",
    opt={"invalid_body_problem": problems.InvalidRequest},
    status_code=200,
    tags=["votes"],
    responses={
        200: ResponseSpec(BatchResponseDoc, description="One result per vote, in order."),
        **_problem_specs(
            problems.MalformedJson,
            problems.InvalidRequest,
            problems.PayloadTooLarge,
            problems.UnsupportedMediaType,
        ),
    },
)
async def cast_votes(data: JSONBody[BatchRequest], vote_service: VoteServiceDep) -> Response[bytes]:
    return Response(content=await submit_batch(vote_service, data), media_type="application/json")


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def poll_created(poll: Poll, settings: Settings) -> PollCreated:
    return PollCreated(
        id=poll.id,
        question=poll.question,
        options=poll.options,
        closes_at=poll.closes_at,
        late_grace_seconds=poll.late_grace_seconds,
        url=f"{settings.base_url}/polls/{poll.id}",
    )


@get("/api/v1/keys", operation_id="listReceiptKeys", summary="Keys that sign receipts", tags=["receipts"])
async def list_keys(receipt_keys: ReceiptKeysDep) -> Response[KeyList]:
    # Keys change only on rotation; a short cache keeps a flood of new devices off the service.
    return Response(KeyList(keys=receipt_keys.public_keys()), headers={"Cache-Control": "public, max-age=300"})


@get("/healthz", operation_id="health", summary="The process is alive", tags=["health"])
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    operation_id="ready",
    summary="The database is reachable and writes are durable",
    tags=["health"],
    responses=_problem_specs(problems.ServiceUnavailable),
)
async def readyz(db: DatabaseDep) -> Health:
    if db.durability_failure is not None:
        raise problems.ServiceUnavailable(
            f"Writes are not durable since an fsync failed ({db.durability_failure}); restart this worker."
        )
    try:
        await db.ping()
    except Exception:  # any failure to reach the database means "not ready"
        raise problems.ServiceUnavailable("The database is not reachable.", headers={"Retry-After": "1"}) from None
    return Health(status="ready")


api_handlers = [PollController, cast_votes, list_keys, healthz, readyz]
