"""The report's pure pieces: evidence highlighting, the pass-rate chart, targets vs actuals, offline Data Docs."""

from __future__ import annotations

import json
import re

import pandas as pd

from expectations.data_docs import strip_remote, suite_result
from expectations.report import ReportData, highlight, pass_rate_chart, render_html, targets_vs_actuals

TEXT = "过去一年。全年实现地区生产总值100亿元,增长66%。一般公共预算收入5.2亿元。"


def test_the_evidence_is_marked_in_its_context_with_the_number_in_bold():
    start = TEXT.index("全年")
    evidence = "全年实现地区生产总值100亿元,增长66%"
    out = highlight(TEXT, start, start + len(evidence), evidence, 66.0)
    assert "<mark>全年实现地区生产总值100亿元,增长<b>66</b>%</mark>" in out
    assert out.startswith('<span class="ctx">过去一年。</span>') and "一般公共预算收入5.2亿元" in out


def test_the_bold_number_is_not_a_part_of_a_longer_number():
    out = highlight("", 0, 0, "增长166%,其中6%来自", 6.0)
    assert "增长166%,其中<b>6</b>%来自" in out


def test_offsets_that_do_not_match_show_the_evidence_alone_escaped():
    out = highlight(TEXT, 0, 3, "<script>x</script>", None)
    assert out == '<span class="ctx"></span><mark>&lt;script&gt;x&lt;/script&gt;</mark><span class="ctx"></span>'


def test_the_chart_has_a_cell_per_expectation_and_snapshot():
    h = pd.DataFrame([dict(snapshot_id=s, expectation=e, severity="error", checked=c, failed=f, pass_rate=(1 - f / c) if c else None)
                      for s, e, c, f in [(2, "expect_a", 10, 0), (3, "expect_a", 10, 5), (2, "expect_b", 0, 0), (3, "expect_b", 4, 1)]])
    svg = pass_rate_chart(h)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 4 and ">snap 2<" in svg and ">snap 3<" in svg
    assert ">100%<" in svg and ">50%<" in svg and ">75%<" in svg and ">–<" in svg
    assert "expect_a · snapshot 3: 5/10 facts passed" in svg


def _fact(kind, period, value, report_year, unit="%", qualifier=None, status="passed", indicator="gdp"):
    return dict(fact_id=f"{kind}{period}{value}", doc_id=f"d{report_year}", region="甲县", indicator=indicator, measure="growth",
                value=value, unit=unit, value_base=value, unit_base="%", period=period, kind=kind, qualifier=qualifier,
                evidence=f"{kind}{value}", start=0, end=1, report_year=report_year, dq_status=status)


def test_targets_meet_actuals_of_the_next_report():
    facts = pd.DataFrame([_fact("target", "2024", 6.0, 2024, qualifier="左右"), _fact("actual", "2024", 6.5, 2025),
                          _fact("target", "2024", 3.0, 2024, qualifier="以内", indicator="cpi"),
                          _fact("actual", "2024", 3.4, 2025, indicator="cpi"),
                          _fact("target", "2024", 9.0, 2024, indicator="retail_sales"),
                          _fact("actual", "2024", 20.0, 2025, indicator="retail_sales", status="error")])
    t = targets_vs_actuals(facts).set_index("indicator")
    assert t.loc["gdp", "met"] and round(t.loc["gdp", "gap"], 6) == 0.5 and t.loc["gdp", "gap_unit"] == "pp"
    assert not t.loc["cpi", "met"]  # 以内 is a cap: 3.4 > 3
    assert "retail_sales" not in t.index  # a quarantined actual is not compared


def test_an_empty_warehouse_renders_every_section():
    empty = pd.DataFrame()
    data = ReportData(warehouse="/w", run=None, results=empty, history=empty, documents=empty,
                      facts=pd.DataFrame(columns=["fact_id", "doc_id", "dq_status"]), messages={}, texts={},
                      conflicts=pd.DataFrame(), targets=pd.DataFrame(), files=pd.DataFrame())
    page = render_html(data)
    assert all(f'<section id="{s}">' in page for s in ("summary", "expectations", "history", "failures", "conflicts",
                                                       "targets", "documents", "files"))
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?:", page)


def test_remote_assets_are_stripped_from_gx_pages():
    page = ('<html><head><link rel="stylesheet" href="https://cdn.example/b.css"/>'
            '<script src="https://cdn.example/j.js"></script><style>.x{background:url(\'https://s3.example/l.png\')}</style></head>'
            '<body><img src="https://s3.example/logo.png?id=1"/><a href="https://docs.example">docs</a></body></html>')
    out = strip_remote(page)
    assert "cdn.example" not in out and "s3.example" not in out
    assert 'href="https://docs.example"' in out  # a plain link loads nothing
    assert 'id="govfacts-offline"' in out


def test_suite_result_rebuilds_the_statistics_from_stored_rows():
    rows = [dict(gx_result=json.dumps({"success": s, "expectation_config": {"type": "expect_x", "kwargs": {}}, "result": {}}))
            for s in (True, True, False)] + [dict(gx_result=None)]
    r = suite_result(rows, "run1", 4)
    assert r["statistics"]["evaluated_expectations"] == 3 and r["statistics"]["successful_expectations"] == 2
    assert r["success"] is False and r["meta"]["govfacts_snapshot_id"] == 4


def test_long_lists_are_capped_with_a_note_saying_how_to_get_the_rest(monkeypatch):
    import expectations.report as report

    monkeypatch.setattr(report, "MAX_FLAGGED", 2)
    monkeypatch.setattr(report, "MAX_DOCUMENT_TABLES", 1)
    facts = pd.DataFrame([dict(_fact("actual", "2023", float(v), 2024), fact_id=f"f{v}", doc_id=f"d{v % 2}", dq_status="warning",
                               dq_failed="expect_x", run_id="r") for v in range(5)])
    docs = pd.DataFrame([dict(doc_id=f"d{i}", source_path=f"in/{i}.txt", region="甲县", region_level="county", report_year=2024,
                              encoding="utf-8", n_bytes=10, run_id="r", n_facts=3, n_passed=0, n_warning=3, n_error=0) for i in (0, 1)])
    empty = pd.DataFrame()
    data = ReportData(warehouse="/w", run=None, results=empty, history=empty, documents=docs, facts=facts, messages={},
                      texts={}, conflicts=pd.DataFrame(), targets=pd.DataFrame(), files=pd.DataFrame())
    page = render_html(data)
    assert "Showing 2 of 5 flagged facts" in page and page.count('<article class="fact') == 2
    assert "not listed on this page: <code>govfacts sql \"SELECT * FROM facts WHERE doc_id = 'd1'\"</code>" in page


def test_coverage_lists_reports_without_a_gdp_level_growth_or_targets():
    import pandas as pd

    from expectations.report import coverage

    docs = pd.DataFrame([
        dict(doc_id="a", source_path="a.txt", region="易县", report_year=2020, doc_type="local_work_report"),
        dict(doc_id="b", source_path="b.txt", region="唐县", report_year=2020, doc_type="local_work_report"),
        dict(doc_id="c", source_path="c.txt", region=None, report_year=None, doc_type="national_work_report"),
    ])
    facts = pd.DataFrame([
        dict(doc_id="a", indicator="gdp", measure="level", period="2019", kind="actual", dq_status="passed"),
        dict(doc_id="a", indicator="gdp", measure="growth", period="2019", kind="actual", dq_status="warning"),
        dict(doc_id="a", indicator="gdp", measure="growth", period="2020", kind="target", dq_status="passed"),
        dict(doc_id="b", indicator="gdp", measure="level", period="2019", kind="actual", dq_status="error"),
    ])
    cov = coverage(docs, facts).set_index("doc_id")
    assert list(cov.index) == ["a", "b"]  # only local reports are judged
    assert cov.loc["a", ["gdp_level", "gdp_growth", "targets"]].tolist() == [True, True, 1]
    assert cov.loc["b", ["gdp_level", "gdp_growth", "targets"]].tolist() == [False, False, 0]  # a quarantined level is no level
