"""Statements sent to the database driver as they are, for the paths that run per vote or per
round under load: SQL Expression Language statements spend more building, caching and binding
than the database spends running them (bench/ingest.py). Callers write plain SQL that both
SQLite and PostgreSQL accept, with placeholders from `Marks`."""

from __future__ import annotations

from sqlalchemy.engine import Connection


class Marks:
    """Placeholders in the driver's own style: `?` for sqlite3, `$1`, `$2`… for asyncpg."""

    def __init__(self, conn: Connection) -> None:
        self.numbered = conn.dialect.paramstyle == "numeric_dollar"
        self.used = 0

    def take(self, count: int) -> str:
        if not self.numbered:
            return ", ".join("?" * count)
        first, self.used = self.used + 1, self.used + count
        return ", ".join(f"${n}" for n in range(first, self.used + 1))
