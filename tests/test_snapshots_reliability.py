"""Atomicity and isolation with real processes, on the SQLite and the PostgreSQL catalog.

- a load killed with SIGKILL just before COMMIT (GOVFACTS_FAULT=load) leaves the warehouse
  at its previous snapshot, and the next load succeeds (no stale lock, no half state);
- a reader in another process querying facts_published in a loop during a load never gets
  an error and only ever sees the whole snapshot before or the whole snapshot after;
- a second writer in another process waits for the first (flock / PostgreSQL advisory lock).
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
from warehouse.load import load_batch, writer_lock
from warehouse.maintenance import compact
from warehouse.snapshots import latest_snapshot, query
from warehouse.synthetic import synthetic_batch

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
    after_snapshot = load_batch(settings, synthetic_batch(3000, seed=1, run_id="child-1"))
    assert after_snapshot == latest_snapshot(settings) > before_snapshot
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
    batch = synthetic_batch(120_000, seed=2, run_id="big", doc_offset=1000)
    load_start = time.time()
    load_batch(settings, batch)
    load_end = time.time()
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
    # a query ran beside the load when their times overlap (one that started just before the load and was still
    # running, or waited, while it wrote counts too: starting inside a 0.5 s window is a matter of luck on a busy machine)
    during = [r for r in records if r["t0"] <= load_end and r["t1"] >= load_start]
    print(f"{len(during)} of {len(records)} queries ran during the load")
    assert during, f"no query ran during the {load_end - load_start:.2f} s load; the test proved nothing"


def test_a_second_writer_in_another_process_waits_for_the_first(catalog_settings):
    settings = catalog_settings
    before = load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10)]))
    with writer_lock(settings):
        waiting = child(settings, "synthetic", "300", "3", "500")
        assert waiting.stdout.readline().startswith("loading")
        time.sleep(2)
        assert waiting.poll() is None and latest_snapshot(settings) == before, "the second writer did not wait"
    out, err = waiting.communicate(timeout=240)
    assert waiting.returncode == 0, err
    assert latest_snapshot(settings) == before + 1
