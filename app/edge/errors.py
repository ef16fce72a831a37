"""Problems over HTTP: every error becomes an RFC 9457 body with a stable type, and OpenAPI says which.

`problem_for` is the one mapping from a failure to the problem a client gets: the exception
handlers use it for every endpoint, and the batch endpoint for each of its votes. A person's
browser asking for a page gets the same status as a page of words instead (`problem_page`).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.response import Template

from app.core.i18n import N_
from app.core.problems import (
    PROBLEM_MEDIA_TYPE,
    TYPE_PREFIX,
    InternalError,
    InvalidRequest,
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Problem,
    ProblemDetails,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from app.edge.assets import AssetsNotBuilt, load_assets
from app.storage.failures import database_unavailable

log = logging.getLogger(__name__)

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


def problem_for(error: BaseException, where: str) -> Problem:
    """The problem a client gets for `error`, raised while serving `where` (for the log)."""
    if isinstance(error, Problem):
        return error
    if database_unavailable(error):
        log.warning("database unavailable on %s: %s", where, getattr(error, "orig", None) or error)
        return ServiceUnavailable("The database is unavailable.", headers={"Retry-After": "1"})
    log.error("unhandled error on %s", where, exc_info=error)
    return InternalError("An unexpected error occurred; retrying the same request is safe.")


def problem_response(problem: Problem) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(problem.details()),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


# What a person reads instead of a problem's JSON, by status: what happened, and what to do. The
# page translates them (app/locale); the problem's `type` stays what it is.
_PAGE_WORDS: dict[int, tuple[str, str]] = {
    404: (N_("Page not found"), N_("There is nothing at this address. Check the link you were given.")),
    405: (N_("This page cannot do that"), N_("Go back to the page you came from and follow its links or buttons.")),
    413: (N_("Too much was sent"), N_("Go back to the page you came from and try again.")),
    429: (N_("Too many requests"), N_("Wait a minute, then try again.")),
    503: (N_("The service is busy"), N_("Nothing was lost. Wait a moment, then reload the page.")),
}
_PAGE_WORDS_OTHERWISE = (
    N_("Something went wrong"),
    N_("Nothing was lost. Go back to the page you came from and try again."),
)
# Not pages: what is under these is read by programs, which get the problem's JSON.
_NOT_PAGES = ("/api/", "/schema", "/static/", "/sw.js", "/healthz", "/readyz")


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser navigating to a page (not a script or a program calling the API)."""
    path = request.url.path
    return not path.startswith(_NOT_PAGES) and "text/html" in request.headers.get("accept", "")


def problem_page(request: Request[Any, Any, Any], problem: Problem) -> Response[Any]:
    """The problem as a page of words, with the same status and headers (Retry-After, Allow)."""
    heading, advice = _PAGE_WORDS.get(problem.status, _PAGE_WORDS_OTHERWISE)
    try:
        assets = load_assets(request.app.state.settings.dist_dir)
    except AssetsNotBuilt:
        return Response(f"{heading}. {advice}", status_code=problem.status, media_type=MediaType.TEXT)
    return Template(
        "problem.html",
        context={"heading": heading, "advice": advice, "assets": assets.links},
        status_code=problem.status,
        headers={**problem.headers, "content-security-policy": assets.content_security_policy()},
    )


def respond(request: Request[Any, Any, Any], problem: Problem) -> Response[Any]:
    return problem_page(request, problem) if wants_page(request) else problem_response(problem)


def problem_specs(*kinds: type[Problem]) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the problems an operation can answer, grouped by status."""
    by_status: dict[int, list[type[Problem]]] = {}
    for kind in kinds:
        by_status.setdefault(kind.status, []).append(kind)
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_MEDIA_TYPE,
            description="; ".join(f"`{TYPE_PREFIX}{k.slug}`: {k.title}" for k in group),
            examples=[
                Example(summary=k.slug, value={"type": TYPE_PREFIX + k.slug, "title": k.title, "status": status})
                for k in group
            ],
        )
        for status, group in by_status.items()
    }


def _handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    body_problem = _body_problem(request, exc)
    if body_problem is not None:
        return respond(request, body_problem)
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
    return respond(request, problem)


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


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]] | None:
    extra = exc.extra
    if isinstance(extra, list):
        return [item if isinstance(item, dict) else {"message": str(item)} for item in extra]
    return None


def _handle_problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return respond(request, exc)


def _handle_failure(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return respond(request, problem_for(exc, f"{request.method} {request.url.path}"))


exception_handlers: dict[type[Exception], Any] = {
    Problem: _handle_problem,
    HTTPException: _handle_http_exception,
    Exception: _handle_failure,
}
