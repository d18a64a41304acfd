"""The read-only SQL sandbox: an allow-list of statements and functions, checked on the parsed query.

Read-only sessions (``govfacts sql``, ``govfacts shell`` without ``--read-write``) run
only what a query of the warehouse needs:

* statements: ``SELECT`` (with ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``PIVOT``-free
  queries, CTEs, set operations, ``AT (VERSION => N)`` time travel) and ``EXPLAIN`` of
  such a query. Everything else (``CALL``, ``PRAGMA``, ``SET``, ``ATTACH``, ``INSTALL``,
  ``LOAD``, ``COPY``, ``EXPORT``, ``CREATE``, ``USE``, ``PREPARE``...) is refused.
* table functions: those in ``TABLE_FUNCTIONS`` (ranges, ``unnest``, JSON trees, the
  catalog's own introspection, DuckLake's read-only snapshot functions). Every other
  table function — ``read_*``, ``glob``, ``sqlite_scan``, ``postgres_query``, DuckLake's
  maintenance procedures, ``query()`` — is refused, whatever DuckDB version adds next.
* scalar, aggregate and window functions: those named in ``sandbox_functions.txt``
  (beside this file), pinned from DuckDB 1.5.5 with the project's extensions loaded,
  minus ``REFUSED_SCALARS`` (functions with effects outside the query: sleeping, writing
  the log, reseeding, sequences, executing serialized SQL). A function DuckDB adds later is
  refused until someone reads it and pins it (``python -m warehouse.sandbox --pin``).
* tables: by name only; a file path used as a table (``FROM 'x.parquet'``) is refused.

The check reads DuckDB's own parse tree (``json_serialize_sql``), so quoting, comments,
nesting, macros-by-another-name or odd spacing cannot hide a call. Behind it DuckDB's
``enable_external_access = false`` and a locked configuration stay on (warehouse/catalog.py).
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache
from pathlib import Path

import duckdb

PINNED = Path(__file__).with_name("sandbox_functions.txt")
READ_WRITE_HINT = "to write, open it read-write: `govfacts sql --read-write ...` or `govfacts shell --read-write`"
SANDBOX = "the warehouse is open read-only and sandboxed (no files, no other databases, no maintenance)"

# Table functions a read-only query may use. Everything else is refused.
TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "json_each", "json_tree",
    # the catalog, as the session sees it
    "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies", "duckdb_functions",
    "duckdb_indexes", "duckdb_keywords", "duckdb_schemas", "duckdb_sequences", "duckdb_tables", "duckdb_types",
    "duckdb_views", "duckdb_settings", "pragma_table_info", "pragma_show", "pragma_version", "pragma_collations",
    "pg_timezone_names", "icu_calendar_names",
    # DuckLake, read-only: snapshots, table metadata, the changes between snapshots
    "ducklake_snapshots", "ducklake_current_snapshot", "ducklake_last_committed_snapshot", "ducklake_table_info",
    "ducklake_table_insertions", "ducklake_table_deletions", "ducklake_table_changes", "ducklake_list_files",
    "ducklake_options", "ducklake_settings",
})
# The same DuckLake functions called through the attached catalog: FROM wh.snapshots(), wh.table_changes(...)
CATALOG_FUNCTIONS = frozenset(n.removeprefix("ducklake_") for n in TABLE_FUNCTIONS if n.startswith("ducklake_"))

# Scalar functions and macros that act outside the query; never pinned.
REFUSED_SCALARS = {
    "sleep_ms": "it holds the session without reading anything",
    "pg_sleep": "it holds the session without reading anything",
    "write_log": "it writes to the session's log",
    "setseed": "it changes the random state of a shared session",
    "nextval": "it advances a sequence (a write)",
    "currval": "it reads a sequence's session state",
    "json_execute_serialized_sql": "it runs SQL the sandbox has not checked",
    "json_deserialize_sql": "it builds SQL text the sandbox has not checked",
    "get_block_size": "it is a macro over pragma_database_size(), a table function off the allow-list",
}

# Window functions that are not aggregates (duckdb_functions() does not list them).
WINDOW_FUNCTIONS = frozenset({"row_number", "rank", "dense_rank", "rank_dense", "percent_rank", "cume_dist", "ntile",
                              "lag", "lead", "first_value", "last_value", "nth_value", "first", "last", "fill"})
# Names the parser produces that duckdb_functions() does not list as scalars.
PARSER_FUNCTIONS = frozenset({"unnest", "unlist", "grouping", "grouping_id"})

# Where a function name may come from: unqualified, DuckDB's own schemas.
_SYSTEM_NAMESPACES = {("", ""), ("", "main"), ("system", "main"), ("", "pg_catalog"), ("system", "pg_catalog"),
                      ("system", "")}
_HINTS = (
    (re.compile(r"^(read_|parquet_|sniff_csv|glob|arrow_scan|pandas_scan|python_map)"),
             "files are not readable from SQL: put a report in the inbox and `govfacts run`, or use `govfacts export` for Parquet"),
    (re.compile(r"^(sqlite_|postgres_|pg_clear_cache|read_postgres)"),
             "other databases are not reachable from the warehouse's SQL"),
    (re.compile(r"^ducklake_|^(merge_adjacent_files|expire_snapshots|cleanup_old_files|delete_orphaned_files|flush_inlined_data|"
                r"rewrite_data_files|set_option|add_data_files|set_commit_message|commit)$"),
             "warehouse maintenance is `govfacts compact`, restoring a snapshot is `govfacts rollback N`"),
    (re.compile(r"^(query|query_table|histogram|histogram_values)$"),
             "SQL built from strings at run time cannot be checked: write the query itself"),
)


class SandboxViolation(ValueError):
    """Read-only SQL asked for something outside the sandbox; the message says how to do it properly."""


def _refuse(what: str, hint: str = "") -> SandboxViolation:
    extra = f"; {hint}" if hint else ""
    return SandboxViolation(f"{what} is not allowed: {SANDBOX}{extra}; {READ_WRITE_HINT}")


def _hint(name: str) -> str:
    for pattern, hint in _HINTS:
        if pattern.search(name):
            return hint
    return ""


@lru_cache(maxsize=1)
def pinned_functions() -> frozenset[str]:
    """Scalar, aggregate and macro functions a read-only query may call (sandbox_functions.txt)."""
    names = {line.strip() for line in PINNED.read_text(encoding="utf-8").splitlines()}
    return frozenset(n for n in names if n and not n.startswith("#")) - set(REFUSED_SCALARS)


_STATEMENT_HINTS = {
    "PRAGMA": "DESCRIBE facts, SHOW TABLES and FROM pragma_table_info('facts') read the same",
    "CALL": "",
    "SET": "session settings are locked",
    "VARIABLE_SET": "session settings are locked",
    "COPY": "use `govfacts export` to write Parquet",
    "EXPORT": "use `govfacts export` to write Parquet",
    "COPY_DATABASE": "use `govfacts export` to write Parquet",
    "ATTACH": "other databases are not reachable from the warehouse's SQL",
    "DETACH": "",
    "LOAD": "extensions are fixed by govfacts",
    "EXTENSION": "extensions are fixed by govfacts",
}


def check_query(sql: str) -> int:
    """Raise SandboxViolation unless every statement of ``sql`` is an allowed read; return the number of statements."""
    statements = parse_statements(sql)
    if not statements:
        raise SandboxViolation("no SQL statement given: write a query, e.g. SELECT count(*) FROM facts_published")
    for statement in statements:
        kind = statement.type.name
        text = statement.query
        if kind == "EXPLAIN":
            inner = re.sub(r"^\s*EXPLAIN\s+(ANALY[SZ]E\s+)?(\([^)]*\)\s*)?", "", _strip_comments(text), flags=re.I)
            inner_statements = parse_statements(inner) if inner.strip() else []
            if len(inner_statements) != 1 or inner_statements[0].type.name != "SELECT":
                raise _refuse("EXPLAIN of anything but a query")
            text, kind = inner_statements[0].query, "SELECT"
        if kind != "SELECT":
            raise _refuse(kind.replace("_", " "), _STATEMENT_HINTS.get(kind, ""))
        _check_tree(text)
    return len(statements)


# Read-write SQL is the owner's own and is not sandboxed; these calls are refused there too, because they crash the
# process (a segmentation fault inside DuckLake of DuckDB 1.5.5: nothing is committed, but the user sees no message).
KNOWN_CRASHES = (
    (re.compile(r"set_option\s*\([^;]*data_inlining_row_limit", re.I | re.S),
     "setting DuckLake's data_inlining_row_limit crashes DuckDB 1.5.5's DuckLake (a segmentation fault; nothing would be "
     "committed); inlining stays at its default, and `govfacts compact` flushes inlined rows into Parquet files"),
)


def check_read_write(sql: str) -> None:
    """Refuse, in read-write SQL, the calls known to crash the process instead of failing (KNOWN_CRASHES)."""
    for pattern, why in KNOWN_CRASHES:
        if pattern.search(sql):
            raise SandboxViolation(f"not run: {why}")


def _strip_comments(text: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*", "", text, flags=re.S)


@lru_cache(maxsize=1)
def _parser() -> duckdb.DuckDBPyConnection:
    """A connection that only parses: no extensions, no files (DuckDB expands some PRAGMAs while parsing,
    and ``PRAGMA import_database('/dir')`` would read ``/dir/schema.sql`` on a connection that may)."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                 "enable_external_access": False})
    con.execute("SET lock_configuration = true")
    return con


def parse_statements(sql: str) -> list:
    """The statements of ``sql``, parsed where parsing can touch nothing; SandboxViolation when it does not parse."""
    try:
        return _parser().cursor().extract_statements(sql)
    except duckdb.Error as exc:
        raise SandboxViolation(f"the SQL does not parse: {' '.join(str(exc).split())}") from exc


def _check_tree(text: str) -> None:
    # The text as a quoted literal, not a bound parameter: DuckDB's Python binding imports pandas (≈ 0.25 s,
    # half of a `govfacts sql`) for any statement with parameters. Quotes are doubled, and DuckDB's standard
    # strings know no backslash escapes, so the literal is the text exactly; a NUL could end it early, so a
    # text holding one is refused outright (no query needs it).
    if "\x00" in text:
        raise _refuse("a NUL character in the SQL")
    literal = "'" + text.replace("'", "''") + "'"
    tree = json.loads(_parser().cursor().execute(f"SELECT json_serialize_sql({literal}::VARCHAR)").fetchone()[0])
    if tree.get("error"):
        raise _refuse(f"this statement ({tree.get('error_message', 'not a plain query')})")
    _walk(tree["statements"], table_position=False)


def _walk(node, table_position: bool) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, table_position=False)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        _check_function(function, table=True)
        for key, value in node.items():
            if key != "function":
                _walk(value, table_position=False)
        _walk(function.get("children", []), table_position=False)
        return
    if kind == "BASE_TABLE":
        name = node.get("table_name", "")
        if re.search(r"[/\\:.]|^~", name):
            raise _refuse(f"reading the file {name!r} as a table", _HINTS[0][1])
    if "function_name" in node:
        _check_function(node, table=False)
    for key, value in node.items():
        if isinstance(value, (dict, list)):
            _walk(value, table_position=False)


def _check_function(node: dict, table: bool) -> None:
    name = str(node.get("function_name", ""))
    catalog, schema = str(node.get("catalog") or ""), str(node.get("schema") or "")
    lower = name.lower()
    shown = ".".join(p for p in (catalog, schema, name) if p)
    if table:
        if (catalog, schema) in _SYSTEM_NAMESPACES and lower in TABLE_FUNCTIONS:
            return
        if lower in CATALOG_FUNCTIONS and _is_warehouse(catalog, schema):
            return
        raise _refuse(f"the table function {shown}()", _hint(lower))
    if (catalog, schema) not in _SYSTEM_NAMESPACES:
        raise _refuse(f"the function {shown}()", "only DuckDB's own functions can be called")
    if node.get("class") == "WINDOW" and node.get("type") != "WINDOW_AGGREGATE":
        if lower in WINDOW_FUNCTIONS:
            return
    if lower in REFUSED_SCALARS:
        raise _refuse(f"the function {name}() ({REFUSED_SCALARS[lower]})")
    if lower in pinned_functions() or name in pinned_functions() or lower in PARSER_FUNCTIONS:
        return
    raise _refuse(f"the function {name}()", _hint(lower) or "it is not on the sandbox's list of functions that only read")


def _is_warehouse(catalog: str, schema: str) -> bool:
    from warehouse.catalog import ALIAS  # noqa: PLC0415 (catalog imports this module)

    return (catalog, schema) in ((ALIAS, ""), ("", ALIAS), (ALIAS, "main"))


def _current_functions() -> list[tuple[str, str]]:
    """(name, type) of every function DuckDB reports with the project's extensions loaded."""
    from warehouse.catalog import extension_path  # noqa: PLC0415

    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        for ext in ("ducklake", "sqlite_scanner", "postgres_scanner"):
            con.execute(f"LOAD '{extension_path(ext)}'")
        return con.execute("SELECT DISTINCT function_name, function_type FROM duckdb_functions() ORDER BY 1, 2").fetchall()
    finally:
        con.close()


def pin() -> int:
    """Write sandbox_functions.txt: every scalar, aggregate and macro function of this DuckDB, minus the refused ones.

    Run after upgrading DuckDB, *then read the diff*: a new function that reaches files,
    the network or other databases belongs in REFUSED_SCALARS first.
    """
    names = sorted({n for n, t in _current_functions() if t in ("scalar", "aggregate", "macro")} - set(REFUSED_SCALARS))
    header = (f"# Scalar, aggregate and macro functions read-only SQL may call (DuckDB {duckdb.__version__} with ducklake, "
              "sqlite_scanner, postgres_scanner).\n# Generated by `python -m warehouse.sandbox --pin`; review the diff. "
              "Table functions: TABLE_FUNCTIONS in warehouse/sandbox.py.\n")
    PINNED.write_text(header + "\n".join(names) + "\n", encoding="utf-8")
    return len(names)


if __name__ == "__main__":
    if sys.argv[1:] == ["--pin"]:
        print(f"pinned {pin()} functions in {PINNED}")
    else:
        print("usage: python -m warehouse.sandbox --pin")
