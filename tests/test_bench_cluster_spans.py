"""The task-time arithmetic of benchmarks/bench_cluster.py: union of task-run spans, share outside task bodies,
seconds by task name, read from a Prefect server's SQLite tables (a tiny stand-in with the columns it reads)."""

from __future__ import annotations

import sqlite3

import pytest

from benchmarks.bench_cluster import (outside_share, read_run, seconds_by_task, task_name, task_time, union_seconds,
                                      wait_recorded)


@pytest.mark.parametrize("spans, expected", [
    ([], 0.0),
    ([(0, 2), (3, 4)], 3.0),  # apart: summed
    ([(0, 3), (1, 2)], 3.0),  # nested: the inner one counts nothing
    ([(2, 5), (0, 3)], 5.0),  # overlapping, out of order
    ([(0, 1), (1, 2)], 2.0),  # touching
], ids=["none", "disjoint", "nested", "overlapping", "touching"])
def test_union_seconds(spans, expected):
    assert union_seconds(spans) == pytest.approx(expected)


def test_outside_share_clips_spans_to_the_flow_run():
    # a 10 s flow run; task runs cover 2-4 and 3-6 (5 s at once-or-more) and one starts before the run (counts 0-1)
    assert outside_share((0, 10), [(2, 4), (3, 6), (-5, 1), (12, 13)]) == pytest.approx(1 - 5 / 10)


def test_outside_share_refuses_an_unfinished_flow_run():
    with pytest.raises(ValueError, match="no length"):
        outside_share((5, 5), [])


@pytest.mark.parametrize("key, name", [
    ("transform-40b702a9", "transform"), ("spill_facts-7f8b7e72", "spill_facts"), ("plan", "plan"), ("my-task-x", "my-task-x"),
], ids=["transform", "underscore", "no-hash", "not-a-hash"])
def test_task_name(key, name):
    assert task_name(key) == name


def test_seconds_by_task_sums_durations_largest_first():
    got = seconds_by_task([("transform", 0, 2), ("validate", 1, 7), ("transform", 1, 4)])
    assert got == {"validate": dict(runs=1, seconds=6.0), "transform": dict(runs=2, seconds=5.0)}
    assert list(got) == ["validate", "transform"]


def _prefect_db(path, flow_state="COMPLETED", task_end="2026-12-05 10:00:04.000000"):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE flow_run (id TEXT, state_type TEXT, start_time TEXT, end_time TEXT)")
    con.execute("CREATE TABLE task_run (flow_run_id TEXT, task_key TEXT, state_type TEXT, start_time TEXT, end_time TEXT)")
    con.execute("INSERT INTO flow_run VALUES ('f1', ?, '2026-12-05 10:00:00.000000', '2026-12-05 10:00:10.000000')", (flow_state,))
    con.executemany("INSERT INTO task_run VALUES (?, ?, 'COMPLETED', ?, ?)", [
        ("f1", "transform-40b702a9", "2026-12-05 10:00:01.000000", task_end),
        ("f1", "transform-40b702a9", "2026-12-05 10:00:02.000000", "2026-12-05 10:00:05.000000"),
        ("f1", "load-26fba1d3", "2026-12-05 10:00:08.000000", "2026-12-05 10:00:09.500000"),
        ("other", "load-26fba1d3", "2026-12-05 10:00:00.000000", "2026-12-05 10:00:10.000000"),  # another flow run's
    ])
    con.commit()
    con.close()


def test_task_time_from_the_servers_tables(tmp_path):
    db = tmp_path / "prefect.db"
    _prefect_db(db)
    got = task_time(db, "f1")
    # busy 1-5 and 8-9.5: 5.5 s of a 10 s flow run
    assert got["flow_run_wall"] == 10.0 and got["task_runs"] == 3
    assert got["outside_share"] == pytest.approx(0.45) and got["inside_seconds"] == pytest.approx(5.5)
    assert got["by_task"] == {"transform": dict(runs=2, seconds=6.0), "load": dict(runs=1, seconds=1.5)}


def test_read_run_of_an_unknown_flow_run(tmp_path):
    db = tmp_path / "prefect.db"
    _prefect_db(db)
    assert read_run(db, "nope") == dict(state=None, flow=None, tasks=[])


def test_an_unfinished_run_is_not_taken_as_recorded(tmp_path):
    db = tmp_path / "prefect.db"
    _prefect_db(db, flow_state="RUNNING")
    with pytest.raises(SystemExit, match="not completely recorded"):
        wait_recorded(db, "f1", timeout=0)
