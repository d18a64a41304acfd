"""Snapshots: list them, and query the warehouse as it is or as it was (DuckLake time travel).

Every snapshot carries a JSON commit message whose ``action`` says what made it:
``run`` (a flow run: run_id, flow_run_id, code_version, inputs_manifest_hash),
``migrate`` (schema migrations), ``rollback`` (restored_snapshot), ``compact``
(maintenance) or ``sql`` (a read-write session). Snapshot 0 is DuckLake's own
creation of the lake.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Callable, Iterator

import duckdb

from transforms.settings import Settings
from warehouse.catalog import ALIAS, SnapshotNotFound, check_read_only, connect
from warehouse.querying import DEFAULT_TIMEOUT, stream
from warehouse.sandbox import check_read_write


def classify(message: str | None) -> tuple[str, dict]:
    """The action that made a snapshot and the details of its commit message."""
    if not message:
        return "", {}
    try:
        info = json.loads(message)
    except json.JSONDecodeError:
        return ("migrate" if message.startswith("schema migrations") else "other"), {"message": message}
    if not isinstance(info, dict):
        return "other", {"message": message}
    action = info.get("action") or ("run" if "run_id" in info else "other")
    return action, info


def describe(action: str, details: dict) -> str:
    """One short line for a snapshot's commit message (the full JSON stays in ``message``)."""
    if action == "run":
        return (f"run {details.get('run_id')} · flow run {str(details.get('flow_run_id'))[:8]} · "
                f"code {details.get('code_version')} · inputs {str(details.get('inputs_manifest_hash'))[:12]}")
    if action == "migrate":
        return f"schema migrations {details.get('migrations', details.get('message', ''))}"
    if action == "rollback":
        return f"rollback to the state of snapshot {details.get('restored_snapshot')} (was {details.get('previous_snapshot')})"
    if action == "compact":
        return f"compact: {details.get('step', '')}"
    if action in ("sql", "shell"):
        return f"{action} (read-write session)"
    return str(details.get("message", ""))


def list_snapshots(settings: Settings) -> list[dict]:
    """Every snapshot, oldest first, with time, action, commit message and the counts of the run that made it."""
    con = connect(settings, read_only=True)
    try:
        rows = con.execute(
            f"""SELECT s.snapshot_id, s.snapshot_time, s.commit_message, s.changes, r.documents, r.facts_extracted,
                      r.facts_published, r.facts_quarantined, r.files_quarantined, r.run_id
               FROM {ALIAS}.snapshots() s LEFT JOIN runs r ON r.snapshot_id = s.snapshot_id
               ORDER BY s.snapshot_id"""
        ).fetchall()
    finally:
        con.close()
    keys = ("snapshot_id", "time", "message", "changes", "documents", "facts", "published", "facts_quarantined",
            "files_quarantined", "run_id")
    out = []
    for r in rows:
        snap = dict(zip(keys, r))
        snap["action"], snap["details"] = classify(snap["message"])
        snap["summary"] = describe(snap["action"], snap["details"]) if snap["message"] else (
            "lake created" if snap["snapshot_id"] == 0 else "(no commit message)")
        out.append(snap)
    return out


def snapshot_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Ids of the snapshots that still exist (compact may have expired old ones)."""
    return [r[0] for r in con.execute(f"SELECT snapshot_id FROM {ALIAS}.snapshots() ORDER BY 1").fetchall()]


def require_snapshot(con: duckdb.DuckDBPyConnection, snapshot: int, settings: Settings) -> None:
    """Fail with a message that says what to do when ``snapshot`` does not exist."""
    ids = snapshot_ids(con)
    if snapshot not in ids:
        raise SnapshotNotFound(f"snapshot {snapshot} is not in the warehouse at {settings.warehouse} "
                               f"(snapshots {ids[0]}..{ids[-1]} exist; expired ones are gone after `govfacts compact`); "
                               "`govfacts snapshots` lists them")


def latest_snapshot(settings: Settings) -> int:
    """Id of the warehouse's current snapshot."""
    con = connect(settings, read_only=True)
    try:
        return con.execute(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()[0]
    finally:
        con.close()


def query(settings: Settings, sql: str, params: list | None = None, at: int | None = None, read_only: bool = True,
          at_time: str | None = None, timeout: float | None = None) -> tuple[list[str], list[tuple]]:
    """Run SQL against the latest snapshot, or snapshot ``at`` / the snapshot current at ``at_time``; the whole result.

    Read-only (the default) is also sandboxed: only the reads of the allow-list in
    warehouse/sandbox.py, no files, no other databases (see warehouse/catalog.py).
    Read-write takes the writer lock, so it never races a run, and commits as one
    snapshot with an ``sql`` commit message. For results of any size use ``stream_query``.
    """
    names: list[str] = []
    rows: list[tuple] = []
    stream_query(settings, sql, names.extend, lambda batch: rows.extend(batch) or True, params=params, at=at,
                 read_only=read_only, at_time=at_time, timeout=timeout)
    return names, rows


def stream_query(settings: Settings, sql: str, on_columns: Callable[[list[str]], None], on_rows: Callable[[list[tuple]], bool],
                 params: list | None = None, at: int | None = None, read_only: bool = True, at_time: str | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT, arrow: bool = False) -> None:
    """Like ``query``, but the rows go to ``on_rows`` in batches as DuckDB produces them (until it returns False),
    within ``timeout`` seconds, and Ctrl-C cancels the query at once (warehouse/querying.py); ``arrow``: the
    batches are Arrow record batches with DuckDB's types (for Parquet)."""
    if read_only or at is not None or at_time is not None:
        check_read_only(sql)
        con = connect(settings, read_only=True, at=at, at_time=at_time)
        try:
            stream(con, sql, params, on_columns, on_rows, timeout=timeout, arrow=arrow)
        finally:
            con.close()
        return
    refuse_transaction_statements(sql)
    with _read_write(settings, sql) as con:
        stream(con, sql, params, on_columns, on_rows, timeout=timeout, arrow=arrow)


READING_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA"}


def writes(sql: str) -> bool:
    """Could ``sql`` change the warehouse? (Only then does a session name the snapshot it may make:
    a commit message alone would make an empty snapshot.)"""
    return any(s.type.name not in READING_STATEMENTS for s in duckdb.extract_statements(sql))


@contextmanager
def _read_write(settings: Settings, sql: str = "") -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write session under the writer lock whose work commits as one snapshot (or rolls back)."""
    # imported here: warehouse.load brings pyarrow and pandas, which a read-only `govfacts sql` never needs (start-up time)
    from warehouse.load import commit_message, open_for_write, writer_lock  # noqa: PLC0415

    with writer_lock(settings):
        con = open_for_write(settings)
        try:
            con.execute("BEGIN")
            if writes(sql):
                con.execute(f"CALL {ALIAS}.set_commit_message('govfacts', ?)", [commit_message("sql")])
            yield con
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise
        finally:
            con.close()


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Abort the open transaction; when a failure already ended it there is nothing to undo."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        return


def refuse_transaction_statements(sql: str) -> None:
    """A read-write command is one transaction (one snapshot); BEGIN/COMMIT inside it would split it.
    Calls known to crash the process are refused too (warehouse/sandbox.py, KNOWN_CRASHES)."""
    check_read_write(sql)
    if any(s.type.name == "TRANSACTION" for s in duckdb.extract_statements(sql)):
        raise ValueError("leave out BEGIN/COMMIT/ROLLBACK: `govfacts sql --read-write` runs the whole command as one "
                         "transaction (one snapshot), and rolls it back if any statement fails")
