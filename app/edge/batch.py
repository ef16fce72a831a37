"""The batch endpoint's answer: up to 100 votes of any polls, each answered as if sent alone."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from app.core import problems
from app.core.protocol import Receipt
from app.edge.errors import problem_for
from app.eligibility.rate_limits import RateLimits
from app.votes.acceptance import Accepted, vote_from_item
from app.votes.service import VoteService

MAX_VOTES_PER_BATCH_REQUEST = 100  # one request's share of a worker's group commit
MAX_BATCH_BODY_BYTES = 128 * 1024  # 100 votes of ~500 bytes, with room for whitespace
BATCH_ITEM = "POST /api/v1/votes/batch (one vote)"


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    votes: Annotated[list[Any], msgspec.Meta(min_length=1, max_length=MAX_VOTES_PER_BATCH_REQUEST)]


class BatchItem(msgspec.Struct, omit_defaults=True):
    """One vote's answer: its status, and its receipt (the same bytes as the single endpoint's) or problem."""

    status: int
    receipt: msgspec.Raw | None = None
    problem: problems.ProblemDetails | None = None


class BatchItemDoc(msgspec.Struct, omit_defaults=True):
    """The OpenAPI view of BatchItem (the receipt is embedded verbatim)."""

    status: int
    receipt: Receipt | None = None
    problem: problems.ProblemDetails | None = None


class BatchResponseDoc(msgspec.Struct):
    results: list[BatchItemDoc]


class _BatchResponse(msgspec.Struct):
    results: list[BatchItem]


async def submit_batch(votes: VoteService, request: BatchRequest, rate_limits: RateLimits | None = None) -> bytes:
    poll_ids = {
        raw["poll_id"] for raw in request.votes if isinstance(raw, dict) and isinstance(raw.get("poll_id"), str)
    }
    # Each poll the batch names counts one request against its limit; its votes share the answer.
    over = await rate_limits.polls_over(poll_ids) if rate_limits is not None and rate_limits.poll else {}
    await votes.prefetch_polls(poll_ids - over.keys())
    # All started before any is awaited, so that the whole batch shares one group commit.
    started = [_start_one(votes, raw, over) for raw in request.votes]
    pending = [item for item in started if isinstance(item, asyncio.Future)]
    if pending:
        # Shielded as a whole: a client that hangs up must not cancel commits others wait on.
        await asyncio.shield(asyncio.wait(pending))
    items = [item if isinstance(item, BatchItem) else _item(item) for item in started]
    return msgspec.json.encode(_BatchResponse(results=items))


def _start_one(
    votes: VoteService, raw: Any, over: dict[str, problems.RateLimited]
) -> BatchItem | asyncio.Future[Accepted]:
    try:
        vote = vote_from_item(raw)
        if vote.poll_id in over:
            return _problem_item(over[vote.poll_id])
        return votes.start(vote)
    except problems.Problem as problem:
        return _problem_item(problem)


def _item(outcome: asyncio.Future[Accepted]) -> BatchItem:
    error = outcome.exception()
    if error is None:
        accepted = outcome.result()
        return BatchItem(status=accepted.status, receipt=msgspec.Raw(accepted.receipt))
    return _problem_item(problem_for(error, BATCH_ITEM))


def _problem_item(problem: problems.Problem) -> BatchItem:
    return BatchItem(status=problem.status, problem=problem.details())
