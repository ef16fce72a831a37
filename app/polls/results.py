"""Poll results from the per-option counts kept in each vote's transaction, summed over their
shards (app/storage/schema.py `option_tallies`)."""

from __future__ import annotations

import msgspec
from sqlalchemy import func, select

from app.storage.db import Database
from app.storage.schema import option_tallies, options


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
        # One statement, one snapshot: the total is the sum of the counts it returns.
        rows = (
            await conn.execute(
                select(options.c.id, options.c.label, func.coalesce(func.sum(option_tallies.c.votes), 0).label("votes"))
                .select_from(
                    options.outerjoin(
                        option_tallies,
                        (option_tallies.c.poll_id == options.c.poll_id) & (option_tallies.c.option_id == options.c.id),
                    )
                )
                .where(options.c.poll_id == poll_id)
                .group_by(options.c.id, options.c.label, options.c.position)
                .order_by(options.c.position)
            )
        ).all()
    if not rows:  # every poll has options: none, no poll
        return None
    counts = [OptionCount(id=r.id, label=r.label, votes=int(r.votes)) for r in rows]
    return Results(poll_id=poll_id, total=sum(count.votes for count in counts), options=counts)
