"""Polls read on every vote, kept briefly in memory."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from app.polls.store import Poll, load_poll, load_polls
from app.storage.db import Database


@dataclass(frozen=True, slots=True)
class CachedPoll:
    poll: Poll
    option_ids: frozenset[str]
    expires: float


class PollCache:
    """Polls read on every vote, kept briefly in memory. Polls do not change once created; the
    time-to-live only bounds how long a deleted or edited poll could linger on a node."""

    TTL_S = 30.0
    MAX_ENTRIES = 10_000

    def __init__(self, db: Database) -> None:
        self.db = db
        self._entries: dict[str, CachedPoll] = {}

    def cached(self, poll_id: str) -> CachedPoll | None:
        """The poll if it is in memory and fresh: the hot path, with no await."""
        entry = self._entries.get(poll_id)
        return entry if entry is not None and entry.expires > time.monotonic() else None

    async def get(self, poll_id: str) -> CachedPoll | None:
        entry = self.cached(poll_id)
        if entry is not None:
            return entry
        poll = await load_poll(self.db, poll_id)
        return None if poll is None else self._keep(poll)

    async def prefetch(self, poll_ids: Collection[str]) -> None:
        """Loads the polls not cached yet in one go: a backlog of votes often names many cold polls."""
        missing = [poll_id for poll_id in set(poll_ids) if self.cached(poll_id) is None]
        if missing:
            for poll in (await load_polls(self.db, missing)).values():
                self._keep(poll)

    def _keep(self, poll: Poll) -> CachedPoll:
        # Unknown ids are never kept, so they cannot fill the cache.
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        entry = CachedPoll(poll, frozenset(poll.option_ids()), time.monotonic() + self.TTL_S)
        self._entries[poll.id] = entry
        return entry
