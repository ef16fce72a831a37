"""Litestar's Redis pub/sub channels backend, made to outlive a Redis outage.

Written against Litestar 2.25 (`litestar/channels/backends/redis.py`) and redis-py 5.2. It relies
on two private attributes of `RedisChannelsPubSubBackend`: `_redis`, the client handed in, and
`_pub_sub`, the one `PubSub` whose messages `stream_events` reads. tests/test_live_redis_backend.py
fails if either changes; check this module against the new source before upgrading past them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.exceptions import RedisError

# After Redis drops the subscription connection: the first retry soon, then less and less often.
REDIS_RETRY_FIRST_S = 0.1
REDIS_RETRY_MAX_S = 2.0

log = logging.getLogger(__name__)


class ResilientRedisBackend(RedisChannelsPubSubBackend):
    """Litestar's Redis pub/sub backend, made to outlive a Redis outage.

    Its event stream ends at the first connection error, and the channels plugin never starts it
    again: every stream of the worker would stay still until a restart. Here the stream waits for
    Redis (retrying with backoff), resubscribes every channel (redis-py does that on reconnect),
    then calls `on_reconnect`: snapshots published during the outage are lost, and no vote may
    come to replace them.
    """

    def __init__(self, *, redis: Any) -> None:
        super().__init__(redis=redis)
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        while True:
            try:
                async for event in super().stream_events():
                    yield event
            except (RedisError, OSError) as error:
                log.warning("lost the Redis subscription (%s); resubscribing when Redis is back", error)
                await self._reconnect()
                log.warning("Redis subscription restored")
                for callback in self.on_reconnect:
                    await callback()

    async def _reconnect(self) -> None:
        delay = REDIS_RETRY_FIRST_S
        while True:
            await asyncio.sleep(delay)
            try:
                await self._pub_sub.connect()  # resubscribes to every channel (PubSub.on_connect)
                return
            except (RedisError, OSError):
                delay = min(delay * 2, REDIS_RETRY_MAX_S)

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        await self._redis.aclose()  # the plugin does not own the client, so it would leak its pool
