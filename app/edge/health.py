"""Liveness and readiness, for load balancers and supervisors."""

from __future__ import annotations

import msgspec
from litestar.handlers import HTTPRouteHandler

from app.core import problems
from app.edge.deps import DatabaseDep
from app.edge.errors import problem_specs
from app.edge.http import get_or_head
from app.votes.service import VoteService


class Health(msgspec.Struct):
    status: str


@get_or_head("/healthz", operation_id="health", summary="The process is alive", tags=["health"])
async def healthz() -> Health:
    return Health(status="ok")


def health_routes(votes: VoteService) -> list[HTTPRouteHandler]:
    @get_or_head(
        "/readyz",
        operation_id="ready",
        summary="The database is reachable, has room, and writes are durable",
        tags=["health"],
        responses=problem_specs(problems.ServiceUnavailable),
    )
    async def readyz(db: DatabaseDep) -> Health:
        """503 with the reason: a failed fsync or a lost database file (final for this worker), a
        full disk, a database out of reach."""
        failure = votes.check_durability()
        if failure is not None:
            raise problems.ServiceUnavailable(
                f"Writes are not durable: {failure}. This worker gives no receipt until it is restarted."
            )
        if db.sqlite_files is not None and (full := db.sqlite_files.disk_full()) is not None:
            raise problems.ServiceUnavailable(full, headers={"Retry-After": "10"})
        try:
            await db.ping()
        except Exception:  # any failure to reach the database means "not ready"
            raise problems.ServiceUnavailable("The database is not reachable.", headers={"Retry-After": "1"}) from None
        return Health(status="ready")

    return [healthz, readyz]
