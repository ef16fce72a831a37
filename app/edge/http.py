"""HTTP details shared by the routes: the poll id in a path, JSON bodies, HEAD, and conditional requests."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeAlias, TypeVar

from litestar import HttpMethod, Litestar, Request, route
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.params import Body, Parameter
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core.problems import MalformedJson
from app.core.protocol import ID_PATTERN, UUID_PATTERN
from app.votes.acceptance import require_json

PollId = Annotated[str, Parameter(pattern=ID_PATTERN, description="A poll id, [A-Za-z0-9_-]{1,64}.")]
TOO_DEEP = "The JSON is nested too deeply."
_UUID = UUID_PATTERN.strip("^$")
# docs/protocol.md: a Structured Field string, or for simple clients the bare key.
IDEMPOTENCY_KEY_PATTERN = f'^ *(?:"{_UUID}"|{_UUID}) *$'

T = TypeVar("T")
# A JSON body whose struct refuses unknown fields (forbid_unknown_fields), as OpenAPI should say:
# Litestar leaves additionalProperties out.
ClosedJsonBody: TypeAlias = Annotated[
    T, Body(media_type=RequestEncodingType.JSON, schema_extra={"additionalProperties": False})
]


class JsonBodyRequest(Request[Any, Any, Any]):
    """For routes whose JSON body Litestar decodes before the schema is applied. The decoder
    recurses once per level of nesting: a body of a few KiB of `[` exhausts Python's stack, which
    is the client's problem (400), not a crash (500)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise MalformedJson(TOO_DEEP) from None


async def require_json_body(request: Request[Any, Any, Any]) -> None:
    """A before_request hook for routes with a JSON body: one Content-Type, and it is JSON."""
    require_json(request.headers.getall("content-type", []))


class HeadWithoutBody(ASGIMiddleware):
    """Answers HEAD as the route answers GET, headers and all, without the content (RFC 9110
    §9.3.2). A streamed response ends once its headers are out: the stream then sees its client
    leave, as when a browser closes the tab."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["method"] != HttpMethod.HEAD:
            await next_app(scope, receive, send)
            return
        finished = False

        async def send_headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not finished:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def receive_until_finished() -> Message:
            return {"type": "http.disconnect"} if finished else await receive()

        await next_app(scope, receive_until_finished, send_headers_only)


def get_or_head(path: str, *, operation_id: str | None = None, **kwargs: Any) -> HTTPRouteHandler:
    """Like Litestar's `get`, for a route that answers HEAD too (documented as `{operation_id}Head`)."""

    def operation_ids(_: HTTPRouteHandler, method: str, __: Any) -> str:
        assert operation_id is not None
        return operation_id if method == HttpMethod.GET else f"{operation_id}Head"

    return route(
        path,
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        operation_id=operation_ids if operation_id is not None else None,
        middleware=[HeadWithoutBody(), *kwargs.pop("middleware", ())],
        **kwargs,
    )


def answer_head_on_schema_routes(app: Litestar) -> None:
    """Gives Litestar's OpenAPI routes (/schema/*, plain GET routes made by Litestar) a HEAD twin:
    every GET route answers HEAD (RFC 9110 §9.3.2), and ours are made with `get_or_head`. Only
    these: a twin registered here would not inherit a route's guards or dependencies, and the
    schema routes have none. The twins stay out of the OpenAPI document."""
    schema_path = app.openapi_config.path if app.openapi_config else None
    if not schema_path:
        return
    for http_route in [r for r in app.routes if isinstance(r, HTTPRoute)]:
        methods = {method for handler in http_route.route_handlers for method in handler.http_methods}
        in_schema = http_route.path == schema_path or http_route.path.startswith(f"{schema_path}/")
        if not in_schema or HttpMethod.GET not in methods or HttpMethod.HEAD in methods:
            continue
        get_handler = next(h for h in http_route.route_handlers if HttpMethod.GET in h.http_methods)
        app.register(
            route(
                http_route.path,
                http_method=[HttpMethod.HEAD],
                media_type=get_handler.media_type,
                include_in_schema=False,
                sync_to_thread=False,
                middleware=[HeadWithoutBody()],
            )(get_handler.fn)
        )


# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text.
# Commas may stand inside a tag, so the list is scanned tag by tag rather than split.
_LIST_ITEM = re.compile(r'[\s,]*(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when If-None-Match names `etag` (or is `*`): the client's copy is current (RFC 9110
    §13.1.2, weak comparison: W/ is ignored on either side). A malformed header matches nothing."""
    if if_none_match is None:
        return False
    value = if_none_match.strip(" \t")
    if value == "*":
        return True
    wanted = etag.removeprefix("W/")
    position = 0
    while value[position:].strip(" \t,"):
        item = _LIST_ITEM.match(value, position)
        if item is None:
            return False
        if item.group(1) == wanted:
            return True
        position = item.end()
    return False
