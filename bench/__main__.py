"""`make bench`: every benchmark in turn, each printing its figures and writing its results.

    python -m bench
    python -m bench --against REF [--duration 5] [--rounds 3] [--connections 64]

With `--against`, only ingest runs (the benchmark that matters for the vote path), measuring the
service of this tree and of the git ref REF in alternating rounds: see bench/compare.py.
"""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = (
    "bench.ingest",
    "bench.sustained",
    "bench.stream",
    "bench.offline_drain",
    "bench.stuffing",
    "bench.ballot_log",
    "bench.page_speed",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", metavar="REF", help="a git ref: compare ingest on this tree and on REF")
    args, rest = parser.parse_known_args()
    if args.against:
        # bench.ingest reads --duration, --rounds, --connections and rejects anything else.
        sys.argv = ["bench.ingest", "--against", args.against, *rest]
        importlib.import_module("bench.ingest").main()
        return
    if rest:
        parser.error(f"{' '.join(rest)}: the other options are for --against (or run one benchmark alone)")
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # a benchmark that is there but broken must fail loudly
                raise
            continue
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [name]
        module.main()


if __name__ == "__main__":
    main()
