"""``govfacts shell``: an interactive SQL session on the warehouse, for people who live in SQL.

The ``duckdb`` command-line program is not part of the Python package, so this is a
small REPL over a DuckDB connection with the warehouse attached as ``wh`` (and
selected): statements end with ``;``, results print as tables,
line editing and history come from ``readline`` when the input is a terminal.
Each statement runs within a timeout (``--timeout``, default 300 s), Ctrl-C cancels a
running query at once and returns to the prompt, and a table shows at most
``--max-rows`` rows (data printed as text: never markup, control characters spelled out).
Dot commands: ``.tables``, ``.schema NAME``, ``.snapshots``, ``.help``, ``.quit``.

Read-only and sandboxed by default, like ``govfacts sql``. With ``--read-write``
every statement is its own transaction, committed as one snapshot under the writer
lock (so it never races a scheduled run).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import duckdb

from transforms.settings import Settings
from rich.console import Console

from govfacts.safe_text import text as safe_text
from govfacts.sql_output import DEFAULT_MAX_ROWS, RowWriter
from warehouse.catalog import ALIAS, ReadOnlyViolation, check_read_only, connect
from warehouse.querying import DEFAULT_TIMEOUT, QueryCancelled, QueryTimeout, stream
from warehouse.sandbox import check_read_write, parse_statements
from warehouse.load import commit_message, writer_lock
from warehouse.snapshots import rollback, writes

HELP = """\
Statements end with ';'. The warehouse is attached as wh and selected: FROM facts_published, FROM indicator_panel, ...
.tables            tables and views with their descriptions
.schema NAME       columns of a table or view with their descriptions
.snapshots         snapshots with time and commit message (time travel: FROM facts AT (VERSION => N))
.help              this text
.quit              leave (or Ctrl-D)"""
HISTORY = Path.home() / ".govfacts_history"


class Shell:
    """A REPL over one connection; ``feed`` takes a line and returns False when the session should end."""

    def __init__(self, settings: Settings, read_write: bool = False, at: int | None = None, out: TextIO | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT, max_rows: int = DEFAULT_MAX_ROWS):
        self.settings = settings
        self.read_write = read_write
        self.out = out or sys.stdout
        self.timeout = timeout
        self.max_rows = max_rows
        # a terminal's own width; into a pipe or file, lines as long as the data (Rich would wrap at 80)
        self.console = Console(file=self.out, width=None if self.out.isatty() else 10_000, highlight=False)
        self.buffer: list[str] = []
        if read_write:
            from warehouse.load import open_for_write  # noqa: PLC0415

            self.con = open_for_write(settings)
        else:
            self.con = connect(settings, read_only=True, at=at)

    def close(self) -> None:
        self.con.close()

    def feed(self, line: str) -> bool:
        """Take one line of input; run what it completes. False means quit."""
        if not self.buffer and line.strip().startswith("."):
            return self.dot(line.strip())
        self.buffer.append(line)
        text = "\n".join(self.buffer).strip()
        if not text.endswith(";"):
            return True
        self.buffer = []
        self.run(text)
        return True

    def dot(self, command: str) -> bool:
        name, _, arg = command.partition(" ")
        if name in (".quit", ".exit", ".q"):
            return False
        if name == ".help":
            self.print(HELP)
        elif name == ".tables":
            self.show("SELECT table_name AS name, 'table' AS kind, comment AS description FROM duckdb_tables() "
                      "WHERE database_name = ? UNION ALL SELECT view_name, 'view', comment FROM duckdb_views() "
                      "WHERE database_name IN (?, 'temp') AND NOT internal ORDER BY kind, name", [ALIAS, ALIAS])
        elif name == ".schema" and arg.strip():
            self.show("SELECT column_name AS column, data_type AS type, comment AS description FROM duckdb_columns() "
                      "WHERE database_name IN (?, 'temp') AND table_name = ? ORDER BY column_index", [ALIAS, arg.strip()])
        elif name == ".snapshots":
            self.show(f"SELECT snapshot_id, snapshot_time, commit_message FROM {ALIAS}.snapshots() ORDER BY snapshot_id")
        else:
            self.print(f"unknown command {command!r}; .help lists the commands")
        return True

    def show(self, sql: str, params: list | None = None) -> None:
        try:
            self.query(sql, params)
        except (duckdb.Error, QueryTimeout, QueryCancelled) as exc:
            self.print(f"Error: {exc}")

    def run(self, text: str) -> None:
        """Run each statement of ``text`` and print its result; errors are printed, the session goes on."""
        try:
            if not self.read_write:
                check_read_only(text)
                statements = parse_statements(text)
            else:
                check_read_write(text)
                statements = duckdb.extract_statements(text)
                if any(s.type.name == "TRANSACTION" for s in statements):
                    raise ReadOnlyViolation("in the read-write shell every statement commits on its own (one snapshot each); "
                                            "for a multi-statement transaction use `govfacts sql --read-write \"stmt; stmt\"`")
        except (duckdb.Error, ReadOnlyViolation) as exc:
            self.print(f"Error: {exc}")
            return
        for statement in statements:
            try:
                self.execute(statement.query)
            except (duckdb.Error, QueryTimeout, QueryCancelled) as exc:
                hint = "" if self.read_write or "read-only" not in str(exc) else "\n(the shell is read-only; start it with --read-write to write)"
                self.print(f"Error: {exc}{hint}")
                return

    def execute(self, sql: str) -> None:
        if not self.read_write:
            self.query(sql)
            return
        with writer_lock(self.settings):
            self.con.execute("BEGIN")
            try:
                if writes(sql):
                    self.con.execute(f"CALL {ALIAS}.set_commit_message('govfacts', ?)", [commit_message("shell", sql=sql)])
                self.query(sql)
                self.con.execute("COMMIT")
            except BaseException:
                rollback(self.con)
                raise

    def query(self, sql: str, params: list | None = None) -> None:
        """Run one statement within the timeout (Ctrl-C cancels it) and print its rows as a table of at most max_rows."""
        writer = RowWriter("table", max_rows=self.max_rows, out=self.out, console=self.console)
        stream(self.con, sql, params, writer.columns, writer.rows, timeout=self.timeout)
        writer.finish()

    def print(self, text: str) -> None:
        self.console.print(safe_text(text.rstrip("\n"), keep_newlines=True))
        self.out.flush()


def run_shell(settings: Settings, read_write: bool = False, at: int | None = None,
              stdin: TextIO | None = None, out: TextIO | None = None, timeout: float | None = DEFAULT_TIMEOUT,
              max_rows: int = DEFAULT_MAX_ROWS) -> None:
    """Read statements until .quit or end of input (default: stdin); prompts and history only on a terminal.

    Ctrl-C during a query cancels the query and returns to the prompt; at the prompt it clears the line."""
    stdin = stdin or sys.stdin
    shell = Shell(settings, read_write=read_write, at=at, out=out or sys.stdout, timeout=timeout, max_rows=max_rows)
    interactive = stdin.isatty()
    if interactive:
        _enable_readline()
        mode = "read-write" if read_write else "read-only"
        where = f" as of snapshot {at}" if at is not None else ""
        shell.print(f"govfacts shell: warehouse {settings.warehouse}{where} attached as wh ({mode}). .help for help, .quit to leave.")
    try:
        while True:
            prompt = ("govfacts> " if not shell.buffer else "      ...> ") if interactive else ""
            try:
                line = input(prompt) if interactive else stdin.readline()
            except EOFError:
                break
            except KeyboardInterrupt:
                shell.buffer = []
                shell.print("")
                continue
            if not interactive and line == "":
                break
            if not shell.feed(line.rstrip("\n")):
                break
        if shell.buffer:
            shell.run("\n".join(shell.buffer))
    finally:
        shell.close()
        if interactive:
            _save_history()


def _enable_readline() -> None:
    import readline  # noqa: PLC0415 (only for terminals; not available everywhere)

    if HISTORY.exists():
        readline.read_history_file(HISTORY)
    readline.set_history_length(2000)


def _save_history() -> None:
    import readline  # noqa: PLC0415

    try:
        readline.write_history_file(HISTORY)
    except OSError as exc:
        sys.stderr.write(f"govfacts shell: could not save history to {HISTORY}: {exc.strerror}\n")
