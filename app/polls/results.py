"""Poll results from the per-option counters kept in each vote's transaction."""

from __future__ import annotations

import msgspec
from sqlalchemy import select

from app.storage.db import Database
from app.storage.schema import options, polls


class OptionCount(msgspec.Struct):
    id: str
    label: str
    votes: int


class Results(msgspec.Struct):
    poll_id: str
    total: int
    options: list[OptionCount]

    @property
    def etag(self) -> str:
        # The total only grows, and every vote changes it: it identifies the counts exactly.
        return f'"{self.poll_id}.{self.total}"'


async def load_results(db: Database, poll_id: str) -> Results | None:
    async with db.read() as conn:
        # One read transaction: the total and the per-option counts come from the same snapshot.
        total = (await conn.execute(select(polls.c.vote_count).where(polls.c.id == poll_id))).scalar_one_or_none()
        if total is None:
            return None
        rows = await conn.execute(
            select(options.c.id, options.c.label, options.c.votes)
            .where(options.c.poll_id == poll_id)
            .order_by(options.c.position)
        )
        return Results(
            poll_id=poll_id, total=total, options=[OptionCount(id=r.id, label=r.label, votes=r.votes) for r in rows]
        )
