"""Run a user's SQL with limits they can rely on: a timeout, Ctrl-C that cancels at once, rows in batches.

DuckDB executes in C++: while it works, Python's SIGINT handler cannot run in the thread
that called it, so Ctrl-C would wait for the query. Here the query runs in a worker
thread; the calling (main) thread waits on a small queue of row batches, so Ctrl-C and
the deadline reach it within 0.1 s and it calls ``interrupt()`` on the session, which
DuckDB honours between vectors. Rows are fetched ``batch_rows`` at a time and handed to
the caller as they come (a bounded queue: a slow terminal slows the fetch, memory stays
flat whatever the size of the result).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterable

import duckdb

DEFAULT_TIMEOUT = 300.0  # seconds; `govfacts sql --timeout`, GOVFACTS_SQL_TIMEOUT
BATCH_ROWS = 2048


class QueryTimeout(RuntimeError):
    """The query ran longer than its timeout and was cancelled."""


class QueryCancelled(RuntimeError):
    """The user pressed Ctrl-C; the query was cancelled."""


_DONE = object()


def stream(con: duckdb.DuckDBPyConnection, sql: str, params: list | None, on_columns: Callable[[list[str]], None],
           on_rows: Callable[[list[tuple]], bool], timeout: float | None = DEFAULT_TIMEOUT, batch_rows: int = BATCH_ROWS,
           arrow: bool = False) -> None:
    """Execute ``sql`` on ``con``: ``on_columns(names)`` once, then ``on_rows(batch)`` per batch until it returns False.

    With ``arrow`` the batches are ``pyarrow.RecordBatch`` es with DuckDB's own types (DECIMAL(18,4) stays
    decimal128(18, 4)), at least one even for an empty result, so a Parquet writer always has the schema.

    Raises QueryTimeout after ``timeout`` seconds (None or 0: no limit), QueryCancelled on Ctrl-C,
    and DuckDB's own error when the query fails. The session is interrupted in every case
    where the query is still running, so it never goes on behind the caller's back.
    """
    batches: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description] if cur.description else []
            if not put(("columns", names)) or not names:
                return
            if arrow:
                reader = cur.to_arrow_reader(batch_rows)
                sent = False
                for batch in reader:
                    if stop.is_set() or not put(("rows", batch)):
                        return
                    sent = True
                if not sent:
                    import pyarrow as pa  # noqa: PLC0415 (loaded already: the reader is pyarrow's)

                    put(("rows", pa.RecordBatch.from_pylist([], schema=reader.schema)))
                put((_DONE, None))
                return
            while not stop.is_set():
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    break
                if not put(("rows", rows)):
                    return
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread and raised there)
            put(("error", exc))
            return
        put((_DONE, None))

    worker = threading.Thread(target=work, name="govfacts-query", daemon=True)
    deadline = time.monotonic() + timeout if timeout else None
    worker.start()
    try:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise QueryTimeout(f"the query ran longer than {timeout:g} s and was cancelled; "
                                   "give it more time with --timeout SECONDS (0: no limit), or narrow it (WHERE, LIMIT)")
            try:
                kind, payload = batches.get(timeout=0.1)
            except queue.Empty:
                continue
            if kind is _DONE:
                return
            if kind == "error":
                if isinstance(payload, duckdb.InterruptException) and deadline is not None and time.monotonic() > deadline:
                    raise QueryTimeout(f"the query ran longer than {timeout:g} s and was cancelled; "
                                       "give it more time with --timeout SECONDS (0: no limit)") from payload
                raise payload
            if kind == "columns":
                on_columns(payload)
                if not payload:
                    return
            elif not on_rows(payload):
                return
    except KeyboardInterrupt:
        raise QueryCancelled("cancelled (Ctrl-C): the query was interrupted and nothing more was read") from None
    finally:
        stop.set()
        if worker.is_alive():
            _interrupt(con)
            worker.join(timeout=30)


def _interrupt(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.interrupt()
    except duckdb.Error:
        pass


def collect(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None,
            timeout: float | None = DEFAULT_TIMEOUT) -> tuple[list[str], list[tuple]]:
    """The whole result (for callers that need it in memory), with the same timeout and Ctrl-C."""
    names: list[str] = []
    rows: list[tuple] = []

    def columns(n: list[str]) -> None:
        names.extend(n)

    def more(batch: Iterable[tuple]) -> bool:
        rows.extend(batch)
        return True

    stream(con, sql, params, columns, more, timeout=timeout)
    return names, rows
