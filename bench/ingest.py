"""Ingest throughput, measured in one run so that the ratios hold on a noisy machine.

    python -m bench.ingest [--duration 5] [--connections 64] [--rounds 3] [--against REF]

Starts each server as a user would (the service as `make run` does, the baselines under uvicorn;
uvloop and httptools throughout), drives it with Debian's `wrk` (one thread, so it leaves the
service most of the CPU) after a one-second warm-up, and compares:

- the stack's ceiling (`GET /noop`) and the cost of decoding + verifying a vote with no database
  (`POST /verify`), both from bench/baseline_app.py;
- single-vote ingest and batch ingest on the real service (embedded SQLite, every vote durable);
- one worker against two;
- PostgreSQL too, when VOTE_TEST_PG_URL is set.

Prints a table and writes bench/results.json. Loopback only; every run is bounded in time.

With `--against REF` it measures the service of this tree and of the git ref REF instead, in
alternating rounds, and writes only the `comparison` key of bench/results.json: see bench/compare.py.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from nacl.signing import SigningKey

from app.core.protocol import b64encode, signing_bytes
from bench.servers import uvicorn, vote_service
from tests.service_process import ROOT

LUA = Path(__file__).with_name("requests.lua")
RESULTS = Path(__file__).with_name("results.json")
ADMIN_TOKEN = "bench-admin-token-0123456789"
BATCH_SIZE = 100
WARM_UP_S = 1
# Enough fresh votes that a run never wraps around to replays (which cost less than new votes).
SINGLE_VOTES_PER_S = 6_000
BATCH_VOTES_PER_S = 16_000


@dataclass
class Figure:
    name: str
    requests_per_s: float
    votes_per_s: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: int
    machine_busy_cores: float = 0.0
    """CPU in use on the whole machine during the run (service, its helpers, wrk and the kernel),
    in cores: whether the machine, rather than the service's pipeline, was the limit."""
    rounds: list[int] = field(default_factory=list)
    """Each round's throughput, when this figure is a median of rounds."""


def sign_votes(poll_id: str, option_ids: list[str], count: int) -> list[dict]:
    now = time.time_ns() // 1_000_000
    votes = []
    for i in range(count):
        key = SigningKey.generate()
        vote = {
            "vote_id": str(uuid.uuid4()),
            "idempotency_key": str(uuid.uuid4()),
            "poll_id": poll_id,
            "option_id": option_ids[i % len(option_ids)],
            "created_at": now,
        }
        signed = signing_bytes(vote["poll_id"], vote["option_id"], vote["vote_id"], vote["idempotency_key"], now)
        vote["public_key"] = b64encode(bytes(key.verify_key))
        vote["signature"] = b64encode(key.sign(signed).signature)
        votes.append(vote)
    return votes


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_requests(path: Path, lines: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(f"{method}\t{target}\t{body}\n" for method, target, body in lines))
    return path


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def single_vote_requests(path: Path, votes: list[dict]) -> Path:
    return write_requests(path, [("POST", f"/api/v1/polls/{v['poll_id']}/votes", compact(v)) for v in votes])


def batch_requests(path: Path, votes: list[dict]) -> Path:
    batches = [votes[i : i + BATCH_SIZE] for i in range(0, len(votes), BATCH_SIZE)]
    return write_requests(path, [("POST", "/api/v1/votes/batch", compact({"votes": b})) for b in batches])


def warm_up(url: str, requests_file: Path, connections: int) -> None:
    """A short unmeasured run first, as for any benchmark: caches fill and first-call costs are paid."""
    run_wrk("warm-up", url, requests_file, WARM_UP_S, connections, 0)


def cpu_ticks() -> tuple[int, int]:
    """(all, idle) jiffies of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields), fields[3] + fields[4]  # idle + iowait


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    total, idle = after[0] - before[0], after[1] - before[1]
    return (1 - idle / total) * (os.cpu_count() or 1) if total > 0 else 0.0


def run_wrk(
    name: str, url: str, requests_file: Path, duration: int, connections: int, votes_per_request: int
) -> Figure:
    ticks = cpu_ticks()
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(LUA), url],
        env={**os.environ, "BENCH_REQUESTS": str(requests_file)},
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    line = lines[0]
    data = json.loads(line.removeprefix("BENCH "))
    seconds = data["duration_us"] / 1e6
    accepted = data["statuses"].get("201", 0) + data["statuses"].get("200", 0)
    return Figure(
        name=name,
        requests_per_s=data["requests"] / seconds,
        votes_per_s=accepted * votes_per_request / seconds if votes_per_request else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses=data["statuses"],
        errors=data["errors"],
        machine_busy_cores=busy_cores(ticks, cpu_ticks()),
    )


def service_env(work: Path, database_url: str | None) -> dict[str, str]:
    return {
        "VOTE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{work / 'votes.db'}",
        "VOTE_DATA_DIR": str(work / "data"),
        "VOTE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VOTE_LOG_LEVEL": "WARNING",
        # One load generator is one client address: the per-client limit stays on, so that its
        # check is measured, but far above what the load can reach (docs/abuse.md).
        "VOTE_RATE_LIMIT_PER_CLIENT": "1000000",
    }


def create_poll(base: str) -> tuple[str, list[str]]:
    """An `anyone` poll: the votes are signed ahead by one process, which cannot also afford a
    stamp each (bench/stuffing.py measures the modes). A tree before eligibility modes existed
    refuses the field: its polls took every vote."""
    spec = {"question": "Benchmark?", "options": ["A", "B", "C"]}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = httpx.post(f"{base}/api/v1/polls", json={**spec, "eligibility": "anyone"}, headers=headers, timeout=10)
    if response.status_code == 400:
        response = httpx.post(f"{base}/api/v1/polls", json=spec, headers=headers, timeout=10)
    poll = response.json()
    return poll["id"], [o["id"] for o in poll["options"]]


def total_counted(base: str, poll_id: str) -> int:
    return httpx.get(f"{base}/api/v1/polls/{poll_id}/results", timeout=10).json()["total"]


def verify_rate(seconds: float = 2.0) -> float:
    """Signatures verified per second on one core, the floor under every ingest figure."""
    vote = sign_votes("bench", ["a"], 1)[0]
    from nacl.signing import VerifyKey

    key, signature = b64url_decode(vote["public_key"]), b64url_decode(vote["signature"])
    message = signing_bytes("bench", "a", vote["vote_id"], vote["idempotency_key"], vote["created_at"])
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            VerifyKey(key).verify(message, signature)
        count += 500
    return count / (time.perf_counter() - start)


def measure_service(
    label: str,
    work: Path,
    workers: int,
    database_url: str | None,
    duration: int,
    connections: int,
    batch: bool,
    tree: Path = ROOT,
) -> tuple[list[Figure], dict[str, int]]:
    work.mkdir(parents=True)
    figures, counted = [], {}
    env = service_env(work, database_url)
    with vote_service(workers=workers, env=env, log=work / "service.log", tree=tree) as server:
        base = server.base_url
        poll_id, option_ids = create_poll(base)
        warm = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * WARM_UP_S * workers)
        warm_up(base, single_vote_requests(work / "warm.tsv", warm), connections)
        votes = sign_votes(poll_id, option_ids, SINGLE_VOTES_PER_S * duration * workers)
        before = total_counted(base, poll_id)  # the warm-up's votes
        single = run_wrk(f"single vote, {label}", base, single_vote_requests(work / "single.tsv", votes), duration,
                         connections, 1)  # fmt: skip
        figures.append(single)
        counted[single.name] = total_counted(base, poll_id) - before
        if batch:
            poll_id, option_ids = create_poll(base)
            warm = sign_votes(poll_id, option_ids, BATCH_VOTES_PER_S * WARM_UP_S)
            warm_up(base, batch_requests(work / "warm-batch.tsv", warm), max(4, connections // 16))
            votes = sign_votes(poll_id, option_ids, BATCH_VOTES_PER_S * duration)
            before = total_counted(base, poll_id)
            batched = run_wrk(f"batch of {BATCH_SIZE}, {label}", base, batch_requests(work / "batch.tsv", votes),
                              duration, max(4, connections // 16), BATCH_SIZE)  # fmt: skip
            figures.append(batched)
            counted[batched.name] = total_counted(base, poll_id) - before
    return figures, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="measure everything this many times; report medians")
    parser.add_argument("--against", metavar="REF", help="compare the service with REF's (bench/compare.py)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is missing; `make bench` installs Debian's wrk (apt-get install wrk)")
    if args.against:
        from bench import compare  # it builds on this module

        compare.run(args)
        return

    work = Path(tempfile.mkdtemp(prefix="vote-bench-"))
    print("signature verification on one core: measuring…", flush=True)
    verifies = verify_rate()
    rounds: list[list[Figure]] = []
    counted: dict[str, int] = {}
    for number in range(1, args.rounds + 1):
        print(f"round {number} of {args.rounds}…", flush=True)
        figures, round_counted = one_round(work / f"round{number}", args)
        rounds.append(figures)
        for name, total in round_counted.items():
            counted[name] = counted.get(name, 0) + total
    # Medians over the rounds: these machines are noisy, and a round is a few seconds per figure.
    medians = [median_figure([figures[i] for figures in rounds]) for i in range(len(rounds[0]))]
    report(medians, counted, verifies, args)
    shutil.rmtree(work, ignore_errors=True)


def one_round(work: Path, args: argparse.Namespace) -> tuple[list[Figure], dict[str, int]]:
    work.mkdir(parents=True)
    figures = baseline_figures(work, args)
    counted: dict[str, int] = {}
    for index, run in enumerate(service_runs()):
        more, more_counted = measure_run(index, run, work / f"run{index}", args)
        figures += more
        counted |= more_counted
    return figures, counted


def baseline_figures(work: Path, args: argparse.Namespace) -> list[Figure]:
    """The figures that do not depend on the service's code: the stack's ceiling and decode + verify."""
    figures: list[Figure] = []
    with uvicorn("bench.baseline_app:create_app", env={}, log=work / "baseline.log", ready_path="/noop") as server:
        base = server.base_url
        noop = write_requests(work / "noop.tsv", [("GET", "/noop", "")])
        warm_up(base, noop, args.connections)
        figures.append(run_wrk("no-op endpoint (ceiling)", base, noop, args.duration, args.connections, 0))
        votes = sign_votes("bench", ["a"], 20_000)
        verify_requests = write_requests(work / "verify.tsv", [("POST", "/verify", compact(v)) for v in votes])
        warm_up(base, verify_requests, args.connections)
        figures.append(run_wrk("decode + verify only", base, verify_requests, args.duration, args.connections, 1))
        lean_requests = write_requests(work / "lean.tsv", [("POST", "/verify-lean", compact(v)) for v in votes])
        warm_up(base, lean_requests, args.connections)
        figures.append(run_wrk("decode + verify, lean path", base, lean_requests, args.duration, args.connections, 1))
    return figures


# (label, workers, database URL or None for SQLite, whether batches are measured too)
ServiceRun = tuple[str, int, str | None, bool]


def service_runs() -> list[ServiceRun]:
    """The service's configurations: the figures that depend on the tree's code."""
    runs: list[ServiceRun] = [("SQLite, 1 worker", 1, None, True), ("SQLite, 2 workers", 2, None, False)]
    if os.environ.get("VOTE_TEST_PG_URL"):
        runs.append(("PostgreSQL, 1 worker", 1, os.environ["VOTE_TEST_PG_URL"], True))
    return runs


def measure_run(
    index: int, run: ServiceRun, work: Path, args: argparse.Namespace, tree: Path = ROOT
) -> tuple[list[Figure], dict[str, int]]:
    label, workers, url, batch = run
    if url:  # a fresh database for every service, so each one starts from the same empty state
        url = fresh_pg_database(url, f"vote_bench_{os.getpid()}_{index}")
    return measure_service(label, work, workers, url, args.duration, args.connections, batch, tree)


def median_figure(figures: list[Figure]) -> Figure:
    statuses: Counter[str] = Counter()
    for figure in figures:
        statuses.update(figure.statuses)
    return Figure(
        name=figures[0].name,
        requests_per_s=statistics.median(f.requests_per_s for f in figures),
        votes_per_s=statistics.median(f.votes_per_s for f in figures),
        p50_ms=statistics.median(f.p50_ms for f in figures),
        p99_ms=statistics.median(f.p99_ms for f in figures),
        statuses=dict(statuses),
        errors=sum(f.errors for f in figures),
        machine_busy_cores=statistics.median(f.machine_busy_cores for f in figures),
        rounds=[round(f.votes_per_s or f.requests_per_s) for f in figures],
    )


def fresh_pg_database(base_url: str, name: str) -> str:
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def recreate() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    return url.set(database=name).render_as_string(hide_password=False)


def report(figures: list[Figure], counted: dict[str, int], verifies: float, args: argparse.Namespace) -> None:
    by_name = {f.name: f for f in figures}
    print()
    print(f"medians of {args.rounds} rounds of {args.duration} s each")
    print(f"{'measurement':<34}{'req/s':>10}{'votes/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU':>6}  each round, /s")
    for f in figures:
        print(f"{f.name:<34}{f.requests_per_s:>10.0f}{f.votes_per_s:>10.0f}{f.p50_ms:>9.1f}{f.p99_ms:>9.1f}"
              f"{f.machine_busy_cores:>6.2f}  {f.rounds}{f' errors={f.errors}' if f.errors else ''}")  # fmt: skip
    print(f"(CPU: cores busy on the whole machine during the run, of {os.cpu_count()}: service, helpers, wrk, kernel)")
    print(f"{'signature verification, 1 core':<34}{'':>10}{verifies:>10.0f}")
    single = by_name["single vote, SQLite, 1 worker"]
    verify = by_name["decode + verify only"]
    batch = by_name[f"batch of {BATCH_SIZE}, SQLite, 1 worker"]
    two = by_name["single vote, SQLite, 2 workers"]
    targets = [
        ("single ingest / decode+verify", single.votes_per_s / verify.requests_per_s, 0.85, ">="),
        ("batch ingest, votes/s", batch.votes_per_s, 8000, ">="),
        ("single vote p99 ms at 64 connections", single.p99_ms, 50, "<"),
        ("2 workers / 1 worker", two.votes_per_s / single.votes_per_s, 1.6, ">="),
    ]
    print()
    print(f"{'target':<40}{'measured':>10}{'goal':>8}  verdict")
    verdicts = []
    for name, value, goal, op in targets:
        met = value >= goal if op == ">=" else value < goal
        verdicts.append({"target": name, "measured": round(value, 3), "goal": goal, "op": op, "met": met})
        shortfall = "" if met else f" (by {abs(value - goal) / goal:.0%})"
        print(f"{name:<40}{value:>10.2f}{op + str(goal):>8}  {'met' if met else 'missed' + shortfall}")
    # Not a target: the same ratio against decode + verify on the vote endpoint's own lean path,
    # i.e. what the durable, exactly-once write costs on top of it.
    lean_ratio = single.votes_per_s / by_name["decode + verify, lean path"].requests_per_s
    print(f"{'(single ingest / lean decode+verify)':<40}{lean_ratio:>10.2f}")
    # Two workers can do at most what the cores one worker leaves idle allow.
    cores = os.cpu_count() or 1
    if single.machine_busy_cores > 0:
        ceiling = cores / single.machine_busy_cores
        print(f"{'(2 workers / 1 at most, by CPU)':<40}{ceiling:>10.2f}  "
              f"1 worker kept {single.machine_busy_cores:.2f} of {cores} cores busy")  # fmt: skip
    print()
    for name, total in counted.items():
        figure = by_name[name]
        # A batch request answers 200 with a result per vote; a single vote answers 201 when new.
        answered = (
            figure.statuses.get("200", 0) * BATCH_SIZE if name.startswith("batch") else figure.statuses.get("201", 0)
        )
        # Votes still in flight when wrk stops are counted too, but not answered within the run.
        print(f"counted by the service during '{name}': {total} (answered within the run: {answered})")
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "duration_s": args.duration,
                "rounds": args.rounds,
                "connections": args.connections,
                "signature_verifications_per_s_one_core": round(verifies),
                "figures": [asdict(f) for f in figures],
                "counted": counted,
                "targets": verdicts,
                "single_ingest_over_lean_decode_verify": round(lean_ratio, 3),
                **last_comparison(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


KEPT_KEYS = ("comparison", "page_speed")  # written by `--against` and by bench/page_speed.py


def last_comparison() -> dict:
    """The keys other runs wrote, kept: the last `--against` comparison (it names the commits it
    measured) and bench/page_speed.py's figures."""
    try:
        previous = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    return {key: previous[key] for key in KEPT_KEYS if key in previous}


if __name__ == "__main__":
    main()
