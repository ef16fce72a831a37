"""`python -m bench --against REF`: the new/old table, results.json, and which tree a service runs.

No timing here: the figures are made up.
"""

from __future__ import annotations

import json

import pytest

from bench import compare, ingest
from bench.ingest import Figure


def figure(name: str, votes_per_s: float, p99_ms: float = 10.0, errors: int = 0) -> Figure:
    return Figure(name, votes_per_s, votes_per_s, 5.0, p99_ms, {"201": int(votes_per_s)}, errors)


def test_each_figure_compares_the_medians_of_its_rounds():
    new = [[figure("single", 1000, 12)], [figure("single", 1100, 20)], [figure("single", 900, 14)]]
    old = [[figure("single", 2000, 30)], [figure("single", 500, 10)], [figure("single", 800, 11)]]

    [row] = compare.compare_figures(new, old)

    assert row["name"] == "single"
    assert (row["new_votes_per_s"], row["old_votes_per_s"]) == (1000, 800)
    assert row["ratio"] == 1.25
    assert (row["new_rounds"], row["old_rounds"]) == ([1000, 1100, 900], [2000, 500, 800])
    assert (row["new_p99_ms"], row["old_p99_ms"]) == (14, 11)
    assert row["met"]


def test_figures_stay_in_order_and_a_slower_tree_misses_the_goal():
    new = [[figure("single", 960), figure("batch", 10_000)]]
    old = [[figure("single", 1000), figure("batch", 10_000)]]

    rows = compare.compare_figures(new, old)

    assert [(r["name"], r["ratio"], r["met"]) for r in rows] == [("single", 0.96, False), ("batch", 1.0, True)]


def test_an_old_tree_that_accepted_nothing_has_no_ratio():
    [row] = compare.compare_figures([[figure("single", 1000)]], [[figure("single", 0)]])

    assert row["ratio"] is None
    assert not row["met"]
    assert "      -" in compare.format_table([row])


def test_the_table_shows_new_old_ratio_p99_and_errors():
    [row] = compare.compare_figures([[figure("single", 1000, 12.34, errors=3)]], [[figure("single", 800, 9.87)]])

    header, line, _ = compare.format_table([row]).splitlines()

    assert header.split()[:3] == ["figure", "new", "votes/s"]
    assert line.split()[:6] == ["single", "1000", "800", "1.250", "12.3", "9.9"]
    assert "met" in line
    assert "errors new=3 old=0" in line


def test_a_comparison_keeps_the_plain_runs_figures_and_a_plain_run_keeps_the_comparison(tmp_path, monkeypatch):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"figures": ["plain"], "comparison": {"against": "old"}}))
    monkeypatch.setattr(compare, "RESULTS", results)
    monkeypatch.setattr(ingest, "RESULTS", results)

    compare.write_comparison({"against": "HEAD~1"})

    assert json.loads(results.read_text()) == {"figures": ["plain"], "comparison": {"against": "HEAD~1"}}
    assert ingest.last_comparison() == {"comparison": {"against": "HEAD~1"}}
    results.unlink()
    assert ingest.last_comparison() == {}


def test_a_service_started_in_another_tree_imports_that_trees_app(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")

    assert compare.imported_app(tmp_path) == (tmp_path / "app" / "__init__.py").resolve()


def test_a_tree_without_app_is_refused_rather_than_measured_with_this_trees_code(tmp_path):
    with pytest.raises(RuntimeError, match="not that tree's code"):
        compare.imported_app(tmp_path)
