"""SQL the data-quality side needs: published facts for the cross-document rules, and the report's data.

Everything opens the warehouse read-only, so a report can be built while a
run writes (the SQLite catalog admits readers during a load).
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from transforms.schema import COMPARED_FIELDS
from transforms.settings import Settings
from warehouse.catalog import connect
from warehouse.parts import arrow_schema, conform_to, part_exists
from warehouse.storage import filesystem

COMPARED = list(COMPARED_FIELDS)  # the fields the rules across documents read
FACT_FIELDS = ", ".join(f'"{c}"' for c in COMPARED)


def _frame(settings: Settings, sql: str, params: list | None = None) -> pd.DataFrame:
    con = connect(settings, read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def comparable_facts(settings: Settings | None, places: tuple[list[str], list[str]], earlier: list[str],
                     replaced: str | None = None) -> pa.Table:
    """What a validation group's facts are compared with: facts at ``places`` (``derive.comparable_places``) that
    the warehouse publishes and that the run's groups validated before this one published.

    A run validates its documents in groups and loads them all at the end, so the warehouse alone would
    let two reports of one run meet only when they fall in the same group. ``settings``: None while the
    run is creating the warehouse (nothing published yet). ``earlier``: those groups' ``comparable`` parts
    (``comparable_part``; a group without facts wrote none). ``replaced``: a part listing the documents
    this run (re)processes — their published rows are an older version, compared in their new one instead.
    An Arrow table: it travels to the validator process as buffers, not as pickled Python strings.
    """
    tables = []
    if settings is not None:
        published = _published_at(settings, places)
        if replaced is not None and published.num_rows:
            gone = pc.is_in(published.column("doc_id"), value_set=_read(replaced, ["doc_id"]).column("doc_id"))
            published = published.filter(pc.invert(gone))
        tables.append(published)
    wanted = pa.array([f"{r}\x1f{p}" for r, p in zip(*places)], pa.string())
    for path in earlier:
        if not part_exists(path):
            continue
        table = _read(path, COMPARED)
        at = pc.binary_join_element_wise(table.column("region"), table.column("period"), "\x1f")
        tables.append(table.filter(pc.fill_null(pc.is_in(at, value_set=wanted), False)))
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return comparable_schema().empty_table()
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def comparable_schema() -> pa.Schema:
    """The Arrow schema of compared facts: the ``facts`` table's, for the fields the rules across documents read."""
    schema = arrow_schema("facts")
    return pa.schema([schema.field(c) for c in COMPARED])


def comparable_part(facts: pa.Table, status: dict[str, str]) -> pa.Table:
    """The part a validated group leaves for the groups after it: its facts that will be published (errors are not),
    with the fields the rules across documents read. ``status``: fact_id -> status of the facts that failed something.
    Written with ``comparable_schema()``."""
    keep = pa.array([status.get(f) != "error" for f in facts.column("fact_id").to_pylist()], pa.bool_())
    return facts.filter(keep).select(COMPARED)


def _published_at(settings: Settings, places: tuple[list[str], list[str]]) -> pa.Table:
    """Published facts at ``places`` (region, period pairs): a semi-join, so the group's regions' other years stay out."""
    try:
        con = connect(settings, read_only=True)
    except FileNotFoundError:
        return comparable_schema().empty_table()
    try:
        return conform_to(comparable_schema(), con.execute(f"""
            SELECT {FACT_FIELDS} FROM facts_published
            SEMI JOIN (SELECT unnest(?::VARCHAR[]) AS region, unnest(?::VARCHAR[]) AS period) AS place
            USING (region, period)""", list(places)).to_arrow_table())
    finally:
        con.close()


def _read(path: str, columns: list[str]) -> pa.Table:
    fs, inner = filesystem(path)
    return pq.read_table(inner, columns=columns, filesystem=fs)


def latest_validated_run(settings: Settings) -> dict | None:
    """The latest run that validated facts (it has dq_results): its run row, or None."""
    df = _frame(settings, """SELECT r.* FROM runs r
                             WHERE r.run_id IN (SELECT run_id FROM dq_results)
                             ORDER BY r.snapshot_id DESC LIMIT 1""")
    return None if df.empty else df.iloc[0].to_dict()


def dq_results(settings: Settings, run_id: str | None = None) -> pd.DataFrame:
    """Expectation results of one run (default: every run), oldest snapshot first."""
    where = "WHERE run_id = ?" if run_id else ""
    return _frame(settings, f"SELECT * FROM dq_results {where} ORDER BY snapshot_id, expectation, scope",
                  [run_id] if run_id else [])


def pass_rate_history(settings: Settings) -> pd.DataFrame:
    """Per snapshot and expectation name: facts checked, facts failed and the share that passed."""
    return _frame(settings, """
        SELECT snapshot_id, expectation, any_value(severity) AS severity,
               sum(element_count) AS checked, sum(unexpected_count) AS failed,
               CASE WHEN sum(element_count) = 0 THEN NULL
                    ELSE 1 - sum(unexpected_count)::DOUBLE / sum(element_count) END AS pass_rate
        FROM dq_results GROUP BY snapshot_id, expectation ORDER BY expectation, snapshot_id""")


def documents(settings: Settings) -> pd.DataFrame:
    """Every document with its facts' status counts."""
    return _frame(settings, """
        SELECT d.doc_id, d.source_path, d.region, d.region_level, d.report_year, d.encoding, d.n_bytes, d.run_id,
               d.doc_type, d.no_facts_reason,
               count(f.fact_id) AS n_facts,
               count(f.fact_id) FILTER (WHERE f.dq_status = 'passed') AS n_passed,
               count(f.fact_id) FILTER (WHERE f.dq_status = 'warning') AS n_warning,
               count(f.fact_id) FILTER (WHERE f.dq_status = 'error') AS n_error
        FROM documents d LEFT JOIN facts f USING (doc_id)
        GROUP BY ALL ORDER BY d.region, d.report_year, d.source_path""")


def all_facts(settings: Settings) -> pd.DataFrame:
    """Every fact (published or not) with its status and the names of the expectations it failed."""
    return _frame(settings, f"SELECT {FACT_FIELDS}, dq_status, dq_failed, run_id FROM facts "
                            "ORDER BY doc_id, start, indicator, measure")


def fact_messages(settings: Settings) -> dict[str, list[str]]:
    """fact_id -> the plain-language reasons it failed, from the results of the run that loaded it."""
    df = _frame(settings, """
        SELECT d.run_id, d.unexpected_messages FROM dq_results d
        WHERE d.unexpected_count > 0 AND d.unexpected_messages IS NOT NULL
        ORDER BY d.snapshot_id, d.expectation, d.scope""")
    loaded_by = dict(_frame(settings, "SELECT fact_id, run_id FROM facts WHERE dq_status <> 'passed'").itertuples(index=False))
    out: dict[str, list[str]] = {}
    for run_id, blob in zip(df["run_id"], df["unexpected_messages"]):
        for fid, msg in json.loads(blob).items():
            if loaded_by.get(fid) == run_id:
                out.setdefault(fid, []).append(msg)
    return out


def document_texts(settings: Settings, doc_ids: list[str]) -> dict[str, str]:
    """Normalized text of the given documents (to show an evidence in its context)."""
    if not doc_ids:
        return {}
    df = _frame(settings, "SELECT doc_id, text FROM document_text WHERE doc_id IN (SELECT unnest(?))", [list(doc_ids)])
    return dict(zip(df["doc_id"], df["text"]))


def quarantined_files(settings: Settings) -> pd.DataFrame:
    """Input files that never became documents, with the reason."""
    return _frame(settings, "SELECT source_path, sha256, stage, reason, detail, run_id FROM quarantine "
                            "WHERE item = 'file' ORDER BY source_path")


TARGET_COLUMNS = ("region", "indicator", "measure", "year", "target", "target_unit", "target_qualifier", "actual",
                  "actual_unit", "gap", "gap_unit", "met", "target_evidence", "actual_evidence")


def targets_vs_actuals(settings: Settings) -> list[dict] | None:
    """Every row of the view ``targets_vs_actuals`` (the report's table), oldest year first; None without the view.

    The report reads the view rather than pairing targets with actuals itself, so the
    page and a user's ``SELECT * FROM targets_vs_actuals`` can never disagree. A row
    whose next report is not loaded yet has a NULL actual. None means the warehouse
    predates migration 4 (any ``govfacts run`` on it adds the view).
    """
    con = connect(settings, read_only=True)
    try:
        return con.execute(f"SELECT {', '.join(TARGET_COLUMNS)} FROM targets_vs_actuals "
                           "ORDER BY region, year, indicator, measure").arrow().read_all().to_pylist()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def runs(settings: Settings) -> pd.DataFrame:
    """Every run that changed the warehouse, oldest first."""
    return _frame(settings, "SELECT * FROM runs ORDER BY snapshot_id")
