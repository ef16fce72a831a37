"""Live results: coalesced snapshots fanned out through Litestar's channels plugin.

Publishing: after votes commit, the worker that accepted them reads the poll's counts at most once
per UPDATE_INTERVAL_S and publishes that snapshot on the poll's channel (in memory, or Redis
pub/sub so that every worker and node hears it).

Receiving: a worker holds one channel subscription per watched poll, however many watchers it
has, keeps the newest snapshot (by total, which only grows) and hands it to every watcher at most
once per UPDATE_INTERVAL_S. A watcher keeps one pending snapshot, so a slow one skips to the
newest instead of queueing, and nobody reads the database per watcher.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import msgspec
from litestar.channels import ChannelsPlugin
from litestar.channels.subscriber import Subscriber

from app.polls.results import load_results
from app.storage.db import Database

UPDATE_INTERVAL_S = 0.25  # at most four snapshots a second per poll: "a few a second"
LINGER_S = 30.0  # a poll's subscription outlives its last watcher this long, so reconnects cost nothing

log = logging.getLogger(__name__)


class _Total(msgspec.Struct):
    total: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    total: int
    """Votes in the poll; it only grows, so it orders snapshots and serves as the event id."""
    data: bytes
    """The results JSON, exactly as `GET /api/v1/polls/{poll_id}/results` would give it."""


class Watcher:
    """One stream's view of a poll: a single pending snapshot, the newest one offered."""

    __slots__ = ("_closed", "_pending", "_ready")

    def __init__(self) -> None:
        self._pending: Snapshot | None = None
        self._closed = False
        self._ready = asyncio.Event()

    def offer(self, snapshot: Snapshot) -> None:
        self._pending = snapshot  # replaces one not yet taken: this is the whole backlog
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def next(self) -> Snapshot | None:
        """The newest snapshot not yet taken; None once the feed has ended."""
        while self._pending is None and not self._closed:
            self._ready.clear()
            await self._ready.wait()
        snapshot, self._pending = self._pending, None
        return snapshot


@dataclass(eq=False)
class _Feed:
    """One watched poll in this worker."""

    poll_id: str
    channel: str
    watchers: set[Watcher] = field(default_factory=set)
    latest: Snapshot | None = None
    failed: bool = False
    subscriber: Subscriber | None = None
    opened: asyncio.Task[None] | None = None
    pump: asyncio.Task[None] | None = None
    fan_out: asyncio.TimerHandle | None = None
    last_fan_out: float = float("-inf")
    linger: asyncio.TimerHandle | None = None


class LiveResults:
    def __init__(
        self, channels: ChannelsPlugin, db: Database, *, shared: bool, channel_prefix: str, heartbeat_s: float
    ) -> None:
        self.channels = channels
        self.db = db
        self.shared = shared
        """True when other workers may have watchers (Redis): publish even when none are here."""
        self.channel_prefix = channel_prefix
        self.heartbeat_s = heartbeat_s
        self._feeds: dict[str, _Feed] = {}
        self._dirty: set[str] = set()
        self._publishers: dict[str, asyncio.Task[None]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def channel(self, poll_id: str) -> str:
        return f"{self.channel_prefix}:results:{poll_id}"

    # Publishing

    def vote_accepted(self, poll_id: str, option_id: str) -> None:
        """VoteService listener, called right after a commit: it only marks the poll."""
        if not self.shared and poll_id not in self._feeds:
            return  # in-memory fan-out and nobody here watches this poll
        self._dirty.add(poll_id)
        if poll_id not in self._publishers:
            self._publishers[poll_id] = asyncio.create_task(self._publish_loop(poll_id))

    async def _publish_loop(self, poll_id: str) -> None:
        try:
            while poll_id in self._dirty:
                self._dirty.discard(poll_id)
                await self._publish(poll_id)
                # Votes committed from here on wait for the next snapshot: this is the coalescing.
                await asyncio.sleep(UPDATE_INTERVAL_S)
        finally:
            self._publishers.pop(poll_id, None)

    async def _publish(self, poll_id: str) -> None:
        try:
            results = await load_results(self.db, poll_id)
            if results is not None:
                await self.channels.wait_published(msgspec.json.encode(results), self.channel(poll_id))
        except Exception:  # the votes are committed; a lost snapshot is made good by the next one
            log.warning("could not publish the results of a poll", exc_info=True)

    # Receiving

    async def snapshot(self, poll_id: str) -> Snapshot | None:
        """The poll's newest snapshot, subscribing first if needed; None for an unknown poll.

        Raises LiveUnavailable when the subscription or the first read failed.
        """
        feed = self._feed(poll_id)
        assert feed.opened is not None
        await asyncio.shield(feed.opened)
        if feed.failed:
            raise LiveUnavailable(poll_id)
        if not feed.watchers:
            self._arm_linger(feed)  # in case no stream ever joins (the client left at once)
        return feed.latest

    def join(self, poll_id: str) -> Watcher:
        """A watcher of the poll, handed the newest snapshot at once if there is one."""
        feed = self._feed(poll_id)
        if feed.linger is not None:
            feed.linger.cancel()
            feed.linger = None
        watcher = Watcher()
        feed.watchers.add(watcher)
        if feed.latest is not None:
            watcher.offer(feed.latest)
        return watcher

    def leave(self, poll_id: str, watcher: Watcher) -> None:
        feed = self._feeds.get(poll_id)
        if feed is None or watcher not in feed.watchers:
            return
        feed.watchers.discard(watcher)
        if not feed.watchers:
            self._arm_linger(feed)

    def watching(self, poll_id: str) -> int:
        feed = self._feeds.get(poll_id)
        return len(feed.watchers) if feed else 0

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            self._close(feed)
        for task in list(self._publishers.values()):
            task.cancel()
        await asyncio.gather(*self._publishers.values(), *self._closing, return_exceptions=True)

    async def refresh(self) -> None:
        """Reads again the counts of every poll watched here, after a gap in the fan-out (Redis
        came back): what was published meanwhile is lost, and no vote may come to replace it."""
        for feed in list(self._feeds.values()):
            try:
                results = await load_results(self.db, feed.poll_id)
            except Exception:  # the next snapshot published for the poll makes good for it
                log.warning("could not refresh the live results of a poll", exc_info=True)
                continue
            if results is not None:
                self._receive(feed, msgspec.json.encode(results))

    def _feed(self, poll_id: str) -> _Feed:
        feed = self._feeds.get(poll_id)
        if feed is None:
            feed = self._feeds[poll_id] = _Feed(poll_id, self.channel(poll_id))
            feed.opened = asyncio.create_task(self._open(feed))
        return feed

    async def _open(self, feed: _Feed) -> None:
        try:
            feed.subscriber = await self.channels.subscribe(feed.channel)
            feed.pump = asyncio.create_task(self._pump(feed, feed.subscriber))
            # Read after subscribing: a vote committed meanwhile is in this read or in a later message.
            results = await load_results(self.db, feed.poll_id)
        except Exception:
            log.warning("could not start live results for a poll", exc_info=True)
            feed.failed = True
            self._close(feed)
            return
        if results is None:
            self._close(feed)  # unknown poll: nothing to keep
            return
        snapshot = self._newer(feed, msgspec.json.encode(results))
        if snapshot is not None:
            # Straight to the watchers, outside the rate limit: the first vote after it is not held back.
            feed.latest = snapshot
            for watcher in feed.watchers:
                watcher.offer(snapshot)

    async def _pump(self, feed: _Feed, subscriber: Subscriber) -> None:
        async for payload in subscriber.iter_events():
            self._receive(feed, payload)

    def _receive(self, feed: _Feed, payload: bytes) -> None:
        snapshot = self._newer(feed, payload)
        if snapshot is None:
            return
        feed.latest = snapshot
        if feed.fan_out is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, feed.last_fan_out + UPDATE_INTERVAL_S - loop.time())
            feed.fan_out = loop.call_later(delay, self._fan_out, feed)

    def _newer(self, feed: _Feed, payload: bytes) -> Snapshot | None:
        try:
            total = msgspec.json.decode(payload, type=_Total).total
        except msgspec.DecodeError:
            log.warning("ignored a malformed results message on %s", feed.channel)
            return None
        if feed.latest is not None and total <= feed.latest.total:
            return None  # older or the same: another worker's snapshot can arrive late
        return Snapshot(total=total, data=payload)

    def _fan_out(self, feed: _Feed) -> None:
        feed.fan_out = None
        feed.last_fan_out = asyncio.get_running_loop().time()
        if feed.latest is not None:
            for watcher in feed.watchers:
                watcher.offer(feed.latest)

    def _arm_linger(self, feed: _Feed) -> None:
        if feed.linger is None and self._feeds.get(feed.poll_id) is feed:
            feed.linger = asyncio.get_running_loop().call_later(LINGER_S, self._close, feed)

    def _close(self, feed: _Feed) -> None:
        if self._feeds.get(feed.poll_id) is feed:
            del self._feeds[feed.poll_id]
        for handle in (feed.linger, feed.fan_out):
            if handle is not None:
                handle.cancel()
        for watcher in feed.watchers:
            watcher.close()
        task = asyncio.create_task(self._unsubscribe(feed))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _unsubscribe(self, feed: _Feed) -> None:
        # Let a subscription in progress finish rather than cancel it half-registered.
        if feed.opened is not None:
            await asyncio.wait([feed.opened])
        try:
            if feed.subscriber is not None:
                await self.channels.unsubscribe(feed.subscriber, feed.channel)  # also ends the pump
        except Exception:
            log.warning("could not unsubscribe from %s", feed.channel, exc_info=True)
        if feed.pump is not None:
            feed.pump.cancel()
            await asyncio.wait([feed.pump])


class LiveUnavailable(Exception):
    """The poll's live results could not be set up (channel backend or database unreachable)."""
