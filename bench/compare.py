"""Is this tree's vote service as fast as an older one's? Both measured in one run.

    python -m bench --against REF [--duration 5] [--rounds 3] [--connections 64]
    python -m bench.ingest --against REF ...   (the same)

REF is any git ref (`main`, `HEAD~3`, a commit id). It is checked out into a temporary git
worktree, built as `make build` does (build.py), and its service started exactly as this tree's:
`python -m app` with this interpreter (the venv has the dependencies), cwd and PYTHONPATH set to
the tree. Before measuring, `import app` is run the same way in each tree, to show that each
imports its own code (the venv's editable install of this tree must not shadow REF's).

Only the service's figures depend on the tree: single vote and batch on SQLite with 1 worker,
single vote with 2 workers, and PostgreSQL when VOTE_TEST_PG_URL is set. The baselines (no-op,
decode + verify) do not, and are not measured here. Each round measures every configuration on
this tree and on REF, back to back, the order flipping every round (new, old; old, new; …), so
that both trees see the same noise on a busy machine. The votes, the load (`wrk`) and this
harness come from this tree for both.

Prints each figure's medians over the rounds as new/old with the p99 of each, and whether the
ratio reaches TARGET_RATIO. Writes only the `comparison` key of bench/results.json, so the figures
of the last plain run stay as they were (and a plain run keeps this key in turn):

    {"against": REF, "against_commit": sha, "tree_commit": HEAD's sha, "-dirty" if uncommitted,
     "figures": [{"name", "new_votes_per_s", "old_votes_per_s", "ratio", "new_rounds", "old_rounds",
                  "new_p99_ms", "old_p99_ms", "new_errors", "old_errors", "met"}], ...}

The worktree is removed at the end, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.ingest import RESULTS, Figure, measure_run, median_figure, service_runs
from bench.servers import tree_env
from tests.service_process import ROOT

# A refactor must keep ingest at this fraction of the old tree's throughput at least.
TARGET_RATIO = 0.97
BUILD_TIMEOUT_S = 300


def run(args: argparse.Namespace) -> None:
    try:
        against_commit = git("rev-parse", "--verify", "--quiet", f"{args.against}^{{commit}}")
    except subprocess.CalledProcessError:
        sys.exit(f"error: {args.against} is not a commit of this repository")
    # A SIGTERM (a timeout, a stopped job) unwinds through the finally blocks too, as Ctrl-C does:
    # every service stopped, the worktree removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    tree_commit = current_commit()
    if git("diff", "--name-only", against_commit, "--", "pyproject.toml"):
        print(f"note: pyproject.toml differs in {args.against}; both trees run with this venv's packages")
    work = Path(tempfile.mkdtemp(prefix="vote-bench-against-"))
    try:
        with checkout(against_commit, work / "tree") as old_tree:
            build(old_tree)
            for tree in (ROOT, old_tree):
                print(f"{'new' if tree == ROOT else 'old'}: {imported_app(tree)}", flush=True)
            new_rounds, old_rounds = measure(args, old_tree, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = compare_figures(new_rounds, old_rounds)
    print()
    print(f"medians of {args.rounds} rounds of {args.duration} s each, {args.connections} connections")
    print(f"new = this tree ({tree_commit}), old = {args.against} ({against_commit})")
    print(format_table(rows))
    write_comparison(
        {
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "against": args.against,
            "against_commit": against_commit,
            "tree_commit": tree_commit,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "goal_ratio": TARGET_RATIO,
            "figures": rows,
        }
    )
    print(f"\nwrote the comparison into {RESULTS.relative_to(ROOT)}")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def current_commit() -> str:
    """HEAD, marked "-dirty" when the tree measured is not exactly HEAD.

    The benchmarks' own output files do not count: a plain run rewrites them, and they are not code.
    """
    changes = git("status", "--porcelain", "--", ".", ":(exclude)bench/*results.json")
    return git("rev-parse", "HEAD") + ("-dirty" if changes else "")


@contextmanager
def checkout(commit: str, path: Path) -> Iterator[Path]:
    """`commit` in a temporary git worktree at `path`, removed when the block ends however it ends."""
    git("worktree", "add", "--detach", str(path), commit)
    try:
        yield path
    finally:
        removed = subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)
        if removed.returncode != 0:
            print(f"warning: could not remove the worktree {path}; `git worktree remove --force` it", file=sys.stderr)


def build(tree: Path) -> None:
    """What `make build` does once the venv exists: the page's assets into the tree's dist/."""
    if not (tree / "build.py").exists():
        return
    result = subprocess.run(
        [sys.executable, "build.py"],
        cwd=tree,
        env={**os.environ, **tree_env(tree)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building {tree} failed:\n{result.stdout}\n{result.stderr}")


def imported_app(tree: Path) -> Path:
    """Where `app` comes from for a process started in `tree` the way bench/servers.py starts one.

    `-c`, like `-m`, puts the cwd first on sys.path, so this is what `python -m app` imports.
    """
    result = subprocess.run(
        [sys.executable, "-c", "import app; print(app.__file__)"],
        cwd=tree,
        env={**os.environ, **tree_env(tree)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    module = Path(result.stdout.strip()).resolve()
    if not module.is_relative_to(tree.resolve()):
        raise RuntimeError(f"a service started in {tree} would run {module}, not that tree's code")
    return module


def measure(args: argparse.Namespace, old_tree: Path, work: Path) -> tuple[list[list[Figure]], list[list[Figure]]]:
    """Each round's figures for this tree and for `old_tree`, every configuration measured on both back to back.

    The order flips every round (new then old, old then new, …): a machine that slows down or
    speeds up during the run weighs on both trees alike instead of on the one measured second.
    """
    new_rounds: list[list[Figure]] = []
    old_rounds: list[list[Figure]] = []
    for number in range(1, args.rounds + 1):
        new: list[Figure] = []
        old: list[Figure] = []
        order = [("new", ROOT, new), ("old", old_tree, old)]
        if number % 2 == 0:
            order.reverse()
        for index, service in enumerate(service_runs()):
            print(f"round {number} of {args.rounds}: {service[0]}, {order[0][0]} then {order[1][0]}…", flush=True)
            for label, tree, figures in order:
                run_dir = work / f"round{number}" / f"{label}{index}"
                figures += measure_run(index, service, run_dir, args, tree=tree)[0]
        new_rounds.append(new)
        old_rounds.append(old)
    return new_rounds, old_rounds


def compare_figures(new_rounds: list[list[Figure]], old_rounds: list[list[Figure]]) -> list[dict]:
    """One row per figure: the medians over the rounds of each tree, and their ratio."""
    rows = []
    for index in range(len(new_rounds[0])):
        new = median_figure([figures[index] for figures in new_rounds])
        old = median_figure([figures[index] for figures in old_rounds])
        ratio = new.votes_per_s / old.votes_per_s if old.votes_per_s else None
        rows.append(
            {
                "name": new.name,
                "new_votes_per_s": round(new.votes_per_s),
                "old_votes_per_s": round(old.votes_per_s),
                "ratio": None if ratio is None else round(ratio, 3),
                "new_rounds": new.rounds,
                "old_rounds": old.rounds,
                "new_p99_ms": new.p99_ms,
                "old_p99_ms": old.p99_ms,
                "new_errors": new.errors,
                "old_errors": old.errors,
                "met": ratio is not None and ratio >= TARGET_RATIO,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [
        f"{'figure':<34}{'new votes/s':>12}{'old votes/s':>12}{'new/old':>9}{'new p99':>9}{'old p99':>9}"
        f"  {'≥' + str(TARGET_RATIO):<8}each round, new | old"
    ]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        errors = row["new_errors"] + row["old_errors"]
        lines.append(
            f"{row['name']:<34}{row['new_votes_per_s']:>12}{row['old_votes_per_s']:>12}{ratio:>9}"
            f"{row['new_p99_ms']:>9.1f}{row['old_p99_ms']:>9.1f}  {'met' if row['met'] else 'missed':<8}"
            f"{row['new_rounds']} | {row['old_rounds']}"
            + (f"  errors new={row['new_errors']} old={row['old_errors']}" if errors else "")
        )
    lines.append("(votes/s and p99 in ms: medians over the rounds; new/old: ratio of the medians)")
    return "\n".join(lines)


def write_comparison(comparison: dict) -> None:
    """Sets the `comparison` key of bench/results.json, keeping the rest (a plain run's figures)."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["comparison"] = comparison
    # Through a temporary file, so an interrupted write never leaves half a results.json.
    temporary = RESULTS.with_name(RESULTS.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    temporary.replace(RESULTS)
