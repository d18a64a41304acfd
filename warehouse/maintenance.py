"""Maintenance (``govfacts compact``): fewer, larger files and bounded history, under the writer lock.

Steps, in order, each a DuckLake function:
1. flush inlined data — small inserts live inside the catalog until written out as Parquet;
2. merge adjacent files — every run adds small files per table; merge them;
3. rewrite data files with many deletes — re-loaded documents leave delete files behind;
4. expire snapshots older than the retention setting (``GOVFACTS_SNAPSHOT_RETENTION``,
   e.g. ``90 days``; ``never`` keeps all) — the only step that loses history: time travel
   and rollback to an expired snapshot are no longer possible (the current state never expires);
5. delete files no snapshot references any more, and orphaned files (left by a run
   killed before COMMIT).
Holding the writer lock makes step 5 safe: no run is writing uncommitted files meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from transforms.settings import Settings
from warehouse.catalog import ALIAS, METADATA
from warehouse.load import commit_message, writing
from warehouse.snapshots import rollback

_RETENTION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week|month|year)s?\s*$", re.IGNORECASE)


@dataclass
class CompactResult:
    """Counts of what compaction did."""

    snapshots_before: int = 0
    snapshots_after: int = 0
    files_before: int = 0
    files_after: int = 0
    merged: int = 0
    rewritten: int = 0
    expired: list[int] = field(default_factory=list)
    deleted_files: int = 0
    orphans_deleted: int = 0
    retention: str = ""


def retention_interval(text: str) -> str | None:
    """A DuckDB INTERVAL literal for a retention such as ``90 days``; None for ``never``."""
    if text.strip().lower() in ("never", "", "none"):
        return None
    m = _RETENTION.match(text)
    if not m:
        raise ValueError(f"snapshot retention {text!r} is not understood; write it like '90 days', '12 hours', "
                         "'2 weeks' or 'never' (GOVFACTS_SNAPSHOT_RETENTION or --older-than)")
    return f"INTERVAL '{int(m.group(1))} {m.group(2).lower()}'"


def _data_files(con: duckdb.DuckDBPyConnection) -> int:
    """Data files the current snapshot reads."""
    return con.execute(f"SELECT count(*) FROM {METADATA}.ducklake_data_file WHERE end_snapshot IS NULL").fetchone()[0]


def _step(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> list[tuple]:
    """One rewriting step in its own transaction (DuckLake will not mix compaction with other changes),
    so the snapshot it makes, if any, says ``compact`` in its commit message."""
    con.execute("BEGIN")
    try:
        con.execute(f"CALL {ALIAS}.set_commit_message('govfacts', ?)", [commit_message("compact", step=what)])
        rows = con.execute(sql).fetchall()
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return rows


@dataclass
class CompactPlan:
    """What ``compact`` would expire and delete now (DuckLake's own dry runs); merging and rewriting lose nothing."""

    retention: str = ""
    expire: list[tuple[int, str]] = field(default_factory=list)  # (snapshot id, time) of the snapshots it would expire
    scheduled_files: list[str] = field(default_factory=list)  # files of earlier expiries/rewrites, no snapshot needs them
    orphaned_files: list[str] = field(default_factory=list)  # files no snapshot ever committed (a killed run)


def plan_compact(settings: Settings, older_than: str | None = None) -> CompactPlan:
    """The snapshots ``compact`` would expire and the files it would delete, without changing anything.

    Files the expiry itself frees are not counted here (they are known once it has run): they belong to the
    snapshots listed."""
    retention = settings.snapshot_retention if older_than is None else older_than
    interval = retention_interval(retention)
    plan = CompactPlan(retention=retention)
    with writing(settings) as con:
        if interval:
            ids = [r[0] for r in con.execute(
                f"SELECT snapshot_id FROM ducklake_expire_snapshots('{ALIAS}', dry_run => true, older_than => now() - {interval})"
            ).fetchall()]
            times = dict(con.execute(f"SELECT snapshot_id, snapshot_time FROM {ALIAS}.snapshots()").fetchall())
            plan.expire = [(i, str(times.get(i, ""))[:19]) for i in sorted(ids)]
        plan.scheduled_files = [r[0] for r in con.execute(
            f"SELECT * FROM ducklake_cleanup_old_files('{ALIAS}', dry_run => true, cleanup_all => true)").fetchall()]
        plan.orphaned_files = [r[0] for r in con.execute(
            f"SELECT * FROM ducklake_delete_orphaned_files('{ALIAS}', dry_run => true, cleanup_all => true)").fetchall()]
        return plan


def compact(settings: Settings, older_than: str | None = None) -> CompactResult:
    """Run the maintenance steps of the module doc; ``older_than`` overrides the retention setting."""
    retention = settings.snapshot_retention if older_than is None else older_than
    interval = retention_interval(retention)
    result = CompactResult(retention=retention)
    with writing(settings) as con:
        result.snapshots_before = con.execute(f"SELECT count(*) FROM {ALIAS}.snapshots()").fetchone()[0]
        result.files_before = _data_files(con)
        _step(con, f"SELECT * FROM ducklake_flush_inlined_data('{ALIAS}')", "flush inlined data")
        result.merged = sum(r[2] or 0 for r in _step(con, f"SELECT * FROM ducklake_merge_adjacent_files('{ALIAS}')",
                                                     "merge adjacent files"))
        result.rewritten = len(_step(con, f"SELECT * FROM ducklake_rewrite_data_files('{ALIAS}')", "rewrite files with deletes"))
        if interval:
            result.expired = [r[0] for r in con.execute(
                f"SELECT snapshot_id FROM ducklake_expire_snapshots('{ALIAS}', older_than => now() - {interval})").fetchall()]
        result.deleted_files = len(con.execute(f"SELECT * FROM ducklake_cleanup_old_files('{ALIAS}', cleanup_all => true)").fetchall())
        result.orphans_deleted = len(con.execute(
            f"SELECT * FROM ducklake_delete_orphaned_files('{ALIAS}', cleanup_all => true)").fetchall())
        result.snapshots_after = con.execute(f"SELECT count(*) FROM {ALIAS}.snapshots()").fetchone()[0]
        result.files_after = _data_files(con)
        return result
