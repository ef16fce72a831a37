"""Tells every worker, through the channels backend (Redis across workers and nodes), that a poll
was created or changed (closed early), so that none goes on taking its id for an unknown one or
serving its old copy from memory (app/polls/cache.py). News published while Redis was away is lost:
once it is back, every worker forgets what it remembered about every poll (`missed`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from litestar.channels import ChannelsPlugin
from litestar.channels.subscriber import Subscriber

log = logging.getLogger(__name__)


class PollNews:
    def __init__(
        self,
        channels: ChannelsPlugin,
        channel_prefix: str,
        on_changed: Callable[[str], None],
        on_missed: Callable[[], None],
    ) -> None:
        self.channels = channels
        self.channel = f"{channel_prefix}:polls-changed"
        self.on_changed = on_changed
        self.on_missed = on_missed
        self._subscriber: Subscriber | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            self._subscriber = await self.channels.subscribe(self.channel)
        except Exception:  # Redis down at startup: the cache's time-to-live still bounds staleness
            log.warning("could not subscribe to poll news; cached polls expire by themselves", exc_info=True)
            return
        self._pump = asyncio.create_task(self._receive(self._subscriber))

    async def announce(self, poll_id: str) -> None:
        """Called once a poll's creation or change is committed; never fails the request that made it."""
        self.on_changed(poll_id)  # this worker at once, whatever the backend does
        try:
            await self.channels.wait_published(poll_id.encode(), self.channel)
        except Exception:
            log.warning("could not announce a poll; other workers see it within their cache's TTL", exc_info=True)

    async def missed(self) -> None:
        """The subscription is back after a gap: a poll created meanwhile on another node must not
        stay an unknown id here until the cache's time-to-live ends."""
        self.on_missed()

    async def close(self) -> None:
        if self._subscriber is not None:
            try:
                await self.channels.unsubscribe(self._subscriber, self.channel)
            except Exception:
                log.warning("could not unsubscribe from poll news", exc_info=True)
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.wait([self._pump])

    async def _receive(self, subscriber: Subscriber) -> None:
        async for payload in subscriber.iter_events():
            self.on_changed(payload.decode("ascii", "replace"))
