"""The warehouse schema, declared once: every table and column with its description.

Migrations are numbered; ``migrate`` applies the ones a catalog has not seen and
records them in ``schema_migrations``. Views are (re)created by the last step.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]

    def ddl(self) -> str:
        cols = ", ".join(f'"{c.name}" {c.type}' for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"


C = Column
FACT_COLUMNS = (
    C("fact_id", "VARCHAR", "Stable id: hash of document, indicator, measure, period, kind, offsets and value"),
    C("doc_id", "VARCHAR", "sha256 of the raw bytes of the report the fact comes from"),
    C("region", "VARCHAR", "Region the number is about (the report's own region unless stated otherwise)"),
    C("indicator", "VARCHAR", "Indicator code from seeds/indicators.csv (gdp, retail_sales, ...)"),
    C("measure", "VARCHAR", "level | growth | share | ratio"),
    C("value", "DOUBLE", "The number as written in the report"),
    C("unit", "VARCHAR", "The unit as written (亿元, %, 个百分点, 万吨, ...)"),
    C("value_base", "DOUBLE", "value converted to the base unit (亿元 -> CNY x 1e8)"),
    C("unit_base", "VARCHAR", "Base unit (CNY, person, t, jin, mu, %, pp, ratio, ...)"),
    C("period", "VARCHAR", "Year the number refers to, or a span such as 2017-2021"),
    C("kind", "VARCHAR", "actual | target | average_annual | cumulative | change_vs_base"),
    C("qualifier", "VARCHAR", "Precision word: 以上 左右 以内 近 突破 超 约, or NULL when exact"),
    C("evidence", "VARCHAR", "The clause of the normalized text the fact was read from"),
    C("start", "BIGINT", "Offset of the evidence in document_text.text"),
    C("end", "BIGINT", "End offset (exclusive) of the evidence in document_text.text"),
    C("rule", "VARCHAR", "Name of the extraction rule that produced the fact"),
    C("region_level", "VARCHAR", "province | city | county | district"),
    C("report_year", "BIGINT", "Year of the report (of the meeting it was delivered at)"),
    C("preliminary", "BOOLEAN", "True when the report marks the figure as an estimate (预计)"),
    C("mojibake_overlap", "BOOLEAN", "True when the evidence overlaps text damaged by mojibake that could not be repaired"),
    C("raw_start", "BIGINT", "Offset of the evidence in the decoded raw text"),
    C("raw_end", "BIGINT", "End offset of the evidence in the decoded raw text"),
    C("pipeline_version", "VARCHAR", "Hash of the code and reference data that produced the fact"),
    C("run_id", "VARCHAR", "The run that loaded the fact"),
    C("dq_status", "VARCHAR", "passed | warning | error (errors are quarantined, not published)"),
    C("dq_failed", "VARCHAR", "Comma-separated names of the expectations the fact failed or warned on"),
)

TABLES: tuple[Table, ...] = (
    Table("documents", "One row per distinct input report (by content hash): raw metadata and its normalization report", (
        C("doc_id", "VARCHAR", "sha256 of the raw bytes"),
        C("source_path", "VARCHAR", "Path the file was first seen under"),
        C("source_names", "VARCHAR", "JSON list of every file name these bytes arrived under"),
        C("n_bytes", "BIGINT", "Size of the raw file"),
        C("staged_path", "VARCHAR", "Content-addressed copy in the staging area"),
        C("encoding", "VARCHAR", "Detected encoding"),
        C("confidence", "DOUBLE", "Confidence of the encoding detection (0-1)"),
        C("region", "VARCHAR", "The report's own region"),
        C("region_level", "VARCHAR", "province | city | county | district"),
        C("report_year", "BIGINT", "Year of the report"),
        C("n_facts", "BIGINT", "Facts extracted from the document"),
        C("doc_type", "VARCHAR", "What the document is: local_work_report | national_work_report | news_about_report | not_a_report | "
          "unidentified_report (migration 7)"),
        C("identity", "VARCHAR", "JSON: how the region and year were established (meeting line, title, speaker line, …) (migration 7)"),
        C("no_facts_reason", "VARCHAR", "Why the document yields no facts (not a local report, region or year unknown, nothing stated); "
          "NULL when it has facts (migration 7)"),
        C("normalization_report", "VARCHAR", "JSON: encoding, pinyin removed, mojibake found/repaired/left, furniture removed, characters converted"),
        C("pipeline_version", "VARCHAR", "Hash of the code and reference data that processed the document"),
        C("run_id", "VARCHAR", "The run that loaded the document"),
        C("text_sha256", "VARCHAR", "sha256 of the normalized text: two files whose normalized text is equal are one report (migration 8)"),
        C("copies", "VARCHAR", "JSON list of the other raw files holding this same report (equal normalized text, other bytes: "
          "another encoding, line ending, BOM, HTML): sha256, names, bytes, encoding, staged path, run; recorded here and "
          "loaded once (migration 8)"),
    )),
    Table("document_text", "Normalized (canonical) text of each document, so evidence can be checked in SQL", (
        C("doc_id", "VARCHAR", "sha256 of the raw bytes"),
        C("text", "VARCHAR", "Canonical normalized text; facts.start/end index into it"),
        C("raw_text", "VARCHAR", "Decoded raw text; facts.raw_start/raw_end index into it"),
    )),
    Table("facts", "Every fact extracted, published or not (dq_status says which)", FACT_COLUMNS),
    Table("quarantine", "Files that could not become documents and facts that failed an error-level expectation", (
        C("item", "VARCHAR", "file | fact"),
        C("source_path", "VARCHAR", "Path of the input file"),
        C("sha256", "VARCHAR", "sha256 of the file's bytes (NULL when unreadable)"),
        C("fact_id", "VARCHAR", "The quarantined fact (item = fact)"),
        C("stage", "VARCHAR", "Stage that rejected it: stage | normalize | extract | validate"),
        C("reason", "VARCHAR", "Stable reason code (empty, binary, undecodable, ...) or failed expectation names"),
        C("detail", "VARCHAR", "Human explanation naming the file and what to do next"),
        C("evidence", "VARCHAR", "Evidence sentence of a quarantined fact"),
        C("pipeline_version", "VARCHAR", "Code version that made the decision"),
        C("run_id", "VARCHAR", "Run that quarantined it"),
    )),
    Table("dq_results", "Result of every expectation on every run that loaded data", (
        C("run_id", "VARCHAR", "The run"),
        C("snapshot_id", "BIGINT", "Snapshot the results belong to"),
        C("suite", "VARCHAR", "Expectation suite name"),
        C("expectation", "VARCHAR", "Expectation name, a sentence (expect_growth_rates_to_be_in_range)"),
        C("description", "VARCHAR", "Plain-language description shown in the report"),
        C("severity", "VARCHAR", "error | warning"),
        C("scope", "VARCHAR", "What the expectation was applied to (e.g. indicator gdp)"),
        C("success", "BOOLEAN", "Did every checked fact pass"),
        C("element_count", "BIGINT", "Facts checked"),
        C("unexpected_count", "BIGINT", "Facts that failed"),
        C("unexpected_fact_ids", "VARCHAR", "JSON list of the fact ids that failed"),
        C("unexpected_messages", "VARCHAR", "JSON object fact_id -> plain-language reason the fact failed (migration 3)"),
        C("gx_result", "VARCHAR", "JSON of the Great Expectations validation result of this expectation, for Data Docs (migration 3)"),
    )),
    Table("runs", "One row per flow run that changed the warehouse", (
        C("run_id", "VARCHAR", "govfacts run id"),
        C("flow_run_id", "VARCHAR", "Prefect flow run id"),
        C("started_at", "TIMESTAMP", "Start time (UTC)"),
        C("finished_at", "TIMESTAMP", "Time of the load (UTC)"),
        C("code_version", "VARCHAR", "Pipeline version: hash of code and reference data"),
        C("inputs_manifest_hash", "VARCHAR", "sha256 of the sorted list of input content hashes"),
        C("files_in", "BIGINT", "Files found in the inbox"),
        C("documents", "BIGINT", "Documents loaded by this run"),
        C("files_quarantined", "BIGINT", "Files quarantined by this run"),
        C("files_skipped", "BIGINT", "Files already in the warehouse at this code version"),
        C("facts_extracted", "BIGINT", "Facts extracted by this run"),
        C("facts_published", "BIGINT", "Facts that passed (or only warned)"),
        C("facts_quarantined", "BIGINT", "Facts that failed an error-level expectation"),
        C("expectations_passed", "BIGINT", "Expectations that passed"),
        C("expectations_failed", "BIGINT", "Expectations that failed"),
        C("snapshot_id", "BIGINT", "Snapshot created by the run"),
    )),
    Table("region_reference", "Reference list of regions from seeds/regions.csv (migration 4); the regions view builds the hierarchy from it", (
        C("name", "VARCHAR", "Full region name (凉州区, 武威市, 甘肃省)"),
        C("level", "VARCHAR", "province | city | county | district"),
        C("parent", "VARCHAR", "Name of the region it belongs to (NULL for provinces)"),
        C("short", "VARCHAR", "Short name used in running text (凉州)"),
    )),
    Table("schema_migrations", "Migrations applied to this warehouse", (
        C("version", "BIGINT", "Migration number"),
        C("description", "VARCHAR", "What the migration did"),
    )),
)

VIEWS: dict[str, tuple[str, str]] = {
    "facts_published": (
        "Facts that passed validation (errors excluded; warnings published with their flag)",
        "SELECT * FROM facts WHERE dq_status <> 'error'",
    ),
    "indicator_panel": (
        "Region x period x indicator x measure: actual and target side by side",
        """SELECT region, period, indicator, measure,
                  max(value) FILTER (WHERE kind = 'actual') AS actual,
                  max(value) FILTER (WHERE kind = 'target') AS target,
                  any_value(unit) AS unit,
                  max(value_base) FILTER (WHERE kind = 'actual') AS actual_base,
                  max(value_base) FILTER (WHERE kind = 'target') AS target_base,
                  any_value(unit_base) AS unit_base
           FROM facts_published
           WHERE kind IN ('actual', 'target')
           GROUP BY ALL""",
    ),
}


def _comment(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, "tables of the first schema"),
    (2, "views"),
    (3, "dq_results: unexpected_messages and gx_result (data-quality report)"),
    (4, "region_reference table; views indicator_panel (v4), targets_vs_actuals, regions"),
    (5, "views indicator_panel and targets_vs_actuals (v5): the same rows, computed by aggregation instead of windows"),
    (6, "view targets_vs_actuals back to its v4 SQL (windows), measured faster than v5 for whole-view and per-region queries"),
    (7, "documents: doc_type, identity and no_facts_reason (what a document is, and why it yields no facts)"),
    (8, "documents: text_sha256 and copies (one report saved with different bytes is one document, its copies recorded)"),
)


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Add the declared columns an older warehouse lacks (old rows read NULL); migration 1 already made new ones."""
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    for c in next(t for t in TABLES if t.name == table).columns:
        if c.name not in have:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{c.name}" {c.type}')
            con.execute(f'COMMENT ON COLUMN {table}."{c.name}" IS {_comment(c.description)}')


def _create_table(con: duckdb.DuckDBPyConnection, t: Table) -> None:
    """Create a declared table (if absent) with the description of the table and of every column."""
    con.execute(t.ddl())
    con.execute(f"COMMENT ON TABLE {t.name} IS {_comment(t.description)}")
    for c in t.columns:
        con.execute(f'COMMENT ON COLUMN {t.name}."{c.name}" IS {_comment(c.description)}')


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Bring the attached warehouse to the latest schema; return the migrations applied."""
    con.execute(TABLES[-1].ddl())
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, description in MIGRATIONS:
        if version in done:
            continue
        if version == 1:
            for t in TABLES:
                _create_table(con, t)
        if version == 2:
            for name, (desc, sql) in VIEWS.items():
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
                con.execute(f"COMMENT ON VIEW {name} IS {_comment(desc)}")
        if version == 3:
            _add_missing_columns(con, "dq_results")
        if version == 4:
            from warehouse.views import create_views, sync_region_reference  # noqa: PLC0415 (views imports this module)

            _create_table(con, next(t for t in TABLES if t.name == "region_reference"))
            create_views(con, 4)
            sync_region_reference(con)
        if version == 7:
            _add_missing_columns(con, "documents")
        if version == 8:
            _add_missing_columns(con, "documents")
            con.execute("UPDATE documents SET text_sha256 = t.h FROM (SELECT doc_id, sha256(text) AS h FROM document_text) t "
                        "WHERE documents.doc_id = t.doc_id AND documents.text_sha256 IS NULL")
        if 5 <= version <= 6:  # migrations 5 and later (re)define views only; warehouse/views.py declares them
            from warehouse.views import create_views  # noqa: PLC0415

            create_views(con, version)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, description])
        applied.append(version)
    return applied
