"""The fleet figure: single votes a second through HAProxy into 1, 2 and 3 nodes on PostgreSQL.

    python -m bench.fleet [--duration 5] [--rounds 3] [--connections 64]

One fleet of three nodes (deploy/fleet.py: `python -m app` each) runs throughout, on a
PostgreSQL cluster and a Redis of this run's own (deploy/local_servers.py: so that what they
spend is the fleet's alone); HAProxy's runtime API puts nodes in maintenance so that the
balancer sends to 1, 2 or 3 of them. Each figure is Debian's `wrk` (one thread) sending fresh
signed votes to the balancer, after a 1-second warm-up, into a poll of its own. Rounds alternate
1, 2, 3 nodes; the medians are reported, each as a ratio to one node in the same run, beside one
node reached without the balancer (what HAProxy costs). Per vote it also reports the CPU each
tier spent (the nodes with their helper processes, HAProxy, PostgreSQL, Redis, wrk; from /proc)
and the WAL bytes PostgreSQL wrote.

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
import resource
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg

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
from deploy.fleet import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, HAPROXY, Fleet, FleetSpec, run_async
from deploy.local_servers import OwnPostgres, OwnRedis, postgres_bin

RESULTS = Path(__file__).with_name("fleet-results.json")
NODE_COUNTS = (1, 2, 3)
DIRECT = "1 node, no balancer"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass
class Spent:
    """What one measurement cost per vote: CPU microseconds by tier, and PostgreSQL's WAL bytes."""

    cpu_us: dict[str, float] = field(default_factory=dict)
    wal_bytes: float = 0.0


def _process_table() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds of it and of its children it has waited for)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # After the name: state, ppid, …; utime, stime, cutime, cstime are the 12th to 15th.
        table[int(stat.parent.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / TICKS_PER_S)
    return table


def tree_cpu_s(roots: list[int], table: dict[int, tuple[int, float]]) -> float:
    """CPU seconds of `roots` and every process below them."""
    below: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        below.setdefault(parent, []).append(pid)
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0.0))[1]
        todo += below.get(pid, [])
    return total


def _children_cpu_s() -> float:
    """CPU seconds of this process's children that have ended: wrk, here."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wal_lsn(postgres: OwnPostgres | None) -> int:
    if postgres is None:
        return 0
    dsn = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"

    async def read() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
        finally:
            await conn.close()

    return run_async(read)


@contextmanager
def spending(tiers: dict[str, Callable[[], list[int]]], postgres: OwnPostgres | None) -> Iterator[dict[str, float]]:
    """Yields a dict filled, at the block's end, with each tier's CPU seconds and the WAL bytes."""
    spent: dict[str, float] = {}
    before_table, before_wrk, before_wal = _process_table(), _children_cpu_s(), wal_lsn(postgres)
    roots = {name: pids() for name, pids in tiers.items()}
    yield spent
    after_table = _process_table()
    for name, pids in roots.items():
        spent[name] = tree_cpu_s(pids, after_table) - tree_cpu_s(pids, before_table)
    spent["wrk"] = _children_cpu_s() - before_wrk
    spent["wal_bytes"] = float(wal_lsn(postgres) - before_wal)


def through(fleet: Fleet, nodes: int) -> None:
    """The balancer sends to the first `nodes` nodes only; the others are in maintenance."""
    for index, node in enumerate(fleet.nodes):
        state = "ready" if index < nodes else "maint"
        fleet.balancer.command(f"set server nodes/{node.name} state {state}")


def measure(
    name: str, url: str, work: Path, args: argparse.Namespace, tiers: dict[str, Callable[[], list[int]]],
    postgres: OwnPostgres | None,
) -> tuple[Figure, int, Spent]:  # fmt: skip
    """Fresh votes into a poll of their own: the figure, the votes the poll counted, their cost."""
    poll_id, option_ids = create_poll(url)
    warm = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * WARM_UP_S)
    warm_up(url, single_vote_requests(work / "warm.tsv", warm), args.connections)
    # Enough that no run wraps around to replays, with room for 3 nodes on more cores than these.
    votes = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * args.duration * 2)
    requests = single_vote_requests(work / "votes.tsv", votes)
    before = total_counted(url, poll_id)
    with spending(tiers, postgres) as spent:
        figure = run_wrk(name, url, requests, args.duration, args.connections, 1)
    counted = total_counted(url, poll_id) - before
    per_vote = Spent(
        cpu_us={tier: seconds * 1e6 / counted for tier, seconds in spent.items() if tier != "wal_bytes"},
        wal_bytes=spent["wal_bytes"] / counted,
    ) if counted else Spent()  # fmt: skip
    return figure, counted, per_vote


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


@contextmanager
def own_servers(work: Path) -> Iterator[tuple[str, str, OwnPostgres | None, OwnRedis | None]]:
    """A PostgreSQL cluster and a Redis of this run's own, so that what they spend is the fleet's
    alone; the shared ones (VOTE_TEST_PG_URL, VOTE_TEST_REDIS_URL) where PostgreSQL's server
    programs are missing, with their CPU and WAL then left out."""
    bin_dir = postgres_bin()
    if bin_dir is None or shutil.which("redis-server") is None:
        print("PostgreSQL's server programs or redis-server missing: shared servers, no per-tier costs")
        yield (os.environ.get("VOTE_TEST_PG_URL", DEFAULT_DATABASE_URL),
               os.environ.get("VOTE_TEST_REDIS_URL", DEFAULT_REDIS_URL), None, None)  # fmt: skip
        return
    postgres, redis = OwnPostgres(bin_dir), OwnRedis()
    try:
        postgres.init()
        postgres.start()
        redis.start()
        yield postgres.url, redis.url, postgres, redis
    finally:
        redis.remove()
        postgres.remove()


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
    by_name: dict[str, list[Figure]] = {}
    costs: dict[str, list[Spent]] = {}
    counted: dict[str, int] = {}
    try:
        with ExitStack() as stack:
            database_url, redis_url, postgres, redis = stack.enter_context(own_servers(work))
            spec = FleetSpec(
                nodes=max(NODE_COUNTS),
                database_url=database_url,
                redis_url=redis_url,
                # One load generator is one address: the limit stays on (its check is measured), far above the load.
                env={
                    "VOTE_RATE_LIMIT_PER_CLIENT": "1000000",
                    "VOTE_LOG_LEVEL": "WARNING",
                    "VOTE_ADMIN_TOKEN": ADMIN_TOKEN,
                },
            )
            fleet = stack.enter_context(Fleet(spec, work / "fleet"))
            tiers: dict[str, Callable[[], list[int]]] = {
                "nodes": lambda: [n.process.pid for n in fleet.nodes if n.process is not None],
                "HAProxy": lambda: [fleet.balancer.process.pid] if fleet.balancer.process is not None else [],
            }
            if postgres is not None and redis is not None:
                tiers["PostgreSQL"] = lambda: [postgres.pid()]
                tiers["Redis"] = lambda: [redis.process.pid] if redis.process is not None else []
            for number in range(1, args.rounds + 1):
                print(f"round {number} of {args.rounds}…", flush=True)
                runs = [(DIRECT, fleet.nodes[0].url, 1)] + [
                    (f"{n} node{'s' if n > 1 else ''} via HAProxy", fleet.url, n) for n in NODE_COUNTS
                ]
                for step_number, (name, url, nodes) in enumerate(runs):
                    through(fleet, nodes)  # takes effect at once: the runtime API changes the live state
                    step = work / f"round{number}-{step_number}"
                    step.mkdir(parents=True)
                    figure, votes, spent = measure(name, url, step, args, tiers, postgres)
                    by_name.setdefault(name, []).append(figure)
                    costs.setdefault(name, []).append(spent)
                    counted[name] = counted.get(name, 0) + votes
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: median(figures) for name, figures in by_name.items()}
    report(medians, {name: median_spent(spent) for name, spent in costs.items()}, counted, args)


def median_spent(spent: list[Spent]) -> Spent:
    tiers = spent[0].cpu_us.keys()
    return Spent(
        cpu_us={tier: statistics.median(s.cpu_us.get(tier, 0.0) for s in spent) for tier in tiers},
        wal_bytes=statistics.median(s.wal_bytes for s in spent),
    )


def report(
    figures: dict[str, Figure], costs: dict[str, Spent], counted: dict[str, int], args: argparse.Namespace
) -> None:
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
    print(f"CPU ceiling: {cores} cores; {one.machine_busy_cores:.2f} busy with 1 node (and any other work), "
          f"so N nodes reach at most "
          f"{ceiling:.2f} times 1 node here, whatever N. The figure shows what nodes add while cores are free and what "
          "the balancer costs; it cannot show scaling across machines (docs/capacity.md).")  # fmt: skip
    print()
    tiers = list(next(iter(costs.values())).cpu_us)
    print(f"{'per vote':<28}" + "".join(f"{tier + ' µs':>14}" for tier in tiers) + f"{'WAL bytes':>12}")
    for name, spent in costs.items():
        print(f"{name:<28}" + "".join(f"{spent.cpu_us[tier]:>14.0f}" for tier in tiers) + f"{spent.wal_bytes:>12.0f}")
    print("(CPU time of each tier's processes and their children, from /proc, over the votes the service counted)")
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
                    {
                        **asdict(f),
                        "ratio_to_one_node": round(f.votes_per_s / one.votes_per_s, 3),
                        "per_vote": {
                            "cpu_us": {t: round(v) for t, v in costs[f.name].cpu_us.items()},
                            "wal_bytes": round(costs[f.name].wal_bytes),
                        },
                    }
                    for f in figures.values()
                ],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
