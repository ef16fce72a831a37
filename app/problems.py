"""Errors as RFC 9457 problem details. Domain code raises them by name; one handler renders them."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "/problems/"

log = logging.getLogger("app.problems")


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


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class PollNotFound(Problem):
    status = 404
    slug = "poll-not-found"
    title = "No such poll"


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


class ClockInFuture(Problem):
    status = 422
    slug = "clock-in-future"
    title = "The vote is dated too far in the future"


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


# Framework errors (routing, body size, parameter parsing) mapped onto the same stable types.
_BY_STATUS: dict[int, type[Problem]] = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
    503: ServiceUnavailable,
}


def problem_response(problem: Problem) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(problem.details()),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def handle_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[bytes]:
    return problem_response(exc)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    body_problem = _body_problem(request, exc)
    if body_problem is not None:
        return problem_response(body_problem)
    kind = _BY_STATUS.get(exc.status_code)
    if kind is None:
        if exc.status_code >= 500:
            log.error("%s on %s %s", exc, request.method, request.url.path, exc_info=exc)
        problem: Problem = InternalError() if exc.status_code >= 500 else InvalidRequest(exc.detail)
        problem.status = exc.status_code  # type: ignore[misc]  # keep the framework's status
    else:
        errors = _validation_errors(exc) if isinstance(exc, ValidationException) else None
        problem = kind(exc.detail if exc.detail != kind.title else None, errors=errors)
    problem.headers.update(exc.headers or {})
    return problem_response(problem)


def _body_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Problem | None:
    """Names what was wrong with a JSON body: not JSON at all, or JSON of the wrong shape."""
    if exc.status_code != 400:
        return None
    if isinstance(exc.__cause__, SerializationException):
        return MalformedJson(exc.detail)
    handler = request.scope.get("route_handler")
    kind = handler.opt.get("invalid_body_problem") if handler is not None else None
    errors = _validation_errors(exc) if isinstance(exc, ValidationException) else None
    if kind is None or not errors or any(e.get("source") != "body" for e in errors):
        return None
    return kind("; ".join(_describe(e) for e in errors), errors=errors)


def _describe(error: dict[str, Any]) -> str:
    key = error.get("key")
    return f"{key}: {error.get('message')}" if key and key != "data" else str(error.get("message"))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(InternalError("An unexpected error occurred; retrying the same request is safe."))


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]] | None:
    extra = exc.extra
    if isinstance(extra, list):
        return [item if isinstance(item, dict) else {"message": str(item)} for item in extra]
    return None


def handle_database_down_os(request: Request[Any, Any, Any], exc: OSError) -> Response[bytes]:
    # asyncpg raises plain OSError (ConnectionRefusedError) when PostgreSQL is down.
    log.warning("database unreachable on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(ServiceUnavailable("The database is unreachable.", headers={"Retry-After": "1"}))


def handle_database_down(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[bytes]:
    if not exc.connection_invalidated and not isinstance(exc, OperationalError | InterfaceError):
        return handle_unexpected(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
    return problem_response(ServiceUnavailable("The database is unavailable.", headers={"Retry-After": "1"}))


exception_handlers: dict[type[Exception], Any] = {
    Problem: handle_problem,
    HTTPException: handle_http_exception,
    DBAPIError: handle_database_down,
    OSError: handle_database_down_os,
    Exception: handle_unexpected,
}
