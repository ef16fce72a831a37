"""Rate limits on vote requests, per client address and per poll, with the `limits` library:
in memory, or in Redis when VOTE_REDIS_URL is set, so that every node counts against one total.

Requests are counted, not votes: a kiosk's batch of 100 votes is one request. A request over a
limit gets 429 /problems/rate-limited with Retry-After and the RateLimit and RateLimit-Policy
fields of draft-ietf-httpapi-ratelimit-headers. The client's address is only ever held as a keyed
hash (the eligibility key, shared by a fleet), in memory or in Redis, where it expires with its
window; it is never stored with a vote nor logged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Collection
from dataclasses import dataclass

import msgspec
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from litestar.types import ASGIApp, Receive, Scope, Send

from app.core import problems
from app.core.settings import Settings

REDIS_TIMEOUT_S = 0.5  # a hung Redis must not hold votes up: past this, the local count stands in
BURST_FACTOR = 5  # within one second a client may send 5 seconds' worth of its per-minute rate
VOTE_PATH = re.compile(r"^/api/v1/polls/([^/]+)/votes$")
BATCH_PATH = "/api/v1/votes/batch"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    item: RateLimitItem

    @property
    def field(self) -> str:
        """This policy as an item of RateLimit-Policy: its quota `q` per window of `w` seconds."""
        return f'"{self.name}";q={self.item.amount};w={self.item.get_expiry()}'


def client_policies(per_minute: int) -> list[Policy]:
    if not per_minute:
        return []
    burst = max(1, math.ceil(per_minute / 60) * BURST_FACTOR)
    return [Policy("client", RateLimitItemPerMinute(per_minute)), Policy("client-burst", RateLimitItemPerSecond(burst))]


def poll_policies(per_minute: int) -> list[Policy]:
    return [Policy("poll", RateLimitItemPerMinute(per_minute))] if per_minute else []


class RateLimits:
    """Built with the app; `open` gives it the key that hashes addresses (at startup)."""

    def __init__(self, settings: Settings) -> None:
        self.client = client_policies(settings.rate_limit_per_client)
        self.poll = poll_policies(settings.rate_limit_per_poll)
        self.client_header = (settings.client_address_header or "").lower().encode("latin-1") or None
        if settings.redis_url:
            url = "async+" + settings.redis_url.replace("rediss://", "redis://", 1)
            options: dict[str, object] = {
                "implementation": "redispy",
                "key_prefix": f"{settings.redis_channel_prefix}:limits",
                "socket_timeout": REDIS_TIMEOUT_S,
                "socket_connect_timeout": REDIS_TIMEOUT_S,
            }
            if settings.redis_url.startswith("rediss://"):
                options["ssl"] = True
            shared = storage_from_string(url, **options)
        else:
            shared = storage_from_string("async+memory://")
        self.limiter = FixedWindowRateLimiter(shared)  # type: ignore[arg-type]
        # Votes never wait on Redis: while it is unreachable, this node counts alone.
        self.local = FixedWindowRateLimiter(storage_from_string("async+memory://"))  # type: ignore[arg-type]
        self.key: bytes | None = None

    @property
    def active(self) -> bool:
        return bool(self.client or self.poll)

    def open(self, key: bytes) -> None:
        self.key = key

    def client_of(self, headers: list[tuple[bytes, bytes]], peer: tuple[str, int] | None) -> str:
        """The client's address as a keyed hash: from the trusted proxy's header when one is set
        (the last entry of X-Forwarded-For, the one that proxy added), else the TCP peer."""
        address = b""
        if self.client_header is not None:
            address = next((value for name, value in headers if name == self.client_header), b"")
            address = address.rsplit(b",", 1)[-1].strip()
        if not address and peer:
            address = peer[0].encode()
        if self.key is None:
            raise problems.ServiceUnavailable("The service is starting.", headers={"Retry-After": "1"})
        return hashlib.blake2b(address, key=self.key, digest_size=16).hexdigest()

    async def check_client(self, client: str) -> None:
        await self._check(self.client, "client", client)

    async def check_poll(self, poll_id: str) -> None:
        await self._check(self.poll, "poll", poll_id)

    async def polls_over(self, poll_ids: Collection[str]) -> dict[str, problems.RateLimited]:
        """Each poll a batch names, counted once; the polls over their limit, with the answer."""
        over: dict[str, problems.RateLimited] = {}
        for poll_id in poll_ids:
            try:
                await self.check_poll(poll_id)
            except problems.RateLimited as limited:
                over[poll_id] = limited
        return over

    async def _check(self, policies: list[Policy], scope: str, identifier: str) -> None:
        for policy in policies:
            try:
                limiter = self.limiter
                allowed = await limiter.hit(policy.item, scope, identifier)
            except Exception as error:  # Redis is unreachable: the limit still holds, per node
                log.warning("rate limits: shared storage unavailable (%s); counting on this node", type(error).__name__)
                limiter = self.local
                allowed = await limiter.hit(policy.item, scope, identifier)
            if allowed:
                continue
            stats = await limiter.get_window_stats(policy.item, scope, identifier)
            reset = max(1, math.ceil(stats.reset_time - time.time()))
            raise problems.RateLimited(
                f"At most {policy.item.amount} vote requests per {policy.item.get_expiry()} s per {scope}; "
                f"retry in {reset} s.",
                headers={
                    "Retry-After": str(reset),
                    "RateLimit-Policy": ", ".join(p.field for p in policies),
                    "RateLimit": f'"{policy.name}";r=0;t={reset}',
                },
            )


class VoteRateLimits:
    """ASGI middleware: every vote request (single or batch) counts against its client's limits,
    and a single vote against its poll's (the batch endpoint counts each poll it names)."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limits.active or scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        single = VOTE_PATH.match(path)
        if single is None and path != BATCH_PATH:
            await self.app(scope, receive, send)
            return
        try:
            if self.limits.client:
                client = self.limits.client_of(scope["headers"], scope.get("client"))  # type: ignore[arg-type]
                await self.limits.check_client(client)
            if single is not None and self.limits.poll:
                await self.limits.check_poll(single.group(1))
        except problems.Problem as problem:
            await send_problem(send, problem)
            return
        await self.app(scope, receive, send)


async def send_problem(send: Send, problem: problems.Problem) -> None:
    body = msgspec.json.encode(problem.details())
    fields = {"content-type": problems.PROBLEM_MEDIA_TYPE, "content-length": str(len(body)), **problem.headers}
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [(name.lower().encode(), value.encode()) for name, value in fields.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})
