"""CPU per vote of each of the service's processes, this tree against REF, measured in one run.

    python -m bench.log_cpu --against REF [--duration 5] [--rounds 2]

Throughput on a shared machine swings with everything else that runs on it; the CPU time a
process spends per vote hardly does. So this says what the ballot log's sequencer (its helper
process on SQLite, `python -m app.ballot_log.integrator`) costs per vote, beside what the worker
and its other helpers cost, under the load of bench/ingest.py: single votes and batches of 100 on
SQLite with one worker, each tree started as bench/compare.py starts it, the order flipping every
round. CPU is user + system time from /proc over the load, divided by the votes the service
counted meanwhile; medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import ingest
from bench.compare import build, checkout, git
from bench.servers import vote_service
from tests.service_process import ROOT

LOADS = {  # kind: (votes a second to sign, requests file, connections, votes per request)
    "single": (ingest.SINGLE_VOTES_PER_S, ingest.single_vote_requests, 64, 1),
    "batch": (ingest.BATCH_VOTES_PER_S, ingest.batch_requests, 4, ingest.BATCH_SIZE),
}
SETTLE_S = 0.5  # the sequencer's last round after the load, which the load's votes cost too


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> dict[int, str]:
    """The service's processes, each named by its module (`app` for the worker)."""
    pids = [root]
    for pid in pids:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(child) for child in children.split()]
    names = {}
    for pid in pids:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        names[pid] = argv[2].decode() if len(argv) > 2 and argv[1] == b"-m" else argv[0].decode()
    return names


def cpu_per_vote(tree: Path, kind: str, work: Path, duration: int) -> dict[str, float]:
    """µs of CPU per vote by process name, for one load on a fresh service of `tree`."""
    per_s, requests, connections, per_request = LOADS[kind]
    work.mkdir(parents=True)
    with vote_service(workers=1, env=ingest.service_env(work, None), log=work / "service.log", tree=tree) as server:
        poll_id, option_ids = ingest.create_poll(server.base_url)
        warm = requests(work / "warm.tsv", ingest.sign_votes(poll_id, option_ids, per_s))
        ingest.warm_up(server.base_url, warm, connections)
        load = requests(work / "load.tsv", ingest.sign_votes(poll_id, option_ids, per_s * duration))
        names = process_tree(server.pid)
        before, counted = {pid: cpu_seconds(pid) for pid in names}, ingest.total_counted(server.base_url, poll_id)
        ingest.run_wrk(kind, server.base_url, load, duration, connections, per_request)
        time.sleep(SETTLE_S)
        votes = ingest.total_counted(server.base_url, poll_id) - counted
        spent: dict[str, float] = defaultdict(float)
        for pid, name in names.items():
            spent[name] += cpu_seconds(pid) - before[pid]
    return {name: seconds * 1e6 / votes for name, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", metavar="REF", required=True)
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vote-bench-log-cpu-"))
    figures: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    with checkout(git("rev-parse", args.against), work / "tree") as old_tree:
        build(old_tree)
        for number in range(1, args.rounds + 1):
            order = [("new", ROOT), ("old", old_tree)][:: 1 if number % 2 else -1]
            for kind in LOADS:
                for label, tree in order:
                    print(f"round {number} of {args.rounds}: {kind}, {label}…", flush=True)
                    run_dir = work / f"round{number}" / f"{kind}-{label}"
                    figures[(kind, label)].append(cpu_per_vote(tree, kind, run_dir, args.duration))
    print(f"\nµs of CPU per vote, medians of {args.rounds} rounds; new = this tree, old = {args.against}")
    for kind in LOADS:
        for label in ("new", "old"):
            rounds = figures[(kind, label)]
            names = sorted({name for measured in rounds for name in measured})
            cells = [f"{name} {statistics.median(m.get(name, 0.0) for m in rounds):.0f}" for name in names]
            print(f"{kind:6s} {label}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
