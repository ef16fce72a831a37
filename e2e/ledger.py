"""The zero-loss count of a test run, per engine: every scenario that proves zero loss adds to
its engine's tally, and the run ends with one line per engine and one for them all."""

from __future__ import annotations

import pytest
from loss.lab import Tally

ENGINES = ("chromium", "firefox", "webkit")
_TALLIES = pytest.StashKey[dict[str, Tally]]()


def tally_for(config: pytest.Config, engine: str) -> Tally:
    """The tally a scenario in `engine` adds to (e2e/loss's scenarios are all Chromium's)."""
    tallies = config.stash.setdefault(_TALLIES, {})
    return tallies.setdefault(engine, Tally())


def overall(config: pytest.Config) -> Tally | None:
    """Every engine's votes together; None when no scenario proved anything."""
    tallies = config.stash.get(_TALLIES, {})
    if not tallies:
        return None
    total = Tally()
    for tally in tallies.values():
        total.add(tally)
    return total


def summary_lines(config: pytest.Config) -> list[str]:
    """`chromium: votes cast N, …`, then firefox and webkit (those that ran), then the overall line."""
    tallies = config.stash.get(_TALLIES, {})
    lines = [f"{engine}: {tallies[engine].line()}" for engine in ENGINES if engine in tallies]
    total = overall(config)
    return [*lines, total.line()] if total is not None else lines


def proved_zero_loss(config: pytest.Config) -> bool:
    """No engine lost a vote or counted one twice."""
    tallies = config.stash.get(_TALLIES, {}).values()
    return all(t.lost == 0 and t.duplicates == 0 and t.counted == t.cast for t in tallies)
