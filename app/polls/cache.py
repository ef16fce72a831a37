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
    """Polls read on every vote, kept briefly in memory. A poll changes only when it is closed
    early; that is announced to every worker (app/live/poll_news.py), which forgets its copy, and
    each vote's transaction checks the committed close anyway (app/votes/acceptance.py).

    Ids found to name no poll are kept too, so that votes for unknown polls cost no database read
    after the first. A poll created later under such an id is announced the same way; the
    time-to-live bounds it where no announcement reaches (several workers without Redis, a poll
    made or closed by the CLI). Announcements lost while Redis was away clear the whole cache once
    it is back (app/live/poll_news.py).
    """

    TTL_S = 30.0
    MAX_ENTRIES = 10_000
    MAX_UNKNOWN = 10_000  # ids are cheap to make up: a flood of them only clears this, never grows it

    def __init__(self, db: Database) -> None:
        self.db = db
        self._entries: dict[str, CachedPoll] = {}
        self._unknown: dict[str, float] = {}
        """Ids that named no poll when read, and until when that answer stands."""

    def cached(self, poll_id: str) -> CachedPoll | None:
        """The poll if it is in memory and fresh: the hot path, with no await."""
        entry = self._entries.get(poll_id)
        return entry if entry is not None and entry.expires > time.monotonic() else None

    async def get(self, poll_id: str) -> CachedPoll | None:
        entry = self.cached(poll_id)
        if entry is not None or self.known_unknown(poll_id):
            return entry
        poll = await load_poll(self.db, poll_id)
        if poll is None:
            self._remember_unknown([poll_id])
            return None
        return self._keep(poll)

    async def prefetch(self, poll_ids: Collection[str]) -> None:
        """Loads the polls not cached yet in one go: a backlog of votes often names many cold polls."""
        missing = [
            poll_id for poll_id in set(poll_ids) if self.cached(poll_id) is None and not self.known_unknown(poll_id)
        ]
        if missing:
            found = await load_polls(self.db, missing)
            for poll in found.values():
                self._keep(poll)
            self._remember_unknown([poll_id for poll_id in missing if poll_id not in found])

    def known_unknown(self, poll_id: str) -> bool:
        """Whether the id named no poll when last read, recently enough to trust it."""
        expires = self._unknown.get(poll_id)
        return expires is not None and expires > time.monotonic()

    def forget(self, poll_id: str) -> None:
        """A poll was created or changed under this id: read it again next time."""
        self._unknown.pop(poll_id, None)
        self._entries.pop(poll_id, None)

    def forget_all(self) -> None:
        """News of polls may have been lost (Redis was away): read every poll again next time."""
        self._unknown.clear()
        self._entries.clear()

    def _remember_unknown(self, poll_ids: list[str]) -> None:
        if len(self._unknown) + len(poll_ids) > self.MAX_UNKNOWN:
            self._unknown.clear()
        expires = time.monotonic() + self.TTL_S
        for poll_id in poll_ids[: self.MAX_UNKNOWN]:
            self._unknown[poll_id] = expires

    def _keep(self, poll: Poll) -> CachedPoll:
        # Unknown ids are never kept, so they cannot fill the cache.
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        entry = CachedPoll(poll, frozenset(poll.option_ids()), time.monotonic() + self.TTL_S)
        self._entries[poll.id] = entry
        return entry
