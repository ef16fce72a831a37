"""One Alembic history for SQLite and PostgreSQL, matching the schema the code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.polls.results import load_results
from app.storage.db import Database
from app.storage.migrate import alembic_config, current_revision, upgrade
from app.storage.schema import metadata
from app.votes.rows import reserve_seqs


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


async def test_a_poll_keeps_its_counts_and_seqs_through_the_move_off_its_counter_rows(database_url):
    """Revision 0007 moves option counts into sharded rows and, on PostgreSQL, seqs into a
    sequence per poll: a poll made before goes on from where it was."""
    db = Database(database_url)
    try:
        await upgrade(db, "0006")
        async with db.write() as conn:
            await conn.execute(
                text("INSERT INTO polls (id, question, created_at, vote_count) VALUES ('old', 'Old?', 0, 5)")
            )
            await conn.execute(
                text(
                    "INSERT INTO options (poll_id, id, label, position, votes) "
                    "VALUES ('old', 'yes', 'Yes', 0, 3), ('old', 'no', 'No', 1, 2)"
                )
            )
        await upgrade(db)
        results = await load_results(db, "old")
        assert results is not None
        assert (results.total, [option.votes for option in results.options]) == (5, [3, 2])
        async with db.write() as conn:
            assert await conn.run_sync(lambda sync: reserve_seqs(sync, "old", 2)) == [6, 7]
    finally:
        await db.dispose()
