"""`make fleet` (python -m deploy.fleet): prints where to vote, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from deploy.fleet import run_async
from deploy.local_servers import OwnPostgres, OwnRedis

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30


def fleet_databases(postgres: OwnPostgres) -> list[str]:
    async def read() -> list[str]:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres")
        try:
            rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'vote_fleet_%'")
            return [row["datname"] for row in rows]
        finally:
            await conn.close()

    return run_async(read)


def test_the_launcher_prints_the_balancer_and_a_demo_poll_and_ctrl_c_stops_everything(
    own_postgres: OwnPostgres, own_redis: OwnRedis, dist_dir: Path
) -> None:
    env = {**os.environ, "VOTE_DIST_DIR": str(dist_dir)}
    command = [sys.executable, "-m", "deploy.fleet", "--nodes", "2", "--port", "0",
               "--database-url", own_postgres.url, "--redis-url", own_redis.url]  # fmt: skip
    launcher = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed: list[str] = []
    try:
        assert launcher.stdout is not None
        for line in launcher.stdout:  # ends if the launcher exits: the assertion below says so
            printed.append(line)
            if line.startswith("Ctrl-C stops the fleet."):
                break
        output = "".join(printed)
        demo = re.search(r"^Demo poll: (http://127\.0\.0\.1:\d+)/polls/\S+$", output, re.MULTILINE)
        assert demo is not None, output
        nodes = re.findall(r"^node\d: (http://127\.0\.0\.1:\d+) ", output, re.MULTILINE)
        assert len(nodes) == 2, output
        assert re.search(rf"^Balancer: {re.escape(demo.group(1))}$", output, re.MULTILINE), output

        page = httpx.get(demo.group(0).removeprefix("Demo poll: "), timeout=10)
        assert page.status_code == 200
        assert "text/html" in page.headers["Content-Type"]
        assert fleet_databases(own_postgres), "the fleet's database was not made"

        launcher.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert launcher.wait(STOP_TIMEOUT_S) == 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()

    for url in [*nodes, demo.group(1)]:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=2)
    assert fleet_databases(own_postgres) == [], "the fleet's database outlived it"
