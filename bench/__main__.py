"""`make bench`: every benchmark in turn, each printing its figures and writing its results."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("bench.ingest", "bench.stream", "bench.offline_drain")


def main() -> None:
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
