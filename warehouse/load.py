"""Load one run's results in a single DuckLake transaction: one snapshot, or none.

A run either commits everything it produced, with a commit message naming the
flow run, the code version and the input manifest, or nothing at all: a crash
before COMMIT leaves the warehouse at its previous snapshot.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow as pa

from transforms.settings import Settings
from warehouse.catalog import connect, extension_path, sql_str
from warehouse.schema import MIGRATIONS, TABLES, migrate
from warehouse.views import sync_region_reference

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


# Held writer locks of this process: key -> [depth]; the RLock makes the lock re-entrant per thread
# (load_batch takes it and calls open_for_write, which takes it again) and exclusive across threads.
_HELD: dict[str, tuple[threading.RLock, list[int]]] = {}
_HELD_GUARD = threading.Lock()
# Key of the PostgreSQL advisory lock that serializes writers sharing one catalog database.
PG_WRITER_LOCK_KEY = 0x676F7666  # "govf"


def _lock_key(settings: Settings) -> str:
    return f"postgres:{settings.postgres_dsn}" if settings.catalog == "postgres" else str(settings.warehouse.resolve())


@contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """One writer at a time per warehouse, across processes and machines; readers are never blocked.

    Local catalogs: ``flock`` on ``<warehouse>/.writer.lock``. PostgreSQL catalog: a
    transaction-scoped advisory lock in the catalog database, so writers on different
    machines queue too. Both vanish with the process, so a killed run never leaves a
    stale lock behind. Re-entrant within a thread.
    """
    key = _lock_key(settings)
    with _HELD_GUARD:
        rlock, depth = _HELD.setdefault(key, (threading.RLock(), [0]))
    with rlock:
        depth[0] += 1
        try:
            if depth[0] > 1:
                yield
            elif settings.catalog == "postgres":
                with _postgres_advisory_lock(settings):
                    yield
            else:
                with _file_lock(settings.warehouse / ".writer.lock"):
                    yield
        finally:
            depth[0] -= 1


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _postgres_advisory_lock(settings: Settings) -> Iterator[None]:
    """Hold ``pg_advisory_xact_lock`` in an open transaction of a side connection for the duration."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.execute(f"LOAD '{extension_path('postgres_scanner')}'")
        con.execute(f"ATTACH {sql_str(settings.postgres_dsn)} AS pglock (TYPE postgres)")
        con.execute("BEGIN")
        con.execute(f"SELECT * FROM postgres_query('pglock', 'SELECT pg_advisory_xact_lock({PG_WRITER_LOCK_KEY})::text')").fetchall()
        yield
    finally:
        con.close()  # ends the PostgreSQL transaction, which releases the lock


def commit_message(action: str, **fields) -> str:
    """The JSON commit message of a snapshot: what made it (run, migrate, rollback, compact, sql) and its details."""
    return json.dumps({"action": action, **fields}, ensure_ascii=False, default=str)


def migrations_pending(con: duckdb.DuckDBPyConnection) -> bool:
    """Does the attached warehouse lack a migration this code declares? (Cheap: one small read.)"""
    try:
        done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    except duckdb.CatalogException:
        return True
    return any(version not in done for version, _ in MIGRATIONS)


@contextmanager
def writing(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection held under the writer lock, closed on the way out (maintenance work)."""
    with writer_lock(settings):
        con = open_for_write(settings)
        try:
            yield con
        finally:
            con.close()


def open_for_write(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Connect read-write and bring the schema up to date (its own snapshot if anything changed).

    Migrating takes the writer lock; an up-to-date warehouse is opened without it.
    """
    con = connect(settings)
    try:
        if migrations_pending(con):
            with writer_lock(settings):
                con.execute("BEGIN")
                applied = migrate(con)
                if applied:
                    con.execute("CALL wh.set_commit_message('govfacts', ?)", [commit_message("migrate", migrations=applied)])
                con.execute("COMMIT")
    except BaseException:
        con.close()
        raise
    return con


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """Id of the latest snapshot of the attached warehouse."""
    return con.execute("SELECT id FROM wh.current_snapshot()").fetchone()[0]


def known_documents(con: duckdb.DuckDBPyConnection, version: str) -> set[str]:
    """Content hashes already loaded (as documents, copies of a document, or quarantined files) by this code version."""
    from warehouse.copies import known_copies  # noqa: PLC0415

    rows = con.execute(
        "SELECT doc_id FROM documents WHERE pipeline_version = ? "
        "UNION SELECT sha256 FROM quarantine WHERE item = 'file' AND pipeline_version = ? AND sha256 IS NOT NULL",
        [version, version],
    ).fetchall()
    return {r[0] for r in rows} | known_copies(con, version)


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    if table.num_rows == 0:
        return
    cols = [c.name for c in _TABLE[name].columns if c.name in table.column_names]
    con.register("_incoming", table.select(cols))
    quoted = ", ".join(f'"{c}"' for c in cols)
    con.execute(f"INSERT INTO {name} ({quoted}) SELECT {quoted} FROM _incoming")
    con.unregister("_incoming")


def write_run(settings: Settings, run: dict, dq_results: pa.Table, documents: list[str], hashes: list[str],
              write: Callable[[duckdb.DuckDBPyConnection], None]) -> int:
    """Commit one run as one snapshot; return its id. Both ways of loading a run (one batch, parts) go through here.

    In one transaction under the writer lock: the rows of ``documents`` (doc ids) in the document
    tables and the quarantine records of ``hashes`` (content hashes the run re-decided, file- and
    fact-level) are deleted, so a re-run at a new code version replaces rather than duplicates
    them; the region reference is synced; ``write(con)`` inserts the run's rows; then the dq results
    (stamped with the new snapshot id), the run row and the commit message. Any failure rolls back.
    """
    with writer_lock(settings):
        con = open_for_write(settings)
        try:
            snapshot = current_snapshot(con) + 1
            con.execute("BEGIN")
            if documents:
                for name in ("facts", "document_text", "documents"):
                    con.execute(f"DELETE FROM {name} WHERE doc_id IN (SELECT unnest(?))", [documents])
            if hashes:
                con.execute("DELETE FROM quarantine WHERE sha256 IN (SELECT unnest(?))", [hashes])
            sync_region_reference(con)
            write(con)
            if dq_results.num_rows:
                _insert(con, "dq_results", dq_results.set_column(dq_results.schema.get_field_index("snapshot_id"), "snapshot_id",
                                                                 pa.array([snapshot] * dq_results.num_rows, pa.int64())))
            row = dict(run, snapshot_id=snapshot)
            _insert(con, "runs", pa.Table.from_pylist([row]))
            message = commit_message("run", **{k: row.get(k) for k in ("run_id", "flow_run_id", "code_version", "inputs_manifest_hash")})
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


def load_batch(settings: Settings, batch: LoadBatch) -> int | None:
    """Write a run's results as one snapshot; return its id, or None when nothing changed."""
    if batch.is_empty:
        return None
    doc_ids = batch.documents.column("doc_id").to_pylist()
    rejected = [h for h in (batch.quarantine.column("sha256").to_pylist() if "sha256" in batch.quarantine.column_names else []) if h]

    def write(con: duckdb.DuckDBPyConnection) -> None:
        for name in ("documents", "document_text", "facts", "quarantine"):
            _insert(con, name, getattr(batch, name))

    return write_run(settings, batch.run, batch.dq_results, doc_ids, sorted(set(doc_ids) | set(rejected)), write)
