"""Open the DuckLake warehouse on its catalog (SQLite by default, DuckDB file or PostgreSQL).

Extensions come from the signed ``duckdb-extension-*`` wheels: we LOAD them from
their package path, signature checks on, because nothing can be downloaded here.

Why SQLite is the default catalog: DuckLake's DuckDB-file catalog admits a single
client, so a researcher's query would be refused while a scheduled run writes;
the SQLite catalog lets readers in other processes work during a load. We put it
in WAL mode (readers never wait for the writer, the writer never waits for
readers) with a busy timeout for the instant a commit swaps the WAL index.
WAL needs a local disk: for many machines use the PostgreSQL catalog.

Read-only sessions are also *sandboxed*: after the warehouse is attached, DuckDB's
``enable_external_access`` is switched off (only the lake's data directory stays
readable) and the configuration is locked, so SQL typed by a user can neither
ATTACH nor read or write arbitrary files. ``check_read_only`` admits only the
statements and functions of the allow-list in warehouse/sandbox.py (the extensions
loaded for the catalog, such as ``sqlite_scan``, stay out of reach).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import duckdb

from transforms.settings import Settings
from warehouse.sandbox import READ_WRITE_HINT, SandboxViolation, check_query
from warehouse.storage import configure_duckdb, is_remote

ALIAS = "wh"
METADATA = f"__ducklake_metadata_{ALIAS}"
SQLITE_BUSY_TIMEOUT_MS = 30_000
ReadOnlyViolation = SandboxViolation  # the name the CLI and the shell catch


class SnapshotNotFound(LookupError):
    """Time travel to a snapshot that does not exist (or was expired by ``govfacts compact``)."""


@lru_cache(maxsize=None)
def extension_path(name: str) -> str:
    """Path of the signed extension binary shipped in ``duckdb_extension_<name>``."""
    module = importlib.import_module(f"duckdb_extension_{name}")
    found = sorted(Path(module.__file__).parent.glob("extensions/*/*.duckdb_extension"))
    if not found:
        raise RuntimeError(f"duckdb_extension_{name} has no binary; reinstall it: pip install -c requirements.lock duckdb-extension-{name}")
    return str(found[-1])


def catalog_uri(settings: Settings) -> tuple[str, list[str]]:
    """The DuckLake ATTACH target and the extensions it needs (``httpfs`` too when data or spilled parts are on S3)."""
    remote = ["httpfs"] if is_remote(settings.lake_path) or is_remote(settings.spill_path) else []
    if settings.catalog == "sqlite":
        return f"ducklake:sqlite:{settings.warehouse / 'catalog.sqlite'}", ["ducklake", "sqlite_scanner", *remote]
    if settings.catalog == "duckdb":
        return f"ducklake:{settings.warehouse / 'catalog.duckdb'}", ["ducklake", *remote]
    if settings.catalog == "postgres":
        if not settings.postgres_dsn:
            raise ValueError("catalog 'postgres' needs a DSN: set GOVFACTS_POSTGRES_DSN='dbname=... host=... port=... user=...'")
        return f"ducklake:postgres:{settings.postgres_dsn}", ["ducklake", "postgres_scanner", *remote]
    raise ValueError(f"unknown catalog {settings.catalog!r}: choose sqlite, duckdb or postgres (GOVFACTS_CATALOG)")


def sql_str(text: str) -> str:
    """A SQL string literal (DuckDB cannot bind parameters in ATTACH and SET)."""
    return "'" + str(text).replace("'", "''") + "'"


def _attach_options(settings: Settings, read_only: bool, at: int | None, at_time: str | None) -> list[str]:
    options = [f"DATA_PATH {sql_str(settings.lake_path)}"]
    if not settings.data_path and settings.catalog != "postgres":
        # The lake is <warehouse>/lake/ and DuckLake stores file paths relative to it: a warehouse directory that was
        # moved, copied or restored from a backup elsewhere opens where it now is (the catalog keeps the old path).
        options.append("OVERRIDE_DATA_PATH true")
    if settings.catalog == "sqlite":
        options.append(f"META_BUSY_TIMEOUT {SQLITE_BUSY_TIMEOUT_MS}")
        if not read_only:
            options.append("META_JOURNAL_MODE 'wal'")
    if read_only:
        options.append("READ_ONLY")
    if at is not None:
        options.append(f"SNAPSHOT_VERSION {int(at)}")
    if at_time is not None:
        options.append(f"SNAPSHOT_TIME {sql_str(at_time)}")
    return options


def sandbox(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Switch off file and network access except the lake's data files, and lock the configuration."""
    con.execute(f"SET allowed_directories = [{sql_str(settings.lake_path)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def check_read_only(sql: str) -> None:
    """Refuse anything but reads of the warehouse in a read-only session (the allow-list of warehouse/sandbox.py)."""
    check_query(sql)


def connect(settings: Settings, read_only: bool = False, at: int | None = None, at_time: str | None = None,
            sandboxed: bool | None = None, fresh: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB session with the warehouse attached as ``wh`` and selected; close it when done.

    ``at`` / ``at_time`` attach the warehouse as it was at that snapshot id / time
    (read-only time travel); views that did not exist yet at that snapshot are
    provided from the current schema so they work over the old data.
    ``sandboxed`` (default: same as read-only) locks the session down, see the module doc.

    Sessions on the latest snapshot are cursors of a DuckDB instance kept per process
    (see ``_shared_instance``): opening one costs milliseconds instead of the ~0.3 s of
    loading the signed extensions again. ``fresh`` asks for an instance of its own.
    """
    travelling = at is not None or at_time is not None
    read_only = read_only or travelling
    if at is not None and not 0 <= at < 2**63:
        raise SnapshotNotFound(f"snapshot {at} cannot exist: snapshot ids are whole numbers from 0 up; "
                               "`govfacts snapshots` lists the ones you can query")
    sandboxed = read_only if sandboxed is None else sandboxed
    if not read_only:
        settings.warehouse.mkdir(parents=True, exist_ok=True)
    elif not exists(settings):
        raise FileNotFoundError(f"no warehouse at {settings.warehouse}; run `govfacts run --warehouse {settings.warehouse}` first")
    key = None if travelling or fresh else _instance_key(settings, read_only, sandboxed)
    if key is None:
        return _open(settings, read_only, at, at_time, sandboxed)
    return _shared_instance(key, lambda: _open(settings, read_only, None, None, sandboxed))


def _open(settings: Settings, read_only: bool, at: int | None, at_time: str | None, sandboxed: bool) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB instance: signed extensions LOADed, the warehouse ATTACHed and selected."""
    uri, extensions = catalog_uri(settings)
    travelling = at is not None or at_time is not None
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        for ext in extensions:
            con.execute(f"LOAD '{extension_path(ext)}'")
        if "httpfs" in extensions:
            configure_duckdb(con, settings)  # credentials as a temporary secret, never in settings or the catalog
        try:
            con.execute(f"ATTACH {sql_str(uri)} AS {ALIAS} ({', '.join(_attach_options(settings, read_only, at, at_time))})")
        except duckdb.Error as exc:
            if at_time is not None and "no snapshot found" in str(exc).lower():
                raise SnapshotNotFound(f"the warehouse at {settings.warehouse} has no snapshot as early as {at_time} (its first "
                                       "snapshot is later, or older ones were expired by `govfacts compact`); "
                                       "`govfacts snapshots` lists the times you can query") from exc
            if "does not match existing data path" in str(exc):
                stored = str(exc).split('existing data path in the catalog "', 1)[-1].split('"', 1)[0]
                raise ValueError(f"the catalog's data files are at {stored}, but this session was given {settings.lake_path}: "
                                 f"set GOVFACTS_DATA_PATH={stored} (or move the files there and set it to the new place)") from exc
            if at_time is not None and "timestamp" in str(exc).lower():
                raise ValueError(f"--at-time {at_time!r} is not a time: write it like '2025-03-01 12:00:00+00' "
                                 "(`govfacts snapshots` shows the snapshot times, in UTC)") from exc
            if settings.catalog == "postgres" and "connect to postgres" in str(exc).lower():
                reason = " ".join(str(exc).split("Unable to connect to Postgres", 1)[-1].split())
                raise ConnectionError(f"cannot reach the PostgreSQL catalog {reason}; "
                                      "check GOVFACTS_POSTGRES_DSN (dbname=... host=... port=... user=...)") from exc
            if travelling and "snapshot" in str(exc).lower():
                target = f"snapshot {at}" if at is not None else f"time {at_time}"
                raise SnapshotNotFound(f"{target} is not in the warehouse at {settings.warehouse} (never existed or expired by "
                                       f"`govfacts compact`); `govfacts snapshots` lists the ones you can query") from exc
            raise
        con.execute(f"USE {ALIAS}")
        if travelling:
            _provide_missing_views(con)
        if sandboxed:
            sandbox(con, settings)
    except BaseException:
        con.close()
        raise
    return con


# DuckDB instances shared by the sessions of this process, most recently used last. Only sessions on the
# latest snapshot are shared (time travel pins an instance to one snapshot), and never on the DuckDB-file
# catalog (an open instance would lock every other process out of it).
_INSTANCES: OrderedDict[tuple, duckdb.DuckDBPyConnection] = OrderedDict()
_INSTANCES_LOCK = threading.Lock()
_INSTANCES_PID = [os.getpid()]
MAX_SHARED_INSTANCES = 8


def _instance_key(settings: Settings, read_only: bool, sandboxed: bool) -> tuple | None:
    """What makes two sessions interchangeable; None when this session must have its own instance.

    The catalog file's device and inode are part of the key, so a warehouse deleted and
    made again at the same path never reuses the instance attached to the old one.
    """
    if settings.catalog == "duckdb":
        return None
    ident: tuple = ()
    if settings.catalog == "sqlite":
        try:
            st = _catalog_file(settings).stat()
        except FileNotFoundError:
            return None  # not created yet: the first (writing) session makes it
        ident = (st.st_dev, st.st_ino)
    return (catalog_uri(settings)[0], settings.lake_path, read_only, sandboxed, ident)


def _shared_instance(key: tuple, make) -> duckdb.DuckDBPyConnection:
    """A new cursor (own transactions and temp objects) on the instance for ``key``, made on first use.

    Evicting an instance only drops our reference: DuckDB keeps it alive while cursors
    of it are open. After a fork (process task runners) the inherited instances are
    forgotten, never used: DuckDB's threads do not survive a fork.
    """
    with _INSTANCES_LOCK:
        if _INSTANCES_PID[0] != os.getpid():
            _INSTANCES.clear()
            _INSTANCES_PID[0] = os.getpid()
        base = _INSTANCES.get(key)
        if base is None:
            base = make()
            _INSTANCES[key] = base
            while len(_INSTANCES) > MAX_SHARED_INSTANCES:
                _INSTANCES.popitem(last=False)
        _INSTANCES.move_to_end(key)
        cursor = base.cursor()
    try:
        cursor.execute(f"USE {ALIAS}")
    except BaseException:
        cursor.close()
        raise
    return cursor


def exists(settings: Settings) -> bool:
    """Whether the warehouse has been created (a PostgreSQL catalog is taken to exist: asking would cost a connection)."""
    return settings.catalog == "postgres" or _catalog_file(settings).exists()


def _catalog_file(settings: Settings) -> Path:
    return settings.warehouse / ("catalog.sqlite" if settings.catalog == "sqlite" else "catalog.duckdb")


def _provide_missing_views(con: duckdb.DuckDBPyConnection) -> None:
    """Give a time-travel session today's views when its snapshot predates them.

    A snapshot taken before a migration added a view (say ``targets_vs_actuals``)
    has the tables but not the view; a TEMP view with the current definition reads
    that snapshot's tables. Views the snapshot does have are left alone (a TEMP view
    would shadow them). A view whose columns the old tables lack cannot be created
    and is skipped: the error a user then gets names the missing view.
    """
    from warehouse.views import current_views  # noqa: PLC0415 (views -> schema -> views is resolved lazily)

    present = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal", [ALIAS]).fetchall()}
    for view in current_views():
        if view.name in present:
            continue
        try:
            con.execute(f"CREATE TEMP VIEW {view.name} AS {view.sql}")
        except duckdb.BinderException:
            continue  # the snapshot's tables lack a column this view needs: leave the view absent
        except duckdb.CatalogException:
            continue  # the snapshot lacks a table this view needs (it predates the first schema)
