"""Snapshots: list them, and open the warehouse for reading (latest or at a past snapshot)."""

from __future__ import annotations

import json

import duckdb

from govfacts.settings import Settings
from warehouse.catalog import connect


def list_snapshots(settings: Settings) -> list[dict]:
    """Every snapshot with time, commit message and the row counts of the run it belongs to."""
    con = connect(settings, read_only=True)
    try:
        rows = con.execute(
            """SELECT s.snapshot_id, s.snapshot_time, s.commit_message, r.documents, r.facts_extracted,
                      r.facts_published, r.facts_quarantined, r.files_quarantined
               FROM wh.snapshots() s LEFT JOIN runs r ON r.snapshot_id = s.snapshot_id
               ORDER BY s.snapshot_id"""
        ).fetchall()
    finally:
        con.close()
    keys = ("snapshot_id", "time", "message", "documents", "facts", "published", "facts_quarantined", "files_quarantined")
    return [dict(zip(keys, r)) for r in rows]


def query(settings: Settings, sql: str, params: list | None = None, at: int | None = None, read_only: bool = True) -> tuple[list[str], list[tuple]]:
    """Run SQL against the latest snapshot, or against snapshot ``at`` (DuckLake time travel)."""
    con = connect(settings, read_only=read_only, at=at)
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description] if cur.description else []
        return names, cur.fetchall()
    finally:
        con.close()
