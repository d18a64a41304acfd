"""Atomicity and isolation with real processes, on the SQLite and the PostgreSQL catalog.

- a load killed with SIGKILL just before COMMIT (GOVFACTS_FAULT=load) leaves the warehouse
  at its previous snapshot, and the next load succeeds (no stale lock, no half state);
- a reader in another process querying facts_published in a loop during a load never gets
  an error and only ever sees the whole snapshot before or the whole snapshot after.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.pg import settings_env
from tests.warehouse_batches import READER_SQL, fact, make_batch
from warehouse.catalog import connect
from warehouse.load import load_batch
from warehouse.maintenance import compact
from warehouse.snapshots import latest_snapshot, query

PROJECT = Path(__file__).resolve().parent.parent


def child(settings, *args: str, fault: str | None = None, **kw) -> subprocess.Popen:
    env = settings_env(settings)
    if fault:
        env["GOVFACTS_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-m", "tests.warehouse_batches", *args], cwd=PROJECT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def counts(settings) -> tuple[int, int, int]:
    con = connect(settings, read_only=True)
    try:
        return tuple(con.execute(READER_SQL).fetchone())
    finally:
        con.close()


def test_a_load_killed_before_commit_leaves_the_previous_snapshot_and_the_next_load_succeeds(catalog_settings):
    settings = catalog_settings
    before_snapshot = load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10), fact("docA", 7.0, 50, kind="target")]))
    before = counts(settings)
    killed = child(settings, "synthetic", "3000", "1", fault="load")
    out, err = killed.communicate(timeout=240)
    assert killed.returncode == -signal.SIGKILL, (out, err)
    assert "loading" in out and "snapshot" not in out, "the child died inside load_batch"
    assert latest_snapshot(settings) == before_snapshot
    assert counts(settings) == before
    _, ids = query(settings, "SELECT DISTINCT run_id FROM facts")
    assert ids == [("run1",)], "nothing of the killed run is visible"
    # the killed run wrote data files it never committed; compaction removes them
    assert compact(settings, older_than="never").orphans_deleted >= 1
    rerun = child(settings, "synthetic", "3000", "1")
    out, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err
    after_snapshot = latest_snapshot(settings)
    assert f"snapshot {after_snapshot}" in out
    _, n = query(settings, "SELECT count(*) FROM facts WHERE run_id = 'child-1'")
    assert n[0][0] >= 3000


def test_a_reader_in_another_process_never_errors_and_never_sees_a_partial_snapshot(catalog_settings, tmp_path: Path):
    settings = catalog_settings
    load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10)]))
    before = counts(settings)
    stop = tmp_path / "stop-reader"
    reader = child(settings, "reader", str(stop))
    first = reader.stdout.readline()
    assert first and "counts" in first, (first, reader.stderr.read() if reader.poll() is not None else "")
    lines = [first]
    writer = child(settings, "synthetic", "120000", "2", "1000")
    w_out, w_err = writer.communicate(timeout=240)
    assert writer.returncode == 0, w_err
    after = counts(settings)
    assert after != before
    deadline = time.time() + 60
    while time.time() < deadline:  # keep reading until the reader has seen the new snapshot a few times
        line = reader.stdout.readline()
        lines.append(line)
        if line and json.loads(line).get("counts") == list(after) and sum(list(after) == json.loads(x).get("counts") for x in lines) >= 3:
            break
    stop.touch()
    rest, r_err = reader.communicate(timeout=60)
    assert reader.returncode == 0, r_err
    records = [json.loads(x) for x in lines + rest.splitlines() if x.strip()]
    errors = [r["error"] for r in records if "error" in r]
    assert errors == []
    seen = {tuple(r["counts"]) for r in records}
    assert seen <= {before, after}, f"partial snapshot seen: {seen - {before, after}}"
    assert before in seen and after in seen
    load_start = float(w_out.split("loading ")[1].split()[0])
    load_end = float(w_out.split("snapshot ")[1].split()[1])
    during = [r for r in records if load_start <= r["t0"] <= load_end]
    print(f"{len(during)} of {len(records)} queries ran during the load")
    assert during, f"no query ran during the {load_end - load_start:.2f} s load; the test proved nothing"
