"""One Alembic history for SQLite and PostgreSQL, matching the schema the code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.storage.db import Database
from app.storage.migrate import alembic_config, current_revision, upgrade
from app.storage.schema import metadata


def test_history_has_a_single_head():
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


async def test_upgrade_twice_is_harmless(database_url):
    db = Database(database_url)
    try:
        await upgrade(db)
        await upgrade(db)
        assert await current_revision(db) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    finally:
        await db.dispose()


async def test_migrated_schema_matches_the_code(database_url):
    db = Database(database_url)
    try:
        await upgrade(db)
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        assert diff == []
    finally:
        await db.dispose()


async def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    try:
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert (mode, sync) == ("wal", 2)  # 2 is FULL
        assert busy > 0
    finally:
        await db.dispose()
