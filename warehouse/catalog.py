"""Open the DuckLake warehouse on its catalog (SQLite by default, DuckDB file or PostgreSQL).

Extensions come from the signed ``duckdb-extension-*`` wheels: we LOAD them from
their package path, signature checks on, because nothing can be downloaded here.

Why SQLite is the default catalog: DuckLake's DuckDB-file catalog admits a single
client, so a researcher's query would be refused while a scheduled run writes;
the SQLite catalog lets readers in other processes work during a load.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

import duckdb

from govfacts.settings import Settings

ALIAS = "wh"


@lru_cache(maxsize=None)
def extension_path(name: str) -> str:
    """Path of the signed extension binary shipped in ``duckdb_extension_<name>``."""
    module = importlib.import_module(f"duckdb_extension_{name}")
    found = sorted(Path(module.__file__).parent.glob("extensions/*/*.duckdb_extension"))
    if not found:
        raise RuntimeError(f"duckdb_extension_{name} has no binary; reinstall it: pip install -c requirements.lock duckdb-extension-{name}")
    return str(found[-1])


def _catalog_uri(settings: Settings) -> tuple[str, list[str]]:
    """The DuckLake ATTACH target and the extensions it needs."""
    if settings.catalog == "sqlite":
        return f"ducklake:sqlite:{settings.warehouse / 'catalog.sqlite'}", ["ducklake", "sqlite_scanner"]
    if settings.catalog == "duckdb":
        return f"ducklake:{settings.warehouse / 'catalog.duckdb'}", ["ducklake"]
    if settings.catalog == "postgres":
        if not settings.postgres_dsn:
            raise ValueError("catalog 'postgres' needs a DSN: set GOVFACTS_POSTGRES_DSN='dbname=... host=... port=...'")
        return f"ducklake:postgres:{settings.postgres_dsn}", ["ducklake", "postgres_scanner"]
    raise ValueError(f"unknown catalog {settings.catalog!r}: choose sqlite, duckdb or postgres")


def connect(settings: Settings, read_only: bool = False, at: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the warehouse attached as ``wh`` and selected.

    ``at`` attaches the warehouse as it was at that snapshot (read-only time travel).
    """
    uri, extensions = _catalog_uri(settings)
    if not read_only:
        settings.warehouse.mkdir(parents=True, exist_ok=True)
    elif settings.catalog != "postgres" and not (settings.warehouse).exists():
        raise FileNotFoundError(f"no warehouse at {settings.warehouse}; run `govfacts run --warehouse {settings.warehouse}` first")
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for ext in extensions:
        con.execute(f"LOAD '{extension_path(ext)}'")
    options = [f"DATA_PATH '{settings.lake_path}'"]
    if read_only or at is not None:
        options.append("READ_ONLY")
    if at is not None:
        options.append(f"SNAPSHOT_VERSION {int(at)}")
    con.execute(f"ATTACH '{uri}' AS {ALIAS} ({', '.join(options)})")
    con.execute(f"USE {ALIAS}")
    return con
