"""Snapshots on a real DuckLake warehouse, on the SQLite and the PostgreSQL catalog:
time travel, diff, rollback, export, compaction, and "nothing changed, no snapshot"."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.warehouse_batches import fact, make_batch
from warehouse.catalog import SnapshotNotFound
from warehouse.diff import diff_snapshots, summarize
from warehouse.export import export_snapshot
from warehouse.load import load_batch
from warehouse.maintenance import compact, retention_interval
from warehouse.rollback import rollback_to
from warehouse.snapshots import latest_snapshot, list_snapshots, query

# Run 1 loads documents A and B; run 2 re-extracts A (one value corrected, one fact gone, one new) and adds C.
A1 = [fact("docA", 6.6, 10), fact("docA", 425.16, 40, measure="level", unit="亿元"), fact("docA", 7.0, 80, kind="target", period="2024")]
B1 = [fact("docB", 4.4, 10, region="凤泉区", period="2021", report_year=2022)]
A2 = [fact("docA", 6.8, 10), fact("docA", 7.0, 80, kind="target", period="2024"),
      fact("docA", 12.5, 120, indicator="retail_sales", measure="growth")]
C2 = [fact("docC", 4.5, 10, region="浈江区")]


def facts_now(settings, at=None) -> set[tuple]:
    _, rows = query(settings, "SELECT fact_id, doc_id, indicator, measure, period, kind, value FROM facts", at=at)
    return set(rows)


def as_rows(facts: list[dict]) -> set[tuple]:
    return {(f["fact_id"], f["doc_id"], f["indicator"], f["measure"], f["period"], f["kind"], f["value"]) for f in facts}


def load_two_runs(settings):
    s1 = load_batch(settings, make_batch("run1", A1 + B1))
    s2 = load_batch(settings, make_batch("run2", A2 + C2))
    return settings, s1, s2


@pytest.fixture(scope="module")
def history(module_catalog_settings):
    """Two runs, shared by the tests that only read them."""
    return load_two_runs(module_catalog_settings)


@pytest.fixture
def two_runs(catalog_settings):
    """Two runs in a fresh warehouse, for the tests that change it (rollback, compact)."""
    return load_two_runs(catalog_settings)


def test_each_changing_run_is_one_snapshot_with_a_commit_message_naming_it(history):
    settings, s1, s2 = history
    assert s2 == s1 + 1
    runs = {s["snapshot_id"]: s for s in list_snapshots(settings) if s["action"] == "run"}
    assert sorted(runs) == [s1, s2]
    assert runs[s2]["details"]["run_id"] == "run2" and runs[s2]["details"]["flow_run_id"] == "flow-run2"
    assert {"code_version", "inputs_manifest_hash"} <= set(runs[s2]["details"])
    assert runs[s2]["facts"] == len(A2 + C2)


def test_a_run_with_nothing_to_load_commits_no_snapshot(history):
    settings, _, s2 = history
    assert load_batch(settings, make_batch("run3", [], docs=[])) is None
    assert latest_snapshot(settings) == s2


def test_time_travel_returns_exactly_the_facts_of_snapshot_n_after_later_runs_changed_them(history):
    settings, s1, s2 = history
    assert facts_now(settings, at=s1) == as_rows(A1 + B1)
    assert facts_now(settings, at=s2) == as_rows(A2 + B1 + C2)
    assert facts_now(settings) == as_rows(A2 + B1 + C2)
    _, published_then = query(settings, "SELECT count(*) FROM facts_published", at=s1)
    assert published_then == [(len(A1 + B1),)]


def test_time_travel_by_time_sees_the_snapshot_current_then(history):
    settings, s1, _ = history
    when = next(s["time"] for s in list_snapshots(settings) if s["snapshot_id"] == s1)
    assert facts_now(settings, at=None) != as_rows(A1 + B1)
    _, rows = query(settings, "SELECT fact_id, doc_id, indicator, measure, period, kind, value FROM facts", at_time=str(when))
    assert set(rows) == as_rows(A1 + B1)


def test_time_travel_to_a_missing_snapshot_says_how_to_find_one(history):
    settings, _, s2 = history
    with pytest.raises(SnapshotNotFound, match="govfacts snapshots"):
        query(settings, "SELECT 1", at=s2 + 50)


def test_diff_lists_the_changed_added_and_removed_fact_with_evidence(history):
    settings, s1, s2 = history
    changes = diff_snapshots(settings, s1, s2)
    assert summarize(changes) == {"added": 2, "removed": 1, "changed": 1}
    by = {(c["change"], c["doc_id"], c["indicator"], c["measure"]): c for c in changes}
    changed = by[("changed", "docA", "gdp", "growth")]
    assert (changed["old_value"], changed["new_value"], changed["changed_columns"]) == (6.6, 6.8, ["value", "value_base"])
    assert "6.6%" in changed["old_evidence"] and "6.8%" in changed["new_evidence"]
    removed = by[("removed", "docA", "gdp", "level")]
    assert removed["old_value"] == 425.16 and removed["new_value"] is None and "425.16亿元" in removed["old_evidence"]
    assert by[("added", "docA", "retail_sales", "growth")]["new_evidence"].endswith("12.5%")
    assert by[("added", "docC", "gdp", "growth")]["new_value"] == 4.5
    # unchanged facts (the target of docA, all of docB) are not listed; the reverse diff mirrors it
    back = summarize(diff_snapshots(settings, s2, s1))
    assert back == {"added": 1, "removed": 2, "changed": 1}
    assert diff_snapshots(settings, s2, s2) == []


def test_diff_from_before_the_first_load_lists_everything_as_added(history):
    settings, s1, _ = history
    assert summarize(diff_snapshots(settings, 0, s1)) == {"added": len(A1 + B1), "removed": 0, "changed": 0}


def test_rollback_makes_an_old_state_current_as_a_new_snapshot_and_keeps_history(two_runs):
    settings, s1, s2 = two_runs
    result = rollback_to(settings, s1)
    assert result.snapshot_id == s2 + 1 and result.previous == s2
    assert facts_now(settings) == as_rows(A1 + B1)
    _, docs = query(settings, "SELECT doc_id FROM documents ORDER BY 1")
    assert docs == [("docA",), ("docB",)]
    assert facts_now(settings, at=s2) == as_rows(A2 + B1 + C2), "history is never destroyed"
    snap = next(s for s in list_snapshots(settings) if s["snapshot_id"] == result.snapshot_id)
    assert snap["action"] == "rollback" and snap["details"]["restored_snapshot"] == s1
    _, runs = query(settings, "SELECT run_id FROM runs ORDER BY snapshot_id")
    assert runs == [("run1",), ("run2",)], "the runs log is not rolled back"
    assert rollback_to(settings, s1).snapshot_id is None, "already at that state: no new snapshot"
    undo = rollback_to(settings, s2)
    assert facts_now(settings) == as_rows(A2 + B1 + C2) and undo.snapshot_id == result.snapshot_id + 1


def test_export_writes_parquet_of_the_snapshot_with_its_id_in_the_file_metadata(history, tmp_path: Path):
    settings, s1, _ = history
    snapshot, files = export_snapshot(settings, tmp_path / "out", at=s1)
    assert snapshot == s1
    names = {f.name for f in files}
    assert {"facts", "documents", "facts_published", "indicator_panel", "targets_vs_actuals", "regions"} <= names
    facts = pq.read_table(tmp_path / "out" / "facts.parquet")
    meta = facts.schema.metadata
    assert meta[b"govfacts.snapshot_id"] == str(s1).encode() and meta[b"govfacts.table"] == b"facts"
    assert meta[b"govfacts.description"].decode().startswith("Every fact extracted")
    assert facts.schema.field("value").metadata[b"description"] == b"The number as written in the report"
    got = {(r["fact_id"], r["doc_id"], r["indicator"], r["measure"], r["period"], r["kind"], r["value"]) for r in facts.to_pylist()}
    assert got == as_rows(A1 + B1)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["snapshot_id"] == s1 and {"name": "facts", "file": "facts.parquet", "rows": len(A1 + B1)} in manifest["files"]
    latest, _ = export_snapshot(settings, tmp_path / "latest", names=["facts"])
    assert latest == latest_snapshot(settings)
    assert pq.read_table(tmp_path / "latest" / "facts.parquet").num_rows == len(A2 + B1 + C2)


def test_compact_merges_files_and_expires_only_snapshots_older_than_the_retention(two_runs):
    settings, s1, s2 = two_runs
    kept = compact(settings, older_than="never")
    assert kept.expired == [] and kept.snapshots_after >= kept.snapshots_before
    assert facts_now(settings, at=s1) == as_rows(A1 + B1), "time travel still works after compaction without expiry"
    time.sleep(1.1)
    expired = compact(settings, older_than="1 second")
    assert s1 in expired.expired and expired.snapshots_after < expired.snapshots_before
    assert facts_now(settings) == as_rows(A2 + B1 + C2), "the current state never expires"
    with pytest.raises(SnapshotNotFound):
        rollback_to(settings, s1)


def test_retention_is_validated_with_a_message_that_shows_the_format():
    assert retention_interval("90 days") == "INTERVAL '90 day'"
    assert retention_interval("never") is None
    with pytest.raises(ValueError, match="'90 days'"):
        retention_interval("3 fortnights; DROP TABLE facts")
