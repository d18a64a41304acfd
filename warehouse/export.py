"""Export a snapshot's tables and views as Parquet files that say which snapshot they hold.

Each file carries, in its Parquet key-value metadata, ``govfacts.snapshot_id``,
``govfacts.snapshot_time``, ``govfacts.table``, ``govfacts.description`` and
``govfacts.exported_at``, and every column its description (Arrow field metadata
``description``), so a file that travels alone still says what it is and when it
was true. A ``manifest.json`` lists the files with their row counts.

Files are written under a temporary name and renamed, so a reader of DIR never
sees a half-written file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from govfacts.settings import Settings
from warehouse.catalog import ALIAS, connect
from warehouse.schema import TABLES
from warehouse.views import current_views

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
    return (row[0] or "") if row else "", cols


def _with_metadata(table: pa.Table, meta: dict[str, str], columns: dict[str, str]) -> pa.Table:
    fields = [f.with_metadata({"description": columns[f.name]}) if columns.get(f.name) else f for f in table.schema]
    schema = pa.schema(fields, metadata={k.encode(): v.encode() for k, v in meta.items()})
    return table.cast(schema)


def export_snapshot(settings: Settings, out_dir: Path, at: int | None = None, fmt: str = "parquet",
                    names: list[str] | None = None) -> tuple[int, list[Exported]]:
    """Write the tables and views of snapshot ``at`` (default: the latest) to ``out_dir``; return (snapshot, files)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    wanted = names or exportable()
    unknown = sorted(set(wanted) - set(exportable()))
    if unknown:
        raise ValueError(f"cannot export {', '.join(unknown)}: choose from {', '.join(exportable())}")
    if at is None:
        probe = connect(settings, read_only=True)
        try:
            at = probe.execute(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()[0]
        finally:
            probe.close()
    con = connect(settings, read_only=True, at=at)
    try:
        snapshot_time = con.execute(f"SELECT snapshot_time FROM {ALIAS}.snapshots() WHERE snapshot_id = ?", [at]).fetchone()[0]
        out_dir.mkdir(parents=True, exist_ok=True)
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
            tmp = out_dir / f".{name}.parquet.partial"
            pq.write_table(_with_metadata(data, meta, columns), tmp, compression="zstd")
            os.replace(tmp, path)
            files.append(Exported(name, path, data.num_rows))
        manifest = {"snapshot_id": at, "snapshot_time": str(snapshot_time), "exported_at": exported_at,
                    "warehouse": str(settings.warehouse), "files": [{"name": f.name, "file": f.path.name, "rows": f.rows} for f in files]}
        tmp = out_dir / ".manifest.json.partial"
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out_dir / "manifest.json")
        return at, files
    finally:
        con.close()
