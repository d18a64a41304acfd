"""The read-only SQL sandbox, tried as a hostile user would, on the SQLite and the PostgreSQL catalog.

Every function DuckDB reports (``duckdb_functions()`` in a session with the project's
extensions and the warehouse attached) is called in the ways SQL allows — as a table
function, through CALL and PRAGMA, as a scalar — through the same path as ``govfacts
sql`` (``warehouse.snapshots.query``). Each case is refused by the allow-list or runs
harmlessly; "escaped" means a case that was not refused and then changed the warehouse,
wrote a file, or printed a secret that lives outside the warehouse (a SQLite database
beside it, another warehouse's catalog, a table in another PostgreSQL database). The
figures go to the reliability summary (tests/hostile.py).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import duckdb
import pytest

from transforms.settings import Settings
from tests.hostile import LEDGER, report_reliability
from tests.warehouse_batches import fact, make_batch
from warehouse.catalog import connect
from warehouse.load import load_batch
from warehouse.sandbox import (
    CATALOG_FUNCTIONS, REFUSED_SCALARS, TABLE_FUNCTIONS, SandboxViolation, _current_functions, check_query, parse_statements, pinned_functions,
)
from warehouse.snapshots import latest_snapshot, query

pytestmark = pytest.mark.usefixtures("report_reliability")
__all__ = ["report_reliability"]

SECRET = "TOPSECRET-7f3a9c"


@pytest.fixture(scope="module")
def target(module_catalog_settings: Settings, tmp_path_factory, request):
    """A warehouse after two loads, and secrets outside it: a SQLite file, another warehouse, a PostgreSQL table."""
    settings = module_catalog_settings
    load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10), fact("docA", 7.0, 50, kind="target", period="2024")]))
    load_batch(settings, make_batch("run2", [fact("docA", 6.8, 10)]))
    outside = tmp_path_factory.mktemp("outside")
    creds = outside / "creds.sqlite"
    with sqlite3.connect(creds) as db:
        db.execute("CREATE TABLE creds (user TEXT, password TEXT)")
        db.execute("INSERT INTO creds VALUES ('admin', ?)", [SECRET])
    (outside / "secret.txt").write_text(SECRET)
    (outside / "secret.csv").write_text(f"password\n{SECRET}\n")
    pg_dsn = ""
    if settings.catalog == "postgres":
        server = request.getfixturevalue("postgres_server")
        pg_dsn = server.create_database()
        server.psql(f"CREATE TABLE creds (password text); INSERT INTO creds VALUES ('{SECRET}');", dbname=pg_dsn.split("dbname=")[1].split()[0])
    return settings, outside, creds, pg_dsn


def _lake_files(settings: Settings) -> set[str]:
    root = Path(settings.lake_path)
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def _state(settings: Settings, outside: Path) -> tuple:
    return (latest_snapshot(settings), _lake_files(settings), sorted(p.name for p in outside.iterdir()),
            sorted(p.name for p in settings.warehouse.iterdir()) if settings.warehouse.exists() else [])


def _try(settings: Settings, outside: Path, name: str, sql: str, check_state: bool = False) -> str:
    """Run ``sql`` the way `govfacts sql` does; return 'refused', 'ran' or 'error', and record it in the ledger."""
    before = _state(settings, outside) if check_state else None
    escaped = None
    try:
        names, rows = query(settings, sql, timeout=30)
        outcome = "ran"
        if SECRET in repr(rows) + repr(names):
            escaped = "printed a secret from outside the warehouse"
    except SandboxViolation as exc:
        outcome = "refused"
        if SECRET in str(exc):
            escaped = "the refusal message holds the secret"
    except duckdb.Error as exc:
        outcome = "error"
        if SECRET in str(exc):
            escaped = "an error message holds the secret"
    if check_state and _state(settings, outside) != before:
        escaped = (escaped or "") + " changed the warehouse or wrote a file"
    LEDGER.sql(f"{name}: {sql[:80]}", refused=outcome == "refused", escaped=escaped)
    assert escaped is None, f"{sql}: {escaped}"
    return outcome


def test_every_duckdb_function_is_refused_or_harmless(target):
    settings, outside, creds, _ = target
    before = _state(settings, outside)
    con = connect(settings, read_only=True)
    try:
        functions = con.execute("SELECT DISTINCT function_name, function_type FROM duckdb_functions() ORDER BY 1, 2").fetchall()
    finally:
        con.close()
    assert len(functions) > 900, len(functions)
    if settings.catalog == "postgres":
        # the scalar functions were covered on the SQLite catalog; here every table function and procedure, and the
        # postgres scanner's own functions, with the PostgreSQL catalog (and its scanner) attached
        functions = [(n, k) for n, k in functions if k in ("table", "table_macro", "pragma") or n.startswith(("postgres", "pg_"))]
    allowed_tables, outcomes = [], {}
    for name, kind in functions:
        quoted = '"' + name.replace('"', '""') + '"'
        if kind in ("table", "table_macro"):
            cases = [f"SELECT * FROM {quoted}()", f"CALL {quoted}()", f"SELECT * FROM system.main.{quoted}()"]
        elif kind == "pragma":
            cases = [f"PRAGMA {quoted}", f"CALL {quoted}()", f"SELECT * FROM pragma_{name}()"]
        else:
            cases = [f"SELECT {quoted}()", f"SELECT {quoted}(NULL)"]
        for sql in cases:
            got = _try(settings, outside, f"{kind} {name}", sql)
            outcomes[(name, kind, sql)] = got
            if got != "refused" and kind in ("table", "table_macro", "pragma"):
                allowed_tables.append((name, sql))
    LEDGER.functions_covered.update(n for n, _ in functions)
    # a table function that ran is on the allow-list; CALL never runs; a PRAGMA runs only where DuckDB rewrites it
    # into a query (PRAGMA version -> SELECT * FROM pragma_version()), which the allow-list then checked
    ran_tables = {n for n, sql in allowed_tables if not sql.startswith(("PRAGMA ", "CALL ", "SELECT * FROM pragma_"))}
    assert ran_tables <= TABLE_FUNCTIONS, sorted(ran_tables - TABLE_FUNCTIONS)
    assert [s for (n, k, s), got in outcomes.items() if s.startswith("CALL ") and got != "refused"] == []
    for (name, kind, sql), got in outcomes.items():
        if sql.startswith("PRAGMA ") and got != "refused":
            assert [st.type.name for st in parse_statements(sql)] == ["SELECT"], sql
    assert _state(settings, outside) == before, "calling every function changed the warehouse or wrote files"


def test_the_allow_list_covers_exactly_this_duckdb(target):
    """Every function DuckDB reports is pinned, on the table allow-list, or refused; nothing pinned is stale.
    After a DuckDB upgrade a new function is refused until someone reads it and runs ``python -m warehouse.sandbox --pin``."""
    current = _current_functions()
    names = {n for n, _ in current}
    pinned = pinned_functions()
    assert pinned <= names, f"pinned functions DuckDB no longer has: {sorted(pinned - names)[:10]}"
    assert TABLE_FUNCTIONS <= names, sorted(TABLE_FUNCTIONS - names)
    unclassified = [n for n, t in current if t in ("scalar", "aggregate", "macro") and n not in pinned and n not in REFUSED_SCALARS]
    assert unclassified == [], unclassified
    # the pinned macros call only what the sandbox allows
    con = duckdb.connect()
    macros = con.execute("SELECT function_name, macro_definition FROM duckdb_functions() WHERE function_type = 'macro'").fetchall()
    for name, definition in macros:
        if name in pinned and definition:
            check_query(f"SELECT ({definition})")


def _outside_cases(settings: Settings, outside: Path, creds: Path, pg_dsn: str) -> dict[str, str]:
    other_catalog = str(settings.warehouse / "catalog.sqlite")
    prefect_db = os.environ.get("PREFECT_HOME", "/nonexistent") + "/prefect.db"
    dsn = pg_dsn or "dbname=postgres host=127.0.0.1 port=1"
    c, s = str(creds), str(outside / "secret.txt")
    return {
        # the holes: other SQLite databases through the catalog's scanner
        "sqlite_scan creds": f"SELECT * FROM sqlite_scan('{c}', 'creds')",
        "sqlite_scan catalog": f"SELECT * FROM sqlite_scan('{other_catalog}', 'ducklake_snapshot')",
        "sqlite_scan prefect": f"SELECT * FROM sqlite_scan('{prefect_db}', 'flow_run')",
        "sqlite_query": f"SELECT * FROM sqlite_query('{c}', 'SELECT * FROM creds')",
        "sqlite_attach": f"CALL sqlite_attach('{c}')",
        "sqlite_attach select": f"SELECT * FROM sqlite_attach('{c}')",
        "upper-case": f"SELECT * FROM SQLITE_SCAN('{c}', 'creds')",
        "quoted name": f"SELECT * FROM \"sqlite_scan\"('{c}', 'creds')",
        "system-qualified": f"SELECT * FROM system.main.sqlite_scan('{c}', 'creds')",
        "comment inside": f"SELECT * FROM sqlite_scan/**/('{c}', 'creds')",
        "in a CTE": f"WITH x AS (SELECT * FROM sqlite_scan('{c}', 'creds')) SELECT * FROM x",
        "in a subquery": f"SELECT (SELECT password FROM sqlite_scan('{c}', 'creds'))",
        "in WHERE": f"SELECT 1 WHERE EXISTS (SELECT * FROM sqlite_scan('{c}', 'creds'))",
        "in LATERAL": f"SELECT * FROM range(1) r, LATERAL (SELECT * FROM sqlite_scan('{c}', 'creds'))",
        "in UNION": f"SELECT 'a' UNION ALL SELECT password FROM sqlite_scan('{c}', 'creds')",
        "in EXPLAIN ANALYZE": f"EXPLAIN ANALYZE SELECT * FROM sqlite_scan('{c}', 'creds')",
        "in DESCRIBE": f"DESCRIBE SELECT * FROM sqlite_scan('{c}', 'creds')",
        "in SUMMARIZE": f"SUMMARIZE SELECT * FROM sqlite_scan('{c}', 'creds')",
        "second statement": f"SELECT 1; SELECT * FROM sqlite_scan('{c}', 'creds')",
        "AT clause": f"SELECT * FROM facts AT (VERSION => (SELECT count(*) FROM sqlite_scan('{c}', 'creds')))",
        # the postgres scanner (loaded for the PostgreSQL catalog)
        "postgres_scan": f"SELECT * FROM postgres_scan('{dsn}', 'public', 'creds')",
        "postgres_query": f"SELECT * FROM postgres_query('{dsn}', 'SELECT * FROM creds')",
        "postgres_execute": f"CALL postgres_execute('{dsn}', 'DROP TABLE creds')",
        "postgres_execute select": f"SELECT * FROM postgres_execute('{dsn}', 'DROP TABLE creds')",
        "postgres_attach": f"CALL postgres_attach('{dsn}')",
        "postgres_scan_pushdown": f"SELECT * FROM postgres_scan_pushdown('{dsn}', 'public', 'creds')",
        "postgres_configure_pool": "CALL postgres_configure_pool(max_connections => 1)",
        "pg_clear_cache": "SELECT * FROM pg_clear_cache()",
        # writes and crashes through DuckLake's procedures
        "flush inlined": "CALL ducklake_flush_inlined_data('wh')",
        "flush inlined select": "SELECT * FROM ducklake_flush_inlined_data('wh')",
        "merge files": "CALL ducklake_merge_adjacent_files('wh')",
        "merge files via catalog": "SELECT * FROM wh.merge_adjacent_files()",
        "set_option (segfaulted)": "CALL ducklake_set_option('wh', 'data_inlining_row_limit', 10)",
        "set_option select": "SELECT * FROM ducklake_set_option('wh', 'data_inlining_row_limit', 10)",
        "expire": "CALL ducklake_expire_snapshots('wh', older_than => now())",
        "cleanup": "CALL ducklake_cleanup_old_files('wh', cleanup_all => true)",
        "orphans": "CALL ducklake_delete_orphaned_files('wh', cleanup_all => true)",
        "rewrite": "CALL ducklake_rewrite_data_files('wh')",
        "add files": f"CALL ducklake_add_data_files('wh', 'facts', '{outside}/x.parquet')",
        "commit message": "SELECT * FROM wh.set_commit_message('x', 'y')",
        "checkpoint": "CHECKPOINT",
        "force checkpoint": "FORCE CHECKPOINT",
        # files
        "read_text": f"SELECT * FROM read_text('{s}')",
        "read_csv": f"SELECT * FROM read_csv('{outside}/secret.csv')",
        "read_blob": f"SELECT * FROM read_blob('{s}')",
        "replacement scan": f"SELECT * FROM '{outside}/secret.csv'",
        "glob": "SELECT * FROM glob('/*')",
        "copy to": f"COPY (SELECT 1) TO '{outside}/out.csv'",
        "copy from": f"COPY facts FROM '{outside}/secret.csv'",
        "export": f"EXPORT DATABASE '{outside}/dump'",
        "import pragma": f"PRAGMA import_database('{outside}')",
        "attach": f"ATTACH '{c}' AS x (TYPE sqlite)",
        "attach memory": "ATTACH ':memory:' AS x",
        "detach": "DETACH wh",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "load path": f"LOAD '{outside}/evil.duckdb_extension'",
        # SQL built at run time
        "query()": f"SELECT * FROM query('SELECT * FROM sqlite_scan(''{c}'', ''creds'')')",
        "query_table()": f"SELECT * FROM query_table('{outside}/secret.csv')",
        "serialized sql": "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
        "serialized pragma": "PRAGMA json_execute_serialized_sql('{}')",
        "deserialize": "SELECT json_deserialize_sql(json_serialize_sql('SELECT 1'))",
        "prepare": "PREPARE p AS SELECT 1",
        "execute": "EXECUTE p",
        # settings and session state
        "set": "SET enable_external_access = true",
        "reset": "RESET lock_configuration",
        "set variable": "SET VARIABLE v = 1",
        "use": "USE memory",
        "create temp": "CREATE TEMP TABLE t AS SELECT 1",
        "create macro": f"CREATE MACRO m() AS TABLE SELECT * FROM sqlite_scan('{c}', 'creds')",
        "secrets": "SELECT * FROM duckdb_secrets()",
        "logs": "SELECT * FROM duckdb_logs()",
        "enable logging": "CALL enable_logging()",
        "profiling": "PRAGMA enable_profiling",
        "write_log": "SELECT write_log('x')",
        "setseed": "SELECT setseed(0.5)",
        "sleep": "SELECT sleep_ms(100000)",
        "pg_sleep": "SELECT pg_sleep(100)",
        "vacuum": "VACUUM",
        "analyze": "ANALYZE",
        "insert": "INSERT INTO facts (fact_id) VALUES ('x')",
        "update": "UPDATE facts SET value = 0",
        "delete": "DELETE FROM facts",
        "drop": "DROP TABLE facts",
        "alter": "ALTER TABLE facts ADD COLUMN x INT",
        "begin": "BEGIN TRANSACTION",
        "pivot (creates)": "PIVOT facts ON indicator USING count(*)",
    }


def test_hostile_sql_is_refused_with_a_message_that_says_what_to_do(target):
    settings, outside, creds, pg_dsn = target
    failures = []
    for name, sql in _outside_cases(settings, outside, creds, pg_dsn).items():
        try:
            query(settings, sql, timeout=30)
            failures.append(f"{name}: ran")
            LEDGER.sql(name, refused=False, escaped="ran outside the allow-list")
            continue
        except SandboxViolation as exc:
            message = " ".join(str(exc).split())
            LEDGER.sql(name, refused=True, escaped="secret in the message" if SECRET in message else None)
            if "read-only" not in message and "does not parse" not in message:
                failures.append(f"{name}: {message}")
        except duckdb.Error as exc:
            LEDGER.sql(name, refused=False, escaped=None if SECRET not in str(exc) else "secret in the error")
            failures.append(f"{name}: reached DuckDB ({exc})")
    assert failures == []
    # the secrets are still where they were, untouched
    assert sqlite3.connect(creds).execute("SELECT password FROM creds").fetchone() == (SECRET,)
    assert not (outside / "out.csv").exists() and not (outside / "dump").exists()


READS = {
    "published": "SELECT count(*) FROM facts_published",
    "panel": "SELECT * FROM indicator_panel",
    "targets": "SELECT * FROM targets_vs_actuals",
    "regions": "SELECT count(*) FROM regions",
    "time travel": "SELECT count(*) FROM facts AT (VERSION => 1)",
    "snapshots": "SELECT snapshot_id FROM wh.snapshots()",
    "current snapshot": "FROM wh.current_snapshot()",
    "ducklake_snapshots": "SELECT count(*) FROM ducklake_snapshots('wh')",
    "table changes": "SELECT change_type, count(*) FROM ducklake_table_changes('wh', 'main', 'facts', 1, 2) GROUP BY ALL",
    "table info": "FROM ducklake_table_info('wh')",
    "list files": "SELECT count(*) FROM ducklake_list_files('wh', 'facts')",
    "describe": "DESCRIBE facts",
    "show tables": "SHOW TABLES",
    "summarize": "SUMMARIZE facts",
    "explain": "EXPLAIN SELECT * FROM facts WHERE value > 1",
    "explain analyze": "EXPLAIN ANALYZE SELECT count(*) FROM facts",
    "window": "SELECT value, row_number() OVER (ORDER BY value), lag(value) OVER (ORDER BY value), avg(value) OVER () FROM facts",
    "cte recursive": "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT sum(n) FROM t",
    "lambda": "SELECT list_transform([1, 2, 3], x -> x * 2), [x + 1 FOR x IN [1, 2]]",
    "json": "SELECT json_extract('{\"a\": 1}', '$.a'), * FROM json_each('[1, 2]')",
    "regex": "SELECT regexp_extract(evidence, '[0-9.]+') FROM facts",
    "catalog": "SELECT table_name, comment FROM duckdb_tables()",
    "columns": "SELECT column_name FROM duckdb_columns() WHERE table_name = 'facts'",
    "pragma_table_info": "SELECT * FROM pragma_table_info('facts')",
    "pragma version": "PRAGMA version",
    "unnest": "SELECT unnest([1, 2, 3])",
    "range": "SELECT sum(i) FROM range(1000) t(i)",
    "grouping sets": "SELECT indicator, kind, count(*) FROM facts GROUP BY GROUPING SETS ((indicator), (kind), ())",
    "qualify": "SELECT * FROM facts QUALIFY row_number() OVER (PARTITION BY indicator ORDER BY value DESC) = 1",
    "parameters": "SELECT count(*) FROM facts WHERE kind = 'actual'",
    "settings": "SELECT current_setting('threads')",
}


def test_the_reads_a_researcher_needs_work(target):
    settings, outside, _, _ = target
    before = _state(settings, outside)
    failed = {}
    for name, sql in READS.items():
        try:
            query(settings, sql, timeout=60)
            LEDGER.sql(name, refused=False)
        except (SandboxViolation, duckdb.Error) as exc:
            failed[name] = str(exc)
    assert failed == {}
    assert _state(settings, outside) == before


def test_catalog_functions_through_the_attached_warehouse_match_the_table_allow_list():
    assert CATALOG_FUNCTIONS == {n.removeprefix("ducklake_") for n in TABLE_FUNCTIONS if n.startswith("ducklake_")}
    for name in ("merge_adjacent_files", "expire_snapshots", "set_option", "flush_inlined_data", "cleanup_old_files",
                 "delete_orphaned_files", "rewrite_data_files", "add_data_files", "set_commit_message", "commit"):
        with pytest.raises(SandboxViolation):
            check_query(f"SELECT * FROM wh.{name}()")


def test_read_write_sql_refuses_the_call_that_crashes_duckdb(target):
    """--read-write is not sandboxed, but `ducklake_set_option(..., 'data_inlining_row_limit', ...)` segfaults DuckDB 1.5.5's
    DuckLake: refused with a message instead of killing the process without one."""
    settings, outside, _, _ = target
    before = _state(settings, outside)
    for sql in ("CALL ducklake_set_option('wh', 'data_inlining_row_limit', 10)",
                "CALL wh.set_option('data_inlining_row_limit', 5)",
                "SELECT 1; CALL DUCKLAKE_SET_OPTION('wh',\n 'DATA_INLINING_ROW_LIMIT', 0)"):
        with pytest.raises(SandboxViolation, match="crashes"):
            query(settings, sql, read_only=False)
        LEDGER.sql(f"read-write crash: {sql}", refused=True)
    assert _state(settings, outside) == before


@pytest.mark.parametrize("sql,allowed", [
    ("SELECT 'it''s' AS quote, '\\x' AS backslash", True),  # quotes and backslashes reach the parse tree as written
    ("SELECT 1 -- a comment with ' and ''", True),
    ("SELECT 1\x00; DROP TABLE facts", False),  # a NUL would end the checked text early: refused outright
    ("SELECT 1'; SELECT * FROM read_csv('/etc/passwd') --", False),  # an unbalanced quote hides nothing
])
def test_the_checked_text_is_the_query_exactly_whatever_its_quotes(sql, allowed):
    """The sandbox hands the query to DuckDB's parser as a quoted literal (no bound parameter, which would import
    pandas on every `govfacts sql`): quoting must neither hide a call nor refuse a harmless query."""
    if allowed:
        check_query(sql)
    else:
        with pytest.raises(SandboxViolation):
            check_query(sql)
