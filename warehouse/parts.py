"""Streaming load: a run writes its results batch by batch as Parquet parts, then loads them in ONE transaction.

Why parts instead of one big in-memory batch: a run over tens of thousands of reports
must not hold the corpus in memory. Each batch task writes ``<table>-<n>.parquet``
into a run-scoped directory (on the same file system as the staging area, so Dask
workers on other machines can write there too) and returns only counts. At the end
``load_parts`` inserts every part with DuckDB's streaming ``read_parquet`` in a single
DuckLake transaction: still one snapshot per run, or none when nothing changed, and a
crash before COMMIT leaves the warehouse at its previous snapshot.

Also here, the queries the incremental planner needs beyond ``known_documents``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from transforms.settings import Settings
from warehouse.load import write_run
from transforms.stage import process_alive
from warehouse.schema import TABLES
from warehouse.storage import filesystem, is_remote, join
from warehouse.texts import PartTexts  # noqa: F401 (its home is duckdb-free, for the validator process)

PART_TABLES = ("documents", "document_text", "facts", "quarantine")
_ARROW_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
                "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us")}
_TABLE = {t.name: t for t in TABLES}


def arrow_schema(name: str) -> pa.Schema:
    """The Arrow schema of warehouse table ``name``, from its declaration in warehouse/schema.py."""
    return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in _TABLE[name].columns])


def conform(name: str, table: pa.Table) -> pa.Table:
    """``table`` with exactly the columns of warehouse table ``name`` (missing ones NULL), cast to their types.

    Every part of a table then has the same Parquet schema, whatever batch wrote it.
    """
    return conform_to(arrow_schema(name), table)


def conform_to(schema: pa.Schema, table: pa.Table) -> pa.Table:
    """``table`` with exactly the columns of ``schema`` (missing ones NULL), cast to their types."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def part_path(parts: str | Path, name: str, label: str) -> str:
    """Where batch ``label`` writes its rows of table ``name`` (a local path or an ``s3://`` URI)."""
    return join(str(parts), f"{name}-{label}.parquet")


def write_part(parts: str | Path, name: str, label: str, table: pa.Table, schema: pa.Schema | None = None) -> int:
    """Write one batch's rows of table ``name`` as ``<parts>/<name>-<label>.parquet``; return the row count.

    The part gets exactly the columns of ``schema`` — by default warehouse table ``name``'s (``conform``);
    a part the run only reads itself (a validated group's ``comparable`` facts) names its own.

    Locally it is written to a temporary name and renamed, so a killed task never leaves a torn part;
    an object store makes an object visible only once its upload completes, so there it is written in place.
    """
    if table.num_rows == 0:
        return 0
    fs, root = filesystem(str(parts))
    target = f"{root.rstrip('/')}/{name}-{label}.parquet"
    table = conform_to(schema or arrow_schema(name), table)
    if is_remote(str(parts)):
        pq.write_table(table, target, compression="zstd", filesystem=fs)
        return table.num_rows
    Path(root).mkdir(parents=True, exist_ok=True)
    tmp = Path(root) / f".{name}-{label}.parquet.partial"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, target)
    return table.num_rows


def part_files(parts: str | Path, name: str) -> list[str]:
    """The finished parts of table ``name`` in a run directory, in batch order."""
    if not is_remote(str(parts)):
        return [str(p) for p in sorted(Path(parts).glob(f"{name}-*.parquet"))]
    fs, root = filesystem(str(parts))
    infos = fs.get_file_info(pafs.FileSelector(root.rstrip("/"), allow_not_found=True))
    found = sorted(i.base_name for i in infos if i.base_name.startswith(f"{name}-") and i.base_name.endswith(".parquet"))
    return [join(str(parts), b) for b in found]


def part_exists(path: str) -> bool:
    """Whether a part was written (a batch whose files were all rejected writes no text part)."""
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.File


# -- where a run spills ---------------------------------------------------------------------------
# Locally, <warehouse>/spill/<run id>/. With a remote Dask cluster every worker writes the parts, so
# they go where every worker can reach: GOVFACTS_SPILL_PATH, or beside the lake (``s3://b/lake/`` ->
# ``s3://b/lake-spill/``; a mounted lake likewise). Beside, not inside: `govfacts compact` deletes
# files under the lake that no snapshot references, and a running run's parts are such files.


def spill_root(settings: Settings, shared: bool) -> str:
    """The directory (or ``s3://`` prefix) under which runs spill; ``shared``: the workers are not on this machine."""
    if settings.spill_path:
        return settings.spill_path.rstrip("/") + "/"
    if not shared or not settings.data_path:
        # A lake in <warehouse>/lake/ is on this machine's disk, and so is the warehouse its workers read: such a
        # cluster's workers are on this machine too, and spill beside the warehouse like local workers.
        return str(settings.warehouse / "spill") + "/"
    lake = settings.lake_path.rstrip("/")
    if lake.split("://", 1)[-1].strip("/").count("/") == 0 and is_remote(lake):
        raise ValueError(f"the lake is a whole bucket ({settings.lake_path}): a remote cluster's parts need a place beside it; "
                         "set GOVFACTS_SPILL_PATH (s3://bucket/spill/) or give the lake a prefix (s3://bucket/lake/)")
    return lake + "-spill/"


def open_spill(root: str, run_id: str) -> str:
    """Create this run's part directory under ``root``, recording its owner so a crashed run's parts can be swept."""
    sweep_spills(root)
    d = join(root, run_id)
    fs, inner = filesystem(d)
    if not is_remote(d):  # an object store has no directories to make
        fs.create_dir(inner, recursive=True)
    with fs.open_output_stream(f"{inner}/owner.json") as out:
        out.write(json.dumps(dict(host=socket.gethostname(), pid=os.getpid())).encode())
    return d


def sweep_spills(root: str) -> list[str]:
    """Remove part directories of runs that died on this host (their owner process is gone)."""
    fs, inner = filesystem(root)
    removed = []
    dirs = [i for i in fs.get_file_info(pafs.FileSelector(inner.rstrip("/"), allow_not_found=True))
            if i.type == pafs.FileType.Directory]
    for info in sorted(dirs, key=lambda i: i.path):
        try:
            with fs.open_input_stream(f"{info.path}/owner.json") as f:
                owner = json.loads(f.read())
        except (OSError, ValueError):
            owner = dict(host=socket.gethostname(), pid=-1)
        if owner.get("host") != socket.gethostname() or process_alive(int(owner.get("pid", -1))):
            continue
        remove_spill(join(root, info.base_name))
        removed.append(join(root, info.base_name))
    return removed


def remove_spill(parts: str) -> None:
    """Delete a run's part directory (the end of every run, success or not)."""
    fs, inner = filesystem(parts)
    try:
        fs.delete_dir(inner.rstrip("/"))
    except (OSError, FileNotFoundError):
        pass


def known_source_names(con: duckdb.DuckDBPyConnection, version: str) -> dict[str, list[str]]:
    """doc_id -> the file names recorded for it, for documents loaded by this code version.

    Lets a run notice that already-loaded bytes arrived under a new name (and record it).
    """
    rows = con.execute("SELECT doc_id, source_names, copies FROM documents WHERE pipeline_version = ?", [version]).fetchall()
    names = {doc_id: json.loads(names or "[]") for doc_id, names, _ in rows}
    for _, _, copies in rows:  # a recorded copy's names too (warehouse/copies.py), so its new names are recorded
        for c in json.loads(copies or "[]"):
            names.setdefault(c["sha256"], list(c["names"]))
    return names


def known_stage_rejects(con: duckdb.DuckDBPyConnection, version: str) -> set[tuple[str, str]]:
    """(source_path, reason) of files already quarantined at staging by this code version.

    Staging rejects (unreadable files, symlinks out of the inbox) have no content hash,
    so they are recognised by path and reason; an unchanged re-run does not record them again.
    """
    rows = con.execute("SELECT source_path, reason FROM quarantine WHERE item = 'file' AND stage = 'stage' "
                       "AND pipeline_version = ?", [version]).fetchall()
    return {(p, r) for p, r in rows}


LOAD_THREADS = 2  # DuckDB threads writing a run's parts into the lake (each buffers its own row group)
TEXT_ROW_GROUP_ROWS = 256  # rows per Parquet row group of document_text (~70 KB a row: ≈18 MB a group)


@contextmanager
def bounded_write_memory(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """While inserting, keep DuckDB's Parquet writer from buffering the whole run's texts.

    The writer buffers a whole row group (122,880 rows by default) before writing it; for
    ``document_text`` (~70 KB a row) that is the whole run, so the load's memory would grow with
    the corpus (+800 MB at 10,000 reports). A row-count limit on that table (a DuckLake table
    option, stored in the catalog once) and ``LOAD_THREADS`` writer threads keep it flat: the load
    comes after the run's helper processes have ended, at the end of the run, so its second
    thread (≈ +120 MB, 3,000 reports loaded in 0.67 s instead of 1.15 s) is paid for by memory
    those processes gave back. ``threads`` is restored afterwards: the DuckDB instance is shared
    in the process.
    """
    have = con.execute("SELECT value FROM wh.options() WHERE option_name = 'parquet_row_group_size' "
                       "AND scope = 'TABLE' AND scope_entry = 'main.document_text'").fetchall()
    if have != [(str(TEXT_ROW_GROUP_ROWS),)]:
        con.execute("CALL wh.set_option('parquet_row_group_size', ?, table_name => 'document_text')", [TEXT_ROW_GROUP_ROWS])
    con.execute(f"SET threads = {LOAD_THREADS}")
    try:
        yield
    finally:
        con.execute("RESET threads")


def load_parts(settings: Settings, run: dict, parts: str | Path, processed: list[str], dq_results: pa.Table,
               renamed: dict[str, list[str]] | None = None, copies: dict[str, list[dict]] | None = None,
               dropped: set[str] | None = None) -> int | None:
    """Load a run's Parquet parts (and name updates) as one snapshot; return its id, or None when nothing changed.

    ``processed``: content hashes this run (re)processed — their previous rows (documents,
    text, facts and quarantine records of any earlier code version) are replaced.
    ``renamed``: doc_id -> full list of names, for already-loaded documents seen under a new name.
    ``copies``: doc_id -> its full list of copies, for documents this run found copies of, and
    ``dropped``: those copies' hashes, whose rows in the parts are not loaded (warehouse/copies.py).
    """
    files = {name: part_files(parts, name) for name in PART_TABLES}
    renamed, copies, dropped = renamed or {}, copies or {}, sorted(dropped or ())
    if not processed and not any(files.values()) and not renamed and not copies:
        return None

    def write(con: duckdb.DuckDBPyConnection) -> None:
        with bounded_write_memory(con):
            for name, found in files.items():
                if found:
                    cols = ", ".join(f'"{c.name}"' for c in _TABLE[name].columns)
                    keep = " WHERE doc_id NOT IN (SELECT unnest(?::VARCHAR[]))" if dropped and name != "quarantine" else ""
                    con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM read_parquet(?){keep}",
                                [found, dropped] if keep else [found])
        for doc_id, recorded in copies.items():
            con.execute("UPDATE documents SET copies = ? WHERE doc_id = ?", [json.dumps(recorded, ensure_ascii=False), doc_id])
        for doc_id, names in renamed.items():
            con.execute("UPDATE documents SET source_names = ? WHERE doc_id = ?", [json.dumps(names, ensure_ascii=False), doc_id])
            for holder, recorded in con.execute("SELECT doc_id, copies FROM documents WHERE contains(copies, ?)", [doc_id]).fetchall():
                updated = [dict(c, names=names) if c["sha256"] == doc_id else c for c in json.loads(recorded)]
                con.execute("UPDATE documents SET copies = ? WHERE doc_id = ?", [json.dumps(updated, ensure_ascii=False), holder])

    return write_run(settings, run, dq_results, processed, processed, write)
