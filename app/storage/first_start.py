"""A new, empty database is made on a first start only, never in place of a lost one.

Receipt keys or an admin token in the data dir show that an earlier start made a database and
may have receipted votes into it. If that database now has no schema (its SQLite file deleted,
emptied or replaced; an empty PostgreSQL database), migrating would silently start afresh and
every receipted vote would be gone: the start stops instead, naming what is missing. A new
database on such a data dir is made on purpose, with `litestar db create`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from app.core.admin_token import TOKEN_FILE
from app.core.keys import KEY_DIR_NAME, KEY_SUFFIX
from app.storage.db import Database
from app.storage.migrate import current_revision

CREATE_ON_PURPOSE = "litestar db create"


class LostDatabase(RuntimeError):
    """The data dir is from an earlier start, but the database it belongs to is not there."""


def earlier_start_traces(data_dir: Path) -> list[str]:
    """What in `data_dir` shows that the service has started on it before."""
    traces = []
    if any((data_dir / KEY_DIR_NAME).glob(f"*{KEY_SUFFIX}")):
        traces.append("receipt keys")
    if (data_dir / TOKEN_FILE).exists():
        traces.append("an admin token")
    return traces


async def refuse_lost_database(db: Database, data_dir: Path) -> None:
    """Raises LostDatabase where migrating `db` now would replace a database that was lost."""
    traces = earlier_start_traces(data_dir)
    if not traces or await current_revision(db) is not None:
        return
    if db.sqlite_path is not None:
        missing = f"the database {db.sqlite_path} is missing or empty"
    else:
        missing = f"the database {make_url(db.url).render_as_string(hide_password=True)} has no tables"
    raise LostDatabase(
        f"{missing}, but {data_dir} has {' and '.join(traces)} from an earlier start: a new database "
        f"would lose every vote receipted before. Restore the database, or make a new one on purpose "
        f"with `{CREATE_ON_PURPOSE}`"
    )
