"""What changed between two snapshots: facts added, removed and changed, with their evidence.

How a fact is recognised across snapshots (the diff key): by what it is *about* —
its document, region, indicator, measure, period and kind — plus its occurrence
number when one report states the same thing more than once (1st, 2nd, ... by
position in the text). Not by ``fact_id``: that hashes the value and the offsets,
so a corrected value would show as one fact removed and another added, and the
question "what changed when the extractor improved" would have no answer.

A matched pair is *changed* when any of value, unit, value_base, unit_base,
qualifier, preliminary or dq_status differs; ``changed_columns`` names them.
Evidence and offsets alone moving (a normalization tweak) is not a change, but
both evidences are reported for every changed pair.
"""

from __future__ import annotations

import duckdb

from transforms.settings import Settings
from warehouse.catalog import METADATA, connect
from warehouse.snapshots import require_snapshot

DIFF_KEY = ("doc_id", "region", "indicator", "measure", "period", "kind")
COMPARED = ("value", "unit", "value_base", "unit_base", "qualifier", "preliminary", "dq_status")
REPORTED = ("evidence", "fact_id", "start", "end")


def table_exists_at(con: duckdb.DuckDBPyConnection, table: str, snapshot: int) -> bool:
    """Did ``table`` exist in snapshot ``snapshot`` (read from the DuckLake catalog's own metadata)?"""
    row = con.execute(
        f"SELECT count(*) FROM {METADATA}.ducklake_table WHERE table_name = ? AND begin_snapshot <= ? "
        "AND (end_snapshot IS NULL OR end_snapshot > ?)", [table, snapshot, snapshot]).fetchone()
    return row[0] > 0


def facts_at(con: duckdb.DuckDBPyConnection, snapshot: int) -> str:
    """SQL for the facts table as of ``snapshot`` (empty when it predates the table)."""
    if table_exists_at(con, "facts", snapshot):
        return f"(SELECT * FROM facts AT (VERSION => {int(snapshot)}))"
    return "(SELECT * FROM facts WHERE false)"


def diff_sql(con: duckdb.DuckDBPyConnection, a: int, b: int) -> str:
    """The SQL of the fact diff from snapshot ``a`` to snapshot ``b``."""
    key = ", ".join(f'"{k}"' for k in DIFF_KEY)
    numbered = ("SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY start, \"end\", fact_id) AS occurrence FROM {src}")
    join = " AND ".join([f'o."{k}" IS NOT DISTINCT FROM n."{k}"' for k in DIFF_KEY] + ["o.occurrence = n.occurrence"])
    differs = [f'o."{c}" IS DISTINCT FROM n."{c}"' for c in COMPARED]
    changed_list = ", ".join(f"CASE WHEN {d} THEN '{c}' END" for d, c in zip(differs, COMPARED))
    keys_out = ", ".join(f'coalesce(n."{k}", o."{k}") AS "{k}"' for k in DIFF_KEY)
    pairs = ", ".join(f'o."{c}" AS "old_{c}", n."{c}" AS "new_{c}"' for c in COMPARED + REPORTED)
    return f"""
        WITH o AS ({numbered.format(key=key, src=facts_at(con, a))}),
             n AS ({numbered.format(key=key, src=facts_at(con, b))})
        SELECT CASE WHEN o.fact_id IS NULL THEN 'added' WHEN n.fact_id IS NULL THEN 'removed' ELSE 'changed' END AS change,
               {keys_out}, coalesce(n.occurrence, o.occurrence) AS occurrence,
               CASE WHEN o.fact_id IS NULL OR n.fact_id IS NULL THEN [] ELSE list_filter([{changed_list}], x -> x IS NOT NULL) END
                   AS changed_columns,
               {pairs}
        FROM o FULL OUTER JOIN n ON {join}
        WHERE o.fact_id IS NULL OR n.fact_id IS NULL OR {' OR '.join(differs)}
        ORDER BY doc_id, indicator, measure, period, kind, occurrence, change"""


def diff_snapshots(settings: Settings, a: int, b: int) -> list[dict]:
    """Facts added, removed and changed from snapshot ``a`` to snapshot ``b``, one dict per fact."""
    con = connect(settings, read_only=True)
    try:
        for snap in (a, b):
            require_snapshot(con, snap, settings)
        cur = con.execute(diff_sql(con, a, b))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def summarize(changes: list[dict]) -> dict[str, int]:
    """Counts of added, removed and changed facts."""
    out = {"added": 0, "removed": 0, "changed": 0}
    for c in changes:
        out[c["change"]] += 1
    return out
