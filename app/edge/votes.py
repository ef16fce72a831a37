"""Vote routes: one signed vote, a batch of them, a device's registration for late delivery, and
the keys that sign their receipts.

The vote routes are made for one vote service (`vote_routes`), which the fast path and the
handlers share; every rule a vote must pass is in app/votes/acceptance.py.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter

from app.ballot_log.log_keys import LogSigner
from app.core import problems
from app.core.keys import PublicKeyInfo
from app.core.protocol import PublicKeyB64, Receipt, Vote
from app.edge.batch import (
    MAX_BATCH_BODY_BYTES,
    MAX_VOTES_PER_BATCH_REQUEST,
    BatchRequest,
    BatchResponseDoc,
    submit_batch,
)
from app.edge.deps import ReceiptKeysDep
from app.edge.errors import problem_specs
from app.edge.fast_path import VoteFastPath
from app.edge.http import (
    IDEMPOTENCY_KEY_PATTERN,
    ClosedJsonBody,
    JsonBodyRequest,
    PollId,
    get_or_head,
    require_json_body,
)
from app.eligibility.rate_limits import RateLimits
from app.votes.acceptance import vote_from_request
from app.votes.service import VoteService

MAX_VOTE_BODY_BYTES = 4 * 1024
JSON = "application/json"


class LogKeys(msgspec.Struct):
    vkey: str
    """The key that signs new ballot log checkpoints, as a C2SP signed-note verifier key."""
    vkeys: list[str]
    """Every key that may have signed a checkpoint, the active one included."""


class KeyList(msgspec.Struct):
    keys: list[PublicKeyInfo]
    log: LogKeys


# Hot-path checks run as before_request hooks rather than guards: Litestar copies the route
# handler for every guard call, which costs more than the check itself.
async def _read_vote(request: Request[Any, Any, Any]) -> None:
    """The fast path's rules, for the requests it passes on (a body of unknown or excessive length)."""
    request.state.vote = vote_from_request(
        request.headers.getall("content-type", []),
        request.headers.getall("idempotency-key", []),
        await request.body(),
        request.path_params["poll_id"],
    )


class DeviceRegistration(msgspec.Struct, forbid_unknown_fields=True):
    public_key: PublicKeyB64
    """The device's per-poll Ed25519 public key, as its votes will carry it."""


class DeviceRegistered(msgspec.Struct):
    registered_at: int
    """When the service first saw the key in this poll, in ms since the epoch by its own clock."""


def vote_routes(votes: VoteService, rate_limits: RateLimits | None = None) -> list[HTTPRouteHandler]:
    @post(
        "/api/v1/polls/{poll_id:str}/votes",
        before_request=_read_vote,
        request_max_body_size=MAX_VOTE_BODY_BYTES,
        # Votes whose body has a known length are served by the fast path; this handler, the rest.
        middleware=[VoteFastPath(votes, MAX_VOTE_BODY_BYTES)],
        operation_id="castVote",
        summary="Cast a signed vote; safe to retry with the same Idempotency-Key and body",
        description="201 with a signed receipt on first acceptance, after the commit; 200 with the same "
        "receipt bytes on a retry. See docs/protocol.md.",
        status_code=201,
        tags=["polls"],
        responses={
            200: ResponseSpec(Receipt, description="Accepted earlier: the byte-identical receipt."),
            **problem_specs(
                problems.InvalidIdempotencyKey,
                problems.DuplicateHeader,
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
                problems.NotEligible,
                problems.InvitationUsed,
                problems.InvitationUnknown,
                problems.ProofOfWorkRequired,
                problems.RateLimited,
                problems.ServiceUnavailable,
            ),
        },
    )
    async def cast_vote(
        request: Request[Any, Any, Any],
        # Declared for OpenAPI; the vote itself is read by _read_vote, with the fast path's rules.
        data: ClosedJsonBody[Vote],
        poll_id: PollId,
        idempotency_key: Annotated[
            str,
            HeaderParameter(
                name="Idempotency-Key",
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="The vote's idempotency_key, quoted or bare.",
            ),
        ],
    ) -> Response[bytes]:
        accepted = await votes.submit(request.state.vote)
        return Response(content=accepted.receipt, status_code=accepted.status, media_type=JSON)

    @post(
        "/api/v1/votes/batch",
        before_request=require_json_body,
        request_class=JsonBodyRequest,
        request_max_body_size=MAX_BATCH_BODY_BYTES,
        operation_id="castVotes",
        summary=f"Cast up to {MAX_VOTES_PER_BATCH_REQUEST} signed votes of any polls; "
        "each answered as the single endpoint would",
        description="200 with one result per vote, in order: its status and its receipt, or its problem. "
        "Each vote's own idempotency_key makes it safe to retry the whole batch. See docs/protocol.md.",
        opt={"invalid_body_problem": problems.InvalidRequest},
        status_code=200,
        tags=["votes"],
        responses={
            200: ResponseSpec(BatchResponseDoc, description="One result per vote, in order."),
            **problem_specs(
                problems.MalformedJson,
                problems.DuplicateHeader,
                problems.InvalidRequest,
                problems.PayloadTooLarge,
                problems.UnsupportedMediaType,
                problems.RateLimited,
            ),
        },
    )
    async def cast_votes(data: ClosedJsonBody[BatchRequest]) -> Response[bytes]:
        return Response(content=await submit_batch(votes, data, rate_limits), media_type=JSON)

    @post(
        "/api/v1/polls/{poll_id:str}/devices",
        operation_id="registerDevice",
        summary="Register a device's key while the poll is open, for late delivery",
        description="Safe to repeat: the first registration's time stands. See docs/protocol.md, Late delivery.",
        status_code=200,
        tags=["polls"],
        opt={"invalid_body_problem": problems.InvalidRequest},
        before_request=require_json_body,
        request_class=JsonBodyRequest,
        responses=problem_specs(
            problems.InvalidRequest,
            problems.MalformedJson,
            problems.DuplicateHeader,
            problems.UnsupportedMediaType,
            problems.PollNotFound,
            problems.PollClosed,
        ),
    )
    async def register_device(poll_id: PollId, data: ClosedJsonBody[DeviceRegistration]) -> DeviceRegistered:
        return DeviceRegistered(registered_at=await votes.register_device(poll_id, data.public_key))

    return [cast_vote, cast_votes, register_device]


@get_or_head("/api/v1/keys", operation_id="listReceiptKeys", summary="Keys that sign receipts", tags=["receipts"])
async def list_keys(receipt_keys: ReceiptKeysDep, log_signer: NamedDependency[LogSigner]) -> Response[KeyList]:
    # Keys change only on rotation; a short cache keeps a flood of new devices off the service.
    log = LogKeys(vkey=log_signer.vkey, vkeys=[v.vkey for v in log_signer.verifiers()])
    return Response(KeyList(keys=receipt_keys.public_keys(), log=log), headers={"Cache-Control": "public, max-age=300"})
