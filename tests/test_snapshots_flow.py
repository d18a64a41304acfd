"""Snapshots made by the real Prefect flow on the sample reports: diff, time travel and rollback
between runs, and a rollback that the next run repairs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from transforms.settings import load_settings
from warehouse.diff import diff_snapshots, summarize
from warehouse.rollback import rollback_to
from warehouse.snapshots import list_snapshots, query

pytestmark = pytest.mark.e2e


def fact_rows(settings, at=None) -> set[tuple]:
    _, rows = query(settings, "SELECT doc_id, region, indicator, measure, period, kind, value, evidence FROM facts", at=at)
    return set(rows)


def test_flow_runs_diff_time_travel_and_rollback(prefect_harness, inbox: Path, tmp_path: Path):
    from flows.ingest import ingest

    last = sorted(inbox.iterdir())[-1]
    held_back = tmp_path / last.name
    shutil.move(last, held_back)
    wh = tmp_path / "wh"
    settings = load_settings(warehouse=wh, catalog="sqlite")
    first = ingest(inbox=str(inbox), warehouse=str(wh))
    s1 = first["snapshot_id"]
    shutil.move(held_back, inbox / last.name)
    second = ingest(inbox=str(inbox), warehouse=str(wh))
    s2 = second["snapshot_id"]
    assert second["changed"] and second["documents"] == 1 and s2 > s1

    # diff: exactly the facts of the new report, all added, each with its evidence
    changes = diff_snapshots(settings, s1, s2)
    _, new_doc = query(settings, "SELECT doc_id FROM documents WHERE run_id = ?", [second["run_id"]])
    _, n_new = query(settings, "SELECT count(*) FROM facts WHERE doc_id = ?", [new_doc[0][0]])
    assert summarize(changes) == {"added": n_new[0][0], "removed": 0, "changed": 0} and n_new[0][0] > 0
    assert {c["doc_id"] for c in changes} == {new_doc[0][0]} and all(c["new_evidence"] for c in changes)

    # time travel: snapshot s1 still holds exactly the first run's facts
    then = fact_rows(settings, at=s1)
    assert len(then) > 0 and new_doc[0][0] not in {r[0] for r in then}
    assert then == fact_rows(settings) - {r for r in fact_rows(settings) if r[0] == new_doc[0][0]}

    # rollback to s1, then the next run loads the held-back report again (and only it)
    undo = rollback_to(settings, s1)
    assert fact_rows(settings) == then and undo.snapshot_id == s2 + 1
    third = ingest(inbox=str(inbox), warehouse=str(wh))
    assert third["changed"] and third["documents"] == 1 and third["skipped"] >= 4
    assert summarize(diff_snapshots(settings, s2, third["snapshot_id"])) == {"added": 0, "removed": 0, "changed": 0}
    actions = [s["action"] for s in list_snapshots(settings) if s["snapshot_id"] > s1]
    assert actions == ["run", "rollback", "run"]
