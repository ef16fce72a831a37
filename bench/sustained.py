"""Sustained ingest: does the service keep its pace, its latency and a bounded WAL for a minute?

    python -m bench.sustained [--duration 60] [--short 10] [--connections 64] [--against REF]

One service (SQLite, 1 worker, started as `make run` does), driven by `wrk` with single votes
after a warm-up: first for `--short` seconds, the length of the other benchmarks' runs, then for
`--duration` seconds, on the same service, with fresh votes throughout. A thread samples the
WAL file's size all along. Prints each run's throughput, p50/p99 and the largest WAL seen, and
the targets (docs/capacity.md): the WAL stays within 64 MB, p99 under 50 ms, and the sustained
throughput within 10% of the short run's. Writes bench/sustained-results.json.

With `--against REF`, the same runs on REF's service too (checked out as bench/compare.py does),
first, in the same run: the figures of the tree before a change, for comparison. Only this
tree's are written.

The figures, the votes and the load come from bench/ingest.py, as for every ingest measurement.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from bench.ingest import (
    SINGLE_VOTES_PER_S,
    WARM_UP_S,
    Figure,
    create_poll,
    run_wrk,
    service_env,
    sign_votes,
    single_vote_requests,
    warm_up,
)
from bench.servers import vote_service
from tests.service_process import ROOT

RESULTS = Path(__file__).with_name("sustained-results.json")
WAL_LIMIT_MB = 64
P99_LIMIT_MS = 50
THROUGHPUT_DROP_LIMIT = 0.10
SAMPLE_EVERY_S = 0.05
# Votes signed for the long run, per vote/s of the short one: enough that it never wraps around to
# replays, which cost less than new votes.
HEADROOM = 1.3


class WalWatch:
    """Samples a file's size on a thread; `largest` is the most it held while watched."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-watch", daemon=True)

    def __enter__(self) -> WalWatch:
        self.largest = self._size()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.largest = max(self.largest, self._size())


def measure(work: Path, short_s: int, long_s: int, connections: int, tree: Path = ROOT) -> list[tuple[Figure, int]]:
    """[(figure, largest WAL in bytes)] for the short run, then the long one, of `tree`'s service."""
    work.mkdir(parents=True, exist_ok=True)
    env = service_env(work, None)
    wal = work / "votes.db-wal"
    results = []
    with vote_service(env=env, log=work / "service.log", tree=tree) as server:
        base = server.base_url
        poll_id, option_ids = create_poll(base)
        warm = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * WARM_UP_S)
        warm_up(base, single_vote_requests(work / "warm.tsv", warm), connections)
        votes_per_s = SINGLE_VOTES_PER_S
        for name, seconds in ((f"single vote, {short_s} s", short_s), (f"single vote, {long_s} s", long_s)):
            print(f"{name}: signing votes…", flush=True)
            votes = sign_votes(poll_id, option_ids, int(votes_per_s * HEADROOM * seconds))
            requests = single_vote_requests(work / "votes.tsv", votes)
            del votes
            print(f"{name}: measuring…", flush=True)
            with WalWatch(wal) as watch:
                figure = run_wrk(name, base, requests, seconds, connections, 1)
            results.append((figure, watch.largest))
            votes_per_s = max(figure.votes_per_s, 1.0)
    return results


def print_table(results: list[tuple[Figure, int]]) -> None:
    print(f"{'measurement':<26}{'votes/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'WAL MB':>9}  statuses")
    for figure, wal in results:
        errors = f" errors={figure.errors}" if figure.errors else ""
        print(f"{figure.name:<26}{figure.votes_per_s:>10.0f}{figure.p50_ms:>9.1f}{figure.p99_ms:>9.1f}"
              f"{wal / 2**20:>9.1f}  {figure.statuses}{errors}")  # fmt: skip


def report(results: list[tuple[Figure, int]], args: argparse.Namespace) -> bool:
    print()
    print(f"{connections_note(args)}")
    print_table(results)
    (short, short_wal), (long, long_wal) = results
    drop = 1 - long.votes_per_s / short.votes_per_s if short.votes_per_s else 1.0
    targets = [
        ("largest WAL, MB", max(short_wal, long_wal) / 2**20, WAL_LIMIT_MB, "<="),
        (f"p99 ms over {args.duration} s", long.p99_ms, P99_LIMIT_MS, "<"),
        (f"throughput drop, {args.duration} s vs {args.short} s", drop, THROUGHPUT_DROP_LIMIT, "<="),
    ]
    print()
    print(f"{'target':<40}{'measured':>10}{'goal':>8}  verdict")
    verdicts = []
    for name, value, goal, op in targets:
        met = value <= goal if op == "<=" else value < goal
        verdicts.append({"target": name, "measured": round(value, 3), "goal": goal, "op": op, "met": met})
        print(f"{name:<40}{value:>10.2f}{op + str(goal):>8}  {'met' if met else 'missed'}")
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "connections": args.connections,
                "figures": [asdict(figure) | {"largest_wal_bytes": wal} for figure, wal in results],
                "targets": verdicts,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return all(verdict["met"] for verdict in verdicts)


def connections_note(args: argparse.Namespace) -> str:
    return f"single votes at {args.connections} connections, SQLite, 1 worker, one service for both runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60, help="seconds of the sustained run")
    parser.add_argument("--short", type=int, default=10, help="seconds of the short run it is compared with")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--against", metavar="REF", help="measure REF's service the same way first")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is missing; `make bench` installs Debian's wrk (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="vote-bench-sustained-"))
    try:
        if args.against:
            from bench.compare import build, checkout, git

            with checkout(git("rev-parse", "--verify", f"{args.against}^{{commit}}"), work / "tree") as old_tree:
                build(old_tree)
                print(f"=== {args.against} ===", flush=True)
                print_table(measure(work / "old", args.short, args.duration, args.connections, old_tree))
            print("=== this tree ===", flush=True)
        report(measure(work / "new", args.short, args.duration, args.connections), args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
