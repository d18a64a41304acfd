"""The warehouse benchmark at 1 million synthetic facts (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from transforms.settings import load_settings

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_warehouse.py"


@pytest.mark.slow
def test_load_and_query_a_million_facts(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("bench_warehouse", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    settings = load_settings(warehouse=tmp_path / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    figures = bench.run(1_000_000, settings, repeat=3)
    assert figures["load_facts_per_s"] > 50_000, "a million facts should load in well under 20 s"
    median_ms, _ = figures["indicator_panel, one region"]
    assert median_ms < 2_000, "one region's panel should answer interactively"
