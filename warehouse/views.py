"""The researcher-facing views, each with its description, versioned by the migration that (re)defines it.

Migration 2 (``warehouse/schema.py``, ``VIEWS``) made the first ``facts_published`` and
``indicator_panel``; migration 4 (here) redefines ``indicator_panel`` and adds
``targets_vs_actuals`` and ``regions``; migration 5 computes ``indicator_panel`` and
``targets_vs_actuals`` (same rows) by aggregation; migration 6 returns ``targets_vs_actuals``
to its v4 SQL, which measured faster. An applied migration's SQL is never edited:
a changed view is a new entry with a new migration number, and ``current_views``
returns the newest definition of each view (time-travel sessions use it for
snapshots older than the view, see ``warehouse/catalog.py``).

Choosing one number when several facts say the same thing — why the order is what it is:
the same (region, period, indicator, measure, kind) can be stated by several reports
(2023's GDP in the 2024 report as an estimate, and again in the 2025 report as the
final figure) or twice in one report. ``indicator_panel`` takes, for actuals, the most
recent report (latest figures are revised figures), final before preliminary, then
the first mention; for targets, the report of the target's own year first (the target
as it was set), then the most recent report. ``targets_vs_actuals`` is stricter by
definition (target from report Y, actual from report Y+1), and within one report takes
final before preliminary, then the first mention.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from transforms.settings import SEEDS_DIR

REGION_SEED = SEEDS_DIR / "regions.csv"
REGION_COLUMNS = ("name", "level", "parent", "short")


@dataclass(frozen=True)
class View:
    """A view of the warehouse: its name, what it is for, its SQL and the migration that defined it."""

    name: str
    description: str
    sql: str
    since: int


# The columns of indicator_panel from its picked actual (a) and target (t), shared by its v4 and v5 SQL
# (the strings below are exactly what migrations 4 and 5 ran: only the way they are written changed).
PANEL_COLUMNS = """SELECT region, period, indicator, measure,
       a.value AS actual, t.value AS target,
       coalesce(a.unit, t.unit) AS unit,
       a.value_base AS actual_base, t.value_base AS target_base,
       coalesce(a.unit_base, t.unit_base) AS unit_base,
       coalesce(a.region_level, t.region_level) AS region_level,
       a.unit AS actual_unit, a.qualifier AS actual_qualifier, a.preliminary AS actual_preliminary,
       a.report_year AS actual_report_year, a.doc_id AS actual_doc_id, a.fact_id AS actual_fact_id,
       t.unit AS target_unit, t.qualifier AS target_qualifier,
       t.report_year AS target_report_year, t.doc_id AS target_doc_id, t.fact_id AS target_fact_id
"""

INDICATOR_PANEL_V4 = """
WITH ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY region, period, indicator, measure, kind
        ORDER BY CASE WHEN kind = 'target' AND CAST(report_year AS VARCHAR) = period THEN 0 ELSE 1 END,
                 report_year DESC NULLS LAST, preliminary ASC NULLS LAST, doc_id, start) AS pick
    FROM facts_published
    WHERE kind IN ('actual', 'target')
),
a AS (SELECT * FROM ranked WHERE kind = 'actual' AND pick = 1),
t AS (SELECT * FROM ranked WHERE kind = 'target' AND pick = 1)
""" + PANEL_COLUMNS + """FROM a FULL OUTER JOIN t USING (region, period, indicator, measure)
"""

TARGETS_VS_ACTUALS_V4 = """
WITH t AS (
    SELECT *, row_number() OVER (PARTITION BY region, indicator, measure, period
                                 ORDER BY preliminary ASC NULLS LAST, doc_id, start) AS pick
    FROM facts_published
    WHERE kind = 'target' AND period = CAST(report_year AS VARCHAR)
),
a AS (
    SELECT *, row_number() OVER (PARTITION BY region, indicator, measure, period
                                 ORDER BY preliminary ASC NULLS LAST, doc_id, start) AS pick
    FROM facts_published
    WHERE kind = 'actual' AND period = CAST(report_year - 1 AS VARCHAR)
)
SELECT t.region, t.region_level, t.indicator, t.measure, CAST(t.period AS BIGINT) AS year,
       t.value AS target, t.unit AS target_unit, t.qualifier AS target_qualifier,
       a.value AS actual, a.unit AS actual_unit, a.qualifier AS actual_qualifier, a.preliminary AS actual_preliminary,
       CASE WHEN a.unit = t.unit THEN a.value - t.value END AS gap,
       CASE WHEN a.unit = t.unit THEN CASE WHEN t.unit_base = '%' THEN 'pp' ELSE t.unit END END AS gap_unit,
       CASE WHEN a.unit_base = t.unit_base THEN a.value_base - t.value_base END AS gap_base,
       t.unit_base,
       CASE WHEN a.value_base IS NULL OR a.unit_base <> t.unit_base THEN NULL
            WHEN t.qualifier = '以内' THEN a.value_base <= t.value_base
            ELSE a.value_base >= t.value_base END AS met,
       t.report_year AS target_report_year, a.report_year AS actual_report_year,
       t.doc_id AS target_doc_id, a.doc_id AS actual_doc_id,
       t.fact_id AS target_fact_id, a.fact_id AS actual_fact_id,
       t.evidence AS target_evidence, a.evidence AS actual_evidence
FROM t
LEFT JOIN a ON a.region = t.region AND a.indicator = t.indicator AND a.measure = t.measure
           AND a.period = t.period AND a.pick = 1
WHERE t.pick = 1
"""

REGIONS_V4 = """
WITH RECURSIVE
seen AS (
    SELECT region AS name, region_level AS level, doc_id FROM documents WHERE region IS NOT NULL
    UNION ALL
    SELECT region, region_level, doc_id FROM facts WHERE region IS NOT NULL
),
used AS (
    SELECT name, mode(level) AS level, count(DISTINCT doc_id) AS n_documents FROM seen GROUP BY name
),
nodes AS (
    SELECT name, level, nullif(parent, '') AS parent, nullif(short, '') AS short, 'seed' AS source
    FROM region_reference
    UNION ALL
    SELECT name, level, NULL, NULL, 'documents' FROM used
    WHERE name NOT IN (SELECT name FROM region_reference)
),
chain AS (
    SELECT name, name AS ancestor, level AS ancestor_level, 0 AS depth FROM nodes
    UNION ALL
    SELECT c.name, p.name, p.level, c.depth + 1
    FROM chain c JOIN nodes n ON n.name = c.ancestor JOIN nodes p ON p.name = n.parent
    WHERE c.depth < 8
)
SELECT n.name AS region, n.level,
       CASE WHEN n.level IN ('county', 'district') THEN 'county' ELSE n.level END AS tier,
       n.parent, n.short,
       max(c.ancestor) FILTER (WHERE c.ancestor_level = 'province') AS province,
       max(c.ancestor) FILTER (WHERE c.ancestor_level = 'city') AS city,
       max(c.ancestor) FILTER (WHERE c.ancestor_level IN ('county', 'district')) AS county,
       string_agg(c.ancestor, ' / ' ORDER BY c.depth DESC) AS path,
       max(c.depth) AS depth,
       n.source,
       coalesce(any_value(u.n_documents), 0) AS n_documents
FROM nodes n JOIN chain c ON c.name = n.name LEFT JOIN used u ON u.name = n.name
GROUP BY n.name, n.level, n.parent, n.short, n.source
"""

# Migration 5: the same rows as v4, computed by one aggregation (arg_min over a sort key that encodes the
# order described in the module doc) instead of window functions and a full join. Measured at 1 million
# synthetic facts (median wall seconds, v4 -> v5): indicator_panel one region 0.21 -> 0.08, count(*) 2.0 -> 0.38,
# select * 5.0 -> 5.6. For targets_vs_actuals v5 was slower (count/avg(gap) 0.61 -> 1.06, one region
# 0.17 -> 0.21), so migration 6 puts its v4 SQL back.
INDICATOR_PANEL_V5 = """
WITH picked AS (
    SELECT region, period, indicator, measure,
           arg_min(struct_pack(value, unit, value_base, unit_base, qualifier, preliminary, report_year, doc_id, fact_id, region_level),
                   struct_pack(k1 := -coalesce(report_year, -1000000), k2 := CASE preliminary WHEN false THEN 0 WHEN true THEN 1 ELSE 2 END,
                               k3 := doc_id, k4 := start))
               FILTER (WHERE kind = 'actual') AS a,
           arg_min(struct_pack(value, unit, value_base, unit_base, qualifier, preliminary, report_year, doc_id, fact_id, region_level),
                   struct_pack(k0 := CASE WHEN CAST(report_year AS VARCHAR) = period THEN 0 ELSE 1 END,
                               k1 := -coalesce(report_year, -1000000), k2 := CASE preliminary WHEN false THEN 0 WHEN true THEN 1 ELSE 2 END,
                               k3 := doc_id, k4 := start))
               FILTER (WHERE kind = 'target') AS t
    FROM facts_published
    WHERE kind IN ('actual', 'target')
    GROUP BY region, period, indicator, measure
)
""" + PANEL_COLUMNS + """FROM picked
"""

TARGETS_VS_ACTUALS_V5 = """
WITH t AS (
    SELECT region, indicator, measure, period,
           arg_min(struct_pack(value, unit, qualifier, value_base, unit_base, report_year, doc_id, fact_id, evidence, region_level),
                   struct_pack(k2 := CASE preliminary WHEN false THEN 0 WHEN true THEN 1 ELSE 2 END, k3 := doc_id, k4 := start)) AS x
    FROM facts_published
    WHERE kind = 'target' AND period = CAST(report_year AS VARCHAR)
    GROUP BY region, indicator, measure, period
),
a AS (
    SELECT region, indicator, measure, period,
           arg_min(struct_pack(value, unit, qualifier, preliminary, value_base, unit_base, report_year, doc_id, fact_id, evidence),
                   struct_pack(k2 := CASE preliminary WHEN false THEN 0 WHEN true THEN 1 ELSE 2 END, k3 := doc_id, k4 := start)) AS x
    FROM facts_published
    WHERE kind = 'actual' AND period = CAST(report_year - 1 AS VARCHAR)
    GROUP BY region, indicator, measure, period
)
SELECT t.region, t.x.region_level AS region_level, t.indicator, t.measure, CAST(t.period AS BIGINT) AS year,
       t.x.value AS target, t.x.unit AS target_unit, t.x.qualifier AS target_qualifier,
       a.x.value AS actual, a.x.unit AS actual_unit, a.x.qualifier AS actual_qualifier, a.x.preliminary AS actual_preliminary,
       CASE WHEN a.x.unit = t.x.unit THEN a.x.value - t.x.value END AS gap,
       CASE WHEN a.x.unit = t.x.unit THEN CASE WHEN t.x.unit_base = '%' THEN 'pp' ELSE t.x.unit END END AS gap_unit,
       CASE WHEN a.x.unit_base = t.x.unit_base THEN a.x.value_base - t.x.value_base END AS gap_base,
       t.x.unit_base AS unit_base,
       CASE WHEN a.x.value_base IS NULL OR a.x.unit_base <> t.x.unit_base THEN NULL
            WHEN t.x.qualifier = '以内' THEN a.x.value_base <= t.x.value_base
            ELSE a.x.value_base >= t.x.value_base END AS met,
       t.x.report_year AS target_report_year, a.x.report_year AS actual_report_year,
       t.x.doc_id AS target_doc_id, a.x.doc_id AS actual_doc_id,
       t.x.fact_id AS target_fact_id, a.x.fact_id AS actual_fact_id,
       t.x.evidence AS target_evidence, a.x.evidence AS actual_evidence
FROM t LEFT JOIN a ON a.region = t.region AND a.indicator = t.indicator AND a.measure = t.measure AND a.period = t.period
"""

VIEWS_V4: tuple[View, ...] = (
    View("indicator_panel",
         "Region x period x indicator x measure: the actual and the target side by side, one number each "
         "(actual from the most recent report, final before preliminary; target from the report of its own year), "
         "in the unit as written and in base units, with the report year, document and fact each came from",
         INDICATOR_PANEL_V4, 4),
    View("targets_vs_actuals",
         "The target for year Y set by the report of year Y beside the actual for Y stated by the report of year Y+1, "
         "with the gap (actual - target; pp for growth rates) and met (actual >= target, <= for 以内 ceilings); "
         "targets whose next report is not loaded yet have a NULL actual",
         TARGETS_VS_ACTUALS_V4, 4),
    View("regions",
         "Region hierarchy (province / city / county; districts are county-level): every region of seeds/regions.csv "
         "and every region a document or fact names, with its parent, its province, city and county, the path, "
         "and how many documents name it",
         REGIONS_V4, 4),
)


VIEWS_V5: tuple[View, ...] = (
    View("indicator_panel", VIEWS_V4[0].description, INDICATOR_PANEL_V5, 5),
    View("targets_vs_actuals", VIEWS_V4[1].description, TARGETS_VS_ACTUALS_V5, 5),
)

VIEWS_V6: tuple[View, ...] = (
    View("targets_vs_actuals", VIEWS_V4[1].description, TARGETS_VS_ACTUALS_V4, 6),
)

# Every view defined after migration 2, oldest first; a later entry for a name replaces the earlier one.
LATER_VIEWS: tuple[View, ...] = VIEWS_V4 + VIEWS_V5 + VIEWS_V6


def current_views() -> list[View]:
    """The newest definition of every view, in an order where a view comes after the views it reads."""
    from warehouse.schema import VIEWS  # noqa: PLC0415 (schema imports this module inside migrate)

    newest: dict[str, View] = {name: View(name, desc, sql, 2) for name, (desc, sql) in VIEWS.items()}
    for view in LATER_VIEWS:
        newest[view.name] = view
    return list(newest.values())


def create_views(con: duckdb.DuckDBPyConnection, since: int) -> list[str]:
    """(Re)create the views defined by migration ``since``, with their descriptions; return their names."""
    made = []
    for view in LATER_VIEWS:
        if view.since != since:
            continue
        con.execute(f"CREATE OR REPLACE VIEW {view.name} AS {view.sql}")
        con.execute(f"COMMENT ON VIEW {view.name} IS '{view.description.replace(chr(39), chr(39) * 2)}'")
        made.append(view.name)
    return made


def read_region_seed(path: Path = REGION_SEED) -> list[tuple[str, str | None, str | None, str | None]]:
    """Rows (name, level, parent, short) of seeds/regions.csv, or none when the file is absent.

    The file is optional: without it, ``regions`` is derived from the documents alone.
    Columns other than these four are ignored; a missing column reads as NULL.
    """
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [tuple((r.get(c) or "").strip() or None for c in REGION_COLUMNS) for r in csv.DictReader(fh)]
    return sorted({r for r in rows if r[0]}, key=_sort_key)


def _sort_key(row: tuple) -> tuple:
    return tuple(v or "" for v in row)


def sync_region_reference(con: duckdb.DuckDBPyConnection, path: Path = REGION_SEED) -> bool:
    """Make table ``region_reference`` equal seeds/regions.csv; return True when it had to change.

    Called inside a load's transaction, so a changed seed lands in the run's snapshot
    and an unchanged one writes nothing (an unchanged re-run stays snapshot-free).
    """
    wanted = read_region_seed(path)
    have = sorted((tuple(r) for r in con.execute(f"SELECT {', '.join(REGION_COLUMNS)} FROM region_reference").fetchall()), key=_sort_key)
    if have == wanted:
        return False
    con.execute("DELETE FROM region_reference")
    if wanted:  # as one Arrow table: DuckDB's executemany inserts row by row (≈0.26 s for the seed's 3,000 rows)
        seed = pa.table({c: pa.array([r[i] for r in wanted], pa.string()) for i, c in enumerate(REGION_COLUMNS)})
        con.register("govfacts_region_seed", seed)
        try:
            con.execute(f"INSERT INTO region_reference ({', '.join(REGION_COLUMNS)}) "
                        f"SELECT {', '.join(REGION_COLUMNS)} FROM govfacts_region_seed")
        finally:
            con.unregister("govfacts_region_seed")
    return True


# Descriptions of the views' columns. DuckLake 0.x (DuckDB 1.5.5) refuses COMMENT ON COLUMN for a view ("not a
# table"), so they are declared here, once: `govfacts export` writes them into each Parquet field's metadata and
# `view_column_descriptions()` gives them to anything that lists columns (tests/test_cli_surface.py checks that every
# column of every view has one). facts_published has the columns of facts, described with the table.
_PANEL_SIDE = {
    "unit": "unit of the {side} as written in its report (亿元, %, …)",
    "qualifier": "qualifier written with the {side} (以上 左右 以内 近 突破 超 约), NULL when none",
    "report_year": "year of the report the {side} comes from",
    "doc_id": "document (sha256 of the raw file) the {side} comes from; join documents",
    "fact_id": "fact the {side} is; join facts",
}
_COMMON = {
    "region": "region the figure is about (a division of seeds/regions.csv)",
    "region_level": "level of the region: province, city, county or district",
    "indicator": "indicator code (seeds/indicators.csv): gdp, retail_sales, …",
    "measure": "level, growth, share or ratio",
}
VIEW_COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "indicator_panel": {
        **_COMMON,
        "period": "year (2023) or span (2021-2025) the numbers are for",
        "actual": "the actual, as written, from the most recent report stating it (final before preliminary)",
        "target": "the target, as written, from the report of its own year",
        "unit": "unit of actual and target when they agree",
        "actual_base": "the actual in base units (CNY, persons, tonnes, %)",
        "target_base": "the target in base units (CNY, persons, tonnes, %)",
        "unit_base": "base unit of actual_base and target_base",
        "actual_preliminary": "true when the actual is marked as an estimate (预计)",
        **{f"actual_{k}": v.format(side="actual") for k, v in _PANEL_SIDE.items()},
        **{f"target_{k}": v.format(side="target") for k, v in _PANEL_SIDE.items()},
    },
    "targets_vs_actuals": {
        **_COMMON,
        "year": "the year Y the target was set for (by the report of year Y) and the actual is stated for (by the report of Y+1)",
        "target": "the target for Y, as written", "actual": "the actual for Y, as written; NULL while the Y+1 report is not loaded",
        "gap": "actual − target, in gap_unit (percentage points for growth rates); NULL when the units differ",
        "gap_unit": "unit of gap: pp for rates, else the shared unit",
        "gap_base": "actual − target in base units",
        "unit_base": "base unit of gap_base",
        "met": "true when the actual reaches the target (≥; ≤ for 以内 ceilings); NULL without an actual",
        "actual_preliminary": "true when the actual is marked as an estimate (预计)",
        "target_evidence": "sentence of the report that states the target",
        "actual_evidence": "sentence of the report that states the actual",
        **{f"actual_{k}": v.format(side="actual") for k, v in _PANEL_SIDE.items()},
        **{f"target_{k}": v.format(side="target") for k, v in _PANEL_SIDE.items()},
    },
    "regions": {
        "region": "name of the region", "level": "province, city, county or district (as seeds/regions.csv gives it)",
        "tier": "province, city or county (districts are county-level)", "parent": "the region it belongs to, NULL for a province",
        "short": "short name (凉州 for 凉州区), NULL when none", "province": "its province", "city": "its city (prefecture), NULL above",
        "county": "its county-level division, NULL above", "path": "province / city / county, the names from the top",
        "depth": "number of levels above it (0 for a province)",
        "source": "seed (seeds/regions.csv) or documents (named by a document or fact only)",
        "n_documents": "documents naming this region",
    },
}


def view_column_descriptions(view: str) -> dict[str, str]:
    """column -> description for a view (facts_published: those of facts)."""
    if view == "facts_published":
        from warehouse.schema import TABLES  # noqa: PLC0415

        return {c.name: c.description for c in next(t for t in TABLES if t.name == "facts").columns}
    return dict(VIEW_COLUMN_DESCRIPTIONS.get(view, {}))
