"""The report's pieces: evidence highlighting, the pass-rate chart, expectation results, escaping, and targets read from the view."""

from __future__ import annotations

import json
import re

import pandas as pd

from expectations.report import ReportData, expectation_groups, highlight, pass_rate_chart, render_html

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


def test_an_empty_warehouse_renders_every_section():
    empty = pd.DataFrame()
    data = ReportData(warehouse="/w", run=None, results=empty, history=empty, documents=empty,
                      facts=pd.DataFrame(columns=["fact_id", "doc_id", "dq_status"]), messages={}, texts={},
                      conflicts=pd.DataFrame(), targets=[], files=pd.DataFrame())
    page = render_html(data)
    assert all(f'<section id="{s}">' in page for s in ("summary", "expectations", "history", "failures", "conflicts",
                                                       "targets", "documents", "files"))
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?:", page)


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
                      texts={}, conflicts=pd.DataFrame(), targets=[], files=pd.DataFrame())
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


HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&{{ 7*7 }}{% raw %}'


def _hostile_data() -> ReportData:
    """A report whose every text field (names, evidence, reasons, paths, expectation results) is hostile markup."""
    h = HOSTILE
    facts = pd.DataFrame([dict(_fact("actual", "2023", 66.0, 2024), fact_id="f1", doc_id="d1", region=h, indicator=h, unit=h,
                               qualifier=h, evidence=h, dq_status="error", dq_failed=h, run_id="r"),
                          dict(_fact("actual", "2023", 5.0, 2025), fact_id="f2", doc_id="d2", region=h, evidence=h, run_id="r")])
    docs = pd.DataFrame([dict(doc_id=d, source_path=f"in/{h}.txt", region=h, region_level="county", report_year=2024, encoding=h,
                              n_bytes=10, run_id="r", doc_type="local_work_report", no_facts_reason=h if d == "d3" else None,
                              n_facts=0 if d == "d3" else 1, n_passed=0, n_warning=0, n_error=0) for d in ("d1", "d2", "d3")])
    gx = json.dumps({"success": False, "expectation_config": {"kwargs": {"column": h}},
                     "result": {"partial_unexpected_counts": [{"value": h, "count": 2}]}})
    results = pd.DataFrame([dict(expectation=f"expect_{h}", description=h, severity="error", scope=h, success=False,
                                 element_count=2, unexpected_count=1, unexpected_messages=json.dumps({"f1": h}), gx_result=gx)])
    history = pd.DataFrame([dict(snapshot_id=2, expectation=h, severity="error", checked=2, failed=1, pass_rate=0.5)])
    conflicts = pd.DataFrame([dict(left_fact_id="f1", right_fact_id="f2", region=h, indicator=h, period=h, kind=h, measure=h,
                                   left_doc_id="d1", right_doc_id="d2", left_value=66.0, right_value=5.0, left_unit=h,
                                   right_unit=h, left_qualifier=h, right_qualifier=h, left_evidence=h, right_evidence=h)])
    targets = [dict(region=h, indicator=h, measure=h, year=2024, target=6.0, target_unit=h, target_qualifier=h, actual=6.5,
                    actual_unit=h, gap=0.5, gap_unit=h, met=True, target_evidence=h, actual_evidence=h)]
    files = pd.DataFrame([dict(source_path=f"in/{h}", stage=h, reason=h, detail=h)])
    return ReportData(warehouse=h, run=dict(run_id=h, snapshot_id=2, finished_at=h, expectations_passed=0, expectations_failed=1),
                      results=results, history=history, documents=docs, facts=facts, messages={"f1": [h]},
                      texts={"d1": h + "。" + h}, conflicts=conflicts, targets=targets, files=files)


def test_every_value_from_the_data_is_printed_as_text_never_markup():
    from html.parser import HTMLParser

    page = render_html(_hostile_data())
    tags: set[str] = set()
    handlers: list[str] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag)
            handlers.extend(name for name, _ in attrs if name.startswith("on"))

    Tags().feed(page)
    assert "img" not in tags and handlers == []  # no element or event handler came from the data
    assert page.count("<script>") == 1  # the page's own script, nothing else
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "{{ 7*7 }}" in page and "49" not in page
    for section in ("summary", "expectations", "history", "failures", "conflicts", "targets", "nofacts", "documents", "files"):
        part = page[page.index(f'<section id="{section}">'):]
        assert "&lt;script&gt;" in part[:part.index("</section>")], section


def _result(expectation, scope, description, checked, failed: dict, severity="error", column="value", values=()):
    gx = {"success": not failed, "expectation_config": {"type": expectation, "kwargs": {"column": column}},
          "result": {"element_count": checked, "unexpected_count": len(failed),
                     "partial_unexpected_counts": [{"value": v, "count": n} for v, n in values]}}
    return dict(run_id="r", snapshot_id=2, expectation=expectation, description=description, severity=severity, scope=scope,
                success=not failed, element_count=checked, unexpected_count=len(failed),
                unexpected_messages=json.dumps(failed, ensure_ascii=False), gx_result=json.dumps(gx))


RESULTS = pd.DataFrame([
    _result("expect_growth_rates_to_be_in_range", "indicator cpi", "Growth rates of cpi lie within [-10, 10] %", 3, {}),
    _result("expect_growth_rates_to_be_in_range", "indicator gdp", "Growth rates of gdp lie within [-20, 30] %", 6,
            {"f1": "gdp growth 66% (2023, actual) is outside the plausible range [-20, 30] %"}, values=[(66.0, 1)]),
    _result("expect_levels_to_be_positive", "levels", "Levels (amounts, counts, areas) are above zero", 4, {}),
    _result("expect_target_periods_to_equal_the_report_year", "targets", "A target is for the year of its report", 5,
            {"f7": "gdp level target 134亿元 is for 2026", "f8": "revenue target 6.5亿元 is for 2026"}, severity="warning",
            column="dq_target_year_gap", values=[(4.0, 2)]),
])


def test_each_expectation_shows_its_result_its_failing_values_and_why_each_fact_failed():
    groups = expectation_groups(RESULTS, shown={"f1"})
    assert [g["expectation"] for g in groups] == ["expect_growth_rates_to_be_in_range", "expect_target_periods_to_equal_the_report_year",
                                                  "expect_levels_to_be_positive"]  # failures first
    growth = groups[0]
    assert (growth["mark"], growth["checked"], growth["failed"], growth["rate"]) == ("✘", 9, 1, "88.9%")
    assert growth["description"] == "Growth rates lie within the plausible range of their indicator"  # its class's, read from custom.py
    gdp = next(i for i in growth["instances"] if i["scope"] == "indicator gdp")
    assert (gdp["success"], gdp["column"], gdp["unexpected"]) == (False, "value", ["66"])
    assert gdp["messages"] == [dict(fact_id="f1", text="gdp growth 66% (2023, actual) is outside the plausible range [-20, 30] %", shown=True)]
    assert groups[1]["mark"] == "⚠" and groups[1]["instances"][0]["unexpected"] == ["4 (×2)"]
    assert groups[2]["mark"] == "✔" and groups[2]["rate"] == "100.0%"

    empty = pd.DataFrame()
    page = render_html(ReportData(warehouse="/w", run=None, results=RESULTS, history=empty, documents=empty,
                                  facts=pd.DataFrame(columns=["fact_id", "doc_id", "dq_status"]), messages={}, texts={},
                                  conflicts=pd.DataFrame(), targets=[], files=pd.DataFrame()))
    section = re.sub(r"\s+", " ", page[page.index('<section id="expectations">'):page.index('<section id="history">')])
    assert "indicator gdp: 1 of 6 failed; unexpected value: 66" in section
    assert "<li>gdp growth 66% (2023, actual) is outside the plausible range [-20, 30] %</li>" in section  # f1 not on this page: no link
    assert "targets: 2 of 5 failed; unexpected dq_target_year_gap: 4 (×2)" in section and "revenue target 6.5亿元 is for 2026" in section
    assert "each of the 2 instances" in section and "Growth rates of cpi lie within [-10, 10] %" in section
    assert "Data Docs" not in page and "gx/" not in page  # the project's page replaces GX Data Docs


def test_class_descriptions_read_from_the_source_are_those_of_the_classes():
    from expectations import custom
    from expectations.report import class_descriptions

    assert class_descriptions() == {cls.expectation_type: cls.__fields__["description"].default for cls in custom.ALL_EXPECTATIONS}


def test_the_report_shows_the_rows_of_the_view_targets_vs_actuals(tmp_path):
    """What the page shows is what `SELECT ... FROM targets_vs_actuals` returns on the same warehouse, nothing computed beside it."""
    from expectations.report import load_report_data
    from tests.warehouse_batches import fact, make_batch
    from transforms.settings import load_settings
    from warehouse.load import load_batch
    from warehouse.snapshots import query

    settings = load_settings(warehouse=tmp_path / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    load_batch(settings, make_batch("run1", [
        fact("doc23", 6.5, 10, period="2023", kind="target", report_year=2023, qualifier="左右"),
        fact("doc23", 4.0, 30, period="2023", kind="target", report_year=2023, indicator="cpi", qualifier="以内"),
        fact("doc23", 9.0, 50, period="2023", kind="target", report_year=2023, indicator="retail_sales"),
        fact("doc23", 8.0, 70, period="2023", kind="target", report_year=2023, indicator="fixed_asset_investment"),
        fact("doc24", 6.6, 10, period="2023", kind="actual", report_year=2024),
        fact("doc24", 4.2, 30, period="2023", kind="actual", report_year=2024, indicator="cpi"),
        fact("doc24", 20.0, 50, period="2023", kind="actual", report_year=2024, indicator="retail_sales", dq_status="error"),
        fact("doc24", 900.0, 70, period="2023", kind="actual", report_year=2024, indicator="fixed_asset_investment", unit="亿元"),
        fact("doc24", 6.0, 90, period="2024", kind="target", report_year=2024, qualifier="左右"),  # no 2025 report: pending
    ]))
    data = load_report_data(settings)
    page = render_html(data)
    section = page[page.index('<section id="targets">'):page.index("</section>", page.index('<section id="targets">'))]
    shown = [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
             for row in re.findall(r"<tr><td>.*?</tr>", section, flags=re.S)]
    names, rows = query(settings, "SELECT region, indicator, measure, year, target, target_unit, target_qualifier, actual, "
                                  "actual_unit, gap, gap_unit, met FROM targets_vs_actuals WHERE actual IS NOT NULL "
                                  "ORDER BY region, year, indicator, measure")
    view = [dict(zip(names, r)) for r in rows]
    assert len(view) == 3 and len(shown) == len(view)  # retail_sales: its actual is quarantined, so the view has none
    for cells, r in zip(shown, view):
        gap = "" if r["gap"] is None else f"{r['gap']:+.4g} {r['gap_unit']}"
        outcome = "units differ" if r["met"] is None else "met" if r["met"] else "missed"
        assert cells == [r["region"], r["indicator"], r["measure"], str(r["year"]),
                         f"{r['target']:g}{r['target_unit']} {r['target_qualifier'] or ''}".strip(), f"{r['actual']:g}{r['actual_unit']}",
                         gap, outcome]
    assert {c[1]: c[-1] for c in shown} == {"cpi": "missed", "fixed_asset_investment": "units differ", "gdp": "met"}
    assert "2 more targets wait for the report of the next year" in section  # 2024 gdp, and retail_sales without an actual
