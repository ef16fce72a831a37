"""The fleet figure: single votes a second through HAProxy into 1, 2 and 3 nodes on PostgreSQL.

    python -m bench.fleet [--duration 5] [--rounds 3] [--connections 64]

One fleet of three nodes (deploy/fleet.py: `python -m app` each, one PostgreSQL database of this
run's own on VOTE_TEST_PG_URL or the local server, the local Redis) runs throughout; HAProxy's
runtime API puts nodes in maintenance so that the balancer sends to 1, 2 or 3 of them. Each
figure is Debian's `wrk` (one thread) sending fresh signed votes to the balancer, each after a
1-second warm-up, into a poll of its own. Rounds alternate 1, 2, 3 nodes; the medians are
reported, each as a ratio to one node in the same run, beside one node reached without the
balancer (what HAProxy costs).

What it can show on this machine: whether nodes add throughput while cores are left, what the
balancer costs, and that nothing breaks with several nodes on one database. What it cannot show
on 2 cores: scaling to many machines. Every node, PostgreSQL, Redis, HAProxy and wrk share the
same cores, so the ratio is capped by the cores one node leaves idle (printed as the CPU
ceiling); docs/capacity.md extrapolates from the per-core figure instead. Writes
bench/fleet-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench.ingest import (
    ADMIN_TOKEN,
    SINGLE_VOTES_PER_S,
    WARM_UP_S,
    Figure,
    create_poll,
    run_wrk,
    sign_votes,
    single_vote_requests,
    total_counted,
    warm_up,
)
from deploy.fleet import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, HAPROXY, Fleet, FleetSpec

RESULTS = Path(__file__).with_name("fleet-results.json")
NODE_COUNTS = (1, 2, 3)
DIRECT = "1 node, no balancer"


def through(fleet: Fleet, nodes: int) -> None:
    """The balancer sends to the first `nodes` nodes only; the others are in maintenance."""
    for index, node in enumerate(fleet.nodes):
        state = "ready" if index < nodes else "maint"
        fleet.balancer.command(f"set server nodes/{node.name} state {state}")


def measure(name: str, url: str, work: Path, args: argparse.Namespace) -> tuple[Figure, int]:
    """Fresh votes into a poll of their own; returns the figure and the votes the poll counted."""
    poll_id, option_ids = create_poll(url)
    warm = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * WARM_UP_S)
    warm_up(url, single_vote_requests(work / "warm.tsv", warm), args.connections)
    # Enough that no run wraps around to replays, with room for 3 nodes on more cores than these.
    votes = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * args.duration * 2)
    before = total_counted(url, poll_id)
    figure = run_wrk(name, url, single_vote_requests(work / "votes.tsv", votes), args.duration, args.connections, 1)
    return figure, total_counted(url, poll_id) - before


def median(figures: list[Figure]) -> Figure:
    return Figure(
        name=figures[0].name,
        requests_per_s=statistics.median(f.requests_per_s for f in figures),
        votes_per_s=statistics.median(f.votes_per_s for f in figures),
        p50_ms=statistics.median(f.p50_ms for f in figures),
        p99_ms=statistics.median(f.p99_ms for f in figures),
        statuses={},
        errors=sum(f.errors for f in figures),
        machine_busy_cores=statistics.median(f.machine_busy_cores for f in figures),
        rounds=[round(f.votes_per_s) for f in figures],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is missing; `make bench` installs Debian's wrk (apt-get install wrk)")
    if not HAPROXY.exists():
        sys.exit("error: haproxy is missing; `make bench` installs Debian's haproxy (apt-get install haproxy)")

    work = Path(tempfile.mkdtemp(prefix="vote-bench-fleet-"))
    spec = FleetSpec(
        nodes=max(NODE_COUNTS),
        database_url=os.environ.get("VOTE_TEST_PG_URL", DEFAULT_DATABASE_URL),
        redis_url=os.environ.get("VOTE_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        # One load generator is one address: the limit stays on (its check is measured) but far above the load.
        env={"VOTE_RATE_LIMIT_PER_CLIENT": "1000000", "VOTE_LOG_LEVEL": "WARNING", "VOTE_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    by_name: dict[str, list[Figure]] = {}
    counted: dict[str, int] = {}
    try:
        with Fleet(spec, work / "fleet") as fleet:
            for number in range(1, args.rounds + 1):
                print(f"round {number} of {args.rounds}…", flush=True)
                runs = [(DIRECT, fleet.nodes[0].url, 1)] + [
                    (f"{n} node{'s' if n > 1 else ''} via HAProxy", fleet.url, n) for n in NODE_COUNTS
                ]
                for step_number, (name, url, nodes) in enumerate(runs):
                    through(fleet, nodes)
                    # The balancer's next check would see the change anyway; its state is set at once.
                    time.sleep(0.2)
                    step = work / f"round{number}-{step_number}"
                    step.mkdir(parents=True)
                    figure, votes = measure(name, url, step, args)
                    by_name.setdefault(name, []).append(figure)
                    counted[name] = counted.get(name, 0) + votes
            through(fleet, len(fleet.nodes))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report({name: median(figures) for name, figures in by_name.items()}, counted, args)


def report(figures: dict[str, Figure], counted: dict[str, int], args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    one = figures[f"{NODE_COUNTS[0]} node via HAProxy"]
    ceiling = cores / one.machine_busy_cores if one.machine_busy_cores else float("nan")
    print()
    print(f"single votes on PostgreSQL, medians of {args.rounds} rounds of {args.duration} s, "
          f"{args.connections} connections")  # fmt: skip
    print(f"{'measurement':<28}{'votes/s':>10}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU':>6}  each round, votes/s")
    for figure in figures.values():
        ratio = figure.votes_per_s / one.votes_per_s if one.votes_per_s else float("nan")
        errors = f" errors={figure.errors}" if figure.errors else ""
        print(f"{figure.name:<28}{figure.votes_per_s:>10.0f}{ratio:>8.2f}{figure.p50_ms:>9.1f}{figure.p99_ms:>9.1f}"
              f"{figure.machine_busy_cores:>6.2f}  {figure.rounds}{errors}")  # fmt: skip
    print(f"(ratio: to 1 node via HAProxy in this run. CPU: cores busy on the whole machine, of {cores}: "
          "nodes, PostgreSQL, Redis, HAProxy, wrk, kernel)")  # fmt: skip
    print(f"CPU ceiling: {cores} cores; 1 node kept {one.machine_busy_cores:.2f} busy, so N nodes can reach at most "
          f"{ceiling:.2f} times 1 node here, whatever N. The figure shows what nodes add while cores are free and what "
          "the balancer costs; it cannot show scaling across machines (docs/capacity.md).")  # fmt: skip
    for name, total in counted.items():
        print(f"counted by the service, {name}: {total} votes")
    RESULTS.write_text(
        json.dumps(
            {
                "cpu_count": cores,
                "cpu_ceiling_ratio": round(ceiling, 2),
                "duration_s": args.duration,
                "rounds": args.rounds,
                "connections": args.connections,
                "figures": [
                    {**asdict(f), "ratio_to_one_node": round(f.votes_per_s / one.votes_per_s, 3)}
                    for f in figures.values()
                ],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
