"""ASGI servers compared on the same app in the same run: uvicorn, as the service runs it, against
Granian, whose HTTP work is in Rust.

    python -m bench.asgi_servers [--duration 5] [--connections 64] [--rounds 3]

In alternating rounds, with Debian's `wrk` (bench/ingest.py's requests and figures), one worker each:

- the stack's ceiling, `GET /noop` of bench/baseline_app.py, under uvicorn and under Granian
  (both with uvloop; uvicorn with httptools): the HTTP work alone;
- single durable votes on SQLite (every receipt after its commit): the service as `make run`
  starts it (`python -m app`: uvicorn with the project's read deadlines and connection cap,
  app/edge/limits.py), and the same app (app.factory:create_app) under Granian.

Prints each figure (the median of the rounds) and Granian's as a ratio to uvicorn's. A ratio is
meaningful within one run: the machine is shared. Needs `granian` (pip install granian).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from bench.ingest import (
    SINGLE_VOTES_PER_S,
    Figure,
    create_poll,
    run_wrk,
    service_env,
    sign_votes,
    single_vote_requests,
    total_counted,
    warm_up,
    write_requests,
)
from bench.servers import Server, granian, uvicorn, vote_service

ServerFactory = Callable[[Path], AbstractContextManager[Server]]

CEILINGS: dict[str, ServerFactory] = {
    "uvicorn": lambda work: uvicorn("bench.baseline_app:create_app", env={}, log=work / "log", ready_path="/noop"),
    "granian": lambda work: granian("bench.baseline_app:create_app", env={}, log=work / "log", ready_path="/noop"),
}
SERVICES: dict[str, ServerFactory] = {
    "uvicorn": lambda work: vote_service(env=service_env(work, None), log=work / "log"),
    "granian": lambda work: granian("app.factory:create_app", env=service_env(work, None), log=work / "log"),
}


def ceiling(work: Path, server: ServerFactory, args: argparse.Namespace) -> Figure:
    work.mkdir(parents=True)
    with server(work) as running:
        requests = write_requests(work / "noop.tsv", [("GET", "/noop", "")])
        warm_up(running.base_url, requests, args.connections)
        return run_wrk("no-op", running.base_url, requests, args.duration, args.connections, 0)


def single_votes(work: Path, server: ServerFactory, args: argparse.Namespace) -> Figure:
    work.mkdir(parents=True)
    with server(work) as running:
        base = running.base_url
        poll_id, option_ids = create_poll(base)
        warm_up(base, single_vote_requests(work / "warm.tsv", sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S)), 64)
        votes = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * args.duration)
        before = total_counted(base, poll_id)
        figure = run_wrk("single vote", base, single_vote_requests(work / "votes.tsv", votes), args.duration,
                         args.connections, 1)  # fmt: skip
        counted = total_counted(base, poll_id) - before
        accepted = figure.statuses.get("201", 0) + figure.statuses.get("200", 0)
        # Votes in flight when wrk stops are counted without being seen: more is fine, fewer is a loss.
        if counted < accepted:
            raise RuntimeError(f"{accepted} votes receipted, only {counted} counted: {work / 'log'}")
        return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is missing; `make bench` installs Debian's wrk (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="vote-bench-asgi-"))
    figures: dict[tuple[str, str], list[Figure]] = {}
    try:
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds}…", flush=True)
            # Alternating within each round, so that the machine's noise falls on both servers alike.
            for name in ("uvicorn", "granian"):
                run = work / f"round{number}" / name
                figures.setdefault(("no-op ceiling", name), []).append(ceiling(run / "noop", CEILINGS[name], args))
                figures.setdefault(("single vote, SQLite", name), []).append(
                    single_votes(run / "votes", SERVICES[name], args)
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(figures, args)


def report(figures: dict[tuple[str, str], list[Figure]], args: argparse.Namespace) -> None:
    print(f"\n{args.rounds} rounds of {args.duration} s, {args.connections} connections, 1 worker; medians")
    print(f"{'':<22}{'server':<9}{'requests/s':>11}{'p50 ms':>8}{'p99 ms':>8}  ratio to uvicorn")
    for what in ("no-op ceiling", "single vote, SQLite"):
        base = statistics.median(f.requests_per_s for f in figures[(what, "uvicorn")])
        for name in ("uvicorn", "granian"):
            runs = figures[(what, name)]
            rate = statistics.median(f.requests_per_s for f in runs)
            p50 = statistics.median(f.p50_ms for f in runs)
            p99 = statistics.median(f.p99_ms for f in runs)
            rounds = ", ".join(f"{f.requests_per_s:,.0f}" for f in runs)
            print(f"{what:<22}{name:<9}{rate:>11,.0f}{p50:>8.1f}{p99:>8.1f}  {rate / base:.2f}  ({rounds})")


if __name__ == "__main__":
    main()
