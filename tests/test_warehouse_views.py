"""The researcher-facing views and the schema, on a real DuckLake warehouse in tmp_path:
facts_published, indicator_panel, targets_vs_actuals, regions; migrations; descriptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms.settings import load_settings
from tests.warehouse_batches import fact, make_batch
from warehouse import schema as schema_module
from warehouse.catalog import connect
from warehouse.load import load_batch, open_for_write
from warehouse.views import VIEWS_V4, VIEWS_V5, current_views, read_region_seed

# Report of 2023 (doc23) sets 2023 targets; report of 2024 (doc24) states 2023 actuals and sets 2024 targets;
# report of 2025 (doc25) states 2024 actuals. 壶关县 2024 growth target has no 2025 report yet.
FACTS = [
    fact("doc23", 6.5, 10, period="2023", kind="target", report_year=2023, qualifier="左右"),
    fact("doc23", 4.0, 30, period="2023", kind="target", report_year=2023, indicator="cpi", measure="growth", qualifier="以内"),
    fact("doc24", 6.6, 10, period="2023", kind="actual", report_year=2024),
    fact("doc24", 425.16, 40, period="2023", kind="actual", report_year=2024, measure="level", unit="亿元"),
    fact("doc24", 3.1, 70, period="2023", kind="actual", report_year=2024, indicator="cpi", measure="growth"),
    fact("doc24", 6.0, 90, period="2024", kind="target", report_year=2024, qualifier="左右"),
    fact("doc24", 99.0, 120, period="2024", kind="target", report_year=2024, indicator="retail_sales", dq_status="error"),
    fact("doc25", 5.5, 10, period="2024", kind="actual", report_year=2025),
    fact("doc25", 6.7, 30, period="2023", kind="actual", report_year=2025),  # 2023 restated by the 2025 report
    fact("docHG", 6.0, 10, region="壶关县", region_level="county", period="2024", kind="target", report_year=2024, qualifier="左右"),
    fact("docXX", 3.3, 10, region="新设区", region_level="district", period="2024", report_year=2025),
]


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    settings = load_settings(warehouse=tmp_path_factory.mktemp("views") / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    load_batch(settings, make_batch("run1", FACTS))
    con = connect(settings, read_only=True)
    yield con
    con.close()


def rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def test_facts_published_leaves_out_facts_that_failed_an_error_level_expectation(wh):
    published = {r["fact_id"] for r in rows(wh, "SELECT fact_id FROM facts_published")}
    assert len(published) == len(FACTS) - 1
    assert not any(r["indicator"] == "retail_sales" for r in rows(wh, "SELECT indicator FROM facts_published"))


def test_indicator_panel_puts_actual_and_target_side_by_side_from_the_right_reports(wh):
    panel = {(r["region"], r["period"], r["indicator"], r["measure"]): r for r in rows(wh, "SELECT * FROM indicator_panel")}
    gdp23 = panel[("凉州区", "2023", "gdp", "growth")]
    # actual from the most recent report (2025 restates 6.6 as 6.7), target from the report of its own year
    assert (gdp23["actual"], gdp23["actual_report_year"], gdp23["target"], gdp23["target_report_year"]) == (6.7, 2025, 6.5, 2023)
    assert gdp23["target_qualifier"] == "左右" and gdp23["unit"] == "%"
    gdp24 = panel[("凉州区", "2024", "gdp", "growth")]
    assert (gdp24["actual"], gdp24["target"]) == (5.5, 6.0)
    level = panel[("凉州区", "2023", "gdp", "level")]
    assert (level["actual"], level["actual_base"], level["unit_base"], level["target"]) == (425.16, 425.16e8, "CNY", None)
    assert panel[("壶关县", "2024", "gdp", "growth")]["actual"] is None
    assert ("凉州区", "2024", "retail_sales", "growth") not in panel, "unpublished facts stay out of the panel"
    assert len(panel) == len(rows(wh, "SELECT DISTINCT region, period, indicator, measure FROM indicator_panel"))


def test_targets_vs_actuals_pairs_year_y_target_with_the_actual_from_the_report_of_y_plus_1(wh):
    tva = {(r["region"], r["indicator"], r["year"]): r for r in rows(wh, "SELECT * FROM targets_vs_actuals")}
    g23 = tva[("凉州区", "gdp", 2023)]
    # the actual for 2023 comes from the 2024 report (6.6), not the 2025 restatement (6.7)
    assert (g23["target"], g23["actual"], g23["actual_report_year"], g23["target_report_year"]) == (6.5, 6.6, 2024, 2023)
    assert g23["gap"] == pytest.approx(0.1) and g23["gap_unit"] == "pp" and g23["met"] is True
    assert "6.5%" in g23["target_evidence"] and "6.6%" in g23["actual_evidence"]
    g24 = tva[("凉州区", "gdp", 2024)]
    assert (g24["target"], g24["actual"], g24["met"]) == (6.0, 5.5, False) and g24["gap"] == pytest.approx(-0.5)
    cpi = tva[("凉州区", "cpi", 2023)]
    assert (cpi["target"], cpi["actual"], cpi["met"]) == (4.0, 3.1, True), "以内 is a ceiling: below it is met"
    hg = tva[("壶关县", "gdp", 2024)]
    assert hg["actual"] is None and hg["gap"] is None and hg["met"] is None, "no 2025 report loaded yet"


def test_regions_builds_the_hierarchy_from_the_seed_and_adds_regions_only_documents_name(wh):
    regions = {r["region"]: r for r in rows(wh, "SELECT * FROM regions")}
    lz = regions["凉州区"]
    assert (lz["level"], lz["tier"], lz["parent"], lz["city"], lz["province"], lz["county"]) == (
        "district", "county", "武威市", "武威市", "甘肃省", "凉州区")
    assert lz["path"] == "甘肃省 / 武威市 / 凉州区" and lz["n_documents"] == 3 and lz["source"] == "seed"
    assert regions["武威市"]["tier"] == "city" and regions["武威市"]["province"] == "甘肃省"
    assert regions["壶关县"]["city"] == "长治市" and regions["壶关县"]["n_documents"] == 1
    new = regions["新设区"]
    assert (new["source"], new["level"], new["parent"], new["n_documents"]) == ("documents", "district", None, 1)


def test_regions_without_a_seed_file_are_derived_from_the_documents(tmp_path: Path, monkeypatch):
    import warehouse.views as views

    monkeypatch.setattr(views, "REGION_SEED", tmp_path / "absent.csv")
    monkeypatch.setattr(views.sync_region_reference, "__defaults__", (tmp_path / "absent.csv",))
    settings = load_settings(warehouse=tmp_path / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    load_batch(settings, make_batch("run1", FACTS[:3]))
    con = connect(settings, read_only=True)
    try:
        got = rows(con, "SELECT region, level, tier, source, parent FROM regions")
    finally:
        con.close()
    assert got == [{"region": "凉州区", "level": "district", "tier": "county", "source": "documents", "parent": None}]


def test_a_changed_region_seed_lands_in_the_next_load_and_an_unchanged_one_writes_nothing(tmp_path: Path, monkeypatch):
    import warehouse.views as views

    seed = tmp_path / "regions.csv"
    seed.write_text("name,level,parent,short\n甘肃省,province,,甘肃\n", encoding="utf-8")
    monkeypatch.setattr(views.sync_region_reference, "__defaults__", (seed,))
    settings = load_settings(warehouse=tmp_path / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    load_batch(settings, make_batch("run1", FACTS[:1]))
    con = open_for_write(settings)
    try:
        assert views.sync_region_reference(con, seed) is False
        seed.write_text("name,level,parent,short\n甘肃省,province,,甘肃\n武威市,city,甘肃省,武威\n", encoding="utf-8")
        assert views.sync_region_reference(con, seed) is True
        assert con.execute("SELECT count(*) FROM region_reference").fetchone() == (2,)
        # the whole bundled seed, empty cells as NULL: the table then equals it and a second sync writes nothing
        assert views.sync_region_reference(con, views.REGION_SEED) is True
        got = con.execute("SELECT name, level, parent, short FROM region_reference").fetchall()
        assert sorted(got, key=lambda r: tuple(v or "" for v in r)) == read_region_seed(views.REGION_SEED)
        assert len(got) > 1000 and any(None in r for r in got)
        assert views.sync_region_reference(con, views.REGION_SEED) is False
    finally:
        con.close()
    assert read_region_seed(tmp_path / "missing.csv") == []


def test_every_table_view_and_column_has_a_description(wh):
    tables = rows(wh, "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = 'wh'")
    views = rows(wh, "SELECT view_name, comment FROM duckdb_views() WHERE database_name = 'wh' AND NOT internal")
    assert {t.name for t in schema_module.TABLES} == {t["table_name"] for t in tables}
    assert {v.name for v in current_views()} == {v["view_name"] for v in views}
    assert all(t["comment"] for t in tables + [{"comment": v["comment"]} for v in views])
    missing = rows(wh, "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'wh' "
                       "AND table_name IN (SELECT table_name FROM duckdb_tables() WHERE database_name = 'wh') AND comment IS NULL")
    assert missing == []


def test_migrations_upgrade_an_old_warehouse_and_rerunning_them_changes_nothing(tmp_path: Path, monkeypatch):
    settings = load_settings(warehouse=tmp_path / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    monkeypatch.setattr(schema_module, "MIGRATIONS", schema_module.MIGRATIONS[:2])  # a warehouse made before migration 3
    old_snapshot = load_batch(settings, make_batch("run1", FACTS))
    old = open_for_write(settings)
    try:
        assert [r[0] for r in old.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()] == [1, 2]
        old.execute("DROP TABLE region_reference")  # did not exist before migration 4
    finally:
        old.close()
    monkeypatch.undo()
    con = open_for_write(settings)
    try:
        assert [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert {"doc_type", "identity", "no_facts_reason", "text_sha256", "copies"} <= {r[0] for r in con.execute("DESCRIBE documents").fetchall()}
        # migration 8 gives the old documents the hash of their text (content identity, warehouse/copies.py)
        assert con.execute("SELECT count(*) FROM documents d JOIN document_text t USING (doc_id) "
                           "WHERE d.text_sha256 IS DISTINCT FROM sha256(t.text)").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM targets_vs_actuals").fetchone() == (4,)
        assert con.execute("SELECT count(*) FROM regions").fetchone()[0] > 0
        before = con.execute("SELECT id FROM wh.current_snapshot()").fetchone()[0]
        assert schema_module.migrate(con) == []
        assert con.execute("SELECT id FROM wh.current_snapshot()").fetchone()[0] == before
        view_sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'indicator_panel'").fetchone()[0]
        assert "actual_report_year" in view_sql and "arg_min" in view_sql, "migrations 4 and 5 replaced migration 2's panel"
        tva_sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'targets_vs_actuals'").fetchone()[0]
        assert "row_number" in tva_sql, "migration 6 put targets_vs_actuals' v4 SQL back"
    finally:
        con.close()
    assert {v.since for v in VIEWS_V4} == {4}
    # time travel to the old snapshot: its own (v2) panel, and today's views it did not have yet
    past = connect(settings, read_only=True, at=old_snapshot)
    try:
        assert "arg_min" not in past.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'indicator_panel' "
                                             "AND database_name = 'wh'").fetchone()[0]
        assert past.execute("SELECT count(*) FROM targets_vs_actuals WHERE actual IS NOT NULL").fetchone()[0] == 3
        assert past.execute("SELECT count(*) FROM regions").fetchone()[0] > 0
    finally:
        past.close()


@pytest.mark.parametrize("name", [v.name for v in VIEWS_V5])
def test_the_faster_v5_views_return_exactly_the_rows_of_v4(wh, name):
    v4 = next(v for v in VIEWS_V4 if v.name == name)
    v5 = next(v for v in VIEWS_V5 if v.name == name)
    old, new = wh.execute(v4.sql), None
    old_names, old_rows = [d[0] for d in old.description], old.fetchall()
    new = wh.execute(v5.sql)
    assert [d[0] for d in new.description] == old_names
    assert sorted(map(repr, new.fetchall())) == sorted(map(repr, old_rows)) and old_rows


# sha256 (first 16 hex) of the SQL each migration ran: an applied migration's SQL is never edited, however
# views.py is written (the v4 and v5 indicator_panel share their column list as a constant).
APPLIED_VIEW_SQL = {
    ("indicator_panel", 4): "79d7f4acd6dab1b5", ("targets_vs_actuals", 4): "c19e0d9b91008a00",
    ("regions", 4): "10b28d083e9d869a", ("indicator_panel", 5): "7356b44e99d0a018",
    ("targets_vs_actuals", 5): "d0e1f500bf823e24", ("targets_vs_actuals", 6): "c19e0d9b91008a00",
}


def test_the_sql_of_applied_migrations_never_changes():
    import hashlib

    from warehouse.views import LATER_VIEWS

    got = {(v.name, v.since): hashlib.sha256(v.sql.encode()).hexdigest()[:16] for v in LATER_VIEWS}
    assert got == APPLIED_VIEW_SQL, "a view changes through a new migration entry, never by editing an applied one"
