"""Live results: delivery latency and memory per stream, against one uvicorn worker.

    python -m bench.stream [--watchers 1,100,1000] [--votes 20]

For each number of watchers, starts a fresh service (one worker, embedded SQLite, in-memory
fan-out), opens that many `GET /api/v1/polls/{id}/stream` connections (a lean asyncio client,
so the client costs little of the two cores), then casts votes one at a time and records, for
every stream, when the event with the new total arrives. Latency is from sending the vote to the
event reaching a stream; votes are spaced past the coalescing interval, so each is its own event.
Memory per connection is the worker's RSS growth while the streams opened, divided by their
number. The 1-watcher run is the baseline for the others, measured in the same run.

Prints a table and writes bench/stream-results.json. Loopback only; every step is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from app.live.fanout import UPDATE_INTERVAL_S
from bench.ingest import create_poll, service_env, sign_votes
from bench.servers import uvicorn

RESULTS = Path(__file__).with_name("stream-results.json")
CONNECT_TIMEOUT_S = 60.0  # for all the streams of one run to be open and have their first event
DELIVERY_TIMEOUT_S = 10.0  # for one vote to reach every stream
VOTE_GAP_S = UPDATE_INTERVAL_S + 0.1  # past the coalescing window: each vote is published at once


@dataclass
class Figure:
    watchers: int
    votes: int
    deliveries: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    vote_p50_ms: float
    """The vote's own round trip (commit included): the part of the latency before fan-out."""
    rss_before_kib: int
    rss_after_kib: int
    kib_per_connection: float


class StreamClient(asyncio.Protocol):
    """One SSE connection; notes when each event id (the poll's total) first arrives."""

    def __init__(self, request: bytes, arrivals: dict[int, float], changed: asyncio.Event) -> None:
        self.request = request
        self.arrivals = arrivals
        self.changed = changed
        self.buffer = b""
        self.latest = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"id: "):
                total = int(line[4:])
                if total > self.latest:
                    self.latest = total
                    self.arrivals.setdefault(total, now)
                    self.changed.set()
            elif line.startswith(b"HTTP/1.1 ") and not line.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"stream refused: {line!r}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextmanager
def service(work: Path) -> Iterator[tuple[str, int]]:
    """One uvicorn worker, started as a user would; yields its base URL and pid."""
    work.mkdir(parents=True)
    with uvicorn("app:create_app", env=service_env(work, None), log=work / "service.log") as server:
        yield server.base_url, server.pid


async def open_streams(port: int, poll_id: str, count: int) -> tuple[list[asyncio.Transport], list[StreamClient]]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /api/v1/polls/{poll_id}/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    changed = asyncio.Event()
    transports, clients = [], []
    for _ in range(count):
        client = StreamClient(request, {}, changed)
        transport, _ = await loop.create_connection(lambda c=client: c, "127.0.0.1", port)
        transports.append(transport)
        clients.append(client)
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await wait_all(clients, 0, changed)
    return transports, clients


async def wait_all(clients: list[StreamClient], total: int, changed: asyncio.Event) -> None:
    while any(c.latest < total for c in clients):
        changed.clear()
        await changed.wait()


async def measure(base: str, pid: int, watchers: int, votes: int) -> Figure:
    port = int(base.rsplit(":", 1)[1])
    poll_id, option_ids = create_poll(base)
    ballots = sign_votes(poll_id, option_ids, votes)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        # Warm up the worker (imports, first stream, first vote) before the memory baseline.
        warm_id, warm_options = create_poll(base)
        warm_transports, warm_clients = await open_streams(port, warm_id, 1)
        await post(http, sign_votes(warm_id, warm_options, 1)[0])
        await wait_all(warm_clients, 1, warm_clients[0].changed)
        for transport in warm_transports:
            transport.close()

        rss_before = rss_kib(pid)
        transports, clients = await open_streams(port, poll_id, watchers)
        rss_after = rss_kib(pid)
        await asyncio.sleep(VOTE_GAP_S)  # the first vote, too, outside the coalescing window

        latencies: list[float] = []
        round_trips: list[float] = []
        changed = clients[0].changed
        for index, ballot in enumerate(ballots, start=1):
            sent = time.perf_counter()
            await post(http, ballot)
            round_trips.append((time.perf_counter() - sent) * 1000)
            async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                await wait_all(clients, index, changed)
            latencies += [(c.arrivals[index] - sent) * 1000 for c in clients]
            await asyncio.sleep(VOTE_GAP_S)  # let the coalescing window close, so the next vote is not merged
        for transport in transports:
            transport.close()

    ordered = sorted(latencies)
    return Figure(
        watchers=watchers,
        votes=votes,
        deliveries=len(latencies),
        p50_ms=round(statistics.median(ordered), 2),
        p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        max_ms=round(ordered[-1], 2),
        vote_p50_ms=round(statistics.median(round_trips), 2),
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        kib_per_connection=round((rss_after - rss_before) / watchers, 2),
    )


async def post(http: httpx.AsyncClient, ballot: dict) -> None:
    response = await http.post(
        f"/api/v1/polls/{ballot['poll_id']}/votes", json=ballot, headers={"Idempotency-Key": ballot["idempotency_key"]}
    )
    if response.status_code != 201:
        raise RuntimeError(f"vote refused: {response.status_code} {response.text}")


def run(watchers: int, votes: int, work: Path) -> Figure:
    with service(work / f"w{watchers}") as (base, pid):
        return asyncio.run(measure(base, pid, watchers, votes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", default="1,100,1000", help="comma-separated stream counts; 1 is the baseline")
    parser.add_argument("--votes", type=int, default=20, help="votes cast per run, one at a time")
    args = parser.parse_args()
    counts = sorted({1, *(int(n) for n in args.watchers.split(","))})
    if counts[-1] > 5000:
        sys.exit("error: at most 5000 watchers (file descriptors, and two cores)")

    work = Path(tempfile.mkdtemp(prefix="vote-bench-stream-"))
    figures = []
    for watchers in counts:
        print(f"{watchers} watcher(s): measuring…", flush=True)
        figures.append(run(watchers, args.votes, work))
    report(figures)


def report(figures: list[Figure]) -> None:
    base = figures[0]
    print()
    print(
        f"{'watchers':>8}{'deliveries':>12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'p50 / 1':>9}"
        f"{'vote p50':>10}{'KiB/conn':>10}"
    )
    for f in figures:
        ratio = f.p50_ms / base.p50_ms if base.p50_ms else float("nan")
        per_conn = f"{f.kib_per_connection:>10.1f}" if f.watchers > 1 else f"{'-':>10}"
        print(
            f"{f.watchers:>8}{f.deliveries:>12}{f.p50_ms:>9.1f}{f.p99_ms:>9.1f}{f.max_ms:>9.1f}{ratio:>9.2f}"
            f"{f.vote_p50_ms:>10.1f}{per_conn}"
        )
    print(
        f"\nlatency: vote sent -> event on each stream (vote p50: the POST's own round trip); "
        f"votes {VOTE_GAP_S:.2f} s apart; one worker, SQLite, loopback"
    )
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "update_interval_s": UPDATE_INTERVAL_S,
                "figures": [asdict(f) for f in figures],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
