"""One mapping from a failure to the problem a client gets (app/edge/errors.py), for every endpoint
and for each vote of a batch."""

from __future__ import annotations

import sqlite3

import pytest
from asyncpg.exceptions import AdminShutdownError, CannotConnectNowError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from app.core import problems
from app.edge.errors import problem_for


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked")),
        InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        ConnectionRefusedError(111, "Connection refused"),  # asyncpg, when PostgreSQL is down
        # While PostgreSQL restarts: SQLAlchemy wraps these in a bare DBAPIError.
        DBAPIError("connect", {}, CannotConnectNowError("the database system is shutting down")),
        DBAPIError("INSERT", {}, AdminShutdownError("terminating connection due to administrator command")),
    ],
    ids=["operational", "interface", "connection-refused", "shutting-down", "admin-shutdown"],
)
def test_a_database_out_of_reach_is_503_with_retry_after(error):
    problem = problem_for(error, "test")
    assert isinstance(problem, problems.ServiceUnavailable)
    assert problem.headers == {"Retry-After": "1"}


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("CHECK constraint failed")),
        DataError("INSERT", {}, Exception("invalid byte sequence")),
        ValueError("a bug"),
    ],
    ids=["integrity", "data", "bug"],
)
def test_any_other_failure_is_a_500_that_names_no_internals(error):
    problem = problem_for(error, "test")
    assert isinstance(problem, problems.InternalError)
    assert str(error) not in (problem.detail or "")


def test_a_problem_is_its_own_answer():
    refused = problems.AlreadyVoted("This device's key has already cast a vote in this poll.")
    assert problem_for(refused, "test") is refused
