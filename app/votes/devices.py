"""Device keys registered while a poll is open: the service's own record of when it saw each key,
which a device's clock cannot change (docs/protocol.md, "Late delivery")."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from app.storage.db import Database
from app.storage.schema import devices


async def register(db: Database, poll_id: str, public_key: bytes, now_ms: int) -> int:
    """When the service first saw this key in this poll (now, unless it saw it before)."""
    dialect = postgresql if not db.is_sqlite else sqlite
    async with db.write() as conn:
        await conn.execute(
            dialect.insert(devices)
            .values(poll_id=poll_id, public_key=public_key, registered_at=now_ms)
            .on_conflict_do_nothing()
        )
        return (
            await conn.execute(
                select(devices.c.registered_at).where(devices.c.poll_id == poll_id, devices.c.public_key == public_key)
            )
        ).scalar_one()


async def registered_by(db: Database, poll_id: str, public_key: bytes, instant_ms: int) -> bool:
    """Whether the service saw this key in this poll at `instant_ms` or before."""
    async with db.read() as conn:
        registered_at = (
            await conn.execute(
                select(devices.c.registered_at).where(devices.c.poll_id == poll_id, devices.c.public_key == public_key)
            )
        ).scalar_one_or_none()
    return registered_at is not None and registered_at <= instant_ms
