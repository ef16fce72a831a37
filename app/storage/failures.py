"""Which failures mean the database is out of reach for now, so that a retry later may succeed."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# PostgreSQL's SQLSTATEs for a server that is away: class 08 (connection exception) and 57P
# (shutting down, starting up, terminated by an administrator), which asyncpg's errors carry while
# PostgreSQL restarts and SQLAlchemy maps onto no narrower class than DBAPIError.
UNAVAILABLE_SQLSTATES = ("08", "57P")


def database_unavailable(error: BaseException) -> bool:
    """A lost or refused connection, a locked or full SQLite file: not a fault of the request."""
    sqlstate = getattr(getattr(error, "orig", error), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    # asyncpg raises plain OSError (ConnectionRefusedError) when PostgreSQL is down.
    return isinstance(error, OSError)
