"""Wires live results into the app: the channels backend (memory, or Redis for many workers and
nodes), the channels plugin, and the plugin that feeds `live` every accepted vote and tells every
worker of each new or changed poll (`poll_news`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis

from app.core.settings import Settings
from app.live.fanout import LiveResults
from app.live.poll_news import PollNews
from app.live.redis_backend import ResilientRedisBackend
from app.storage.db import Database

CHANNEL_BACKLOG = 16  # snapshots waiting in a poll's subscription; each supersedes the last, so old ones may go


def channels_backend(settings: Settings) -> ChannelsBackend:
    if settings.redis_url is None:
        return MemoryChannelsBackend()
    return ResilientRedisBackend(redis=Redis.from_url(settings.redis_url))


def channels_plugin(backend: ChannelsBackend) -> ChannelsPlugin:
    return ChannelsPlugin(
        backend=backend,
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=CHANNEL_BACKLOG,
        subscriber_backlog_strategy="dropleft",
    )


class LiveResultsPlugin(InitPluginProtocol):
    """Makes `live` available and feeds it every accepted vote. Register it after the channels
    plugin and the vote service's plugin, whose lifespans must run first."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        accepted: list[Callable[[str, str], None]],
        poll_changed: Callable[[str], None],
        polls_missed: Callable[[], None],
        channels: ChannelsPlugin,
        backend: ChannelsBackend,
    ) -> None:
        self.settings = settings
        self.db = db
        self.accepted = accepted
        """The vote service's listeners, called with (poll_id, option_id) after each new vote."""
        self.poll_changed = poll_changed
        """Called on every worker with the id of each poll created anywhere."""
        self.polls_missed = polls_missed
        """Called when news may have been lost (Redis came back): every poll may have changed."""
        self.channels = channels
        self.backend = backend

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.dependencies["live"] = Provide(_live, sync_to_thread=False)
        app_config.dependencies["poll_news"] = Provide(_poll_news, sync_to_thread=False)
        app_config.lifespan.append(self.lifespan)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        live = LiveResults(
            self.channels,
            self.db,
            shared=self.settings.redis_url is not None,
            channel_prefix=self.settings.redis_channel_prefix,
            heartbeat_s=self.settings.live_heartbeat_seconds,
        )
        app.state.live = live
        app.state.poll_news = news = PollNews(
            self.channels, self.settings.redis_channel_prefix, self.poll_changed, self.polls_missed
        )
        await news.start()
        self.accepted.append(live.vote_accepted)
        if isinstance(self.backend, ResilientRedisBackend):
            self.backend.on_reconnect.append(live.refresh)
            self.backend.on_reconnect.append(news.missed)
        try:
            yield
        finally:
            if isinstance(self.backend, ResilientRedisBackend):
                self.backend.on_reconnect.remove(live.refresh)
                self.backend.on_reconnect.remove(news.missed)
            self.accepted.remove(live.vote_accepted)
            await news.close()
            await live.close()


def _live(state: State) -> LiveResults:
    return state.live


def _poll_news(state: State) -> PollNews:
    return state.poll_news
