"""End to end through the real flow: bad facts are quarantined with their reasons, the rest is published, the report shows it.

The inbox holds the five samples plus two short reports of a real county, 石楼县, with made-up figures:
its 2024 report states GDP growth of 66% and an urban income in 万人; its 2025
report states 2024 GDP that implies 20% growth against a stated 6.5%, and a 2023
budget revenue that disagrees with the 2024 report's.

The extractor rightly refuses a level whose unit is not of its indicator's family,
so the 万人 income is injected the way a misreading extractor would emit it: the
flow's ``identify_and_extract`` is wrapped to add that fact with its real offsets.
The expectations are the second line of defence, and this proves they hold.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from transforms.settings import load_settings
from transforms.schema import Fact
from warehouse.snapshots import query

pytestmark = pytest.mark.e2e

REPORT_2024 = """石楼县2024年政府工作报告

——2024年1月10日在石楼县第十八届人民代表大会第三次会议上

各位代表：

现在，我代表县人民政府，向大会报告工作，请予审议。

一、2023年工作回顾

过去的一年，全县经济运行稳中向好。全年实现地区生产总值100亿元,增长66%。一般公共预算收入5.2亿元，增长8%。城镇居民人均可支配收入3万人，农村居民人均可支配收入18000元。

二、2024年主要目标

地区生产总值增长6%左右，一般公共预算收入增长5%。
"""
REPORT_2025 = """石楼县2025年政府工作报告

——2025年1月8日在石楼县第十八届人民代表大会第四次会议上

各位代表：

现在，我代表县人民政府，向大会报告工作，请予审议。

一、2024年工作回顾

过去的一年，全县经济持续回升。全年实现地区生产总值120亿元,增长6.5%。一般公共预算收入5.5亿元，增长5.8%。经统计部门核定，2023年一般公共预算收入为4.9亿元。

二、2025年主要目标

地区生产总值增长6%以上，一般公共预算收入增长5%。
"""
GDP_EVIDENCE = "全年实现地区生产总值100亿元,增长66%"
INCOME_EVIDENCE = "城镇居民人均可支配收入3万人"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def _misreading(identify_and_extract):
    """identify_and_extract plus the 万人 income a careless extractor would read from REPORT_2024."""
    def extract(norm, doc_id):
        ident, facts = identify_and_extract(norm, doc_id)
        facts = list(facts)
        i = norm.text.find(INCOME_EVIDENCE)
        if i >= 0 and facts and not any(f.indicator == "urban_disposable_income" and f.unit == "万人" for f in facts):
            f0 = facts[0]
            facts.append(Fact(doc_id=doc_id, region=f0.region, indicator="urban_disposable_income", measure="level",
                              value=3.0, unit="万人", value_base=30000.0, unit_base="person", period="2023", kind="actual",
                              qualifier=None, evidence=INCOME_EVIDENCE, start=i, end=i + len(INCOME_EVIDENCE),
                              rule="test:misread_unit", region_level=f0.region_level, report_year=f0.report_year))
        return ident, facts
    return extract


@pytest.fixture(scope="module")
def injected(prefect_harness, samples: Path, tmp_path_factory):
    """One real flow run on the samples + the 石楼县 reports (module-scoped: the run takes seconds)."""
    import flows.ingest as ingest_module

    tmp = tmp_path_factory.mktemp("quality")
    inbox = tmp / "inbox"
    inbox.mkdir()
    for p in sorted(samples.iterdir()):
        shutil.copy(p, inbox / p.name)
    (inbox / "qingshi_2024.txt").write_text(REPORT_2024, encoding="utf-8")
    (inbox / "qingshi_2025.txt").write_text(REPORT_2025, encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setattr(ingest_module, "identify_and_extract", _misreading(ingest_module.identify_and_extract))
    try:
        summary = ingest_module.ingest(inbox=str(inbox), warehouse=str(tmp / "wh"))
    finally:
        mp.undo()
    settings = load_settings(warehouse=tmp / "wh")
    return settings, summary, tmp


def _rows(settings, sql, params=None) -> list[dict]:
    names, rows = query(settings, sql, params)
    return [dict(zip(names, r)) for r in rows]


def test_the_run_completes_and_counts_reconcile(injected):
    _, s, _ = injected
    assert s["files_in"] == 7 and s["documents"] == 7 and s["files_quarantined"] == 0
    assert s["files_in"] == s["documents"] + s["skipped"] + s["duplicates"] + s["files_quarantined"]
    assert s["facts_published"] + s["facts_quarantined"] == s["facts_extracted"]
    assert s["facts_quarantined"] >= 2 and s["expectations_failed"] >= 2


def test_the_bad_facts_are_quarantined_with_the_right_reasons(injected):
    settings, _, _ = injected
    q = {r["evidence"]: r for r in _rows(settings, "SELECT * FROM quarantine WHERE item = 'fact'")}
    assert "expect_growth_rates_to_be_in_range" in q[GDP_EVIDENCE]["reason"]
    assert "gdp growth 66% (2023, actual) is outside the plausible range [-20, 30] %" in q[GDP_EVIDENCE]["detail"]
    assert "expect_units_to_match_the_indicator_family" in q[INCOME_EVIDENCE]["reason"]
    assert "is stated in 万人" in q[INCOME_EVIDENCE]["detail"]
    bad = _rows(settings, "SELECT indicator, measure, value, dq_status FROM facts WHERE region = '石楼县' AND dq_status = 'error'")
    assert {(r["indicator"], r["measure"], r["value"]) for r in bad} == {("gdp", "growth", 66.0), ("urban_disposable_income", "level", 3.0)}
    leaked = _rows(settings, "SELECT count(*) AS n FROM facts_published WHERE fact_id IN (SELECT fact_id FROM quarantine WHERE item = 'fact')")
    assert leaked[0]["n"] == 0


def test_the_rest_is_published(injected):
    settings, _, _ = injected
    pub = {(r["indicator"], r["measure"], r["period"], r["kind"], r["value"])
           for r in _rows(settings, "SELECT * FROM facts_published WHERE region = '石楼县'")}
    assert ("gdp", "level", "2023", "actual", 100.0) in pub  # same sentence as the 66%, but a good fact
    assert ("rural_disposable_income", "level", "2023", "actual", 18000.0) in pub
    assert ("gdp", "growth", "2024", "target", 6.0) in pub
    totals = _rows(settings, "SELECT (SELECT count(*) FROM facts) AS facts, (SELECT count(*) FROM facts_published) AS published, "
                             "(SELECT count(*) FROM quarantine WHERE item = 'fact') AS quarantined")[0]
    assert totals["published"] + totals["quarantined"] == totals["facts"]
    gold = _rows(settings, "SELECT count(*) AS n FROM facts_published WHERE region = '凉州区' AND indicator = 'gdp' AND value = 425.16")
    assert gold[0]["n"] == 1


def test_warnings_are_published_with_their_flag(injected):
    settings, _, _ = injected
    warned = {(r["indicator"], r["measure"], r["period"], r["value"]): r["dq_failed"]
              for r in _rows(settings, "SELECT * FROM facts_published WHERE region = '石楼县' AND dq_status = 'warning'")}
    assert "expect_stated_growth_to_match_implied_growth" in warned[("gdp", "growth", "2024", 6.5)]
    assert "expect_facts_to_agree_across_documents" in warned[("general_budget_revenue", "level", "2023", 4.9)]
    assert "expect_facts_to_agree_across_documents" in warned[("general_budget_revenue", "level", "2023", 5.2)]


def test_every_expectation_has_a_result_row_with_the_snapshot(injected):
    from expectations.facts_suite import build_checks

    settings, s, _ = injected
    rows = _rows(settings, "SELECT * FROM dq_results WHERE run_id = ?", [s["run_id"]])
    assert len(rows) == len(build_checks())
    assert {r["snapshot_id"] for r in rows} == {s["snapshot_id"]}
    growth = next(r for r in rows if r["expectation"] == "expect_growth_rates_to_be_in_range" and r["scope"] == "indicator gdp")
    assert not growth["success"] and growth["unexpected_count"] == 1
    assert json.loads(growth["gx_result"])["expectation_config"]["type"] == "expect_growth_rates_to_be_in_range"


@pytest.fixture(scope="module")
def report(injected):
    from expectations.report import write_report

    settings, _, tmp = injected
    return write_report(settings, tmp / "report")


def test_the_report_lists_the_quarantined_facts_conflicts_and_targets(report):
    page = report.index.read_text(encoding="utf-8")
    for section in ("summary", "expectations", "history", "failures", "conflicts", "targets", "documents", "files"):
        assert f'<section id="{section}">' in page, section
    assert f"<mark>{GDP_EVIDENCE.replace('66%', '<b>66</b>%')}</mark>" in page
    assert f"<mark>{INCOME_EVIDENCE.replace('3万', '<b>3</b>万')}</mark>" in page
    assert "gdp growth 66% (2023, actual) is outside the plausible range [-20, 30] %" in page
    assert "is stated in 万人" in page
    conflicts = re.sub(r"<[^>]+>", "", page[page.index('<section id="conflicts">'):page.index('<section id="targets">')])
    assert "一般公共预算收入为4.9亿元" in conflicts and "一般公共预算收入5.2亿元" in conflicts
    targets = page[page.index('<section id="targets">'):page.index('<section id="documents">')]
    assert re.search(r"石楼县</td><td>gdp</td><td>growth</td><td>2024</td><td[^>]*>6% 左右</td><td[^>]*>6.5%</td><td[^>]*>\+0.5 pp</td><td class=\"ok\">met", targets)
    assert "qingshi_2024.txt" in page and "<svg" in page


def test_the_report_needs_no_network(report):
    text = report.index.read_text(encoding="utf-8")
    remote = re.findall(r"<(?:script|link|img|iframe)[^>]+(?:src|href)=\"(https?:[^\"]+)\"", text)
    assert remote == [], remote[:3]
    assert not (report.index.parent / "gx").exists()  # no GX Data Docs beside it: the page itself carries the results


def test_the_report_carries_each_expectations_result_and_failing_values(report, injected):
    """What GX Data Docs showed, on the project's page: every expectation instance, its result, the values that failed."""
    settings, s, _ = injected
    page = report.index.read_text(encoding="utf-8")
    section = re.sub(r"\s+", " ", page[page.index('<section id="expectations">'):page.index('<section id="history">')])
    assert "Data Docs" not in page
    results = _rows(settings, "SELECT expectation, scope, description, element_count, unexpected_count FROM dq_results WHERE run_id = ?",
                    [s["run_id"]])
    for r in results:
        assert f"<code>{r['expectation']}</code>" in section
        assert r["description"] in html.unescape(section), r  # each instance with its own description (per-indicator ones in a list)
        if r["unexpected_count"]:
            assert f"{r['scope']}: {r['unexpected_count']} of {r['element_count']} failed" in section, r
    assert "indicator gdp: 1 of" in section and "unexpected value: 66" in section
    assert '<a href="#fact-' in section and "gdp growth 66% (2023, actual) is outside the plausible range [-20, 30] %" in section


def test_govfacts_report_prints_the_page_and_no_data_docs(injected):
    from typer.testing import CliRunner

    from govfacts.cli import app

    settings, _, tmp = injected
    got = CliRunner().invoke(app, ["report", "--warehouse", str(settings.warehouse), "--out", str(tmp / "cli-report")])
    assert got.exit_code == 0, got.output
    flat = got.output.replace("\n", "")  # a long path may be folded at the console's width
    assert f"report: {(tmp / 'cli-report' / 'index.html').as_uri()}" in flat and "Data Docs" not in flat
    assert sorted(p.name for p in (tmp / "cli-report").iterdir()) == ["index.html", "report.json"]


def test_the_report_shows_the_rows_of_the_view_targets_vs_actuals(report, injected):
    settings, _, _ = injected
    page = report.index.read_text(encoding="utf-8")
    section = page[page.index('<section id="targets">'):page.index('<section id="coverage">')]
    shown = [tuple(re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)[:4])
             for row in re.findall(r"<tr><td>.*?</tr>", section, flags=re.S)]
    view = [(r["region"], r["indicator"], r["measure"], str(r["year"])) for r in _rows(
        settings, "SELECT region, indicator, measure, year FROM targets_vs_actuals WHERE actual IS NOT NULL "
                  "ORDER BY region, year, indicator, measure")]
    assert shown == view and ("石楼县", "gdp", "growth", "2024") in shown


def test_the_report_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed: apt-get update && apt-get install -y chromium (.ci/run does this)")
    flags = CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", report.index.as_uri()],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    for heading in ("At a glance", "Expectations of the latest validation", "Pass rates across snapshots",
                    "Failed and warned facts", "Conflicts across documents", "Targets versus actuals",
                    "Documents and what was extracted", "Quarantined files"):
        assert f"<h2>{heading}</h2>" in dom, heading
    assert GDP_EVIDENCE.replace("66%", "<b>66</b>%") in dom and 'class="chart"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, "--window-size=1400,2200", f"--screenshot={shot}", report.index.as_uri()],
                   capture_output=True, timeout=180, check=True)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _one_document_a_group(ingest_module, inbox, warehouse, monkeypatch) -> dict:
    monkeypatch.setenv("GOVFACTS_VALIDATE_BATCH_SIZE", "1")  # one document a group: the two reports never share one
    return ingest_module.ingest(inbox=str(inbox), warehouse=str(warehouse), batch_size=1)


def _shilou(settings) -> dict:
    rows = _rows(settings, "SELECT f.indicator, f.measure, f.period, f.value, f.dq_status, f.dq_failed, f.pipeline_version "
                           "FROM facts f WHERE f.region = '石楼县' AND f.kind = 'actual'")
    return {(r["indicator"], r["measure"], r["period"], r["value"]): r for r in rows}


def test_documents_validated_in_different_groups_of_one_run_are_still_compared(prefect_harness, tmp_path, monkeypatch):
    """A run validates its documents in groups and loads them together at the end: a group is compared with what the
    groups before it left, so two reports of one run are compared whichever groups they fall in — the conflict and the
    implied growth across the two 石楼县 reports are found as when both share a group (test_the_bad_facts...)."""
    import flows.ingest as ingest_module

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a_2024.txt").write_text(REPORT_2024, encoding="utf-8")
    (inbox / "b_2025.txt").write_text(REPORT_2025, encoding="utf-8")
    summary = _one_document_a_group(ingest_module, inbox, tmp_path / "wh", monkeypatch)
    assert summary["documents"] == 2 and summary["batches"] == 2
    facts = _shilou(load_settings(warehouse=tmp_path / "wh"))
    later_revenue = facts[("general_budget_revenue", "level", "2023", 4.9)]  # the 2025 report, in the second group
    assert later_revenue["dq_status"] == "warning" and "expect_facts_to_agree_across_documents" in later_revenue["dq_failed"]
    growth = facts[("gdp", "growth", "2024", 6.5)]  # 120 亿元 (2024) over 100 亿元 (2023, the other report) is 20 %
    assert "expect_stated_growth_to_match_implied_growth" in growth["dq_failed"], growth


def test_a_reprocessing_run_compares_a_document_with_its_new_version_not_its_old(prefect_harness, tmp_path, monkeypatch):
    """A new code version re-processes every document; one group is compared with the other's new facts, and the
    warehouse's rows of the same documents (the old version, replaced by this run) are not compared a second time."""
    import flows.ingest as ingest_module
    from warehouse.quality import comparable_facts

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a_2024.txt").write_text(REPORT_2024, encoding="utf-8")
    (inbox / "b_2025.txt").write_text(REPORT_2025, encoding="utf-8")
    _one_document_a_group(ingest_module, inbox, tmp_path / "wh", monkeypatch)
    seen: list = []

    def recording(settings, places, earlier, replaced=None):
        found = comparable_facts(settings, places, earlier, replaced)
        seen.append((settings is not None, replaced is not None, sorted(found.column("value").to_pylist())))
        return found

    monkeypatch.setattr(ingest_module, "comparable_facts", recording)
    monkeypatch.setattr(ingest_module, "pipeline_version", lambda: "next-version")
    summary = _one_document_a_group(ingest_module, inbox, tmp_path / "wh", monkeypatch)
    assert summary["documents"] == 2 and summary["changed"]
    # the first group: the warehouse holds only the two documents this run replaces, so nothing to compare with; the
    # second: the first group's new facts, once
    assert [s[:2] for s in seen] == [(True, True), (True, True)] and seen[0][2] == []
    settings = load_settings(warehouse=tmp_path / "wh")
    facts = _shilou(settings)
    assert {r["pipeline_version"] for r in facts.values()} == {"next-version"}
    first_group = _rows(settings, "SELECT f.value FROM facts f JOIN documents d USING (doc_id) "
                                  "WHERE d.source_path LIKE '%a_2024.txt' AND f.dq_status <> 'error'")
    assert seen[1][2] == sorted(r["value"] for r in first_group)  # each of them once: no old version beside it
    later_revenue = facts[("general_budget_revenue", "level", "2023", 4.9)]
    assert "expect_facts_to_agree_across_documents" in later_revenue["dq_failed"]
