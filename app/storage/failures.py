"""Which failures mean the database is out of reach for now, so that a retry later may succeed."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def database_unavailable(error: BaseException) -> bool:
    """A lost or refused connection, a locked or full SQLite file: not a fault of the request."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    # asyncpg raises plain OSError (ConnectionRefusedError) when PostgreSQL is down.
    return isinstance(error, OSError)
