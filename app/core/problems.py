"""Errors as RFC 9457 problem details. Domain code raises them by name; app/edge/errors.py renders them."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "/problems/"


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """The body of every error response (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None

    def to_builtins(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


class Problem(Exception):
    """A failure the client can act on. Subclasses fix the status, the stable type and the title."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "invalid-request"
    title: ClassVar[str] = "The request is not valid"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def details(self) -> ProblemDetails:
        return ProblemDetails(
            type=TYPE_PREFIX + self.slug, title=self.title, status=self.status, detail=self.detail, errors=self.errors
        )


class InvalidRequest(Problem):
    pass


class InvalidIdempotencyKey(Problem):
    slug = "invalid-idempotency-key"
    title = "The Idempotency-Key header is missing or malformed"


class IdempotencyKeyMismatch(Problem):
    slug = "idempotency-key-mismatch"
    title = "The Idempotency-Key header and the body name different keys"


class MalformedJson(Problem):
    slug = "malformed-json"
    title = "The body is not valid JSON"


class DuplicateHeader(Problem):
    slug = "duplicate-header"
    title = "A header that may appear once appears more than once"


class InvalidVote(Problem):
    slug = "invalid-vote"
    title = "The body is not a valid vote"


class PollMismatch(Problem):
    slug = "poll-mismatch"
    title = "The vote names a different poll than the URL"


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "A valid admin bearer token is required"


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "The token given does not manage this poll"


class ResultsHidden(Problem):
    status = 403
    slug = "results-hidden"
    title = "This poll's results are not shown yet"


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class PollNotFound(Problem):
    status = 404
    slug = "poll-not-found"
    title = "No such poll"

    @classmethod
    def named(cls, poll_id: str) -> PollNotFound:
        return cls(f"There is no poll {poll_id!r}.")


class NotEligible(Problem):
    status = 403
    slug = "not-eligible"
    title = "This device's key is not on the poll's voter roll"


class InvitationUsed(Problem):
    status = 403
    slug = "invitation-used"
    title = "This invitation already admitted another device"


class InvitationUnknown(Problem):
    status = 403
    slug = "invitation-unknown"
    title = "This invitation is not one of the poll's"


class ProofOfWorkRequired(Problem):
    status = 403
    slug = "proof-of-work-required"
    title = "The vote needs a valid proof-of-work stamp for its poll and key"


class MethodNotAllowed(Problem):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class AlreadyVoted(Problem):
    status = 409
    slug = "already-voted"
    title = "This device has already voted in this poll"


class RequestInFlight(Problem):
    status = 409
    slug = "request-in-flight"
    title = "A request with this idempotency key is still being processed"


class PollClosed(Problem):
    status = 410
    slug = "poll-closed"
    title = "The poll is closed"


class PayloadTooLarge(Problem):
    status = 413
    slug = "payload-too-large"
    title = "The body is too large"


class UnsupportedMediaType(Problem):
    status = 415
    slug = "unsupported-media-type"
    title = "The body must be application/json"


class IdempotencyKeyReused(Problem):
    status = 422
    slug = "idempotency-key-reused"
    title = "This idempotency key was used with a different vote"


class InvalidSignature(Problem):
    status = 422
    slug = "invalid-signature"
    title = "The vote's signature does not verify"


class UnknownOption(Problem):
    status = 422
    slug = "unknown-option"
    title = "The poll has no such option"


class InvalidPoll(Problem):
    status = 422
    slug = "invalid-poll"
    title = "The poll's text, options or closing time are not acceptable"


class ClockInFuture(Problem):
    status = 422
    slug = "clock-in-future"
    title = "The vote is dated too far in the future"


class DatedBeforePoll(Problem):
    status = 422
    slug = "dated-before-poll"
    title = "The vote is dated before its poll existed"


class RateLimited(Problem):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(Problem):
    status = 503
    slug = "service-unavailable"
    title = "The service cannot serve this now; retry later"


class InternalError(Problem):
    status = 500
    slug = "internal-error"
    title = "Internal error"
