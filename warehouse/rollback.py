"""Make the state of an old snapshot current again, as a NEW snapshot: history is never destroyed.

What is restored: the *state* tables — documents, document_text, facts, quarantine
and region_reference — become exactly what they were at snapshot N. What is not:
``runs`` and ``dq_results`` are logs of what happened (they keep growing, and the
rollback itself is recorded in the snapshot's commit message), and the schema stays
at its latest migration (a table that gained a column since N reads NULL there).

After a rollback the next ``govfacts run`` plans against the restored documents:
reports loaded after N are loaded again, the rest are skipped as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from transforms.settings import Settings
from warehouse.catalog import ALIAS
from warehouse.diff import table_exists_at
from warehouse.load import commit_message, current_snapshot, open_for_write, writer_lock
from warehouse.snapshots import require_snapshot, rollback as abort

STATE_TABLES = ("documents", "document_text", "facts", "quarantine", "region_reference")


@dataclass
class RollbackResult:
    """What a rollback did: the restored snapshot, the new snapshot (None if already there), rows per table."""

    restored: int
    previous: int
    snapshot_id: int | None
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (rows before, rows after)


def _columns(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE {sql}").fetchall()}


def _stage_restore(con: duckdb.DuckDBPyConnection, table: str, snapshot: int) -> list[str]:
    """Copy ``table`` as of ``snapshot`` into TEMP table ``_restore_<table>``, shaped like today's table.

    Columns added since the snapshot read NULL; ``_h`` is each row's hash. Staged
    *before* the write transaction because a DuckLake scan ``AT (VERSION => N)``
    inside a transaction that already deleted rows of the table applies those
    deletes to the old version too, and rows alive then and now would be lost.
    """
    now = _columns(con, f"SELECT * FROM {table}")
    cols = list(now)
    quoted = ", ".join(f'"{c}"' for c in cols)
    if table_exists_at(con, table, snapshot):
        then = _columns(con, f"SELECT * FROM {table} AT (VERSION => {int(snapshot)})")
        shaped = ", ".join(f'"{c}"' if c in then else f'CAST(NULL AS {t}) AS "{c}"' for c, t in now.items())
        source = f"SELECT {shaped} FROM {table} AT (VERSION => {int(snapshot)})"
    else:
        source = f"SELECT {quoted} FROM {table} WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _restore_{table} AS SELECT *, hash({quoted}) AS _h FROM ({source})")
    return cols


def _fingerprint(con: duckdb.DuckDBPyConnection, table: str, cols: list[str]) -> tuple[int, int]:
    """(rows, order-independent sum of row hashes) of the current table: equal means equal, for practical purposes."""
    quoted = ", ".join(f'"{c}"' for c in cols)
    count, total = con.execute(f"SELECT count(*), coalesce(sum(hash({quoted})::HUGEINT), 0) FROM {table}").fetchone()
    return int(count), int(total)


def _staged_fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    count, total = con.execute(f"SELECT count(*), coalesce(sum(_h::HUGEINT), 0) FROM _restore_{table}").fetchone()
    return int(count), int(total)


def _restore(con: duckdb.DuckDBPyConnection, table: str, cols: list[str]) -> None:
    """Rewrite only the difference: delete rows absent then, insert rows absent now; fall back to a full rewrite
    if duplicate rows make the difference ambiguous."""
    quoted = ", ".join(f'"{c}"' for c in cols)
    con.execute(f"DELETE FROM {table} WHERE hash({quoted}) NOT IN (SELECT _h FROM _restore_{table})")
    con.execute(f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM _restore_{table} "
                f"WHERE _h NOT IN (SELECT hash({quoted}) FROM {table})")
    if _fingerprint(con, table, cols) != _staged_fingerprint(con, table):
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM _restore_{table}")


def rollback_to(settings: Settings, snapshot: int) -> RollbackResult:
    """Restore the state tables to snapshot ``snapshot`` in one transaction (one new snapshot, or none if equal)."""
    with writer_lock(settings):
        con = open_for_write(settings)
        try:
            require_snapshot(con, snapshot, settings)
            previous = current_snapshot(con)
            result = RollbackResult(restored=snapshot, previous=previous, snapshot_id=None)
            staged = {table: _stage_restore(con, table, snapshot) for table in STATE_TABLES}
            con.execute("BEGIN")
            for table, cols in staged.items():
                before, after = _fingerprint(con, table, cols), _staged_fingerprint(con, table)
                if before == after:
                    continue
                _restore(con, table, cols)
                result.tables[table] = (before[0], after[0])
            if not result.tables:
                con.execute("ROLLBACK")
                return result
            con.execute(f"CALL {ALIAS}.set_commit_message('govfacts', ?)",
                        [commit_message("rollback", restored_snapshot=snapshot, previous_snapshot=previous,
                                        tables={t: {"rows_before": b, "rows_after": a} for t, (b, a) in result.tables.items()})])
            con.execute("COMMIT")
            result.snapshot_id = current_snapshot(con)
            return result
        except BaseException:
            abort(con)
            raise
        finally:
            con.close()
