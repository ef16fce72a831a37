"""The fleet under faults (issue 17): three nodes (`python -m app` each) on a PostgreSQL cluster
and a Redis of these tests' own, behind Debian's HAProxy (deploy/fleet.py, deploy/haproxy.cfg).

Fixtures:
- `own_postgres`, `own_redis`: servers on free ports that a test may stop and start again; the
  machine's shared PostgreSQL and Redis are never touched.
- `fleet`: the fleet on them, started for the test and stopped after it; a failing test's report
  ends with each node's log.

The run ends with `fleet: votes cast N, counted N, duplicates 0, lost 0`; the votes also count
in e2e/ledger.py's overall line, so a lost or duplicated one fails the run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ledger
import pytest
from loss.lab import Tally

from deploy.fleet import HAPROXY, Fleet, FleetSpec
from deploy.local_servers import OwnPostgres, OwnRedis, postgres_bin

LOG_TAIL_CHARS = 6_000
FLEET_NODES = 3
_FLEET = pytest.StashKey[Fleet]()
_COUNTED = pytest.StashKey[bool]()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL's server programs (initdb, pg_ctl) are missing: apt-get install postgresql")
    server = OwnPostgres(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing: apt-get install redis-server")
    server = OwnRedis()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest, tmp_path: Path, dist_dir: Path, own_postgres: OwnPostgres, own_redis: OwnRedis
) -> Iterator[Fleet]:
    """Three nodes behind HAProxy; see the module docstring."""
    if not HAPROXY.exists():
        pytest.fail("Debian's haproxy is missing: `make haproxy` installs it (make test and make e2e-fleet do)")
    spec = FleetSpec(
        nodes=FLEET_NODES,
        database_url=own_postgres.url,
        redis_url=own_redis.url,
        dist_dir=dist_dir,
        # Every scripted client and browser here is one address (127.0.0.1): the per-client limit
        # would only slow the run; tests/test_rate_limits.py covers the limits.
        env={"VOTE_RATE_LIMIT_PER_CLIENT": "0", "VOTE_LOG_LEVEL": "WARNING"},
    )
    with Fleet(spec, tmp_path / "fleet") as running:
        request.node.stash[_FLEET] = running
        yield running


def tally(config: pytest.Config) -> Tally:
    """The fleet's count, which e2e/ledger.py's overall line and verdict include."""
    config.stash[_COUNTED] = True
    return ledger.tally_for(config, "fleet")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    running = item.stash.get(_FLEET, None)
    if running is not None and report.failed and call.when == "call":
        for node in running.nodes:
            report.sections.append((f"{node.name} log", node.log()[-LOG_TAIL_CHARS:]))
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(_COUNTED, False):
        terminalreporter.write_line(f"fleet: {ledger.tally_for(config, 'fleet').line()}")
