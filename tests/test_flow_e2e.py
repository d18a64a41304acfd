"""End to end: the real Prefect flow on the samples into a real DuckLake warehouse in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms.settings import load_settings
from warehouse.snapshots import list_snapshots, query

pytestmark = pytest.mark.e2e

EXPECTED_GDP = [
    ("凉州区", "2023", "level", "actual", 425.16, "亿元", None),
    ("凉州区", "2023", "growth", "actual", 6.6, "%", None),
    ("凤泉区", "2021", "level", "actual", 83.18, "亿元", None),
    ("凤泉区", "2021", "growth", "actual", 4.4, "%", None),
    ("浈江区", "2023", "level", "actual", 237.91, "亿元", None),
    ("浈江区", "2023", "growth", "actual", 4.5, "%", None),
    ("壶关县", "2024", "growth", "target", 6.0, "%", "左右"),
]


@pytest.fixture
def first_run(prefect_harness, inbox: Path, tmp_path: Path):
    from flows.ingest import ingest

    wh = tmp_path / "wh"
    summary = ingest(inbox=str(inbox), warehouse=str(wh))
    return load_settings(warehouse=wh), summary, inbox


def test_flow_loads_five_documents_and_the_headline_gdp_facts(first_run):
    settings, summary, _ = first_run
    assert summary["documents"] == 5 and summary["files_in"] == 5
    _, docs = query(settings, "SELECT count(*) FROM documents")
    assert docs == [(5,)]
    for region, period, measure, kind, value, unit, qualifier in EXPECTED_GDP:
        _, rows = query(settings, "SELECT value, unit, qualifier, evidence FROM facts_published WHERE region = ? AND period = ? "
                        "AND indicator = 'gdp' AND measure = ? AND kind = ?", [region, period, measure, kind])
        assert any(abs(r[0] - value) < 1e-9 and r[1] == unit and r[2] == qualifier for r in rows), (region, period, measure, kind, rows)


def test_first_run_makes_one_snapshot_and_unchanged_rerun_adds_nothing(first_run):
    from flows.ingest import ingest

    settings, summary, inbox = first_run
    data_snapshots = [s for s in list_snapshots(settings) if s["message"] and "run_id" in s["message"]]
    assert len(data_snapshots) == 1 and data_snapshots[0]["snapshot_id"] == summary["snapshot_id"]
    _, before = query(settings, "SELECT count(*) FROM facts")
    again = ingest(inbox=str(inbox), warehouse=str(settings.warehouse))
    assert again["changed"] is False and again["skipped"] == 5 and again["snapshot_id"] == summary["snapshot_id"]
    _, after = query(settings, "SELECT count(*) FROM facts")
    assert after == before
    _, dupes = query(settings, "SELECT count(*) FROM (SELECT fact_id FROM facts GROUP BY fact_id HAVING count(*) > 1)")
    assert dupes == [(0,)]


def test_an_undecodable_file_is_quarantined_and_the_run_continues(prefect_harness, inbox: Path, tmp_path: Path):
    from flows.ingest import ingest

    (inbox / "broken.txt").write_bytes(b"\x00\x01\x02\xff\xfe\x00" * 300)
    (inbox / "empty.txt").write_bytes(b"")
    summary = ingest(inbox=str(inbox), warehouse=str(tmp_path / "wh"))
    assert summary["documents"] == 5 and summary["files_quarantined"] == 2 and summary["files_in"] == 7
    settings = load_settings(warehouse=tmp_path / "wh")
    _, rows = query(settings, "SELECT source_path, reason, detail FROM quarantine WHERE item = 'file' ORDER BY source_path")
    assert [Path(r[0]).name for r in rows] == ["broken.txt", "empty.txt"]
    assert all(Path(r[0]).name in r[2] for r in rows), rows


def test_documents_without_identity_get_no_facts_and_a_reason_in_the_table_and_the_summary(prefect_harness, inbox: Path,
                                                                                             tmp_path: Path):
    """The national report filed among district reports, and a report naming no government: rows that say why."""
    from flows.ingest import ingest

    real = Path(__file__).parent / "corpus" / "real"
    (inbox / "r11.txt").write_bytes((real / "r11_shenzhen_district_2018.txt").read_bytes())
    (inbox / "r25.txt").write_bytes((real / "r25_baoding_安新_2024_xlsxcell.txt").read_bytes())
    (inbox / "anonymous.txt").write_text("各位代表:\n一、工作回顾\n地区生产总值增长5%。\n", encoding="utf-8")
    summary = ingest(inbox=str(inbox), warehouse=str(tmp_path / "wh"))
    reasons = {Path(d["source_path"]).name: (d["doc_type"], d["reason"]) for d in summary["without_facts"]}
    assert reasons["r11.txt"][0] == "national_work_report" and "State Council" in reasons["r11.txt"][1]
    assert reasons["anonymous.txt"][0] == "unidentified_report" and "region unknown" in reasons["anonymous.txt"][1]
    settings = load_settings(warehouse=tmp_path / "wh")
    _, rows = query(settings, "SELECT source_path, doc_type, region, region_level, report_year, n_facts, no_facts_reason, identity "
                              "FROM documents ORDER BY source_path")
    by_name = {Path(r[0]).name: r for r in rows}
    assert by_name["r11.txt"][5] == 0 and by_name["r11.txt"][6]
    assert by_name["anonymous.txt"][5] == 0 and by_name["anonymous.txt"][6]
    # a county of Henan filed under a Hebei county's name: the region comes from the text
    assert by_name["r25.txt"][1:5] == ("local_work_report", "新安县", "county", 2024) and by_name["r25.txt"][5] > 0
    assert by_name["r25.txt"][6] is None and '"region_source"' in by_name["r25.txt"][7]


def test_a_first_run_whose_warehouse_cannot_be_created_fails_with_that_error_and_leaves_no_parts(prefect_harness, inbox: Path,
                                                                                                  tmp_path: Path, monkeypatch):
    """A first run transforms while its plan creates the warehouse: when creating fails, the run fails with that
    error — not a later one — and its run directory of parts is gone."""
    import flows.ingest as flow_module

    def cannot_create(settings):
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(flow_module, "open_for_write", cannot_create)
    wh = tmp_path / "wh"
    with pytest.raises(OSError, match="injected"):
        flow_module.ingest(inbox=str(inbox), warehouse=str(wh))
    assert not (wh / "spill").exists() or not any((wh / "spill").iterdir())
    assert not (wh / "catalog.sqlite").exists()
