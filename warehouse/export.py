"""Export a snapshot's tables and views as Parquet files that say which snapshot they hold.

Each file carries, in its Parquet key-value metadata, ``govfacts.snapshot_id``,
``govfacts.snapshot_time``, ``govfacts.table``, ``govfacts.description`` and
``govfacts.exported_at``, and every column its description (Arrow field metadata
``description``), so a file that travels alone still says what it is and when it
was true. A ``manifest.json`` lists the files with their row counts.

The export is written into a temporary directory beside DIR and renamed into place,
so a reader of DIR never sees a half-written export, nor files of two snapshots side by
side: DIR must be new or empty, or hold an earlier export that ``--overwrite`` replaces.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.settings import Settings
from warehouse.catalog import ALIAS, connect
from warehouse.schema import TABLES
from warehouse.views import current_views, view_column_descriptions

FORMATS = ("parquet",)


@dataclass
class Exported:
    """One exported table or view."""

    name: str
    path: Path
    rows: int


def exportable() -> list[str]:
    """Tables and views an export writes by default (everything but the migrations log)."""
    return [t.name for t in TABLES if t.name != "schema_migrations"] + [v.name for v in current_views()]


def _descriptions(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, dict[str, str]]:
    """Description of a table or view and of its columns, as stored in the snapshot's catalog."""
    row = con.execute("SELECT comment FROM duckdb_tables() WHERE database_name = ? AND table_name = ? "
                      "UNION ALL SELECT comment FROM duckdb_views() WHERE database_name IN (?, 'temp') AND view_name = ?",
                      [ALIAS, name, ALIAS, name]).fetchone()
    cols = dict(con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE database_name = ? AND table_name = ? "
                            "AND comment IS NOT NULL", [ALIAS, name]).fetchall())
    cols = {**view_column_descriptions(name), **cols}  # DuckLake keeps no comments on view columns: declared ones
    return (row[0] or "") if row else "", cols


def _with_metadata(table: pa.Table, meta: dict[str, str], columns: dict[str, str]) -> pa.Table:
    fields = [f.with_metadata({"description": columns[f.name]}) if columns.get(f.name) else f for f in table.schema]
    schema = pa.schema(fields, metadata={k.encode(): v.encode() for k, v in meta.items()})
    return table.cast(schema)


def export_snapshot(settings: Settings, out_dir: Path, at: int | None = None, fmt: str = "parquet",
                    names: list[str] | None = None, overwrite: bool = False) -> tuple[int, list[Exported]]:
    """Write the tables and views of snapshot ``at`` (default: the latest) to ``out_dir``; return (snapshot, files).

    ``out_dir`` must be new or empty, so an export never mixes files of two snapshots; with
    ``overwrite`` an earlier export there (a directory with its ``manifest.json``) is replaced
    whole: the new export is written beside it and swapped in, then the old one is deleted.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    wanted = names or exportable()
    unknown = sorted(set(wanted) - set(exportable()))
    if unknown:
        raise ValueError(f"cannot export {', '.join(unknown)}: choose from {', '.join(exportable())}")
    _check_target(out_dir, overwrite)
    if at is None:
        probe = connect(settings, read_only=True)
        try:
            at = probe.execute(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()[0]
        finally:
            probe.close()
    con = connect(settings, read_only=True, at=at)
    out_dir = out_dir.absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary directory
    try:
        at, files = _write(con, settings, work, at, wanted)
        _swap_in(work, out_dir)
        return at, [Exported(f.name, out_dir / f.path.name, f.rows) for f in files]
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file, not a directory: give a directory for the export (new or empty), "
                         "e.g. `govfacts export out/`")
    if not out_dir.is_dir():
        return
    entries = list(out_dir.iterdir())
    if not entries:
        return
    if not overwrite:
        raise ValueError(f"{out_dir} is not empty ({len(entries)} entries): export into a new or empty directory, "
                         "or pass --overwrite to replace the govfacts export in it")
    if not (out_dir / "manifest.json").is_file():
        raise ValueError(f"{out_dir} holds files that are not a govfacts export (no manifest.json); --overwrite replaces "
                         "only an earlier export: choose a new or empty directory")


def _swap_in(work: Path, out_dir: Path) -> None:
    """Put the finished export at ``out_dir``; an earlier export there is moved aside first, then deleted."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        os.rename(out_dir, old)
    try:
        os.rename(work, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write(con: duckdb.DuckDBPyConnection, settings: Settings, out_dir: Path, at: int, wanted: list[str]) -> tuple[int, list[Exported]]:
    snapshot_time = con.execute(f"SELECT snapshot_time FROM {ALIAS}.snapshots() WHERE snapshot_id = ?", [at]).fetchone()[0]
    exported_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    files = []
    for name in wanted:
        present = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ? "
                              "UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal",
                              [ALIAS, name, name]).fetchall()
        if not any(r[0] for r in present):
            continue  # the snapshot predates this table (and a view that needs it)
        data = con.execute(f"SELECT * FROM {name}").to_arrow_table()
        description, columns = _descriptions(con, name)
        meta = {"govfacts.snapshot_id": str(at), "govfacts.snapshot_time": str(snapshot_time),
                "govfacts.table": name, "govfacts.description": description, "govfacts.exported_at": exported_at}
        path = out_dir / f"{name}.parquet"
        pq.write_table(_with_metadata(data, meta, columns), path, compression="zstd")
        files.append(Exported(name, path, data.num_rows))
    manifest = {"snapshot_id": at, "snapshot_time": str(snapshot_time), "exported_at": exported_at,
                "warehouse": str(settings.warehouse), "files": [{"name": f.name, "file": f.path.name, "rows": f.rows} for f in files]}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return at, files
