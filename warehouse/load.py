"""Load one run's results in a single DuckLake transaction: one snapshot, or none.

A run either commits everything it produced, with a commit message naming the
flow run, the code version and the input manifest, or nothing at all: a crash
before COMMIT leaves the warehouse at its previous snapshot.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from govfacts.settings import Settings
from warehouse.catalog import connect
from warehouse.schema import TABLES, migrate

_TABLE = {t.name: t for t in TABLES}


@dataclass
class LoadBatch:
    """Everything one run loads, as Arrow tables whose columns match the warehouse tables."""

    run: dict
    documents: pa.Table
    document_text: pa.Table
    facts: pa.Table
    quarantine: pa.Table
    dq_results: pa.Table

    @property
    def is_empty(self) -> bool:
        return self.documents.num_rows == 0 and self.quarantine.num_rows == 0 and self.facts.num_rows == 0


@contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """One writer at a time per warehouse (readers are never blocked)."""
    if settings.catalog == "postgres":
        yield
        return
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    with open(settings.warehouse / ".writer.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def open_for_write(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Connect read-write and bring the schema up to date (its own snapshot if anything changed)."""
    con = connect(settings)
    con.execute("BEGIN")
    applied = migrate(con)
    if applied:
        con.execute("CALL wh.set_commit_message('govfacts', ?)", [f"schema migrations {applied}"])
    con.execute("COMMIT")
    return con


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """Id of the latest snapshot of the attached warehouse."""
    return con.execute("SELECT id FROM wh.current_snapshot()").fetchone()[0]


def known_documents(con: duckdb.DuckDBPyConnection, version: str) -> set[str]:
    """Content hashes already loaded (as documents or quarantined files) by this code version."""
    rows = con.execute(
        "SELECT doc_id FROM documents WHERE pipeline_version = ? "
        "UNION SELECT sha256 FROM quarantine WHERE item = 'file' AND pipeline_version = ? AND sha256 IS NOT NULL",
        [version, version],
    ).fetchall()
    return {r[0] for r in rows}


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    if table.num_rows == 0:
        return
    cols = [c.name for c in _TABLE[name].columns if c.name in table.column_names]
    con.register("_incoming", table.select(cols))
    quoted = ", ".join(f'"{c}"' for c in cols)
    con.execute(f"INSERT INTO {name} ({quoted}) SELECT {quoted} FROM _incoming")
    con.unregister("_incoming")


def load_batch(settings: Settings, batch: LoadBatch) -> int | None:
    """Write a run's results as one snapshot; return its id, or None when nothing changed."""
    if batch.is_empty:
        return None
    with writer_lock(settings):
        con = open_for_write(settings)
        try:
            snapshot = current_snapshot(con) + 1
            doc_ids = batch.documents.column("doc_id").to_pylist()
            con.execute("BEGIN")
            if doc_ids:
                for name in ("facts", "document_text", "documents"):
                    con.execute(f"DELETE FROM {name} WHERE doc_id IN (SELECT unnest(?))", [doc_ids])
                con.execute("DELETE FROM quarantine WHERE item = 'file' AND sha256 IN (SELECT unnest(?))", [doc_ids])
            for name in ("documents", "document_text", "facts", "quarantine"):
                _insert(con, name, getattr(batch, name))
            dq = batch.dq_results
            if dq.num_rows:
                dq = dq.set_column(dq.schema.get_field_index("snapshot_id"), "snapshot_id",
                                   pa.array([snapshot] * dq.num_rows, pa.int64()))
            _insert(con, "dq_results", dq)
            run = dict(batch.run, snapshot_id=snapshot)
            _insert(con, "runs", pa.Table.from_pylist([run]))
            message = json.dumps({k: run[k] for k in ("run_id", "flow_run_id", "code_version", "inputs_manifest_hash")}, ensure_ascii=False)
            con.execute("CALL wh.set_commit_message('govfacts', ?)", [message])
            if os.environ.get("GOVFACTS_FAULT") == "load":  # fault injection for the reliability tests
                os.kill(os.getpid(), 9)
            con.execute("COMMIT")
            return current_snapshot(con)
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        finally:
            con.close()
