"""bench/page_speed.py writes its own key of bench/results.json, and the ingest bench keeps it."""

from __future__ import annotations

import json

from bench import ingest, page_speed


def test_page_speed_and_ingest_keep_each_others_figures(tmp_path, monkeypatch):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"figures": ["ingest"], "comparison": {"against": "old"}}))
    monkeypatch.setattr(page_speed, "RESULTS", results)
    monkeypatch.setattr(ingest, "RESULTS", results)

    page_speed.write({"medians": {"tap_to_confirmed_s": 2.5}})

    assert json.loads(results.read_text()) == {
        "figures": ["ingest"],
        "comparison": {"against": "old"},
        "page_speed": {"medians": {"tap_to_confirmed_s": 2.5}},
    }
    assert ingest.last_comparison() == {
        "comparison": {"against": "old"},
        "page_speed": {"medians": {"tap_to_confirmed_s": 2.5}},
    }
